"""OpenAI Evals' basic scorers, by their published definitions (evalkit's own code).

- `oai_match` (`basic.match:Match`): right when the reply *starts with* one of the ideal answers,
  compared as is (no case folding, no trimming).
- `oai_includes` (`basic.includes:Includes`): right when an ideal answer occurs anywhere in the
  reply; case-insensitive only with the eval's `ignore_case`.
- `oai_fuzzy` (`basic.fuzzy_match:FuzzyMatch`): both texts normalised (lower case, punctuation
  and the articles a/an/the removed, whitespace collapsed); right when either contains the other
  (two empty texts match, one empty text matches nothing); also token F1, the best over the ideals.
- `json` (`basic.json_match:JsonMatch`): the reply parsed as JSON equals an ideal parsed as JSON,
  component by component (objects over the union of their keys, lists of equal length in order);
  a reply that is not JSON never matches.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter

from ..datasets import Sample
from . import Score

_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def ideals(sample: Sample) -> list[str]:
    return list(sample.fields.get("ideals") or [sample.answer])


def normalize(text: str) -> str:
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


def fuzzy_contains(a: str, b: str) -> bool:
    a, b = normalize(a), normalize(b)
    if not a or not b:
        return a == b
    return a in b or b in a


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(reference).split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def json_equal(got, want) -> bool:
    if got is None or want is None:
        return False
    if isinstance(got, dict):
        return isinstance(want, dict) and all(json_equal(got.get(k), want.get(k)) for k in set(got) | set(want))
    if isinstance(got, list):
        return isinstance(want, list) and len(got) == len(want) and all(json_equal(g, w) for g, w in zip(got, want))
    return got == want


def score_oai(method: str, completion: str, sample: Sample, ignore_case: bool = False) -> Score:
    refs = ideals(sample)
    if method == "oai_match":
        picked = next((r for r in refs if completion.startswith(r)), None)
        return Score(1.0 if picked is not None else 0.0, picked)
    if method == "oai_includes":
        hay = completion.lower() if ignore_case else completion
        picked = next((r for r in refs if (r.lower() if ignore_case else r) in hay), None)
        return Score(1.0 if picked is not None else 0.0, picked)
    if method == "oai_fuzzy":
        hit = any(fuzzy_contains(completion, r) for r in refs)
        return Score(1.0 if hit else 0.0, completion, extras={"f1": max(token_f1(completion, r) for r in refs)})
    if method == "json":
        try:
            got = json.loads(completion)
        except ValueError:
            return Score(0.0, None, parsed=False)
        return Score(1.0 if any(json_equal(got, json.loads(r)) for r in refs) else 0.0, completion)
    raise ValueError(f"no OpenAI Evals scorer {method!r}")
