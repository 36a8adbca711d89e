"""SimpleQA (Wei et al. 2024): a grader model labels each reply A CORRECT, B INCORRECT or
C NOT_ATTEMPTED with the published rubric (registry/graders/simpleqa.yaml), and the run reports
the figures simple-evals' `simpleqa_eval.py` reports:

- `correct` (the main metric; simple-evals' is_correct): the share graded A;
- `not_attempted`, `incorrect`: the shares graded C and B;
- `accuracy_given_attempted`: A / (A + B), emitted only by attempted samples, so its mean is that
  ratio and its interval is over the attempted ones;
- `f1`: the harmonic mean of `correct` and `accuracy_given_attempted` (0 when both are 0), over the
  whole run, with a seeded percentile-bootstrap interval over the graded samples.

A grader reply naming none of A, B, C is invalid: counted (`choice/invalid`, `unparsed`) and left
out of every figure above. (simple-evals instead takes the first A, B or C anywhere in the reply
and counts a reply without one as NOT_ATTEMPTED; with no invalid replies the figures are equal.)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from evalkit.scoring import Score, ScoreInput, scorer
from evalkit.scoring.graded import GradedOptions, graded

GRADES = {"A": "correct", "B": "incorrect", "C": "not_attempted"}
RESAMPLES = 2000


class SimpleQAOptions(GradedOptions):
    # a subclass names its own `method` (pydantic's discriminator), which mypy sees as an unsafe override
    method: Literal["simpleqa"]  # type: ignore[assignment]
    grader: str = Field("simpleqa", description="the grader whose classes are A CORRECT, B INCORRECT, C NOT_ATTEMPTED")


def f1_of(correct: float, given_attempted: float) -> float:
    """simple-evals' F1: 2 * p * r / (p + r) of accuracy-given-attempted and correct; 0 when both are 0."""
    total = correct + given_attempted
    return 2 * given_attempted * correct / total if total > 0 else 0.0


def _f1_from_counts(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """F1 from counts of A and B among n graded samples (arrays: one value per bootstrap draw)."""
    correct = a / n
    attempted = a + b
    given = np.divide(a, attempted, out=np.zeros_like(correct), where=attempted > 0)
    total = correct + given
    return np.divide(2 * given * correct, total, out=np.zeros_like(correct), where=total > 0)


def run_f1(done: list, seed: int) -> dict:
    """The whole run's F1 with a 95% interval (2,000 seeded resamplings of the graded samples)."""
    graded = [r for r in done if r.parsed is not False and r.score is not None]   # (a resumed log keeps no grade text)
    n = len(graded)
    if n == 0:
        return {"value": None, "ci95": [None, None], "n": 0}
    a = sum(r.score == 1.0 for r in graded)
    b = sum((r.extras or {}).get("incorrect") == 1.0 for r in graded)
    draws = np.random.default_rng(seed).multinomial(n, [a / n, b / n, 1 - (a + b) / n], RESAMPLES)
    boot = _f1_from_counts(draws[:, 0].astype(float), draws[:, 1].astype(float), n)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    value = f1_of(a / n, a / (a + b) if a + b else 0.0)
    return {"value": round(value, 6), "ci95": [round(float(lo), 6), round(float(hi), 6)], "n": n}


@scorer("simpleqa", SimpleQAOptions, metrics=("correct", "not_attempted", "incorrect", "accuracy_given_attempted", "f1"),
        work="async", metric_patterns=(r"choice/invalid",), derived={"f1": run_f1})
async def simpleqa(inp: ScoreInput) -> Score:
    verdict = await graded(inp)
    grade = verdict.extracted
    if grade not in GRADES:
        return Score(None, None, parsed=False, extras={"choice/invalid": 1.0}, detail=verdict.detail)
    extras = {"incorrect": float(grade == "B"), "not_attempted": float(grade == "C"), "choice/invalid": 0.0}
    if grade != "C":
        extras["accuracy_given_attempted"] = float(grade == "A")
    return Score(float(grade == "A"), grade, extras=extras, detail=verdict.detail)
