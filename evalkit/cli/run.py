"""`evalkit run`: its flags (shared with the exam and OpenAI Evals runs), their checks, and how each
typed result is printed as it comes."""

from __future__ import annotations

from typing import Callable

import json
import math
import os
import sys
from pathlib import Path
import click
from evalkit.cli.common import Finite, fail


RUN_OPTIONS = [
    click.option("--model", required=True, metavar="PROVIDER/NAME",
                 help="openai/<model> (OPENAI_API_KEY; any OpenAI-compatible server with --base-url), "
                      "anthropic/, gemini/, azure/<deployment>, together/, groq/, openrouter/, mistral/, "
                      "deepseek/, fireworks/ (each with its own key variable), local servers vllm/, ollama/, "
                      "llamacpp/, lmstudio/, or local/<folder|file.gguf|gemma-3-270m> (in-process, offline); "
                      "`evalkit providers` lists keys, URLs and capabilities."),
    click.option("--base-url", multiple=True, metavar="URL|@FILE",
                 help="The endpoint (default: the provider's, e.g. $OPENAI_BASE_URL or OpenAI; for azure/ the "
                      "resource URL, default $AZURE_OPENAI_ENDPOINT). Repeat it, or give @FILE (one URL a line), "
                      "for replicas of one model: each request goes to the one with the fewest outstanding; the "
                      "first URL names the run."),
    click.option("--limit", type=click.IntRange(min=1), help="Run only the first N samples (after a seeded shuffle)."),
    click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
                 help="Sample order, few-shot draws, API seed."),
    click.option("--shard", metavar="I/N",
                 help="Run the I-th of N disjoint slices of the samples (by a hash of each id, after --limit); "
                      "`evalkit merge` joins the N logs into the whole run's."),
    click.option("--concurrency", type=click.IntRange(1, 10_000),
                 help="Fix the requests in flight per endpoint (default: adaptive to its latency, 8 rising "
                      "up to 128, see evalkit/limiter.py; a local model: one batch, up to 64)."),
    click.option("--max-retries", type=click.IntRange(0, 100), default=5, show_default=True, help="Retries per request."),
    click.option("--timeout", type=Finite(0.1, 86_400), default=1800.0, show_default=True,
                 help="Total seconds per request attempt: connecting and the whole reply."),
    click.option("--idle-timeout", type=Finite(0.1, 86_400), default=120.0, show_default=True,
                 help="Abandon an attempt after this many seconds without a token (streamed) or byte."),
    click.option("--no-stream", is_flag=True, help="Ask for whole replies instead of streamed ones."),
    click.option("--max-retry-after", type=Finite(0, 86_400), default=600.0, show_default=True,
                 help="A server asking to wait longer than this ends the sample with an error."),
    click.option("--max-reply-bytes", type=click.IntRange(1024, 2**31), default=2 * 1024 * 1024, show_default=True,
                 help="A larger reply body ends that sample with an error."),
    click.option("--temperature", type=Finite(0, 2), help="Override the spec's temperature."),
    click.option("--max-tokens", type=click.IntRange(1, 10_000_000), help="Override the spec's max_tokens."),
    click.option("--reasoning-effort", type=click.Choice(["none", "minimal", "low", "medium", "high", "xhigh", "max"]),
                 help="How hard a reasoning model thinks, sent in its provider's own field (reasoning_effort, "
                      "Anthropic's thinking budget, OpenRouter's reasoning, chat_template_kwargs, ...); refused "
                      "where the model has no such control. `evalkit providers --json` shows each spelling."),
    click.option("--max-reasoning-tokens", type=click.IntRange(0, 10_000_000), metavar="N",
                 help="Tokens a reasoning model may think on top of the eval's answer budget (default by "
                      "effort: 16,384; low 4,096, high 32,768). The limit sent is max_tokens + N."),
    click.option("--extra-body", metavar="JSON",
                 help="A JSON object merged into every request body, for fields evalkit does not model "
                      "(part of the run's identity and cache key)."),
    click.option("--log-reasoning", is_flag=True,
                 help="Keep the thinking's text in the log (its length is always kept; off for size)."),
    click.option("--think-tags", multiple=True, metavar="OPEN,CLOSE",
                 help="Inline thinking tags to take out of replies before scoring (repeat; default <think>, "
                      "<thinking>, <reasoning>, <seed:think>, Kimi's; 'none' turns it off)."),
    click.option("--retry-truncated", is_flag=True,
                 help="On resume, send again the samples the token limit cut off (e.g. after raising "
                      "--max-reasoning-tokens); otherwise they stay truncated."),
    click.option("--stop", multiple=True, metavar="TEXT",
                 help="End replies at TEXT (repeatable, at most 4; \\n for a newline), sent with each request and "
                      "cut on evalkit's side (default: the eval's few-shot separator, e.g. '\\n\\nQuestion:')."),
    click.option("--no-stop", is_flag=True, help="No stop strings: replies run to max_tokens or the model's end."),
    click.option("--shots", type=click.IntRange(0, 1000), help="Override the number of few-shot examples."),
    click.option("--samples", type=click.IntRange(1, 1000), help="Completions per item (for pass@k)."),
    click.option("--scale", type=Finite(0, 1e300, min_open=True), metavar="X",
                 help="Record the model's scale (training compute, parameters) in the log, for `evalkit predict`."),
    click.option("--cot/--no-cot", default=None,
                 help="Chain of thought on or off (on: the model reasons, then ends with 'Answer: X')."),
    click.option("--extract", help="Answer extraction: answer_line (after the last 'Answer:') or a regex with one group."),
    click.option("--answer-by", type=click.Choice(["text", "logprob"]),
                 help="Multiple choice: parse the reply's text, or take the most probable option letter."),
    click.option("--logprobs", is_flag=True, help="Ask for the answer token's log-probabilities: calibration (ECE)."),
    click.option("--log-dir", type=click.Path(path_type=Path),
                 help="Where run logs go (default: ~/.local/state/evalkit/runs, or $XDG_STATE_HOME/evalkit/runs)."),
    click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path),
                 help="Write (and resume) the run log at exactly this path: a stable name for CI (one eval)."),
    click.option("--fresh", is_flag=True, help="Start over instead of resuming this command's previous log."),
    click.option("--log-prompts", is_flag=True, help="Write each sample's full messages into the log."),
    click.option("--no-cache", is_flag=True, help="Neither read nor write the response cache ($EVALKIT_CACHE_DIR)."),
    click.option("--max-cost", type=Finite(0, 1e9), help="Stop before spending more than this many USD."),
    click.option("--fail-on-error", "fail_on_error", default="0", show_default=True,
                 help="Exit 1 if more than N samples (or a FRACTION like 0.01) end in errors."),
    click.option("--exclude", type=click.Path(dir_okay=False, path_type=Path),
                 help="Leave out the sample ids listed in this file (one per line), e.g. contaminated ones."),
    click.option("--grader-model", help="Model-graded evals and --versus: the grader (default: --model itself)."),
    click.option("--grader-base-url", help="The grader's endpoint (default: --base-url)."),
    click.option("--no-vision", is_flag=True, help="Items with images: send an `IMAGE: <name>` tag instead."),
    click.option("--grades", type=click.Path(dir_okay=False, path_type=Path),
                 help="Exams: human grades for free-response items, a CSV of section,id,score (0-1)."),
    click.option("--versus", metavar="MODEL", help="Pairwise: sample MODEL too and have the grader pick the better reply."),
    click.option("--registry", "oai_registry", type=click.Path(file_okay=False, path_type=Path),
                 help="Run NAMES from this OpenAI Evals registry folder (evals/, data/, modelgraded/, eval_sets/)."),
    click.option("--unsafe-exec", is_flag=True,
                 help="Code evals: if bubblewrap cannot isolate model-written code here, run it anyway WITHOUT "
                      "isolation (unsafe: it can read your files and keys)."),
    click.option("--batch", is_flag=True,
                 help="Send through the provider's Batch API (OpenAI: half the price, results within 24 h); "
                      "a rerun of the same command reattaches to its batches."),
    click.option("--batch-poll", type=Finite(0.01, 86_400), default=30.0, show_default=True, metavar="SECONDS",
                 help="--batch: seconds between status checks."),
    click.option("--batch-size", type=click.IntRange(1, 50_000), metavar="N",
                 help="--batch: at most N requests per batch (default: the provider's limit, 50,000 for OpenAI)."),
    click.option("--batch-fallback", is_flag=True,
                 help="--batch: requests a batch failed, expired or cancelled go through the per-request API "
                      "(standard price) instead of a new batch."),
    click.option("--dry-run", is_flag=True, help="Print samples, prompt tokens and estimated cost; send nothing."),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON summary per eval on stdout."),
    click.option("--quiet", "-q", is_flag=True, help="No progress on stderr."),
]


