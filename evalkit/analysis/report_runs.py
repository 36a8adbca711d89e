"""What tells a report's runs apart: column labels, run states, and the eval x model overview.

- **Labels.** A run is labelled by its model (and `clean: N excluded`). When several runs of one
  eval share that, each label adds what differs between their headers (`limit=30`, `seed=1`,
  `temperature=0.3`, the endpoint, ...), then its date, then its log file's name if they still
  tie, and always its n: two runs of `openai/good` are never two identical columns.
- **States.** `no samples` (a log with a header only: the run stopped before any sample, say on
  bad input; left out of the tables and listed), `killed` (no summary line: n is what the header
  planned, or `?` for logs older than that field), `incomplete: <status>` (errors, interrupted,
  stopped by --max-cost), and `partial: --limit N` (a deliberately partial run).
- **Overview.** One row per eval, one column per model, each cell the main metric with its
  interval and state of every run of that model on that eval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.analysis.report_logs import Run

_COMPARED = ("limit", "seed", "endpoint", "temperature", "max_tokens", "top_p", "stop", "top_logprobs",
             "reasoning_effort", "options", "shard", "grader")


def header_fields(header: dict) -> dict[str, str]:
    """The header's options a reader would name, flattened and as text."""
    flat = {**(header.get("sampling") or {}), **{k: header.get(k) for k in ("limit", "seed", "endpoint", "options")}}
    if header.get("shard"):
        flat["shard"] = (header["shard"] or {}).get("shard")
    if header.get("grader"):
        flat["grader"] = (header["grader"] or {}).get("model")
    return {k: str(flat.get(k)) for k in _COMPARED if k in flat}


def labels(runs: list["Run"]) -> dict[str, str]:
    """path -> the label of each run, distinct among the runs of one eval."""
    out = {}
    by_key: dict[tuple[str, str], list["Run"]] = {}
    for r in runs:
        by_key.setdefault((r.eval, r.model), []).append(r)
    for (_, model), same in by_key.items():
        if len(same) == 1:
            out[same[0].path] = model
            continue
        fields = [header_fields(r.header) for r in same]
        differ = [k for k in _COMPARED if len({f.get(k, "None") for f in fields}) > 1]
        for r, f in zip(same, fields):
            parts = [f"{k}={f.get(k, 'None')}" for k in differ]
            out[r.path] = " · ".join([model, *parts, f"n={r.summary.n}"])
        _break_ties(same, out)
    return out


def _break_ties(same: list["Run"], out: dict[str, str]) -> None:
    """Runs whose labels still tie get their date, then their log file's name."""
    from pathlib import Path

    for extra in (lambda r: str(r.header.get("created", ""))[:16].replace("T", " "), lambda r: Path(r.path).name):
        counts: dict[str, int] = {}
        for r in same:
            counts[out[r.path]] = counts.get(out[r.path], 0) + 1
        for r in same:
            if counts[out[r.path]] > 1 and extra(r):
                out[r.path] += f" · {extra(r)}"


def state(run: "Run") -> str | None:
    """What makes a run's numbers less than a whole run's, in a few words, or None."""
    s = run.summary
    if run.samples == 0:
        return "no samples"
    if s.status.startswith("no summary"):
        return "killed"
    if s.incomplete:
        return f"incomplete: {s.status}"
    if run.header.get("limit"):
        return f"partial: --limit {run.header['limit']}"
    return None


def n_cell(run: "Run") -> str:
    """scored/n, where n is '?' when a killed run's header did not say how many it planned."""
    s = run.summary
    total = "?" if s.status.startswith("no summary") and not run.header.get("planned") else str(s.n)
    return f"{s.scored}/{total}"


def unread_cell(run: "Run") -> str:
    s = run.summary
    parts = [f"{k} {v}" for k, v in (("blank", s.blank), ("invalid grades", s.invalid_grades)) if v]
    return f"{s.unparsed}" + (f" ({', '.join(parts)})" if parts else "")


def overview(runs: list["Run"], cell) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(model columns, [(eval, one cell per model)]): `cell(run)` is a run's metric text."""
    models = list(dict.fromkeys(r.model for r in runs))
    rows = []
    for ev in dict.fromkeys(r.eval for r in runs):
        cells = []
        for m in models:
            mine = [r for r in runs if r.eval == ev and r.model == m]
            cells.append("; ".join(cell(r) + (f" ({st})" if (st := state(r)) else "") for r in mine) or "–")
        rows.append((ev, cells))
    return models, rows


def lead_markdown(lead) -> list[str]:
    """The overview table and the list of logs left out, as Markdown lines."""
    (models, rows), empty = lead
    lines = []
    if rows:
        lines += ["## Overview", "", "| eval | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
        lines += [f"| {ev} | " + " | ".join(cells) + " |" for ev, cells in rows]
        lines.append("")
    if empty:
        lines += ["Left out, no samples (the run stopped before its first sample): " + ", ".join(empty), ""]
    return lines


def lead_html(lead) -> list[str]:
    import html

    e = html.escape
    (models, rows), empty = lead
    parts = []
    if rows:
        parts.append("<h2>Overview</h2><table class='overview'><thead><tr><th>eval</th>"
                     + "".join(f"<th>{e(m)}</th>" for m in models) + "</tr></thead><tbody>")
        parts += [f"<tr><td>{e(ev)}</td>" + "".join(f"<td class='num'>{e(c)}</td>" for c in cells) + "</tr>"
                  for ev, cells in rows]
        parts.append("</tbody></table>")
    if empty:
        parts.append("<p class='left-out'>Left out, no samples (the run stopped before its first sample): "
                     + ", ".join(f"<code>{e(p)}</code>" for p in empty) + "</p>")
    return parts
