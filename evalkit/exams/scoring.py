"""Scoring an exam: logged item scores -> section raw -> composite -> scaled score -> percentile.

`item_points` turns a section's logged results into points per item (right, wrong, blank),
`section_raw` into the expected raw score on a real form, `convert` weights the sections into the
composite and runs the exam's conversion to the scaled score, and `percentile_of` reads the human
percentile off the exam's distributions. `score_exam` does all of it with a seeded bootstrap
interval and returns an `ExamResult`; `convert_given` is `evalkit percentile` (a score given by hand).
The exam definitions themselves (the YAML model and its loading) are in `evalkit.exams.tables`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evalkit.core.errors import EvalkitError
from evalkit.exams.tables import Exam, Percentile, Section, _round, fmt_number


def combine_forms(parts: list[Percentile]) -> Percentile:
    """Several forms of one exam (AMC 10 A and B), as the report did: lowest low, highest high."""
    if len(parts) == 1:
        return parts[0]
    lows = [p.lower_bound for p in parts]
    highs = [p.high if p.high is not None else p.low for p in parts]
    low, high = min(lows), max(h for h in highs if h is not None)
    return Percentile(low=low, high=high, approx=False)


def percentile_of(exam: Exam, score: float) -> Percentile | None:
    dists = exam.distributions()
    if not dists:
        return None
    return combine_forms([d.percentile(score) for d in dists.values()])


# --------------------------------------------------------------------------- scoring

@dataclass
class SectionScore:
    name: str
    n: int                     # pooled items scored
    correct: int
    wrong: int
    blank: int
    errors: int
    accuracy: float
    raw: float                 # on a real form of `items` items
    max_raw: float
    scaled: float | None       # the section's own conversion, if any
    log: str | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class ExamResult:
    exam: str
    title: str
    model: str | None
    sections: list[SectionScore]
    composite: float
    composite_max: float
    scaled: float
    scale: dict
    percentile: Percentile | None
    scaled_ci95: list[float] | None
    percentile_ci95: list[str] | None
    incomplete: bool
    sources: list[dict]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"type": "exam", "exam": self.exam, "title": self.title, "model": self.model,
                "sections": [s.as_dict() for s in self.sections], "composite": self.composite,
                "composite_max": self.composite_max, "scaled": self.scaled, "scale": self.scale,
                "percentile": self.percentile.as_dict() if self.percentile else None,
                "scaled_ci95": self.scaled_ci95, "percentile_ci95": self.percentile_ci95,
                "incomplete": self.incomplete, "sources": self.sources, "notes": self.notes}


def section_raw(sec: Section, mean_points: float) -> float:
    """Expected raw points on one real form: items x mean points per item, on the section's step."""
    raw = _round(sec.items * mean_points, sec.step, "nearest")
    return min(raw, sec.cap) if sec.cap is not None else raw


def _section_value(sec: Section, raw: float) -> float:
    return sec.conversion.apply(raw, raw / sec.max_raw if sec.max_raw else 0.0) if sec.conversion else raw


def _section_top(sec: Section) -> float:
    if sec.conversion is None:
        return sec.max_raw
    return sec.conversion.apply(sec.max_raw, 1.0)


def convert(exam: Exam, raws: dict[str, float]) -> tuple[float, float, float]:
    """Section raw scores -> (composite, composite max, scaled score on the exam's scale)."""
    weights = exam.weights or {}
    composite = sum(weights.get(s.name, 1.0) * _section_value(s, raws[s.name]) for s in exam.sections)
    top = sum(weights.get(s.name, 1.0) * _section_top(s) for s in exam.sections)
    if exam.conversion is None:
        scaled = composite
    else:
        scaled = exam.conversion.apply(composite, composite / top if top else 0.0)
    return composite, top, min(max(scaled, exam.scale.min), exam.scale.max)


def item_points(sec: Section, records: list) -> tuple:
    """Points earned per scored item of a section's log (a numpy array), and the counts behind them."""
    import numpy as np

    p = sec.points
    pts: list[float] = []
    counts: dict[str, float] = {"correct": 0, "wrong": 0, "blank": 0, "errors": 0}   # partial credit is fractional
    for r in records:
        if r.error or r.score is None:
            counts["errors"] += 1
            continue
        score = float(r.score)
        if sec.kind == "multiple_choice" and r.parsed is False:
            counts["blank"] += 1
            pts.append(p.blank)
        elif score >= 1.0:
            counts["correct"] += 1
            pts.append(p.correct)
        elif sec.kind == "free_response" and score > 0:
            counts["correct"] += score          # partial credit counts as that fraction of an item
            counts["wrong"] += 1 - score
            pts.append(p.correct * score)
        else:
            counts["wrong"] += 1
            pts.append(p.wrong)
    return np.asarray(pts, dtype=float), counts


