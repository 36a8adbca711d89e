"""Run logs -> a report: Markdown, or one self-contained HTML file (no network needed to view it).

    evalkit report LOG [LOG ...] [--format md|html] [--out FILE]

An overview first (one row per eval, one column per model). For each eval: the main metric with
its 95% interval, n, errors, unparsed replies (blank, invalid grades) and cost, one row per run,
labelled by what tells it apart and marked killed, incomplete or partial (evalkit.analysis.report_runs);
a log with no samples is left out and listed; per-group tables (MMLU subjects,
sorted); the calibration (ECE) and a reliability diagram where the run recorded option
probabilities. Every run is recomputed from its sample lines, as `evalkit compare` reads them: a
summary line whose counts or metric values differ from its samples' is not shown, and the report
says so (a tampered or stale line). A log without a final summary (a killed run) is summarised
from its samples and marked incomplete. HTML embeds its images as data URIs; Markdown writes them beside `--out`.

This module only reads logs and renders: it never runs an eval.
"""

from __future__ import annotations

import base64
import html
import io
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from evalkit.core.errors import EvalkitError, warn
from evalkit.exams.tables import fmt_number as _num

from evalkit.results.records import Summary
from evalkit.analysis.report_runs import labels, lead_html, lead_markdown, n_cell, overview, state, unread_cell
from evalkit.analysis.report_logs import Run, load_run, load_exam
from evalkit.analysis.report_logs import _fmt


def _thinking(s: Summary) -> str | None:
    """A sentence on how a run's model thought (reasoning and cached tokens, truncated replies)."""
    u = s.usage
    if not (u.reasoning_tokens or s.truncated or u.cached_tokens):
        return None
    parts = [f"{u.reasoning_tokens:,} of {u.completion_tokens:,} completion tokens were reasoning (never scored)"]
    if s.truncated:
        parts.append(f"{s.truncated} replies truncated by the token limit (no answer; raise --max-reasoning-tokens)")
    if u.cached_tokens:
        parts.append(f"{u.cached_tokens:,} of {u.prompt_tokens:,} prompt tokens came from the provider's cache")
    return f"Thinking of {s.model}: " + "; ".join(parts) + "."


def _cell(run: Run) -> str:
    m = run.summary.metrics.get(run.metric)
    lo, hi = m.ci95 if m else (None, None)
    return f"{_fmt(m.value if m else None)} [{_fmt(lo)}, {_fmt(hi)}]"


def _brief(run: Run) -> str:
    """The overview's cell: the main metric and its interval, shortly."""
    m = run.summary.metrics.get(run.metric)
    lo, hi = m.ci95 if m else (None, None)
    return f"{_fmt(m.value if m else None)} ({_fmt(lo, 2)}-{_fmt(hi, 2)})"


def _cost(run: Run) -> str:
    c = run.summary.cost_usd
    return f"${c.all_samples:.4f}" if c and c.all_samples is not None else "–"