def run_options(f):
    """The options of `evalkit run` (RUN_OPTIONS), in the order --help lists them."""
    for option in reversed(RUN_OPTIONS):
        f = option(f)
    return f


@click.command(epilog="Data: $EVALKIT_DATA_DIR (an offline mirror), else downloaded into $EVALKIT_CACHE_DIR/data.")
@click.argument("names", nargs=-1, required=True)
@run_options
def run(names, as_json, dry_run, fail_on_error, versus, oai_registry, grades, **kw) -> None:
    """Run evals (registry names or YAML files), exams, or OpenAI Evals registry evals against a model."""
    from evalkit.runs.session import RunRequest, run_session
    from evalkit.plan.shards import parse_shard
    from evalkit.specs.stops import from_flags

    check_log_dir(kw.get("log_dir"))
    endpoints(kw)
    reasoning_flags(kw)
    kw["stop"] = from_flags(kw.pop("stop"), kw.pop("no_stop"))
    if kw.get("shard") is not None:
        kw["shard"] = parse_shard(kw["shard"])
    request = RunRequest(names=list(names), options=kw, dry_run=dry_run, versus=versus,
                         oai_registry=oai_registry.resolve() if oai_registry else None, grades=grades,
                         fail_on_error=error_threshold(fail_on_error))
    from evalkit.core.redact import env_secrets, redact

    for line in run_session(request, show=_shower(as_json)):
        click.echo(f"evalkit: {redact(line.text, env_secrets())}", err=True)   # it may quote a server
        if line.exit_code:
            sys.exit(line.exit_code)


