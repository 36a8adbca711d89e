"""The one summary constructor: a run's `Summary` from its sample records.

A live run (`evalkit.runs.pipeline.summarise`), a merge of shards (`evalkit.results.merge`) and a
report of a killed run (`evalkit.analysis.report.summary_from_log`) all build their summary here,
so the counts, metrics, intervals and status rules are written once. What only the caller knows
(requests sent, the price of the tokens, the backend's description) it passes as fields.
"""

from __future__ import annotations

from collections.abc import Callable

from evalkit.results.records import (
    Calibration,
    Cost,
    MetricPart,
    SampleResult,
    Stat,
    Summary,
    Usage,
    score_metrics,
    total_usage,
)


def build_summary(results: list[SampleResult], *, eval: str, model: str, metrics: list[str], n: int,
                  status: str, seed: int = 0, per_item: int = 1, method: str | None = None,
                  incomplete: bool | None = None, notes: Callable[[MetricPart], list[str]] | None = None,
                  cost: Callable[[Usage], Cost | None] | None = None, **fields) -> Summary:
    """The summary of `results` (the last record per id, in the run's order) for a run of `n`
    samples scored by `metrics` (the main one first) of the scorer `method`.

    A `complete` status becomes `errors` when fewer than `n` samples were answered; `incomplete`
    is `status != "complete"` unless given. `notes(part)` adds the caller's notes after the
    metrics' own, `cost(usage)` prices the tokens; `fields` are the Summary's other fields."""
    part = score_metrics(results, metrics, per_item, seed, method)
    usage = total_usage(results)
    if status == "complete" and part.answered < n:
        status = "errors"
    if notes is not None:
        part.notes += notes(part)
    return Summary(
        eval=eval, model=model, status=status, incomplete=status != "complete" if incomplete is None else incomplete,
        primary_metric=metrics[0], n=n, scored=part.scored, errors=part.errors, **part.truncation(),
        unparsed=part.unparsed, **part.unread(),
        metrics={k: Stat(**v) for k, v in part.metrics.items()},
        groups={k: Stat(**v) for k, v in part.groups.items()} if part.groups else None,
        calibration=Calibration(**part.calibration) if part.calibration else None, usage=usage,
        cost_usd=cost(usage) if cost is not None else None, seed=seed, notes=part.notes, **fields)