def score_exam(exam: Exam, section_records: dict[str, list], model: str | None = None,
               logs: dict[str, str] | None = None, incomplete: bool = False, seed: int = 0,
               draws: int = 2000) -> ExamResult:
    """Score an exam from each section's logged item results (`SampleResult`: score, parsed, error)."""
    import numpy as np       # here, not at import: `evalkit list` and `percentile` stay fast

    rng = np.random.default_rng(seed)
    sections, raws, boot = [], {}, {}
    for sec in exam.sections:
        pts, c = item_points(sec, section_records.get(sec.name, []))
        if pts.size == 0:
            raise EvalkitError(f"exam {exam.name}: section {sec.name} has no scored items"
                               + (f" in {logs[sec.name]}" if logs and sec.name in logs else ""))
        raw = section_raw(sec, float(pts.mean()))
        raws[sec.name] = raw
        n = pts.size
        boot[sec.name] = pts[rng.integers(0, n, size=(draws, n))].mean(axis=1)
        acc = (c["correct"] / n) if n else 0.0
        sections.append(SectionScore(sec.name, n, round(c["correct"], 4), round(c["wrong"], 4), c["blank"], c["errors"],
                                     round(acc, 6), raw, sec.max_raw,
                                     _section_value(sec, raw) if sec.conversion else None,
                                     (logs or {}).get(sec.name)))
        incomplete = incomplete or c["errors"] > 0
    composite, top, scaled = convert(exam, raws)
    scaled_draws = np.array([convert(exam, {s.name: section_raw(s, float(boot[s.name][i])) for s in exam.sections})[2]
                             for i in range(draws)])
    lo, hi = (float(x) for x in np.quantile(scaled_draws, [0.025, 0.975], method="inverted_cdf"))
    pct = percentile_of(exam, scaled)
    pct_ci = None
    lo_pct, hi_pct = percentile_of(exam, lo), percentile_of(exam, hi)    # all None or none: the exam decides
    if pct is not None and lo_pct is not None and hi_pct is not None:
        pct_ci = [lo_pct.text(), hi_pct.text()]
    notes = []
    if incomplete:
        notes.append("INCOMPLETE: some items were not scored (errors or an interrupted run); the score covers scored items only")
    if exam.no_percentile and pct is None:
        notes.append(f"no percentile: {exam.no_percentile}")
    return ExamResult(exam.name, exam.title, model, sections, composite, top, scaled, exam.scale.model_dump(), pct,
                      [lo, hi], pct_ci, incomplete, exam.sources(), notes)


def convert_given(exam: Exam, score: float | None, raw: dict[str, float]) -> dict:
    """`evalkit percentile`: a scaled score, or section raw scores, to the exam's percentile."""
    out: dict = {"exam": exam.name, "title": exam.title}
    if raw:
        unknown = set(raw) - {s.name for s in exam.sections}
        if unknown:
            raise EvalkitError(f"exam {exam.name}: no section named {', '.join(sorted(unknown))} "
                               f"(sections: {', '.join(s.name for s in exam.sections) or 'none'})")
        missing = [s.name for s in exam.sections if s.name not in raw]
        if missing:
            raise EvalkitError(f"exam {exam.name}: --raw is missing section(s) {', '.join(missing)}")
        for s in exam.sections:
            if not 0 <= raw[s.name] <= s.max_raw:
                raise EvalkitError(f"exam {exam.name}: section {s.name} raw score {fmt_number(raw[s.name])} is outside 0-{fmt_number(s.max_raw)}")
        composite, top, score = convert(exam, raw)
        out.update({"raw": raw, "composite": composite, "composite_max": top})
    elif score is None:
        raise EvalkitError(f"exam {exam.name}: give a SCORE or --raw SECTION=POINTS")
    elif not exam.scale.min <= score <= exam.scale.max:
        raise EvalkitError(f"exam {exam.name}: score {fmt_number(score)} is outside the scale "
                           f"{fmt_number(exam.scale.min)}-{fmt_number(exam.scale.max)} ({exam.scale.unit})")
    pct = percentile_of(exam, score)
    out.update({"scaled": score, "scale": exam.scale.model_dump(),
                "percentile": pct.as_dict() if pct else None,
                "no_percentile": exam.no_percentile if pct is None else None, "sources": exam.sources()})
    return out