def _shower(as_json: bool):
    """How `run` prints each typed result as it comes: one JSON object, or text for people."""
    from evalkit.cli import formats
    from evalkit.results.outputs import as_json as typed

    texts: dict[str, Callable] = {"plan": formats.plan_text, "summary": formats.summary_text, "pairwise": formats.pairwise_text,
             "exam": formats.exam_text, "exam_shard": formats.exam_shard_text}

    schemas = {"plan": "dry-run", "exam": "exam-result", "exam_shard": "exam-shard"}   # typed, published

    def show(kind: str, result) -> None:
        if not as_json:
            click.echo(texts[kind](result))
        else:
            click.echo(result.model_dump_json() if hasattr(result, "model_dump_json") else typed(schemas[kind], result))
    return show


def endpoints(kw: dict) -> None:
    """--base-url values (URLs, @FILE) as the run's endpoint and further replicas; --no-stream."""
    from evalkit.send.replicas import parse_urls

    try:
        urls = parse_urls(kw.pop("base_url"))
    except ValueError as exc:
        fail(str(exc))
    kw["base_url"], kw["replicas"] = (urls[0] if urls else None), tuple(urls[1:])
    kw["stream"] = not kw.pop("no_stream")


def reasoning_flags(kw: dict) -> None:
    """--extra-body as a checked JSON object, --think-tags as tag pairs (each bad value one line)."""
    from evalkit.backends.thinking import parse_tags
    from evalkit.specs.evals import check_extra_body

    raw = kw.get("extra_body")
    if raw is not None:
        try:
            kw["extra_body"] = check_extra_body(json.loads(raw))
        except json.JSONDecodeError as exc:
            fail(f"--extra-body: not JSON ({exc.msg} at character {exc.pos})")
        except (ValueError, RecursionError) as exc:
            fail(f"--extra-body: {exc}")
    try:
        kw["think_tags"] = parse_tags(kw["think_tags"]) if kw.get("think_tags") else None
    except ValueError as exc:
        fail(str(exc))


def check_log_dir(path: Path | None) -> None:
    if path is None:
        return
    if path.exists() and not path.is_dir():
        fail(f"--log-dir {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"--log-dir {path}: cannot create it ({exc.strerror})")
    if not os.access(path, os.W_OK | os.X_OK):
        fail(f"--log-dir {path}: not writable")


def error_threshold(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1
    if not math.isfinite(number) or number < 0 or (number > 1 and not number.is_integer()):
        fail(f"--fail-on-error {value!r}: give a count (e.g. 5) or a fraction of samples (e.g. 0.01)")
    return number