def reliability_png(cal: dict, title: str) -> bytes:
    """A reliability diagram: accuracy per confidence bin against the diagonal, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = [b for b in cal["bins"] if b["count"]]
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=100)
    ax.plot([0, 1], [0, 1], linestyle="--", color="#888", linewidth=1, label="perfect calibration")
    ax.bar([(b["lo"] + b["hi"]) / 2 for b in bins], [b["accuracy"] for b in bins], width=0.095,
           color="#3b6ea5", alpha=0.85, label="accuracy in bin (n = points in it)")
    for b in bins:
        ax.text((b["lo"] + b["hi"]) / 2, min(b["accuracy"] + 0.02, 0.95), f"n={b['count']}", ha="center", fontsize=6)
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="#c0392b", markersize=4,
            label="mean confidence")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("P(answer) from log-probabilities")
    ax.set_ylabel("P(correct)")
    ax.set_title(f"{title}\nECE = {cal['ece']:.3f}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return figure_png(fig)


def _by_eval(runs: list[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {}
    for r in runs:
        out.setdefault(r.eval, []).append(r)
    return out


def render(paths: list[str], fmt: str = "md", out: Path | None = None) -> str:
    if not paths:
        raise EvalkitError("report: give at least one run log or exam result")
    exams = [e for e in (load_exam(p) for p in paths) if e is not None]
    loaded = [load_run(p) for p in paths if not str(p).endswith(".json")]
    runs, empty = [r for r in loaded if r.samples], [r for r in loaded if not r.samples]
    for r in empty:
        warn(f"{r.path}: no samples (the run stopped before its first sample); left out of the report's tables")
    images: list[tuple[str, bytes]] = []
    table = exam_rows(exams)
    if any(row["lower_bound"] is not None for row in table):
        images.append(("Exam percentiles (lower bound of each range, bars: its 95% interval)",
                       percentile_chart_png(table)))
    label = labels(runs)
    for r in runs:
        cal = r.summary.calibration
        if cal and cal.ece is not None:
            counts = ", ".join(f"{b['lo']:.1f}-{b['hi']:.1f}: {b['count']}" for b in cal.bins)
            images.append((f"{r.eval} · {label[r.path]} (points per bin: {counts})",
                           reliability_png(cal.model_dump(), f"{r.eval} · {label[r.path]}")))
    lead = (overview(runs, _brief), [r.path for r in empty])
    if fmt == "html":
        return _html(runs, images, table, lead, out)
    return _markdown(runs, images, out, table, lead)


def exam_rows(exams: list[dict]) -> list[dict]:
    """Table 1 of the GPT-4 report, for these results: score / max and the percentile as printed."""
    rows = []
    for e in exams:
        scale, pct = e["scale"], e.get("percentile")
        lo, hi = e.get("scaled_ci95") or (None, None)
        top = scale["max"]
        score = f"{_num(e['scaled'])} / {_num(top)}" if scale["unit"].startswith(("scaled", "points")) else _num(e["scaled"])
        if scale["unit"] == "percent correct":
            score = f"{_num(e['scaled'])}%"
        rows.append({"exam": e.get("title") or e["exam"], "model": e.get("model") or "?", "score": score,
                     "percentile": pct["text"] if pct else "–",
                     "ci": f"{_num(lo)}-{_num(hi)}" if lo is not None else "–",
                     "lower_bound": (0.0 if pct["below"] else pct["low"]) if pct else None,
                     "lower_ci": e.get("percentile_bounds_ci95"),
                     "pct_ci": " to ".join(e.get("percentile_ci95") or []) or "–",
                     "incomplete": bool(e.get("incomplete")),
                     "partial": f"partial: --limit {e['partial']['limit']}" if e.get("partial") else ""})
    return rows


def percentile_chart_png(rows: list[dict]) -> bytes:
    """Figure 4 of the GPT-4 report: each exam's percentile lower bound, ordered."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = sorted((r["lower_bound"], f"{r['exam']} · {r['model']}" + (f" ({r['partial']})" if r["partial"] else ""),
                  r["lower_ci"] or [r["lower_bound"]] * 2) for r in rows if r["lower_bound"] is not None)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(pts) + 1.2), dpi=110)
    err = [[max(0.0, v - ci[0]) for v, _, ci in pts], [max(0.0, ci[1] - v) for v, _, ci in pts]]
    ax.barh([label for _, label, _ in pts], [v for v, _, _ in pts], color="#4a78b5", xerr=err, capsize=3)
    for i, (v, _, ci) in enumerate(pts):
        ax.text(ci[1] + 1, i, f"{v:g}", va="center", fontsize=8)
    ax.set_xlim(0, 105)
    ax.set_xlabel("estimated percentile lower bound among human test takers")
    ax.set_title("Exam results (lower end of each percentile range)")
    return figure_png(fig)


@dataclass
class Section:
    """One eval's content, computed once; the Markdown and HTML renderers only format it."""

    name: str
    metric: str
    rows: list[tuple[str, str, list[str]]]            # (label, state or "", [metric, n, errors, unparsed, cost])
    calibration: list[str]                             # sentences under the table: calibration, thinking
    group_header: list[str]
    group_rows: list[tuple[str, list[str]]]            # (group, one cell per model; "–" where absent)
    view: str = ""                                     # the command that opens these logs' samples
    view_page: str | None = None                       # their viewer page beside the report (with --out)


def _sections(runs: list[Run], out: Path | None = None) -> list[Section]:
    sections, label = [], labels(runs)
    for name, group in _by_eval(runs).items():
        rows = [(label[r.path], state(r) or "",
                 [_cell(r), n_cell(r), str(r.summary.errors), unread_cell(r), _cost(r)]) for r in group]
        calibration = [f"Calibration of {r.model}: ECE {cal.ece:.4f} over {cal.points} option probabilities "
                       "(10 equal-width bins)." for r in group
                       if (cal := r.summary.calibration) and cal.ece is not None]
        calibration += [s for r in group if (s := _thinking(r.summary))]
        calibration += [f"Warning: {r.disagreement}." for r in group if r.disagreement]
        names = sorted({g for r in group for g in (r.summary.groups or {})})
        group_rows = []
        for g in names:
            cells = []
            for r in group:
                m = (r.summary.groups or {}).get(g)
                cells.append(f"{_fmt(m.value)} (n={m.n})" if m else "–")
            group_rows.append((g, cells))
        view = "evalkit view " + " ".join(shlex.quote(r.path) for r in group)
        page = None
        if out is not None:
            from evalkit.analysis.view.page import write_beside

            page = write_beside([r.path for r in group], out, name)
        sections.append(Section(name, group[0].metric, rows, calibration, [label[r.path] for r in group], group_rows,
                                view, page))
    return sections


def _flags(r: dict) -> str:
    return "".join(f" ({f})" for f in ("incomplete" if r["incomplete"] else "", r["partial"]) if f)


