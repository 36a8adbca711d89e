"""DROP's F1 and exact match, as the official evaluation script defines them.

- Normalisation, per token (the text is split on spaces and hyphens): lower case; punctuation
  removed unless the token is a number; numbers rewritten as floats ("10" -> "10.0"); articles
  dropped; whitespace folded. Empty tokens are dropped.
- An answer is a list of spans. Exact match: the sets of normalised spans are equal and the lists
  have the same length. F1: each span is a bag of tokens; every gold bag is paired with at most one
  predicted bag so that the total F1 is largest (an assignment problem, solved exactly here by
  trying pairings, which is cheap for DROP's few spans); a pair whose gold bag holds numbers scores
  0 unless the prediction shares one of them; the F1 is the mean over max(#gold, #predicted) bags,
  rounded to 2 decimals.
- A question's score is the best EM and the best F1 over its gold answers.

The prediction is the reply's final answer: the line after the last "Answer:" (else the reply's
first line), split into spans on " | " or ";" when it lists several.
"""

from __future__ import annotations

import itertools
import json
import re
import string

from typing import Literal

from evalkit.scoring import Score, ScoreInput, ScorerOptions, scorer
from evalkit.scoring.text import answer_after_marker

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _normalize_token(token: str) -> str:
    token = token.lower()
    if not _is_number(token):
        token = "".join(ch for ch in token if ch not in _PUNCT)
    if _is_number(token):
        token = str(float(token))
    return " ".join(_ARTICLES.sub(" ", token).split())


def normalize_answer(text: str) -> str:
    parts = [_normalize_token(t) for t in re.split(" |-", text)]
    return " ".join(p for p in parts if p.strip()).strip()


def _bags(spans: list[str]) -> tuple[list[str], list[set[str]]]:
    normalized = [normalize_answer(s) for s in spans]
    return normalized, [set(n.split()) for n in normalized]


def _f1(pred: set[str], gold: set[str]) -> float:
    inter = len(gold & pred)
    precision = 1.0 if not pred else inter / len(pred)
    recall = 1.0 if not gold else inter / len(gold)
    return 0.0 if precision == 0.0 and recall == 0.0 else 2 * precision * recall / (precision + recall)


def _numbers_match(gold: set[str], pred: set[str]) -> bool:
    gold_numbers = {w for w in gold if _is_number(w)}
    return not gold_numbers or bool(gold_numbers & {w for w in pred if _is_number(w)})


def _best_alignment(scores: list[list[float]], n_gold: int, n_pred: int) -> list[float]:
    """Per gold bag, its F1 under the pairing of gold and predicted bags with the largest total."""
    best, best_total = [0.0] * n_gold, -1.0
    if n_gold <= n_pred:
        pairings = (list(zip(range(n_gold), cols)) for cols in itertools.permutations(range(n_pred), n_gold))
    else:
        pairings = (list(zip(rows, range(n_pred))) for rows in itertools.permutations(range(n_gold), n_pred))
    for pairs in pairings:
        total = sum(scores[g][p] for g, p in pairs)
        if total > best_total:
            best_total, best = total, [0.0] * n_gold
            for g, p in pairs:
                best[g] = scores[g][p]
    return best


def drop_metrics(predicted: list[str], gold: list[str]) -> tuple[float, float]:
    """(exact match, F1) of one predicted answer against one gold answer, both lists of spans."""
    pred_spans, pred_bags = _bags(predicted)
    gold_spans, gold_bags = _bags(gold)
    em = 1.0 if set(pred_spans) == set(gold_spans) and len(pred_spans) == len(gold_spans) else 0.0
    scores = [[_f1(p, g) if _numbers_match(g, p) else 0.0 for p in pred_bags] for g in gold_bags]
    per_gold = _best_alignment(scores, len(gold_bags), len(pred_bags))
    f1 = sum(per_gold) / max(len(gold_bags), len(pred_bags))
    return em, round(f1, 2)


def prediction_spans(reply: str) -> list[str]:
    found = answer_after_marker(reply)
    text = found if found is not None else (reply.strip().splitlines() or [""])[0]
    return [s.strip() for s in re.split(r"\s\|\s|;", text) if s.strip()] or [""]


class DropOptions(ScorerOptions):
    method: Literal["drop"]


@scorer("drop", DropOptions, metrics=("f1", "em"))
def drop(inp: ScoreInput) -> Score:
    golds = json.loads(inp.sample.answer)
    pred = prediction_spans(inp.reply.text)
    em, f1 = max(drop_metrics(pred, g) for g in golds) if golds else (0.0, 0.0)
    return Score(f1, " | ".join(pred), parsed=pred != [""], extras={"em": em})
