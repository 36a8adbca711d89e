"""Free-text answers: exact, includes, fuzzy and numeric match against the ideal answer.

- exact: the reply equals the ideal after trimming and folding whitespace (and case, unless
  `case_sensitive`).
- includes: the ideal occurs in the reply.
- fuzzy: after SQuAD-style normalisation either string contains the other.
- numeric: the number the reply concludes with equals the ideal within `tolerance`.

An ideal may list several accepted answers separated by `|||` in the data; any one counts.
`extract` (`answer_line` or a regex) first cuts the part of the reply to compare.
"""

from __future__ import annotations

from typing import Literal, cast

from pydantic import Field, field_validator

from evalkit.scoring import Score, ScoreInput, ScorerOptions, scorer
from evalkit.scoring.text import extract_answer, fold_whitespace, parse_number, squad_normalize


class ExtractOption(ScorerOptions):
    extract: str | None = Field(None, description="`answer_line` (the text after the last 'Answer:') or a regex "
                                                  "whose first group is the answer; applied before matching")

    @field_validator("extract")
    @classmethod
    def _valid_regex(cls, v: str | None) -> str | None:
        if v not in (None, "answer_line"):
            import re

            try:
                if re.compile(v).groups < 1:
                    raise ValueError("the regex needs a group () around the answer")
            except re.error as exc:
                raise ValueError(f"not a valid regex: {exc}") from None
        return v


class TextMatch(ExtractOption):
    case_sensitive: bool = False


class ExactOptions(TextMatch):
    method: Literal["exact"]


class IncludesOptions(TextMatch):
    method: Literal["includes"]


class FuzzyOptions(ExtractOption):
    method: Literal["fuzzy"]


class NumericOptions(ExtractOption):
    method: Literal["numeric"]
    tolerance: float = Field(1e-6, ge=0.0)


def _reply_and_ideals(inp: ScoreInput) -> tuple[str | None, list[str]]:
    extract = cast(ExtractOption, inp.options).extract  # the registry built these options from this scorer's class
    return extract_answer(inp.reply.text, extract), inp.sample.answer.split("|||")


def _folded(inp: ScoreInput, right) -> Score:
    """Reply and ideals with whitespace (and case) folded; right(got, wanted) decides each ideal."""
    reply, ideals = _reply_and_ideals(inp)
    if reply is None:
        return Score(0.0, None, parsed=False)
    cs = cast(TextMatch, inp.options).case_sensitive  # the registry built these options from this scorer's class
    got = fold_whitespace(reply, cs)
    return Score(float(any(right(got, fold_whitespace(i, cs)) for i in ideals)), got)


@scorer("exact", ExactOptions)
def exact(inp: ScoreInput) -> Score:
    return _folded(inp, lambda got, wanted: got == wanted)


@scorer("includes", IncludesOptions)
def includes(inp: ScoreInput) -> Score:
    return _folded(inp, lambda got, wanted: bool(wanted) and wanted in got)


@scorer("fuzzy", FuzzyOptions)
def fuzzy(inp: ScoreInput) -> Score:
    reply, ideals = _reply_and_ideals(inp)
    if reply is None:
        return Score(0.0, None, parsed=False)
    got = squad_normalize(reply)
    ok = any((ideal := squad_normalize(i)) and (ideal in got or (got and got in ideal)) for i in ideals)
    return Score(float(ok), got)


@scorer("numeric", NumericOptions)
def numeric(inp: ScoreInput) -> Score:
    reply, ideals = _reply_and_ideals(inp)
    got = parse_number(reply) if reply is not None else None
    if got is None:
        return Score(0.0, None, parsed=False)
    tol = cast(NumericOptions, inp.options).tolerance  # the registry built these options from this scorer's class
    ok = any((want := parse_number(i)) is not None and abs(got - want) <= tol for i in ideals)
    return Score(float(ok), repr(got).removesuffix(".0"))
