"""Run logs read back for a report: each run's summary recomputed from its samples and checked
against the summary line the log claims (a log is untrusted input), and exam results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from evalkit.core.errors import EvalkitError, warn
from pydantic import ValidationError
from evalkit.results.runlog import LogContents, read_log
from evalkit.results.records import Cost, Summary
from evalkit.results.summary import build_summary


@dataclass
class Run:
    path: str
    eval: str
    model: str
    summary: Summary
    disagreement: str | None = None          # what the log's summary line claims that its samples do not
    header: dict = field(default_factory=dict)
    samples: int = 0                          # sample lines in the log (0: a header-only log)

    @property
    def metric(self) -> str:
        return self.summary.primary_metric


def load_run(path: str) -> Run:
    log = read_log(path)
    summary, disagreement = checked_summary(log)
    model = log.header.get("model", "?")
    if log.header.get("excluded"):
        # a run on the clean subset (contaminated samples left out) sits beside the full run
        model += f" (clean: {log.header['excluded']['count']} excluded)"
    return Run(str(path), log.header.get("eval", "?"), model, summary, disagreement, log.header, len(log.samples))


def checked_summary(log: LogContents) -> tuple[Summary, str | None]:
    """The run's summary, recomputed from its sample lines as `compare` reads them. The summary
    line is shown only when its counts and metric values are the samples' (its intervals are the
    run's own, drawn in the run's sample order); otherwise the samples' numbers, and a sentence
    (also on stderr) saying what the line claimed."""
    mine = summary_from_log(log)
    claimed = _final_summary(log.summary)
    if claimed is None:
        return mine, None
    diffs = _differences(claimed, mine)
    if not diffs:
        return claimed, None
    said = (f"{log.path}: the summary line disagrees with the log's sample lines ({'; '.join(diffs[:3])}); "
            "this report shows what the samples say")
    warn(said)
    return mine.model_copy(update={"status": claimed.status, "incomplete": claimed.incomplete,
                                   "n": max(claimed.n, mine.scored + mine.invalid_grades + mine.errors)}), said


def _differences(claimed: Summary, mine: Summary) -> list[str]:
    """What `claimed` says that differs from `mine`: counts, and each metric's value overall and per group."""
    out = [f"{k} {getattr(claimed, k)} against {getattr(mine, k)}"
           for k in ("scored", "errors", "truncated", "unparsed", "invalid_grades")
           if getattr(claimed, k) != getattr(mine, k)]
    for where, a, b in (("", claimed.metrics, mine.metrics), ("group ", claimed.groups or {}, mine.groups or {})):
        for name in sorted(set(a) | set(b)):
            x, y = (a[name].value if name in a else None), (b[name].value if name in b else None)
            if (x is None) != (y is None) or (x is not None and y is not None and abs(x - y) > 1e-9):
                out.append(f"{where}{name} {_fmt(x)} against {_fmt(y)}")
    return out


def _final_summary(rec: dict | None) -> Summary | None:
    if rec is None or rec.get("incomplete"):
        return None
    try:
        return Summary.model_validate({k: v for k, v in rec.items() if k in Summary.model_fields})
    except ValidationError:
        return None          # a summary of an older evalkit: recomputed from the samples instead


def summary_from_log(log: LogContents) -> Summary:
    """A killed run's summary, from the samples it logged, through the same code as a live run."""
    spec, partial = log.header.get("spec") or {}, log.summary or {}
    results = list(log.samples.values())
    cost = sum(r.cost_usd or 0.0 for r in results)
    return build_summary(
        results, eval=log.header.get("eval", "?"), model=log.header.get("model", "?"),
        metrics=spec.get("metrics") or ["accuracy"], n=partial.get("n") or log.header.get("planned") or len(results),
        status=partial.get("status") or "no summary: the run stopped early", incomplete=True,
        seed=log.header.get("seed", 0), per_item=(spec.get("generation") or {}).get("n", 1),
        method=(spec.get("scoring") or {}).get("method"),
        cost=lambda _: Cost(this_run=cost, all_samples=cost) if cost else None,
        endpoint=log.header.get("endpoint"), log=str(log.path))


def load_exam(path: str) -> dict | None:
    """An exam result (`<log dir>/exams/<exam>/<model>.json`), or None if `path` is a run log."""
    if not str(path).endswith(".json"):
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalkitError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise EvalkitError(f"{path}: not an exam result ({exc})") from None
    if not isinstance(data, dict) or data.get("type") != "exam":
        raise EvalkitError(f"{path}: not an exam result (no \"type\": \"exam\")")
    return data


def _fmt(x, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}"
