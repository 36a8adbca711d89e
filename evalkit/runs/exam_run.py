"""`evalkit run <exam>`: run an exam's section evals, then score the exam from their logs.

The orchestration only: each section's eval runs through `evaluate.run_eval` like any other eval
(same cache, resume, retries; two sections backed by one eval run it once), the item results are
read back from the run logs, and `exams.score_exam` does the conversion. The result goes to
`<log dir>/exams/<exam>/<model>__<runs>.json` for `evalkit report`, where `<runs>` is a digest of
the section logs it was scored from: another run (a `--limit 30` after a full one, another seed)
has other logs and so its own result, never overwriting an earlier one; the same command again
(a resumed run) rescores its own. A `--limit` result says `partial` (text, `--json`, report).

Free-response sections are scored by whatever their eval scores: a model-graded eval (a grader
model with the item's rubric, `--grader-model`) gives each answer a fraction of its points; or
`--grades FILE` replaces those scores with human grades (section,id,score rows; rerunning the
exam with it sends nothing: the answers come from the run logs).
"""

from __future__ import annotations

from typing import Sequence

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

from evalkit.core.errors import EvalkitError, warn
from evalkit.runs.pipeline import run_eval
from evalkit.plan.run_plan import RunOptions
from evalkit.results.records import Summary
from evalkit.exams.scoring import percentile_of, score_exam
from evalkit.exams.tables import Section
from evalkit.exams.tables import Exam
from evalkit.results.runlog import model_slug, read_log
from evalkit.core.places import default_log_dir


def exam_log_path(log_dir: Path | None, exam: str, model: str, logs: Sequence[str] = ()) -> Path:
    """Where an exam's result goes: one file per set of section logs (see the module docstring)."""
    folder = Path(log_dir or default_log_dir()) / "exams" / exam
    if not logs:
        return folder / f"{model_slug(model)}.json"
    digest = hashlib.sha256("\n".join(sorted(Path(p).name for p in logs)).encode()).hexdigest()[:12]
    return folder / f"{model_slug(model)}__{digest}.json"


def _earlier_results(log_dir: Path | None, exam: str, model: str) -> list[Path]:
    folder = exam_log_path(log_dir, exam, model).parent
    slug = model_slug(model)
    return sorted(p for p in folder.glob(f"{slug}*.json") if p.stem == slug or p.stem.startswith(slug + "__"))


def read_grades(path: Path, exam: Exam) -> dict[str, dict[str, float]]:
    """Human grades for free-response items: a CSV with columns section,id,score (score = the
    fraction of the item's points, 0-1). Returns section -> item id -> score."""
    import csv

    sections = {s.name: s for s in exam.sections}
    out: dict[str, dict[str, float]] = {}
    try:
        fh = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise EvalkitError(f"--grades {path}: cannot read ({exc.strerror})") from None
    with fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"section", "id", "score"} <= set(reader.fieldnames):
            raise EvalkitError(f"{path}:1: --grades needs the columns section,id,score")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            sec = sections.get(row["section"])
            if sec is None:
                raise EvalkitError(f"{where}: exam {exam.name} has no section {row['section']!r}")
            if sec.kind != "free_response":
                raise EvalkitError(f"{where}: section {sec.name} is multiple choice; grades are for free-response sections")
            try:
                score = float(row["score"])
            except ValueError:
                score = -1.0
            if not 0.0 <= score <= 1.0:
                raise EvalkitError(f"{where}: score {row['score']!r} is not a fraction of the item's points (0-1)")
            if row["id"] in out.setdefault(sec.name, {}):
                raise EvalkitError(f"{where}: item {row['id']} of section {sec.name} is graded twice")
            out[sec.name][row["id"]] = score
    return out


def apply_grades(records: dict[str, list], grades: dict[str, dict[str, float]], path: Path) -> None:
    """Replace the scores of graded sections' items with the human grades; every item needs one."""
    for section, by_id in grades.items():
        recs = [r for r in records.get(section, []) if not r.error]
        missing = [r.id for r in recs if r.id not in by_id]
        if missing:
            raise EvalkitError(f"--grades {path}: section {section}: {len(missing)} answered item(s) have no grade "
                               f"(first: {missing[0]})")
        known = {r.id for r in recs}
        extra = sorted(set(by_id) - known)
        if extra:
            raise EvalkitError(f"--grades {path}: section {section}: no answered item {extra[0]!r} in the run log")
        records[section] = [replace(r, score=by_id[r.id], parsed=True) for r in recs]


