"""The `evalkit` command line: parse flags, call library functions, print, set exit codes.

Exit codes: 0 success; 1 a check failed (validate, compare, merge) or a run cannot be trusted
(nothing scored, more errors than --fail-on-error, stopped by --max-cost, an incomplete exam,
merged shards with gaps); 2 a usage or input error; 130 interrupted. Every error is one line on
stderr (`evalkit: error: ...`), never a traceback (`EVALKIT_DEBUG=1` shows one). Heavy modules are
imported inside commands so `evalkit --help` starts fast. Text for people comes from
`evalkit.cli.formats`; `--json` prints the typed results themselves.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import click

from evalkit import __version__
from evalkit.core.errors import EvalkitError

from evalkit.cli.data import data as data_commands
from evalkit.cli.predict import predict_cmd as predict_command
from evalkit.analysis.view.command import view as view_command
from evalkit.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, Finite, fail, is_path
from evalkit.cli.run import run, check_log_dir, error_threshold


class EvalkitGroup(click.Group):
    """Turns every failure inside a command into one line and an exit code, in-process too."""

    def invoke(self, ctx: click.Context):
        from evalkit.core.errors import reset_warnings

        reset_warnings()                  # each command says its warnings once, also in one process
        try:
            return super().invoke(ctx)
        except EvalkitError as exc:
            fail(exc.message, exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted; finished samples are in the log, run the same command to resume", EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # never a traceback for the user, but say what happened
            if os.environ.get("EVALKIT_DEBUG"):
                raise
            fail(f"internal error: {type(exc).__name__}: {str(exc)[:300]} (set EVALKIT_DEBUG=1 for a traceback)")


@click.group(cls=EvalkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evalkit")
def cli() -> None:
    """Evaluate chat models on exams and academic benchmarks.

    \b
    evalkit list                                   the evals, exams and graders
    evalkit run mmlu --model openai/gpt-4o-mini    run an eval (needs OPENAI_API_KEY)
    evalkit run mmlu --model local/gemma-3-270m    a small local model, offline
    evalkit providers                              the providers, their key variables and capabilities
    evalkit validate my_evals/                     check YAML specs
    """


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per eval, exam and grader.")
@click.option("--registry", "oai_registry", type=click.Path(file_okay=False, path_type=Path),
              help="List an OpenAI Evals registry instead: each eval's class and whether evalkit runs it.")
def list_cmd(as_json: bool, oai_registry: Path | None) -> None:
    """The evals, exams and graders in the registry."""
    from evalkit.cli.catalog import catalog_rows, oai_rows

    rows, problems = oai_rows(oai_registry) if oai_registry else catalog_rows()
    if as_json:
        from evalkit.results.outputs import as_json as typed_json

        for row in rows:
            click.echo(typed_json("list-oai" if oai_registry else "list", row))
    else:
        from evalkit.cli.formats import listing_text

        click.echo(listing_text(rows, oai=oai_registry is not None))
    for line in problems:
        click.echo(line, err=True)


@cli.command()
@click.argument("name")
def show(name: str) -> None:
    """One spec, resolved (extends and template applied), as YAML."""
    import yaml

    from evalkit.specs.registry import load_registry

    reg, named = load_registry([name] if is_path(name) else [])
    spec = reg.resolve(named[0] if named else name)
    click.echo(yaml.safe_dump(spec.model_dump(exclude_none=True, mode="json"), sort_keys=False, allow_unicode=True),
               nl=False)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
def validate(paths: tuple[str, ...]) -> None:
    """Check eval specs, exams and graders; print file:line: field: problem for each, exit 1 if any.

    Without PATHS, the built-in registry. A folder is read like a registry (`evals/`, `exams/`,
    `graders/`); a YAML file inside an `exams` or `graders` folder is one of those.
    """
    from evalkit.cli.validate import validate_paths

    problems, checked, data = validate_paths([Path(p) for p in paths])
    for p in problems:
        click.echo(p)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {checked}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"ok: {checked} valid ({data})", err=True)


SCHEMA_NAMES = ["summary", "pairwise", "compare", "exam-result", "exam-shard", "percentile", "dry-run", "predict",
                "list", "list-oai", "exams", "providers", "batches", "contamination",
                "data-list", "log-header", "log-sample", "spec", "exam", "grader"]


@cli.command("schema")
@click.argument("what", type=click.Choice(SCHEMA_NAMES), default="summary")
def schema_cmd(what: str) -> None:
    """The JSON Schema of an output (summary: `evalkit run --json`; docs/schemas/ has every one and
    says which command prints it), of a run log's lines, or of the eval, exam and grader YAML files
    (spec, exam, grader; for editors)."""
    from evalkit.cli.schemas import SCHEMAS, output_schemas

    schema = SCHEMAS[what]() if what in SCHEMAS else output_schemas()[what]()
    click.echo(json.dumps(schema, indent=1))


@cli.command()
@click.argument("exam")
@click.argument("score", type=Finite(-1e9, 1e9), required=False)
@click.option("--raw", "raw", multiple=True, metavar="SECTION=POINTS",
              help="Raw section scores on a real form instead of a scaled SCORE (repeat per section).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def percentile(exam: str, score: float | None, raw: tuple[str, ...], as_json: bool) -> None:
    """Convert a score on an exam's scale (or --raw section scores) to its human percentile."""
    from evalkit.exams.scoring import convert_given
    from evalkit.exams.tables import ExamRegistry
    from evalkit.cli.formats import percentile_text
    from evalkit.results.outputs import as_json as typed_json

    parsed = {}
    for item in raw:
        name, sep, value = item.partition("=")
        try:
            parsed[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not math.isfinite(parsed.get(name.strip(), 0.0)):
            fail(f"--raw {item!r}: write SECTION=POINTS, e.g. --raw quantitative=33")
    if parsed and score is not None:
        fail("give a SCORE or --raw section scores, not both")
    r = convert_given(ExamRegistry.default().get(exam), score, parsed)
    click.echo(typed_json("percentile", r) if as_json else percentile_text(r))


@cli.command("providers")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per provider, with the source of each claim.")
def providers_cmd(as_json: bool) -> None:
    """The providers --model accepts: the key variable each needs, its URL, and what it supports."""
    from evalkit.cli.catalog import provider_rows
    from evalkit.cli.formats import providers_text
    from evalkit.results.outputs import as_json as typed_json

    rows = provider_rows()
    click.echo("\n".join(typed_json("providers", r) for r in rows) if as_json else providers_text(rows))


@cli.command("exams")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per exam.")
def exams_cmd(as_json: bool) -> None:
    """The exams in the registry: runnable ones and conversion-only ones."""
    from evalkit.cli.catalog import exam_rows
    from evalkit.results.outputs import as_json as typed_json

    rows, problems = exam_rows()
    for row in rows:
        click.echo(typed_json("exams", row) if as_json else
                   f"{row['name']:<34} {'run' if row['runnable'] else 'convert':<8} percentile:{row['percentile']:<6} {row['title']}")
    for p in problems:
        click.echo(p, err=True)


@cli.command()
@click.argument("name")
@click.option("--corpus", "corpus", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Training text: .txt, .jsonl (one document per line), either gzipped. Repeat for several.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
              help="Seeds the three substrings drawn per sample.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the contaminated sample ids here, one per line (for `run --exclude`).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def contamination(name: str, corpus: tuple[str, ...], seed: int, out: Path | None, as_json: bool) -> None:
    """Which samples of an eval occur in a training corpus (GPT-4 report, Appendix C)."""
    from evalkit.analysis.contamination import check
    from evalkit.datasets.load import load_samples
    from evalkit.cli.formats import contamination_text
    from evalkit.results.outputs import as_json as typed_json
    from evalkit.specs.registry import load_registry

    reg, named = load_registry([name] if is_path(name) else [])
    spec = reg.resolve(named[0] if named else name)
    result = {"eval": spec.name, **check(load_samples(spec), list(corpus), seed)}
    if out is not None:
        try:
            out.write_text("".join(i + "\n" for i in result["contaminated"]), encoding="utf-8")
        except OSError as exc:
            fail(f"--out {out}: cannot write ({exc.strerror})")
    click.echo(typed_json("contamination", result) if as_json else contamination_text(result, out))


@cli.command()
@click.argument("logs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
def report(logs: tuple[str, ...], fmt: str, out: Path | None) -> None:
    """A Markdown or self-contained HTML report of run logs (several models side by side)."""
    from evalkit.analysis.report import render

    text = render(list(logs), fmt=fmt, out=out)
    if out is None:
        click.echo(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"--out {out}: cannot write ({exc.strerror})")
    click.echo(f"wrote {out}", err=True)


@cli.command()
@click.argument("base_log", type=click.Path(dir_okay=False))
@click.argument("new_log", type=click.Path(dir_okay=False))
@click.option("--max-drop", type=Finite(0, 1e9), default=0.0, show_default=True,
              help="Largest tolerated drop of the main metric (e.g. 0.01 = one point of accuracy).")
@click.option("--alpha", type=Finite(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="Significance level of the drop.")
@click.option("--allow-missing", is_flag=True, help="Pass even when NEW lacks samples BASE scored (compare the shared ones).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def compare(base_log: str, new_log: str, max_drop: float, alpha: float, allow_missing: bool, as_json: bool) -> None:
    """Pair two logs of one eval by sample; exit 1 on a significant drop larger than --max-drop, or
    when NEW lacks samples BASE has."""
    from evalkit.analysis.compare import compare_logs
    from evalkit.cli.formats import compare_text
    from evalkit.results.outputs import as_json as typed_json

    r = compare_logs(base_log, new_log, max_drop=max_drop, alpha=alpha, allow_missing=allow_missing)
    click.echo(typed_json("compare", r) if as_json else compare_text(r))
    if not r["gate"]["passed"]:
        sys.exit(EXIT_FAILED)


@cli.command("batches")
@click.argument("log", type=click.Path(dir_okay=False))
@click.option("--cancel", is_flag=True, help="Cancel the log's batches that are still running.")
@click.option("--base-url", metavar="URL",
              help="The endpoint the batches are at, as given to `run --base-url` (default: the provider's). "
                   "The key is sent only there: a log naming another endpoint is refused.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per batch.")
def batches_cmd(log: str, cancel: bool, base_url: str | None, as_json: bool) -> None:
    """The provider batches a `run --batch` log names, and their state (--cancel: cancel them).
    The provider's key goes only to --base-url or the provider's own endpoint, never to one the
    log names."""
    from evalkit.backends.base import BackendError
    from evalkit.send.batch_journal import list_batches
    from evalkit.cli.formats import batches_text
    from evalkit.results.runlog import read_log
    from evalkit.results.outputs import as_json as typed_json

    lines = read_log(log).batches
    if not lines:
        fail(f"{log}: this run log names no batches (it was not run with --batch)", EXIT_FAILED)
    try:
        rows = list_batches(lines, cancel=cancel, base_url=base_url)
    except EvalkitError as exc:
        fail(f"{log}: {exc.message}", EXIT_FAILED)
    except BackendError as exc:
        fail(f"{log}: {exc.reason}", EXIT_FAILED)
    for row in rows:
        click.echo(typed_json("batches", row) if as_json else batches_text(row))


@cli.command()
@click.argument("logs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the merged log here (shards of one eval); default: where the unsharded run's log goes.")
@click.option("--log-dir", type=click.Path(path_type=Path),
              help="Write each eval's merged log under this folder, at the unsharded run's path (default: the "
                   "run log folder), so the same command without --shard resumes it.")
@click.option("--allow-gaps", is_flag=True, help="Exit 0 even when shards or samples are missing (the log says so).")
@click.option("--fail-on-error", "fail_on_error", default="0", show_default=True,
              help="Exit 1 if more than N samples (or a FRACTION) of the merged run ended in errors, as `run` does.")
@click.option("--json", "as_json", is_flag=True, help="One JSON summary per merged eval on stdout (as `run --json`).")
@click.option("--quiet", "-q", is_flag=True, help="On stderr, only the gaps and problems (not what was merged).")
def merge(logs: tuple[str, ...], log_file: Path | None, log_dir: Path | None, allow_gaps: bool, fail_on_error: str,
          as_json: bool, quiet: bool) -> None:
    """Join the logs of `run --shard I/N` runs into the log of the whole run: same spec, model and
    parameters checked, overlaps refused, gaps reported; metrics identical to an unsharded run."""
    from evalkit.cli.formats import merge_text, summary_text
    from evalkit.results.merge import merge_logs
    from evalkit.runs.session import error_limit

    threshold = error_threshold(fail_on_error)
    if log_file is not None and log_dir is not None:
        fail("give --log-file or --log-dir, not both")
    check_log_dir(log_dir)
    problems = []
    for m in merge_logs(list(logs), log_file=log_file, log_dir=log_dir):
        click.echo(m.summary.model_dump_json() if as_json else summary_text(m.summary))
        text = merge_text(m.report(), quiet)
        if text:
            click.echo(text, err=True)
        if m.gaps and not allow_gaps:
            problems.append(f"{m.eval}: {len(m.gaps)} gap(s); the merged log is incomplete (run the missing shards "
                            "and merge again, or pass --allow-gaps)")
        s = m.summary
        if s.errors + s.truncated > error_limit(threshold, s.n):
            cut = f" and {s.truncated} were truncated by the token limit" if s.truncated else ""
            problems.append(f"{s.eval}: {s.errors} of {s.n} samples ended in errors{cut}, more than --fail-on-error "
                            f"{threshold:g}; rerun the shards that hold them, then merge again")
    for p in problems:
        click.echo(f"evalkit: {p}", err=True)
    if problems:
        sys.exit(EXIT_FAILED)


cli.add_command(run)
cli.add_command(data_commands)
cli.add_command(predict_command)
cli.add_command(view_command)


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM outside a run ends evalkit as Ctrl-C does


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    cli.main(prog_name="evalkit")


if __name__ == "__main__":
    main()
