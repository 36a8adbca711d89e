"""Model-graded scoring: a grader model classifies the reply against a rubric (evalkit.specs.graders).

The score is the chosen class's `choice_scores` value (None when the grader defines no scores:
the eval then reports only the rate of each class). Every graded sample also gets the one-hot
`choice/<class>` extras, so the summary shows the rate of each class with its interval, invalid
replies included as `choice/invalid`. A grader reply naming no valid class is invalid: the sample
is logged with `parsed: false` and counted, and it is left out of the score, never scored as 0.

The grader (`services["grader"]`) is handed in by the pipeline: its rubric and a channel to its
model (own concurrency limit, retries and cache entries) that returns the reply text, or raises
`ScoringError` when the grader could not answer, which the pipeline records as the sample's error.
"""

from __future__ import annotations

from typing import Awaitable, Callable, Literal, Protocol, cast

from pydantic import Field

from evalkit.core.sample import Sample
from evalkit.specs.graders import GraderSpec, parse_choice
from evalkit.scoring import Score, ScoreInput, ScorerOptions, scorer


class GradedOptions(ScorerOptions):
    method: Literal["graded"]
    grader: str = Field(description="a grader of the registry's graders/ (or an OpenAI Evals modelgraded spec)")
    criteria: str | None = Field(None, description="the text for the grader prompt's {criteria}")
    grader_fields: dict[str, str] = Field(default_factory=dict, description="more placeholders for the rubric")
    eval_type: Literal["classify", "cot_classify", "classify_cot", "cot_classify_jp", "classify_plain"] | None = Field(
        None, description="where the grader puts its choice (default: the grader spec's)")


class Grader(Protocol):
    """The grader the pipeline hands in: its rubric, and a channel to its model that returns the
    reply text or raises ScoringError when the grader could not answer."""

    spec: GraderSpec

    async def complete(self, messages: list[dict]) -> str: ...


def is_graded(options: ScorerOptions) -> bool:
    """Whether a scorer's options ask a grader model (the graded scorer's, or a scorer built on it)."""
    return isinstance(options, GradedOptions)


@scorer("graded", GradedOptions, metrics=("score",), work="async", metric_patterns=(r"choice/.+",))
async def graded(inp: ScoreInput) -> Score:
    o = cast(GradedOptions, inp.options)  # the registry built these options from this scorer's class
    grader: Grader = inp.services["grader"]
    fields = {**o.grader_fields, **graded_fields(inp.sample, inp.messages, inp.reply.text, o.criteria)}
    return await score_graded(grader.spec, o.eval_type, fields, grader.complete)


def prompt_text(messages: list[dict]) -> str:
    """The evaluated model's prompt as the grader sees it: one message as is, several as 'Role: text' lines."""
    if len(messages) == 1:
        return str(messages[0].get("content", ""))
    return "\n".join(f"{m.get('role', 'user').capitalize()}: {m.get('content', '')}" for m in messages)


async def score_graded(grader: GraderSpec, eval_type: str | None, fields: dict[str, str],
                       complete: Callable[[list[dict]], Awaitable[str]]) -> Score:
    kind = eval_type or grader.eval_type or "classify"
    messages = grader.messages(fields, kind)
    reply = await complete(messages)
    choice = parse_choice(reply, kind, grader.choices)
    detail = {"grader": grader.name, "eval_type": kind, "messages": messages, "reply": reply,
              "choice": choice, "valid": choice is not None}
    extras = {f"choice/{c}": float(c == choice) for c in grader.choices}
    extras["choice/invalid"] = float(choice is None)
    if choice is None:
        return Score(None, None, parsed=False, extras=extras, detail=detail)
    return Score(grader.score_of(choice), choice, extras=extras, detail=detail)


def graded_fields(sample: Sample, messages: list[dict], completion: str, criteria: str | None) -> dict[str, str]:
    fields = {"input": prompt_text(messages), "completion": completion, "ideal": _ideal(sample)}
    if criteria is not None:
        fields["criteria"] = criteria
    for k, v in sample.fields.items():        # extra sample fields a rubric may name (OpenAI Evals style)
        if isinstance(v, str) and k not in fields:
            fields[k] = v
    return fields


def _ideal(sample: Sample) -> str:
    ideals = sample.fields.get("ideals")
    return "\n".join(ideals) if ideals else (sample.answer or "")
