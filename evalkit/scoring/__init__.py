"""Completion text -> score. One file per scorer family; this module only dispatches.

Every scorer returns a `Score`: the value (1.0 right, 0.0 wrong, or a fraction for F1-like
scorers), what was extracted from the completion, and whether extraction succeeded. An answer
that cannot be parsed scores 0 and is recorded with `parsed=False`, so the summary can count it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..backends import Completion
from ..datasets import Sample
from ..spec import EvalSpec


@dataclass(frozen=True)
class Score:
    value: float
    extracted: str | None
    parsed: bool = True
    extras: dict = field(default_factory=dict)   # further per-sample metrics, e.g. DROP's {"em": 1.0}
    option_probs: dict | None = None             # label -> probability, renormalised over the options
    missing_mass: float | None = None            # probability the top alternatives left off the options
    detail: dict | None = None                   # logged beside the sample, not a metric (the grader's exchange)


def score(spec: EvalSpec, sample: Sample, reply: "Completion", unsafe_exec: bool = False) -> Score:
    from . import choice, code, drop, match  # small modules; imported here to keep `evalkit --help` fast

    method = spec.scoring.method
    completion = reply.text
    if method == "letter" and spec.scoring.answer_by == "logprob":
        return choice.score_by_logprob(reply, sample, spec.scoring.labels)
    if method == "letter":
        result = choice.score_letter(completion, sample, spec.scoring.labels, spec.scoring.extract)
        if reply.top_logprobs is not None and sample.choices:
            result = choice.with_option_probs(result, reply.top_logprobs, sample, spec.scoring.labels)
        return result
    if method == "mc2":
        return choice.score_mc2(reply, sample, spec.scoring.labels)
    if method == "drop":
        return drop.score_drop(completion, sample)
    if method == "code":
        return code.score_code(completion, sample, unsafe_exec=unsafe_exec)
    if method in ("exact", "includes", "fuzzy", "numeric"):
        return match.score_match(method, completion, sample, spec.scoring)
    if method in ("oai_match", "oai_includes", "oai_fuzzy", "json"):
        from .oaievals import score_oai

        return score_oai(method, completion, sample, ignore_case=not spec.scoring.case_sensitive)
    raise ValueError(f"no scorer for method {method!r}")
