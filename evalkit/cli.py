"""The `evalkit` command line: parse flags, call library functions, print, set exit codes.

Exit codes: 0 success, 1 a check failed (validate), 2 a usage or input error. Every error is one
line on stderr (`evalkit: error: ...`), never a traceback; `EVALKIT_DEBUG=1` shows one.
Heavy modules are imported inside commands so `evalkit --help` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from . import __version__


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"evalkit: error: {message}", err=True)
    sys.exit(code)


def _is_path(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) or os.sep in name


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evalkit")
def cli() -> None:
    """Evaluate chat models on exams and academic benchmarks.

    \b
    evalkit list                                   the evals in the registry
    evalkit run mmlu --model openai/gpt-4o-mini    run an eval
    evalkit validate my_evals/                     check YAML specs
    """


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per eval.")
@click.option("--registry", "oai_registry", type=click.Path(file_okay=False, path_type=Path),
              help="List an OpenAI Evals registry instead: each eval's class and whether evalkit runs it.")
def list_cmd(as_json: bool, oai_registry: Path | None) -> None:
    """The evals in the registry."""
    from .registry import Registry

    if oai_registry is not None:
        from collections import Counter

        from .oaievals import OAIRegistry

        inv = OAIRegistry(oai_registry).inventory()
        for name, row in inv.items():
            if as_json:
                click.echo(json.dumps({"name": name, **row}))
            else:
                click.echo(f"{name:<48} {'ok ' if row['supported'] else '-- '} {row['class'] or '?'}"
                           + ("" if row["supported"] else f"  ({row['reason']})"))
        counts = Counter(r["class"] for r in inv.values() if r["supported"])
        click.echo(f"{sum(counts.values())} of {len(inv)} evals runnable: "
                   + ", ".join(f"{c.rsplit(':', 1)[-1]} {n}" for c, n in counts.most_common()), err=True)
        return

    from .exams import ExamRegistry
    from .graders import GraderRegistry

    reg = Registry.default()
    rows = []
    for name in reg.names():
        merged = reg.merged(name)
        subsets = (merged.get("dataset") or {}).get("subsets") or []
        rows.append({"kind": "eval", "name": name, "template": merged.get("template"),
                     "description": merged.get("description", ""), "subsets": len(subsets),
                     "file": str(reg.raw[name].doc.path)})
    others = []
    for kind, files in (("exam", ExamRegistry.files()), ("grader", GraderRegistry.files())):
        for f in files:   # names and titles only: `evalkit validate` checks the definitions
            for n, body in _peek_yaml(f).items():
                if kind == "exam":
                    secs = body.get("sections") or []
                    runnable = bool(secs) and all(isinstance(x, dict) and x.get("eval") for x in secs)
                    row = {"template": "exam" if runnable else "exam (convert)", "description": body.get("title", "")}
                else:
                    row = {"template": f"grader {body.get('eval_type') or 'classify'}",
                           "description": body.get("description", "")}
                others.append({"kind": kind, "name": n, **row, "subsets": 0, "file": str(f)})
    if as_json:
        for row in rows + others:
            click.echo(json.dumps(row))
        return
    width = max((len(r["name"]) for r in rows + others), default=4)
    for r in rows:
        sub = f" (+{r['subsets']} subsets: {r['name']}.<subset>)" if r["subsets"] else ""
        click.echo(f"{r['name']:<{width}}  {r['template'] or '?':<16} {r['description']}{sub}")
    for kind in ("exam", "grader"):
        group = [r for r in others if r["kind"] == kind]
        if group:
            click.echo(f"\n{kind}s:")
            for r in group:
                click.echo(f"{r['name']:<{width}}  {r['template']:<16} {r['description']}")
    if reg.problems:
        click.echo(f"({len(reg.problems)} problem(s) in the registry; run `evalkit validate`)", err=True)


def _peek_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError):
        return {}        # reported by `evalkit validate`
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


@cli.command()
@click.argument("name")
def show(name: str) -> None:
    """One spec, resolved (extends applied), as YAML."""
    import yaml

    from .registry import load_registry

    reg, named = load_registry([name] if _is_path(name) else [])
    spec = reg.resolve(named[0] if named else name)
    click.echo(yaml.safe_dump(spec.model_dump(exclude_none=True), sort_keys=False, allow_unicode=True), nl=False)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
def validate(paths: tuple[str, ...]) -> None:
    """Check eval specs and exam definitions; print file:line: field: problem for each, exit 1 if any.

    Without PATHS, the built-in registry. A folder is read like a registry (`evals/`, `exams/`);
    a YAML file inside an `exams` folder is an exam definition.
    """
    from .exams import ExamRegistry
    from .registry import Registry

    from .graders import GraderRegistry

    reg = Registry.default()
    graders = GraderRegistry()
    if not paths:
        exams = ExamRegistry.default()
        graders = GraderRegistry.default()
        names, exam_names = None, list(exams.exams)
    else:
        reg.problems.clear()       # the built-in registry is only there to resolve `extends`
        exams = ExamRegistry()
        names, exam_names = [], []
        for p in paths:
            path = Path(p)
            if path.is_dir():
                folder = path / "evals" if (path / "evals").is_dir() else path
                files = sorted(folder.rglob("*.yaml")) + sorted(folder.rglob("*.yml"))
                for kind in ("exams", "graders"):
                    if (path / kind).is_dir() and folder != path:
                        files += sorted((path / kind).glob("*.y*ml"))
            elif path.exists():
                files = [path]
            else:
                _fail(f"{p}: no such file or folder")
            for f in files:
                if f.parent.name == "exams":
                    exam_names += exams.add_file(f)
                elif f.parent.name == "graders":
                    graders.add_file(f)
                else:
                    names += reg.add_file(f, override=True)
    problems = reg.validate_all(names) + exams.problems + exams.check_evals(reg) + graders.problems
    for p in problems:
        click.echo(p)
    checked = f"{len(names) if names is not None else len(reg.raw)} spec(s)" + (f", {len(exam_names)} exam(s)" if exam_names else "")
    if problems:
        click.echo(f"{len(problems)} problem(s) in {checked}", err=True)
        sys.exit(1)
    click.echo(f"ok: {checked} valid", err=True)


@cli.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--model", required=True, help="provider/name, e.g. openai/gpt-4o-mini.")
@click.option("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else OpenAI).")
@click.option("--limit", type=click.IntRange(min=1), help="Run only the first N samples (after the seeded shuffle).")
@click.option("--seed", type=int, default=0, show_default=True, help="Sample order, few-shot draws, API seed.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Fix the requests in flight (default: adaptive, 32 rising to 128, halved on rate limits).")
@click.option("--max-retries", type=click.IntRange(min=0), default=5, show_default=True, help="Retries per request.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=120.0, show_default=True, help="Seconds per request.")
@click.option("--temperature", type=click.FloatRange(0, 2), help="Override the spec's temperature.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Override the spec's max_tokens.")
@click.option("--shots", type=click.IntRange(min=0), help="Override the number of few-shot examples.")
@click.option("--samples", type=click.IntRange(min=1), help="Completions per item (for pass@k), overriding the spec.")
@click.option("--cot/--no-cot", default=None, help="Chain of thought on or off (on: the model reasons, then ends with 'Answer: X'; max_tokens rises to 1024).")
@click.option("--extract", help="Answer extraction: answer_line (text after the last 'Answer:') or a regex with one group.")
@click.option("--answer-by", type=click.Choice(["text", "logprob"]),
              help="Multiple choice: parse the reply's text, or take the most probable option letter (one forward pass).")
@click.option("--logprobs", is_flag=True, help="Ask for the answer token's top log-probabilities: option probabilities and calibration (ECE).")
@click.option("--log-dir", type=click.Path(file_okay=False, path_type=Path), help="Where run logs go.")
@click.option("--fresh", is_flag=True, help="Start over instead of resuming this command's previous log.")
@click.option("--log-prompts", is_flag=True, help="Write each sample's full messages into the log.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the response cache.")
@click.option("--max-cost", type=click.FloatRange(min=0), help="Stop before spending more than this many USD.")
@click.option("--fail-on-error", "fail_on_error", help="Exit 1 if more than N samples (or a FRACTION like 0.01) end in errors.")
@click.option("--exclude", type=click.Path(dir_okay=False, path_type=Path),
              help="Leave out the sample ids listed in this file (one per line), e.g. contaminated ones.")
@click.option("--grader-model", help="Model-graded evals and --versus: the grader, provider/name (default: --model itself).")
@click.option("--grader-base-url", help="The grader's endpoint (default: --base-url).")
@click.option("--no-vision", is_flag=True, help="Items with images: send an `IMAGE: <name>` tag per image instead of the image.")
@click.option("--grades", type=click.Path(dir_okay=False, path_type=Path),
              help="Exams: human grades for free-response items, a CSV of section,id,score (0-1).")
@click.option("--versus", metavar="MODEL", help="Pairwise: sample MODEL too and have the grader pick the better reply per sample.")
@click.option("--registry", "oai_registry", type=click.Path(file_okay=False, path_type=Path),
              help="Run NAMES from this OpenAI Evals registry folder (evals/, data/, modelgraded/, eval_sets/).")
@click.option("--unsafe-exec", is_flag=True, help="Code evals: if bubblewrap cannot isolate model-written code here, run it "
              "anyway WITHOUT isolation (unsafe: it can read your files and keys).")
@click.option("--dry-run", is_flag=True, help="Print samples, prompt tokens and estimated cost; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary per eval on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
def run(names, as_json, dry_run, fail_on_error, versus, oai_registry, grades, **kw) -> None:
    """Run evals (registry names or YAML files), exams, or OpenAI Evals registry evals against a model."""
    from .evaluate import RunOptions
    from .registry import load_registry

    if oai_registry is not None:
        _run_oai(oai_registry, names, as_json, dry_run, fail_on_error, versus, kw)
        return
    paths = [n for n in names if _is_path(n)]
    reg, from_files = load_registry(paths)
    if reg.problems and paths:
        bad = [p for p in reg.problems if any(p.startswith(str(Path(x))) for x in paths)]
        if bad:
            _fail(bad[0] + (f" (and {len(bad) - 1} more; run `evalkit validate {' '.join(paths)}`)" if len(bad) > 1 else ""))
    exams = None
    targets = []
    for n in names:
        if _is_path(n):
            if not Path(n).exists():
                _fail(f"{n}: no such file")
            targets += [m for m in from_files if reg.raw[m].doc.path == Path(n) and not reg.raw[m].data.get("abstract")]
        elif n in reg.raw or "." in n:
            targets.append(n)
        else:
            from .exams import ExamRegistry

            exams = exams or ExamRegistry.default()
            targets.append(exams.get(n) if n in exams.exams else n)
    specs = [t if not isinstance(t, str) else reg.resolve(t) for t in targets]
    opts = RunOptions(**kw)
    if versus:
        _run_pairwise(specs, opts, versus, as_json)
        return
    if grades is not None and not any(not hasattr(sp, "template") for sp in specs):
        _fail("--grades applies to exams (free-response sections) only")
    _run_specs(specs, reg, opts, as_json, dry_run, fail_on_error, grades=grades)


def _run_oai(root: Path, names, as_json, dry_run, fail_on_error, versus, kw) -> None:
    from .evaluate import RunOptions
    from .oaievals import NotSupported, OAIRegistry

    oai = OAIRegistry(root)
    expanded = [e for n in names for e in oai.expand(n)]
    specs, unsupported = [], []
    for name in expanded:
        try:
            specs.append(oai.resolve(name))
        except NotSupported as exc:
            if len(expanded) == 1:
                raise
            unsupported.append(exc.message)
    opts = RunOptions(**kw)
    if versus:
        _run_pairwise(specs, opts, versus, as_json)
    else:
        _run_specs(specs, None, opts, as_json, dry_run, fail_on_error, exit_on_failure=not unsupported)
    for msg in unsupported:
        click.echo(f"evalkit: skipped, {msg}", err=True)
    if unsupported:
        click.echo(f"evalkit: {len(unsupported)} of {len(expanded)} evals not run (not supported)", err=True)
        sys.exit(1)


def _run_pairwise(specs, opts, versus: str, as_json: bool) -> None:
    from .pairwise import format_pairwise, run_pairwise

    for spec in specs:
        if not hasattr(spec, "template"):
            _fail(f"--versus compares two models on an eval, not on exam {spec.name}")
        r = run_pairwise(spec, opts, versus)
        click.echo(json.dumps(r) if as_json else format_pairwise(r))
        if r["status"] == "interrupted":
            click.echo("evalkit: interrupted; finished judgements are in the log, run the same command to resume", err=True)
            sys.exit(130)


def _run_specs(specs, reg, opts, as_json, dry_run, fail_on_error, exit_on_failure: bool = True, grades=None) -> None:
    from .evaluate import run_eval

    threshold = _error_threshold(fail_on_error)
    failed = []
    for spec in specs:
        if not hasattr(spec, "template"):        # an exam: its sections' evals, then the conversion
            if dry_run:
                from .evaluate import dry_run as plan

                for ev in dict.fromkeys(sec.eval for sec in spec.sections if sec.eval):
                    estimate = plan(reg.resolve(ev), opts)
                    click.echo(json.dumps(estimate) if as_json else _format_plan(estimate))
                continue
            from .examrun import format_result, run_exam

            result = run_exam(spec, reg, opts, grades=grades)
            click.echo(json.dumps(result) if as_json else format_result(result))
            if result["incomplete"]:
                failed.append(f"{spec.name}: incomplete (some items errored or the run stopped); rerun to resume")
            continue
        if dry_run:
            from .evaluate import dry_run as plan

            estimate = plan(spec, opts)
            click.echo(json.dumps(estimate) if as_json else _format_plan(estimate))
            continue
        summary = run_eval(spec, opts)
        if as_json:
            click.echo(json.dumps(summary))
        else:
            _print_summary(summary)
        if summary["status"] == "interrupted":
            click.echo("evalkit: interrupted; finished samples are in the log, run the same command to resume", err=True)
            sys.exit(130)
        if summary["status"].startswith("stopped: max_cost"):
            failed.append(f"{spec.name}: stopped before exceeding --max-cost {opts.max_cost} USD "
                          f"({summary['scored']}/{summary['n']} samples scored; raise the limit and rerun to resume)")
        if threshold is not None:
            limit = threshold if threshold >= 1 or threshold == 0 else threshold * summary["n"]
            if summary["errors"] > limit:
                failed.append(f"{spec.name}: {summary['errors']} samples ended in errors, more than --fail-on-error {fail_on_error}")
    for f in failed:
        click.echo(f"evalkit: {f}", err=True)
    if failed and exit_on_failure:
        sys.exit(1)


def _error_threshold(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = -1
    if number < 0 or (number > 1 and not number.is_integer()):
        _fail(f"--fail-on-error {value!r}: give a count (e.g. 5) or a fraction of samples (e.g. 0.01)")
    return number


def _format_plan(p: dict) -> str:
    cost = p["estimated_cost_usd"]
    lines = [f"{p['eval']}  {p['model']}  dry run: nothing sent",
             f"  samples {p['samples']:,}  prompt tokens {p['prompt_tokens']:,} ({p['tokenizer']})",
             f"  completion tokens at most {p['max_completion_tokens']:,}" if p["max_completion_tokens"] else
             "  completion tokens: no max_tokens set, no upper bound"]
    if p["prices"]:
        pr = p["prices"]
        worst = f"${cost['worst_case']:,.4f}" if cost["worst_case"] is not None else "unbounded"
        lines.append(f"  estimated cost: prompts ${cost['prompt']:,.4f}, worst case with full completions {worst}")
        lines.append(f"  prices ${pr['input_per_million']}/${pr['output_per_million']} per 1M tokens "
                     f"(recorded {pr['recorded']} from {pr['source']})")
    else:
        lines.append(f"  estimated cost: unknown (no price for {p['model']} in the registry's prices.yaml)")
    return "\n".join(lines)


@cli.command()
@click.argument("exam")
@click.argument("score", type=float, required=False)
@click.option("--raw", "raw", multiple=True, metavar="SECTION=POINTS",
              help="Raw section scores on a real form instead of a scaled SCORE (repeat per section).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def percentile(exam: str, score: float | None, raw: tuple[str, ...], as_json: bool) -> None:
    """Convert a score on an exam's scale (or --raw section scores) to its human percentile."""
    from .exams import ExamRegistry, convert_given

    reg = ExamRegistry.default()
    parsed = {}
    for item in raw:
        name, sep, value = item.partition("=")
        try:
            parsed[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            _fail(f"--raw {item!r}: write SECTION=POINTS, e.g. --raw quantitative=33")
    if parsed and score is not None:
        _fail("give a SCORE or --raw section scores, not both")
    r = convert_given(reg.get(exam), score, parsed)
    if as_json:
        click.echo(json.dumps(r))
        return
    scale = r["scale"]
    head = f"{r['exam']} ({r['title']}): "
    if "raw" in r:
        head += "raw " + ", ".join(f"{k} {v:g}" for k, v in r["raw"].items()) + f" -> composite {r['composite']:g} -> "
    pct = r["percentile"]["text"] if r["percentile"] else f"no percentile ({r['no_percentile']})"
    click.echo(head + f"{r['scaled']:g} on {scale['min']:g}-{scale['max']:g} ({scale['unit']}): {pct}")
    for src in r["sources"]:
        click.echo(f"  {src['for']}: {src['title']} ({src['publisher']}, {src['year']}) {src['url']}")


@cli.command("exams")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per exam.")
def exams_cmd(as_json: bool) -> None:
    """The exams in the registry: runnable ones and conversion-only ones."""
    from .exams import ExamRegistry

    reg = ExamRegistry.default()
    for name, e in reg.exams.items():
        row = {"name": name, "title": e.title, "runnable": e.runnable, "sections": [s.name for s in e.sections],
               "percentile": "forms" if e.forms else ("yes" if e.distribution else "no"), "file": e.source_file}
        if as_json:
            click.echo(json.dumps(row))
        else:
            kind = "run" if e.runnable else "convert"
            click.echo(f"{name:<34} {kind:<8} percentile:{row['percentile']:<6} {e.title}")
    for p in reg.problems:
        click.echo(p, err=True)


@cli.command()
@click.argument("name")
@click.option("--corpus", "corpus", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Training text: .txt, .jsonl (one document per line), either gzipped. Repeat for several.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the three substrings drawn per sample.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the contaminated sample ids here, one per line (for `run --exclude`).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def contamination(name: str, corpus: tuple[str, ...], seed: int, out: Path | None, as_json: bool) -> None:
    """Which samples of an eval occur in a training corpus (GPT-4 report, Appendix C)."""
    from .contamination import check
    from .datasets import load_samples
    from .registry import load_registry

    reg, named = load_registry([name] if _is_path(name) else [])
    spec = reg.resolve(named[0] if named else name)
    result = {"eval": spec.name, **check(load_samples(spec), list(corpus), seed)}
    if out is not None:
        out.write_text("".join(i + "\n" for i in result["contaminated"]), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{spec.name}: {result['count']} of {result['n']} samples contaminated ({result['share']:.2%}); "
               f"{result['probes']} probes over {result['corpus_bytes'] / 1e6:,.1f} MB in {result['seconds']:.1f}s "
               f"({result['mb_per_s']} MB/s, {result['engine']})")
    for sid in result["contaminated"][:20]:
        click.echo(f"  {sid}")
    if result["count"] > 20:
        click.echo(f"  ... {result['count'] - 20} more" + (f" (all in {out})" if out else " (--out FILE lists all)"))


@cli.command()
@click.argument("logs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
def report(logs: tuple[str, ...], fmt: str, out: Path | None) -> None:
    """A Markdown or self-contained HTML report of run logs (several models side by side)."""
    from .report import render

    text = render(list(logs), fmt=fmt, out=out)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


@cli.command()
@click.argument("base_log", type=click.Path(dir_okay=False))
@click.argument("new_log", type=click.Path(dir_okay=False))
@click.option("--max-drop", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Largest tolerated drop of the main metric (e.g. 0.01 = one point of accuracy).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="Significance level of the drop.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def compare(base_log: str, new_log: str, max_drop: float, alpha: float, as_json: bool) -> None:
    """Pair two logs of one eval by sample; exit 1 on a significant drop larger than --max-drop."""
    from .compare import compare_logs

    r = compare_logs(base_log, new_log, max_drop=max_drop, alpha=alpha)
    if as_json:
        click.echo(json.dumps(r))
    else:
        o, g = r["overall"], r["gate"]
        click.echo(f"{r['eval']} {r['metric']}: {r['base']['model']} {_fmt(o['base'])} -> {r['new']['model']} "
                   f"{_fmt(o['new'])}  diff {o['diff']:+.4f} (95% CI {_fmt(o['ci95'][0])} to {_fmt(o['ci95'][1])}, "
                   f"p={o['p_value']:.4g}, {o['test']})")
        u = r["unpaired"]
        click.echo(f"  paired {r['paired']} samples; unpaired: {u['base_only']} scored only in base, {u['new_only']} only "
                   f"in new (errors: {u['errors']['base']} in base, {u['errors']['new']} in new)")
        f = r["flipped"]
        click.echo(f"  flipped: {f['worse_count']} worse, {f['better_count']} better"
                   + (f"; worse: {', '.join(f['worse'][:10])}" + (" ..." if f['worse_count'] > 10 else "") if f["worse"] else ""))
        moved = [(k, v) for k, v in r["groups"].items() if v["p_value"] is not None and v["p_value"] < alpha]
        for k, v in moved:
            click.echo(f"  group {k}: {v['diff']:+.4f} (p={v['p_value']:.4g}, n={v['n']})")
        verdict = "REGRESSION" if g["regression"] else "ok"
        click.echo(f"  gate: drop {g['drop']:+.4f} vs --max-drop {g['max_drop']}, "
                   f"{'significant' if g['significant'] else 'not significant'} at alpha {g['alpha']}: {verdict}")
    if r["gate"]["regression"]:
        sys.exit(1)


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _print_summary(s: dict) -> None:
    name = s.get("primary_metric", "accuracy")
    acc = s["metrics"][name]
    lo, hi = acc["ci95"]
    others = "".join(f"  {k} {_fmt(v['value'])}" for k, v in s["metrics"].items()
                     if k != name and not k.startswith("macro_"))
    click.echo(f"{s['eval']}  {s['model']}  {name} {_fmt(acc['value'])} (95% CI {_fmt(lo)}-{_fmt(hi)}){others}  "
               f"n={acc['n']}/{s['n']}  errors={s['errors']}  unparsed={s['unparsed']}"
               + (f"  [INCOMPLETE: {s['status']}]" if s["incomplete"] else ""))
    macro = s["metrics"].get(f"macro_{name}")
    if macro:
        click.echo(f"  macro {name} over {macro['groups']} groups {_fmt(macro['value'])} "
                   f"(95% CI {_fmt(macro['ci95'][0])}-{_fmt(macro['ci95'][1])})")
    groups = s.get("groups") or {}
    if 1 < len(groups) <= 200:
        width = max(len(g) for g in groups)
        for g, m in groups.items():
            click.echo(f"  {g:<{width}}  {_fmt(m[name])}  n={m['n']}")
    cal = s.get("calibration")
    if cal and cal.get("ece") is not None:
        click.echo(f"  calibration: ECE {cal['ece']:.4f} over {cal['points']} option probabilities "
                   f"({cal['questions']} questions, 10 equal-width bins); mean missing mass {cal['mean_missing_mass']:.4f}")
    g = s.get("grader")
    if g:
        gr = g.get("requests") or {}
        click.echo(f"  grader {g['model']} ({g['spec']}): {g['invalid']} invalid replies (no valid class; not scored); "
                   f"requests sent {gr.get('sent', 0)}, from cache {gr.get('cached', 0)}, retries {gr.get('retries', 0)}")
    req = s["requests"]
    cost = f"  cost ${s['cost_usd']['this_run']:,.4f}" if s.get("cost_usd") else ""
    click.echo(f"  requests sent {req['sent']} (retries {req['retries']}, from cache {req['cached']}, "
               f"resumed samples {req['resumed_samples']})  tokens {s['usage']['prompt_tokens']}+"
               f"{s['usage']['completion_tokens']}{cost}  {s['duration_s']:.1f}s")
    click.echo(f"  log: {s['log']}")


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a run as Ctrl-C does: finished samples kept, summary marked


def main() -> None:
    import signal

    from .errors import EvalkitError

    signal.signal(signal.SIGTERM, _terminate)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("evalkit: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except EvalkitError as exc:
        _fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        click.echo("evalkit: interrupted; finished samples are in the log, run the same command to resume", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except BaseException as exc:  # never a traceback for the user, but say what happened
        if os.environ.get("EVALKIT_DEBUG"):
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (set EVALKIT_DEBUG=1 for a traceback)")


if __name__ == "__main__":
    main()