def _markdown(runs: list[Run], images: list[tuple[str, bytes]], out: Path | None, exams: list[dict], lead) -> str:
    lines = ["# evalkit report", "", f"Generated {time.strftime('%Y-%m-%d %H:%M')} from {len(runs)} run log(s)"
             f"{f' and {len(exams)} exam result(s)' if exams else ''}.", ""] + lead_markdown(lead)
    if exams:
        lines += ["## Exams", "", "| exam | model | score | percentile | score 95% CI | percentile 95% CI |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['exam']}{_flags(r)} | {r['model']} | {r['score']} | "
                  f"{r['percentile']} | {r['ci']} | {r['pct_ci']} |" for r in exams]
        lines.append("")
    for sec in _sections(runs, out):
        lines += [f"## {sec.name}", "", f"| model | {sec.metric} [95% CI] | n | errors | unparsed | cost |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {label}{f' ({st})' if st else ''} | " + " | ".join(cells) + " |" for label, st, cells in sec.rows]
        lines.append("")
        for sentence in sec.calibration:
            lines += [sentence, ""]
        link = f"[the sample browser]({sec.view_page}) · " if sec.view_page else ""
        lines += [f"Samples: {link}`{sec.view}`", ""]
        if sec.group_rows:
            lines += ["| group | " + " | ".join(sec.group_header) + " |", "|---|" + "---|" * len(sec.group_header)]
            lines += [f"| {g} | " + " | ".join(cells) + " |" for g, cells in sec.group_rows]
            lines.append("")
    if images:
        if out is None:
            lines.append("_Figures are written beside the report with `--out FILE`._")
        else:
            folder = out.with_name(out.stem + "_files")
            folder.mkdir(parents=True, exist_ok=True)
            lines += ["## Figures", ""]
            for i, (title, png) in enumerate(images):
                (folder / f"figure_{i}.png").write_bytes(png)
                lines.append(f"![{title}]({folder.name}/figure_{i}.png)")
            lines.append("")
    return "\n".join(lines)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d2430;padding:0 1rem}h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #d8dde6;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}th,td{border:1px solid #d8dde6;padding:.3rem .6rem;
text-align:left}th{background:#f1f4f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.incomplete{color:#b03a2e;font-weight:600}.muted{color:#6b7480}figure{display:inline-block;margin:.5rem}
"""


def _html(runs: list[Run], images: list[tuple[str, bytes]], exams: list[dict], lead, out: Path | None = None) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>evalkit report</title>",
             f"<style>{CSS}</style></head><body><h1>evalkit report</h1>",
             f"<p class='muted'>Generated {e(time.strftime('%Y-%m-%d %H:%M'))} from {len(runs)} run log(s)"
             f"{f' and {len(exams)} exam result(s)' if exams else ''}.</p>"] + lead_html(lead)
    if exams:
        parts.append("<h2>Exams</h2><table class='exams'><thead><tr><th>exam</th><th>model</th><th>score</th>"
                     "<th>percentile</th><th>score 95% CI</th><th>percentile 95% CI</th></tr></thead><tbody>")
        for r in exams:
            flag = "".join(f" <span class='incomplete'>{f}</span>" for f in
                           ("incomplete" if r["incomplete"] else "", r["partial"]) if f)
            parts.append(f"<tr><td>{e(r['exam'])}{flag}</td><td>{e(r['model'])}</td><td class='num'>{e(r['score'])}</td>"
                         f"<td>{e(r['percentile'])}</td><td class='num'>{e(r['ci'])}</td>"
                         f"<td class='num'>{e(r['pct_ci'])}</td></tr>")
        parts.append("</tbody></table>")
    for sec in _sections(runs, out):
        parts.append(f"<h2>{e(sec.name)}</h2><table class='summary'><thead><tr><th>model</th><th>{e(sec.metric)} [95% CI]</th>"
                     "<th>n</th><th>errors</th><th>unparsed</th><th>cost</th></tr></thead><tbody>")
        for label, st, cells in sec.rows:
            flag = f" <span class='incomplete'>{e(st)}</span>" if st else ""
            parts.append(f"<tr><td>{e(label)}{flag}</td>" + "".join(f"<td class='num'>{e(c)}</td>" for c in cells)
                         + "</tr>")
        parts.append("</tbody></table>")
        parts += [f"<p>{e(sentence)}</p>" for sentence in sec.calibration]
        link = f"<a href='{e(sec.view_page)}'>the sample browser</a> · " if sec.view_page else ""
        parts.append(f"<p class='view'>Samples: {link}<code>{e(sec.view)}</code></p>")
        if sec.group_rows:
            parts.append("<table class='groups'><thead><tr><th>group</th>"
                         + "".join(f"<th>{e(m)}</th>" for m in sec.group_header) + "</tr></thead><tbody>")
            for g, cells in sec.group_rows:
                parts.append(f"<tr><td>{e(g)}</td>" + "".join(f"<td class='num'>{e(c)}</td>" for c in cells) + "</tr>")
            parts.append("</tbody></table>")
    if images:
        parts.append("<h2>Figures</h2>")
        for title, png in images:
            data = base64.b64encode(png).decode()
            parts.append(f"<figure><img alt='{e(title)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption class='muted'>{e(title)}</figcaption></figure>")
    parts.append("</body></html>")
    return "".join(parts)


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes, the figure closed (the report's charts and predict's plot)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
