"""`evalkit run <exam>`: run an exam's section evals, then score the exam from their logs.

The orchestration only: each section's eval runs through `evaluate.run_eval` like any other eval
(same cache, resume, retries; two sections backed by one eval run it once), the item records are
read back from the run logs, and `exams.score_exam` does the conversion. The result goes to
`<log dir>/exams/<exam>/<model>.json` for `evalkit report`.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from .errors import EvalkitError, warn
from .evaluate import RunOptions, run_eval
from .exams import Exam, read_records, score_exam
from .logs import default_log_dir


def exam_log_path(log_dir: Path | None, exam: str, model: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model)
    return Path(log_dir or default_log_dir()) / "exams" / exam / f"{slug}.json"


def run_exam(exam: Exam, registry, opts: RunOptions) -> dict:
    if not exam.runnable:
        what = "has no sections" if not exam.sections else "has sections without an eval"
        raise EvalkitError(f"exam {exam.name} {what}, so it cannot be run; convert a score with "
                           f"`evalkit percentile {exam.name} SCORE`")
    out_path = exam_log_path(opts.log_dir, exam.name, opts.model)
    if exam.holdout and out_path.exists():
        try:
            previous = json.loads(out_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
        warn(f"HOLDOUT EXAM RUN AGAIN: {exam.name} was already run for {opts.model} "
             f"({previous.get('created', 'earlier')}); this result is no longer a holdout result")
    summaries: dict[str, dict] = {}
    for sec in exam.sections:
        if sec.eval not in summaries:
            summaries[sec.eval] = run_eval(registry.resolve(sec.eval), opts)
    incomplete = any(s["incomplete"] for s in summaries.values())
    records = {sec.name: read_records(summaries[sec.eval]["log"]) for sec in exam.sections}
    logs = {sec.name: summaries[sec.eval]["log"] for sec in exam.sections}
    result = score_exam(exam, records, model=opts.model, logs=logs, incomplete=incomplete, seed=opts.seed)
    out = result.as_dict()
    if opts.limit:
        out["notes"].append(f"--limit {opts.limit}: each section scored on at most {opts.limit} items")
    out.update({"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "holdout": exam.holdout,
                "definition": exam.source_file, "table1": exam.table1,
                "requests": {k: v["requests"] for k, v in summaries.items()}})
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1), encoding="utf-8")
    tmp.replace(out_path)
    out["log"] = str(out_path)
    return out


def format_result(r: dict) -> str:
    scale = r["scale"]
    lines = [f"{r['exam']}  {r['model']}  {r['title']}" + ("  [INCOMPLETE]" if r["incomplete"] else "")]
    for s in r["sections"]:
        blank = f", {s['blank']} blank" if s["blank"] else ""
        errs = f", {s['errors']} errors" if s["errors"] else ""
        scaled = f" -> {_n(s['scaled'])}" if s["scaled"] is not None else ""
        lines.append(f"  {s['name']}: {_n(s['correct'])}/{s['n']} right ({s['accuracy']:.1%}{blank}{errs}) "
                     f"-> raw {_n(s['raw'])}/{_n(s['max_raw'])}{scaled}")
    if len(r["sections"]) > 1:
        lines.append(f"  composite {_n(r['composite'])}/{_n(r['composite_max'])}")
    lo, hi = r["scaled_ci95"]
    pct = r["percentile"]
    pct_text = pct["text"] if pct else "no percentile"
    ci = f" (95% CI {r['percentile_ci95'][0]} to {r['percentile_ci95'][1]})" if r.get("percentile_ci95") else ""
    lines.append(f"  score {_n(r['scaled'])} on {_n(scale['min'])}-{_n(scale['max'])} ({scale['unit']}), "
                 f"95% CI {_n(lo)}-{_n(hi)};  percentile {pct_text}{ci}")
    for src in r["sources"]:
        lines.append(f"  {src['for']}: {src['title']} ({src['publisher']}, {src['year']}) {src['url']}")
    for note in r["notes"]:
        lines.append(f"  note: {note}")
    if r.get("log"):
        lines.append(f"  log: {r['log']}")
    return "\n".join(lines)


def _n(x) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
