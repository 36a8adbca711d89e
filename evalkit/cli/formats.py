"""Text for people: how each result is printed on a terminal (the `--json` output is the typed
result itself). One function per result kind; nothing here computes a figure."""

from __future__ import annotations

from evalkit.exams.tables import fmt_number as _n
from evalkit.results.records import Summary


def fmt(x, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def status_note(s: Summary) -> str:
    if not s.incomplete:
        return ""
    why = {"errors": f"{s.errors} samples errored; rerun the same command to retry them",
           "interrupted": "interrupted; rerun the same command to resume",
           "stopped: max_cost": "stopped by --max-cost; raise it and rerun to resume",
           "gaps": "merged shards miss samples; run the missing shards and merge again"}.get(s.status, s.status)
    if s.status == "complete":      # never "[INCOMPLETE: complete]": say what is missing
        why = f"{s.scored} of {s.n} samples scored; rerun the same command to finish"
    return f"  [INCOMPLETE: {why}]"


def summary_text(s: Summary) -> str:
    name = s.primary_metric
    main = s.metrics[name]
    headline = (f"{s.eval}  {s.model}  {name} {fmt(main.value)} (95% CI {fmt(main.ci95[0])}-{fmt(main.ci95[1])})"
                + "".join(f"  {k} {fmt(v.value)}" for k, v in s.metrics.items() if k != name and not k.startswith("macro_"))
                + f"  n={main.n}/{s.n}  errors={s.errors}" + (f"  truncated={s.truncated}" if s.truncated else "")
                + f"  unparsed={s.unparsed}" + _unread_parts(s) + status_note(s))
    lines = [headline] + _macro_and_groups(s) + _calibration_and_grader(s)
    req, u = s.requests, s.usage
    cost = f"  cost ${s.cost_usd.this_run:,.4f}" if s.cost_usd else ""
    thought = f" ({u.reasoning_tokens} reasoning)" if u.reasoning_tokens else ""
    cached = f" ({u.cached_tokens} cached)" if u.cached_tokens else ""
    lines.append(f"  requests sent {req.sent} (retries {req.retries}, from cache {req.cached}, resumed samples "
                 f"{req.resumed_samples})  tokens {u.prompt_tokens}{cached}+{u.completion_tokens}{thought}{cost}  "
                 f"{s.duration_s:.1f}s")
    if s.batches:
        b = s.batches
        lines.append(f"  batches: {len(b['created'])} created, {len(b['reattached'])} reattached; {b['submitted']:,} "
                     f"requests submitted, {b['answered']:,} answered, {b['failed']:,} failed, {b['fallback']:,} "
                     f"sent one by one; batch prices")
    lines += [f"  note: {note}" for note in s.notes]
    lines.append(f"  log: {s.log}")
    if len(lines) > 12:
        lines.append(headline)      # the headline again, where a long table has not scrolled it away
    return "\n".join(lines)


def _unread_parts(s: Summary) -> str:
    """' (blank 1, invalid grades 2)': what the unparsed count holds, when it holds either."""
    parts = [f"{k} {v}" for k, v in (("blank", s.blank), ("invalid grades", s.invalid_grades)) if v]
    return f" ({', '.join(parts)})" if parts else ""


def _macro_and_groups(s: Summary) -> list[str]:
    name, lines = s.primary_metric, []
    macro = s.metrics.get(f"macro_{name}")
    if macro:
        lines.append(f"  macro {name} over {macro.groups} groups {fmt(macro.value)} "
                     f"(95% CI {fmt(macro.ci95[0])}-{fmt(macro.ci95[1])})")
    groups = s.groups or {}
    if 1 < len(groups) <= 200:
        width = max(len(g) for g in groups)
        lines += [f"  {g:<{width}}  {fmt(m.value)}  n={m.n}" for g, m in groups.items()]
    return lines


def _calibration_and_grader(s: Summary) -> list[str]:
    lines = []
    cal = s.calibration
    if cal and cal.ece is not None:
        lines.append(f"  calibration: ECE {cal.ece:.4f} over {cal.points} option probabilities ({cal.questions} "
                     f"questions, 10 equal-width bins); mean missing mass {cal.mean_missing_mass:.4f}")
    g = s.grader
    if g:
        gr = g.get("requests") or {}
        lines.append(f"  grader {g['model']} ({g['spec']}): {g['invalid']} invalid replies (no valid class; not "
                     f"scored); requests sent {gr.get('sent', 0)}, from cache {gr.get('cached', 0)}, retries "
                     f"{gr.get('retries', 0)}")
    if s.usage.invalid:
        lines.append(f"  usage: {s.usage.invalid} replies reported token counts that are not believable (not summed)")
    return lines


def plan_text(p: dict) -> str:
    cost = p["estimated_cost_usd"]
    lines = [f"{p['eval']}  {p['model']}  dry run: nothing sent" + (f" (would go to {p['endpoint']})" if p["endpoint"] else ""),
             f"  samples {p['samples']:,}  prompt tokens {p['prompt_tokens']:,} ({p['tokenizer']})",
             f"  completion tokens at most {p['max_completion_tokens']:,}" if p["max_completion_tokens"] else
             "  completion tokens: no max_tokens set, no upper bound"]
    budget = p.get("reasoning_budget_per_sample") or 0
    if budget:
        lines.append(f"  of which reasoning at most {budget:,} per sample (how much it will think cannot be known "
                     f"before the run: answers alone are {p['max_answer_tokens']:,} tokens at most)")
    if p["prices"]:
        pr = p["prices"]
        worst = f"${cost['worst_case']:,.4f}" if cost["worst_case"] is not None else "unbounded"
        if budget and cost.get("no_reasoning") is not None:
            lines.append(f"  estimated cost: prompts ${cost['prompt']:,.4f}; full answers without reasoning "
                         f"${cost['no_reasoning']:,.4f} to {worst} with the whole reasoning budget")
        else:
            lines.append(f"  estimated cost: prompts ${cost['prompt']:,.4f}, worst case with full completions {worst}")
        tier = " (Batch API)" if pr.get("tier") == "batch" else ""
        lines.append(f"  prices ${pr['input_per_million']}/${pr['output_per_million']} per 1M tokens{tier} "
                     f"(recorded {pr['recorded']} from {pr['source']})")
    else:
        lines.append(f"  estimated cost: unknown (no price for {p['model']} in the registry's prices)")
    return "\n".join(lines)


def compare_text(r: dict) -> str:
    o, g, u, f = r["overall"], r["gate"], r["unpaired"], r["flipped"]
    lines = [f"{r['eval']} {r['metric']}: {r['base']['model']} {fmt(o['base'])} -> {r['new']['model']} {fmt(o['new'])}  "
             f"diff {o['diff']:+.4f} (95% CI {fmt(o['ci95'][0])} to {fmt(o['ci95'][1])}, p={o['p_value']:.4g}, {o['test']})",
             f"  paired {r['paired']} samples; unpaired: {u['base_only']} scored only in base, {u['new_only']} only "
             f"in new (errors: {u['errors']['base']} in base, {u['errors']['new']} in new)"
             + (f"; truncated by the token limit (scored 0): {u['truncated']['base']} in base, "
                f"{u['truncated']['new']} in new" if u.get("truncated", {}).get("base") or
                u.get("truncated", {}).get("new") else ""),
             f"  flipped: {f['worse_count']} worse, {f['better_count']} better"
             + (f"; worse: {', '.join(f['worse'][:10])}" + (" ..." if f["worse_count"] > 10 else "") if f["worse"] else "")]
    lines += [f"  group {k}: {v['diff']:+.4f} (p={v['p_value']:.4g}, n={v['n']})" for k, v in r["groups"].items()
              if v["p_value"] is not None and v["p_value"] < g["alpha"]]
    verdict = "ok" if g["passed"] else ("REGRESSION" if g["regression"] else "FAIL") + ": " + "; ".join(g["failures"])
    lines.append(f"  gate: drop {g['drop']:+.4f} vs --max-drop {g['max_drop']}, "
                 f"{'significant' if g['significant'] else 'not significant'} at alpha {g['alpha']}: {verdict}")
    return "\n".join(lines)


def percentile_text(r: dict) -> str:
    scale = r["scale"]
    head = f"{r['exam']} ({r['title']}): "
    if "raw" in r:
        head += "raw " + ", ".join(f"{k} {v:g}" for k, v in r["raw"].items()) + f" -> composite {r['composite']:g} -> "
    pct = r["percentile"]["text"] if r["percentile"] else f"no percentile ({r['no_percentile']})"
    lines = [head + f"{r['scaled']:g} on {scale['min']:g}-{scale['max']:g} ({scale['unit']}): {pct}"]
    lines += [f"  {s['for']}: {s['title']} ({s['publisher']}, {s['year']}) {s['url']}" for s in r["sources"]]
    return "\n".join(lines)


def exam_text(r: dict) -> str:
    scale = r["scale"]
    lines = [f"{r['exam']}  {r['model']}  {r['title']}" + ("  [INCOMPLETE]" if r["incomplete"] else "")
             + (f"  [PARTIAL: --limit {r['partial']['limit']}]" if r.get("partial") else "")]
    for s in r["sections"]:
        blank = f", {s['blank']} blank" if s["blank"] else ""
        errs = f", {s['errors']} errors" if s["errors"] else ""
        scaled = f" -> {_n(s['scaled'])}" if s["scaled"] is not None else ""
        lines.append(f"  {s['name']}: {_n(s['correct'])}/{s['n']} right ({s['accuracy']:.1%}{blank}{errs}) "
                     f"-> raw {_n(s['raw'])}/{_n(s['max_raw'])}{scaled}")
    if len(r["sections"]) > 1:
        lines.append(f"  composite {_n(r['composite'])}/{_n(r['composite_max'])}")
    lo, hi = r["scaled_ci95"]
    pct_text = r["percentile"]["text"] if r["percentile"] else "no percentile"
    ci = f" (95% CI {r['percentile_ci95'][0]} to {r['percentile_ci95'][1]})" if r.get("percentile_ci95") else ""
    lines.append(f"  score {_n(r['scaled'])} on {_n(scale['min'])}-{_n(scale['max'])} ({scale['unit']}), "
                 f"95% CI {_n(lo)}-{_n(hi)};  percentile {pct_text}{ci}")
    lines += [f"  {s['for']}: {s['title']} ({s['publisher']}, {s['year']}) {s['url']}" for s in r["sources"]]
    lines += [f"  note: {note}" for note in r["notes"]]
    if r.get("log"):
        lines.append(f"  log: {r['log']}")
    return "\n".join(lines)


def exam_shard_text(r: dict) -> str:
    lines = [f"{r['exam']}  {r['model']}  shard {r['shard']}: no conversion on a shard"
             + ("  [INCOMPLETE]" if r["incomplete"] else "")]
    lines += [f"  {name}: {s['scored']}/{s['n']} items scored ({s['errors']} errors)  log: {s['log']}"
              for name, s in r["sections"].items()]
    lines.append(f"  next: `evalkit merge` every shard's section logs, then `evalkit run {r['exam']}` without --shard "
                 "converts from the merged logs (nothing is sent again)")
    return "\n".join(lines)


def merge_text(m: dict, quiet: bool = False) -> str:
    """What `evalkit merge` did with one eval's shards, and its gaps (on stderr; the summary goes
    to stdout). Quiet: the gaps only."""
    lines = [] if quiet else [f"merged {m['eval']}: shards {', '.join(s['shard'] for s in m['shards'])} of "
                              f"{m['count']} -> {m['log']}"]
    lines += [f"evalkit: {m['eval']}: gap: {gap}" for gap in m["gaps"]]
    return "\n".join(lines)


def pairwise_text(s) -> str:
    w = s.metrics["win_rate"]
    lo, hi = w.ci95
    rate = "n/a" if w.value is None else f"{w.value:.4f} (95% CI {lo:.4f}-{hi:.4f})"
    lines = [f"{s.eval}  {s.model} vs {s.versus}  graded by {s.grader['model']} ({s.grader['spec']})"
             + ("  [INCOMPLETE]" if s.incomplete else ""),
             f"  win rate of {s.model}: {rate}; ties count half",
             f"  wins {s.wins}, losses {s.losses}, ties {s.ties}, invalid grader replies {s.invalid}, "
             f"errors {s.errors} of {s.n} samples (left out: {s.skipped_samples} that a model failed on)"]
    if s.first_shown_chosen is not None:
        lines.append(f"  the grader chose the first-shown reply {s.first_shown_chosen:.1%} of the time; "
                     f"{s.model} was shown first in {s.a_first} of {s.scored}")
    lines.append(f"  logs: {s.logs['a']}  {s.logs['b']}  {s.logs['pairwise']}")
    return "\n".join(lines)


def listing_text(rows: list[dict], oai: bool = False) -> str:
    if oai:
        return "\n".join(f"{r['name']:<48} {'ok ' if r['supported'] else '-- '} {r['class'] or '?'}"
                         + ("" if r["supported"] else f"  ({r['reason']})") for r in rows)
    width = max((len(r["name"]) for r in rows), default=4)
    lines = []
    for r in (r for r in rows if r["kind"] == "eval"):
        sub = f" (+{r['subsets']} subsets: {r['name']}.<subset>)" if r["subsets"] else ""
        lines.append(f"{r['name']:<{width}}  {r['template'] or '?':<16} {r['description']}{sub}")
    for kind in ("exam", "grader"):
        group = [r for r in rows if r["kind"] == kind]
        if group:
            lines += ["", f"{kind}s:"] + [f"{r['name']:<{width}}  {r['template']:<16} {r['description']}" for r in group]
    return "\n".join(lines)


def contamination_text(r: dict, out) -> str:
    lines = [f"{r['eval']}: {r['count']} of {r['n']} samples contaminated ({r['share']:.2%}); {r['probes']} probes "
             f"over {r['corpus_bytes'] / 1e6:,.1f} MB in {r['seconds']:.1f}s ({r['mb_per_s']} MB/s, {r['engine']})"]
    lines += [f"  {sid}" for sid in r["contaminated"][:20]]
    if r["count"] > 20:
        lines.append(f"  ... {r['count'] - 20} more" + (f" (all in {out})" if out else " (--out FILE lists all)"))
    return "\n".join(lines)



def providers_text(rows: list[dict]) -> str:
    """One line per provider: key variable(s), default URL, and what it supports."""
    def mark(value) -> str:
        return "?" if value is None else ("yes" if value else "no")

    def key(r: dict) -> str:
        if not r["key_env"]:
            return "-"
        names = " or ".join(r["key_env"])
        return names if r["key_required"] else f"{names} (optional)"

    def url(r: dict) -> str:
        if r["kind"] == "in-process":
            return "in-process"
        if r["base_url"] is None:
            return f"${r['base_url_env']}" if r["base_url_env"] else "?"
        return r["base_url"] + (f"  (or ${r['base_url_env']})" if r["base_url_env"] else "")

    def prices(r: dict) -> str:
        if r["prices"]:
            return f"{r['prices']['recorded']} ({len(r['prices']['models'])} models)"
        if r["kind"] == "plug-in":
            return "?"
        return "none" if r["price_note"].startswith("none") else "not recorded"

    table = [("provider", "key variable", "default URL", "logprobs", "seed", "system", "images", "prices")]
    for r in rows:
        lp = f"yes ({r['max_top_logprobs']})" if r["logprobs"] else mark(r["logprobs"])
        table.append((r["name"] + "/", key(r), url(r), lp, mark(r["seed"]), mark(r["system_messages"]),
                      mark(r["images"]), prices(r)))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    lines.append("")
    lines.append("--base-url overrides the URL for any provider. logprobs: the most alternatives per token; "
                 "no: --logprobs and --answer-by logprob are refused. seed no: the seed is not sent. images no: "
                 "items with images need --no-vision. prices: the day the provider's price table was recorded. "
                 "Sources, notes and why a price is not recorded: evalkit providers --json.")
    rules = [(r["name"], m) for r in rows for m in r.get("models") or []]
    if rules:
        lines += ["", "Model rules (the first match applies; sources in --json):"]
        lines += [f"  {name}/{', '.join(m['match'])}: {_rule_text(m)}" for name, m in rules]
    return "\n".join(lines)


def _rule_text(m: dict) -> str:
    parts = ["reasons (limit = answer + reasoning budget)"] if m["reasoning"] else []
    if m["token_limit"] != "max_tokens":
        parts.append(f"limit sent as {m['token_limit']}")
    if m["refuses"]:
        parts.append(f"not sent: {', '.join(m['refuses'])}")
    if m["thinking_refuses"]:
        parts.append(f"not sent while thinking: {', '.join(m['thinking_refuses'])}")
    if not m["logprobs"]:
        parts.append("no log-probabilities")
    parts.append(f"--reasoning-effort {'/'.join(m['effort'])}" if m["effort"] else "no effort control")
    return "; ".join(parts)


def batches_text(row: dict) -> str:
    """One line of `evalkit batches`: id, phase, requests, state at the provider, and whether the
    run has recorded its results."""
    counts = f" {row['completed']:,}/{row.get('total') or row['requests']:,} completed, {row['failed']:,} failed" \
        if row.get("completed") is not None else ""
    recorded = "results recorded" if row["settled"] else "results not yet recorded (rerun the command)"
    cancelled = " (cancel requested now)" if row.get("cancelled_now") else ""
    return (f"{row['batch_id'] or '-':<24} {row['phase']:<7} {row['requests']:>7,} requests  "
            f"{row['status']}{cancelled}{counts}; {recorded}")
