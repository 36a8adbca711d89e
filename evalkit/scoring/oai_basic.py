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
from collections import Counter
from typing import Literal, cast

from evalkit.core.sample import Sample
from evalkit.scoring import Score, ScoreInput, ScorerOptions, ScoringError, scorer
from evalkit.scoring.text import squad_normalize as normalize


def ideals(sample: Sample) -> list[str]:
    return list(sample.fields.get("ideals") or [sample.answer])


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


class MatchOptions(ScorerOptions):
    method: Literal["oai_match"]


class IncludesOptions(ScorerOptions):
    method: Literal["oai_includes"]
    ignore_case: bool = False


class FuzzyOptions(ScorerOptions):
    method: Literal["oai_fuzzy"]


class JsonOptions(ScorerOptions):
    method: Literal["json"]


@scorer("oai_match", MatchOptions)
def match(inp: ScoreInput) -> Score:
    picked = next((r for r in ideals(inp.sample) if inp.reply.text.startswith(r)), None)
    return Score(1.0 if picked is not None else 0.0, picked)


@scorer("oai_includes", IncludesOptions)
def includes(inp: ScoreInput) -> Score:
    fold = str.lower if cast(IncludesOptions, inp.options).ignore_case else str  # the registry built these options from this scorer's class
    hay = fold(inp.reply.text)
    picked = next((r for r in ideals(inp.sample) if fold(r) in hay), None)
    return Score(1.0 if picked is not None else 0.0, picked)


@scorer("oai_fuzzy", FuzzyOptions, metrics=("accuracy", "f1"))
def fuzzy(inp: ScoreInput) -> Score:
    refs, text = ideals(inp.sample), inp.reply.text
    hit = any(fuzzy_contains(text, r) for r in refs)
    return Score(1.0 if hit else 0.0, text, extras={"f1": max(token_f1(text, r) for r in refs)})


@scorer("json", JsonOptions)
def json_match(inp: ScoreInput) -> Score:
    try:
        got = json.loads(inp.reply.text)
    except ValueError:
        return Score(0.0, None, parsed=False)
    wanted = []
    for r in ideals(inp.sample):
        try:
            wanted.append(json.loads(r))
        except ValueError:
            raise ScoringError(f"the ideal answer is not JSON: {r[:80]!r}") from None
    return Score(1.0 if any(json_equal(got, w) for w in wanted) else 0.0, inp.reply.text)
