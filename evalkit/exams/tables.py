"""Simulated exams: item scores -> section raw -> composite -> scaled score -> human percentile.

An exam is data (`registry/exams/*.yaml`), one mapping from exam name to definition:

    lsat:
      title: LSAT
      table1: LSAT                       # the row of the GPT-4 report's Table 1 it corresponds to
      scale: {min: 120, max: 180, unit: scaled score}
      sections:                          # each backed by an eval whose logged item scores it reads
        - {name: logical-reasoning, eval: agieval.lsat-lr, items: 50}
      conversion:                        # composite -> scaled: a table (raw: scaled) or a formula
        source: {title: ..., publisher: ..., year: 2016, url: ...}
        table: {0: 120, 1: 120, ...}
      distribution:                      # scaled -> percentile
        kind: percent_below              # or `shares` (AP 1-5): [100 - share(>= s), 100 - share(> s)]
        source: {...}
        scores: {180: 99.9, ...}

Why the pipeline is shaped like this (the GPT-4 report, Appendix A.5): real exams are scored per
section with points for right, wrong and blank answers (AMC: 6, 0, 1.5), sections are weighted into
a composite, the composite goes through the exam's own raw-to-scaled table (SAT, LSAT) or formula
(GRE: 130 + 40 x accuracy), and a published distribution of human scores turns it into a
percentile. Every table must name its source; one that has gaps, runs backwards or names no source
does not validate.

**Pooled items onto a real form.** The evals behind the runnable exams (AGIEval's SAT and LSAT
tasks) pool items from several real forms: 220 SAT Math items, where a form has 58. A section's
raw score is therefore the *expected* raw score on a form of the real length: `items x mean points
per item`, rounded to the section's point step (1 for right/wrong scoring, 1.5 for AMC). This keeps
the real raw-score range, so the form's conversion table applies unchanged; what it cannot keep is
the form's difficulty mix, which a pooled item set only approximates.

**Intervals.** The 95% interval on the scaled score resamples items within each section (bootstrap,
seeded) and pushes every resample through the same pipeline; the percentile interval is the
percentile of the interval's ends (every step is monotone).

This module sits after `metrics` in the data flow: it reads logged item scores and never runs a
model. `evalkit run <exam>` (the CLI) runs the section evals first, then calls `score_exam`.

This module is the YAML model of an exam and its loading (`ExamRegistry`); the scoring pipeline
(`score_exam`, `convert`, `percentile_of`, `convert_given`) is in `evalkit.exams.scoring`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import reduce
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from evalkit.core.errors import EvalkitError
from evalkit.core.plugins import Folder, Origin, admit_definitions, sourced_files
from evalkit.core.yamlfile import Strict, load_definitions


class Source(Strict):
    title: str
    publisher: str
    year: int = Field(ge=1900, le=2100)
    url: str
    note: str | None = None


class Formula(Strict):
    """scaled = intercept + slope x (accuracy, or composite points), rounded to `step`."""

    intercept: float = 0.0
    slope: float
    of: Literal["accuracy", "points"] = "accuracy"
    rounding: Literal["nearest", "floor", "ceil"] = "nearest"
    step: float = Field(1.0, gt=0)
    source: Source | None = None


def _check_steps(keys: list[float], step: float, what: str) -> None:
    for a, b in zip(keys, keys[1:]):
        if not math.isclose(b - a, step, abs_tol=1e-9):
            raise ValueError(f"{what} has a gap or uneven step between {fmt_number(a)} and {fmt_number(b)} (expected every {fmt_number(step)})")


class Conversion(Strict):
    """Raw (or composite) -> scaled, by a table covering every raw score, or by a formula."""

    source: Source | None = None
    table: dict[float, float] | None = None
    formula: Formula | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "Conversion":
        if (self.table is None) == (self.formula is None):
            raise ValueError("give exactly one of `table` or `formula`")
        if self.table is not None:
            if self.source is None:
                raise ValueError("a conversion table needs a `source` (title, publisher, year, url)")
            keys = sorted(self.table)
            _check_steps(keys, 1.0, "conversion table")
            values = [self.table[k] for k in keys]
            for k, (a, b) in zip(keys[1:], zip(values, values[1:])):
                if b < a:
                    raise ValueError(f"conversion table is not monotone: raw {fmt_number(k)} gives {fmt_number(b)}, less than {fmt_number(a)} below it")
        return self

    def apply(self, value: float, accuracy: float) -> float:
        if self.formula is not None:
            f = self.formula
            x = f.intercept + f.slope * (accuracy if f.of == "accuracy" else value)
            return _round(x, f.step, f.rounding)
        assert self.table is not None        # validated: a conversion has a formula or a table
        keys = sorted(self.table)
        key = min(max(round(value), keys[0]), keys[-1])
        return self.table[key]


class Distribution(Strict):
    """Human scores: the percent of takers below each score, or the share of takers at each score."""

    kind: Literal["percent_below", "shares"]
    source: Source
    year: int = Field(ge=1900, le=2100)
    scores: dict[float, float]
    step: float = Field(1.0, gt=0, description="spacing of the scores (GRE writing: 0.5)")
    rounding: Literal["nearest", "floor", "ceil"] = "nearest"
    note: str | None = None

    @model_validator(mode="after")
    def _valid(self) -> "Distribution":
        keys = sorted(self.scores)
        if not keys:
            raise ValueError("`scores` is empty")
        _check_steps(keys, self.step, "distribution")
        values = [self.scores[k] for k in keys]
        if self.kind == "percent_below":
            if any(not 0 <= v <= 100 for v in values):
                raise ValueError("percent_below values must lie in 0-100")
            for k, (a, b) in zip(keys[1:], zip(values, values[1:])):
                if b < a:
                    raise ValueError(f"distribution is not monotone: {fmt_number(b)}% below score {fmt_number(k)}, "
                                     f"less than {fmt_number(a)}% below the score under it")
        else:
            if any(not 0 <= v <= 1 for v in values):
                raise ValueError("shares must be fractions in 0-1")
            total = sum(values)
            if abs(total - 1) > 0.01:
                raise ValueError(f"shares add up to {total:.3f}, not 1")
        return self

    def percentile(self, score: float) -> "Percentile":
        keys = sorted(self.scores)
        s = _round(score, self.step, "nearest")
        if self.kind == "shares":
            s = min(max(s, keys[0]), keys[-1])
            at_or_above = sum(v for k, v in self.scores.items() if k >= s - 1e-9)
            above = sum(v for k, v in self.scores.items() if k > s + 1e-9)
            return Percentile(low=_round(max(0.0, 100 - 100 * at_or_above), 1, self.rounding),
                              high=_round(min(100.0, 100 - 100 * above), 1, self.rounding))
        if s < keys[0]:
            return Percentile(low=None, high=_round(self.scores[keys[0]], 1, self.rounding), below=True)
        s = min(s, keys[-1])
        return Percentile(low=_round(self.scores[s], 1, self.rounding), high=None, approx=True)


class Points(Strict):
    correct: float = 1.0
    wrong: float = 0.0
    blank: float = 0.0


class Section(Strict):
    name: str
    eval: str | None = Field(None, description="registry eval whose item scores make this section")
    kind: Literal["multiple_choice", "free_response"] = "multiple_choice"
    items: int = Field(ge=1, description="items on one real form of the exam")
    points: Points = Points()
    cap: float | None = Field(None, description="at most this many raw points")
    conversion: Conversion | None = Field(None, description="section raw -> section scaled (SAT: 10-40 test scores)")

    @property
    def step(self) -> float:
        """The smallest raw-score increment: the gcd of the point values (AMC: gcd(6, 1.5) = 1.5)."""
        vals = [Fraction(v).limit_denominator(100) for v in (self.points.correct, self.points.wrong, self.points.blank) if v]
        return float(reduce(_fgcd, vals)) if vals else 1.0

    @property
    def max_raw(self) -> float:
        top = self.items * self.points.correct
        return min(top, self.cap) if self.cap is not None else top


def _fgcd(a: Fraction, b: Fraction) -> Fraction:
    return Fraction(math.gcd(a.numerator * b.denominator, b.numerator * a.denominator), a.denominator * b.denominator)


class Scale(Strict):
    min: float
    max: float
    unit: str


class Exam(Strict):
    name: str
    title: str
    description: str = ""
    table1: str | None = Field(None, description="the Table 1 row of the GPT-4 report this exam corresponds to")
    scale: Scale
    sections: list[Section] = Field(default_factory=list)
    weights: dict[str, float] | None = Field(None, description="composite = sum of weight x section score (default 1 each)")
    conversion: Conversion | None = Field(None, description="composite -> scaled; none: the composite is the score")
    distribution: Distribution | None = None
    forms: dict[str, Distribution] | None = Field(
        None, description="one distribution per form (AMC 10 A/B): lowest lower bound, highest upper bound")
    no_percentile: str | None = Field(None, description="why no distribution is shipped (required without one)")
    holdout: bool = Field(False, description="a holdout form: evalkit warns when the same model runs it twice")
    note: str | None = None
    source_file: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Exam":
        names = [s.name for s in self.sections]
        if len(set(names)) != len(names):
            raise ValueError("section names must be unique")
        if self.weights and set(self.weights) - set(names):
            raise ValueError(f"weights name unknown sections: {', '.join(sorted(set(self.weights) - set(names)))}")
        if self.distribution is not None and self.forms:
            raise ValueError("give `distribution` or `forms`, not both")
        if self.distribution is None and not self.forms and not self.no_percentile:
            raise ValueError("no `distribution`: say why in `no_percentile`")
        if self.scale.max < self.scale.min:
            raise ValueError("scale.max is below scale.min")
        return self

    @property
    def runnable(self) -> bool:
        return bool(self.sections) and all(s.eval for s in self.sections)

    def distributions(self) -> dict[str, Distribution]:
        if self.forms:
            return dict(self.forms)
        return {"": self.distribution} if self.distribution is not None else {}

    def sources(self) -> list[dict]:
        out = []
        for where, conv in [("conversion", self.conversion)] + [(f"sections.{s.name}.conversion", s.conversion) for s in self.sections]:
            src = conv and (conv.source or (conv.formula and conv.formula.source))
            if src:
                out.append({"for": where, **src.model_dump(exclude_none=True)})
        for form, d in self.distributions().items():
            out.append({"for": "distribution" + (f" (form {form})" if form else ""), "year": d.year,
                        **d.source.model_dump(exclude_none=True)})
        return out


# --------------------------------------------------------------------------- percentiles

@dataclass(frozen=True)
class Percentile:
    low: float | None
    high: float | None
    approx: bool = False
    below: bool = False

    def text(self) -> str:
        """As the report prints it: `~88th`, `85th - 100th`, `below 5th`."""
        if self.below:
            return f"below {_ordinal(self.high)}"
        if self.approx or self.high is None:
            return f"~{_ordinal(self.low)}" if self.low is not None else "n/a"
        if self.low == self.high:
            return _ordinal(self.low)
        return f"{_ordinal(self.low)} - {_ordinal(self.high)}"

    @property
    def lower_bound(self) -> float:
        """What Figure 4 plots: the low end of the range (0 for `below Nth`)."""
        return 0.0 if self.below or self.low is None else float(self.low)

    def as_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "approx": self.approx, "below": self.below, "text": self.text()}


# --------------------------------------------------------------------------- loading

class ExamRegistry:
    """Exam definitions from `registry/exams/*.yaml` (and $EVALKIT_REGISTRY/exams)."""

    def __init__(self) -> None:
        self.exams: dict[str, Exam] = {}
        self.problems: list[str] = []
        self.origins: dict[str, Origin] = {}    # for the precedence rule of plug-in folders

    @classmethod
    def default(cls) -> "ExamRegistry":
        reg = cls()
        for src, f in sourced_files("exams"):
            reg.add_file(f, src)
        return reg

    def add_file(self, path: Path, source: Folder | None = None) -> list[str]:
        found, problems = load_definitions(path, Exam, "exam")
        found = admit_definitions("exam", source or Folder(path.parent), found, self.origins)
        self.exams.update(found)
        self.problems += problems
        return list(found)

    def check_evals(self, evals) -> list[str]:
        """Cross-checks against the eval registry: section evals exist, no exam shadows an eval."""
        problems = []
        for name, e in self.exams.items():
            if name in evals.raw:
                problems.append(f"{e.source_file}:1: {name}: an eval has this name too; `evalkit run {name}` would be ambiguous")
            for sec in e.sections:
                if sec.eval:
                    try:
                        evals.resolve(sec.eval)
                    except EvalkitError as exc:
                        problems.append(f"{e.source_file}:1: {name}.sections.{sec.name}.eval: {exc.message}")
        return problems

    def get(self, name: str) -> Exam:
        if name not in self.exams:
            import difflib

            close = difflib.get_close_matches(name, list(self.exams), n=3)
            raise EvalkitError(f"unknown exam {name!r}" + (f" (did you mean {', '.join(close)}?)" if close else
                                                           f"; exams: {', '.join(sorted(self.exams))}"))
        return self.exams[name]


# --------------------------------------------------------------------------- helpers

def _round(x: float, step: float, how: str) -> float:
    q = x / step
    if how == "floor":
        n = math.floor(q + 1e-9)
    elif how == "ceil":
        n = math.ceil(q - 1e-9)
    else:
        n = math.floor(q + 0.5 + 1e-9)      # half up, as score tables are read
    v = n * step
    return int(v) if float(v).is_integer() else round(v, 6)


def fmt_number(x: float | None) -> str:
    """A score as a person writes it: 163, 4.5, 1e+06; a dash for none."""
    if x is None:
        return "–"
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _ordinal(x: float | None) -> str:
    if x is None:
        return "n/a"
    n = int(round(x))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