def _check_runnable(exam: Exam) -> None:
    if not exam.runnable:
        what = "has no sections" if not exam.sections else "has sections without an eval"
        raise EvalkitError(f"exam {exam.name} {what}, so it cannot be run; convert a score with "
                           f"`evalkit percentile {exam.name} SCORE`")


def _run_sections(exam: Exam, registry, opts: RunOptions) -> dict[str, Summary]:
    """Each section's eval run once (two sections backed by one eval share its run)."""
    summaries: dict[str, Summary] = {}
    for sec in exam.sections:
        name = _eval_of(sec)
        if name not in summaries:
            summaries[name] = run_eval(registry.resolve(name), opts)
            if summaries[name].status == "interrupted":
                raise KeyboardInterrupt
    return summaries


def run_exam_shard(exam: Exam, registry, opts: RunOptions) -> dict:
    """`evalkit run EXAM --shard I/N`: the sections' evals on this shard's items, and no conversion
    (a percentile of part of the items would mean nothing). After `evalkit merge` of every shard's
    section logs, `evalkit run EXAM` without --shard converts from the merged logs, sending nothing."""
    _check_runnable(exam)
    summaries = _run_sections(exam, registry, opts)
    return {"type": "exam_shard", "exam": exam.name, "model": opts.model, "shard": str(opts.shard),
            "incomplete": any(s.incomplete for s in summaries.values()),
            "sections": {sec.name: {"eval": sec.eval, "n": summaries[_eval_of(sec)].n, "scored": summaries[_eval_of(sec)].scored,
                                    "errors": summaries[_eval_of(sec)].errors, "log": summaries[_eval_of(sec)].log}
                         for sec in exam.sections}}


def run_exam(exam: Exam, registry, opts: RunOptions, grades: Path | None = None) -> dict:
    _check_runnable(exam)
    earlier = _earlier_results(opts.log_dir, exam.name, opts.model)
    if exam.holdout and earlier:
        try:
            previous = json.loads(earlier[-1].read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
        warn(f"HOLDOUT EXAM RUN AGAIN: {exam.name} was already run for {opts.model} "
             f"({previous.get('created', 'earlier')}); this result is no longer a holdout result")
    summaries = _run_sections(exam, registry, opts)
    out_path = exam_log_path(opts.log_dir, exam.name, opts.model, [s.log for s in summaries.values()])
    incomplete = any(s.incomplete for s in summaries.values())
    # the last line per item counts: an error line is superseded when a resumed run retries the item.
    # Items in id order, not in the order replies arrived: the interval's bootstrap draws then depend
    # on the results alone, so a rerun, a resumed run and merged shards convert identically.
    items = {ev: sorted(read_log(s.log).samples.values(), key=lambda r: r.id) for ev, s in summaries.items()}
    records = {sec.name: items[_eval_of(sec)] for sec in exam.sections}
    if grades is not None:
        apply_grades(records, read_grades(grades, exam), grades)
    logs = {sec.name: summaries[_eval_of(sec)].log for sec in exam.sections}
    result = score_exam(exam, records, model=opts.model, logs=logs, incomplete=incomplete, seed=opts.seed)
    out = result.as_dict()
    out["partial"] = {"limit": opts.limit} if opts.limit else None
    if result.percentile is not None:        # the chart's interval: the percentile's low end at each score bound
        bounds = [percentile_of(exam, x) for x in result.scaled_ci95 or []]   # (set with a percentile)
        out["percentile_bounds_ci95"] = [b.lower_bound if b is not None else None for b in bounds]
    if opts.limit:
        out["notes"].append(f"PARTIAL: --limit {opts.limit}: each section scored on at most {opts.limit} items, "
                            "not the whole exam")
    out.update({"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "holdout": exam.holdout,
                "definition": exam.source_file, "table1": exam.table1,
                "requests": {k: v.requests.model_dump() for k, v in summaries.items()}})
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1), encoding="utf-8")
    tmp.replace(out_path)
    out["log"] = str(out_path)
    return out


def _eval_of(sec: Section) -> str:
    """The eval a section of a runnable exam runs (`_check_runnable` saw that every one has one)."""
    assert sec.eval is not None
    return sec.eval
