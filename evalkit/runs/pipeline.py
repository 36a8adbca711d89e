"""One eval, start to finish: plan -> send -> score -> record -> summarise.

    plan      the effective spec, samples and requests (evalkit.plan)
    send      the runner: concurrency, retries, cache, budget (evalkit.send.runner)
    score     the spec's scorer on each reply cut at the run's stops (evalkit.specs.stops), inline, in a
              thread or awaiting a grader
    record    one log line per sample (evalkit.results.runlog); only what was written counts
    summarise metrics from the recorded results (evalkit.results) into a typed `Summary`

A sample's life is request -> reply -> score -> one log line. Any failure on that path (the
request gave up, the reply broke the scorer) becomes that sample's recorded error with the
reason; its reply is not cached, and a rerun of the same command tries it again. A log line that
cannot be written (a full disk) stops the run with one line.
"""

from __future__ import annotations

import asyncio
import platform
import time

from evalkit import __version__
from evalkit.backends import Backend, FatalError
from evalkit.send.cache import Cache
from evalkit.core.errors import EvalkitError, warn
from evalkit.results.runlog import LoggedRun, log_path
from evalkit.core.places import cache_dir, default_log_dir
from evalkit.plan.run_plan import RunOptions, RunPlan, make_plan
from evalkit.backends.presets import pricer_for
from evalkit.results.records import SampleResult, Summary
from evalkit.send.runner import Channel, progress_every, run_requests
from evalkit.send.runner_types import RunStats
from evalkit.scoring.graded import is_graded
from evalkit.specs.evals import EvalSpec
from evalkit.runs.recording import plugin_code_for, Recorder, summarise, messages_digest
from evalkit.runs.grading import Grading, batch_grader
from evalkit.runs.checks import same_budget, same_scale, keep_live_batches, no_live_batches, check_capabilities
from evalkit.runs.dry_run import cost_estimate
from evalkit.runs.connect import connect, runner_options, status_line, open_backend


def run_eval(spec: EvalSpec, opts: RunOptions) -> Summary:
    progress_every()             # a bad EVALKIT_PROGRESS_SECONDS stops the run before anything is written
    backend = connect(opts.model, opts.base_url, opts, opts.concurrency)
    if opts.batch and backend.batch_api() is None:
        raise EvalkitError(f"--batch: {opts.model} has no Batch API in evalkit (OpenAI-compatible endpoints "
                           "do: openai/...); run without --batch")
    if opts.replicas and not backend.remote:
        raise EvalkitError(f"--base-url: {opts.model} runs in this process; replicas are for remote endpoints")
    grading = Grading.for_spec(spec, opts) if is_graded(spec.scoring) else None
    extra = {**({"grader": grading.identity} if grading else {}),
             **({"wire": backend.wire_identity()} if backend.wire_identity() else {})}
    plan = make_plan(spec, opts, backend.endpoint, extra or None)
    path = opts.log_file or log_path(opts.log_dir or default_log_dir(), plan.spec.name, opts.model, plan.run_key)
    if opts.fresh:
        keep_live_batches(path, opts.base_url)
    run = LoggedRun(path, _header(plan, backend, grading), fresh=opts.fresh, keep_truncated=not opts.retry_truncated)
    try:
        same_budget(run, backend.reasoning_budget(plan.sampling))
        same_scale(run, opts.scale)
        if not opts.batch and run.batches:
            no_live_batches(run, [uid for _, _, uid in plan.units() if uid not in run.done], opts.base_url)
        return _execute(plan, backend, run, grading)
    finally:
        run.close()


def _header(plan: RunPlan, backend: Backend, grading: "Grading | None") -> dict:
    opts = plan.opts
    return {"type": "header", "run_key": plan.run_key, "eval": plan.spec.name, "model": opts.model,
            "endpoint": backend.endpoint, **({"replicas": list(opts.replicas)} if opts.replicas else {}),
            "sampling": plan.sampling.as_dict(), "options": plan.options,
            **({"wire": backend.wire_notes()} if backend.wire_notes() else {}),
            **({"reasoning_budget": budget} if (budget := backend.reasoning_budget(plan.sampling)) else {}),
            "seed": opts.seed, "limit": opts.limit, "spec": plan.identity["spec"], "data": plan.identity["data"],
            "planned": len(plan.samples) * plan.per_item,          # so a killed run's report knows its n
            "excluded": {"file": str(opts.exclude), "count": len(plan.identity["exclude"])} if opts.exclude else None,
            "grader": grading.identity if grading else None,
            **({"scale": opts.scale} if opts.scale is not None else {}),
            **({"shard": plan.part.header(plan.unsharded_key)} if plan.part else {}),
            **({"plugins": used} if (used := plugin_code_for(plan)) else {}),
            "versions": {"evalkit": __version__, "python": platform.python_version()},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _execute(plan: RunPlan, backend: Backend, run: LoggedRun, grading: "Grading | None") -> Summary:
    started = time.monotonic()
    units = list(plan.units())
    results, changed = reusable(plan, units, run.done)
    resumed, run.done = len(results), {}
    if changed:
        warn(f"{plan.spec.name}: {changed} logged sample(s) sent again: their prompt or target is not the one "
             f"this run would send (the data, the few-shot examples or the template changed since {run.path})")
    todo = [u for u in units if u[2] not in results]
    stats, status, fatal = RunStats(), "complete", None
    if todo:
        check_capabilities(plan, backend)
        if plan.spec.scorer.precheck is not None:
            plan.spec.scorer.precheck({"unsafe_exec": plan.opts.unsafe_exec})
        send = _send_batched if plan.opts.batch else _send_all
        try:
            stats = asyncio.run(send(plan, backend, run, results, todo, grading))
        except FatalError as exc:
            status, fatal = "failed", exc.reason
    else:
        asyncio.run(backend.aclose())
    ordered = [results[uid] for _, _, uid in units if uid in results]
    summary = summarise(plan, ordered, len(units), stats, status, resumed, time.monotonic() - started,
                        backend, grading, str(run.path))
    summary.requests.rerun_changed = changed
    if todo or not run.complete:
        run.finish(summary.model_dump(mode="json"))
    if fatal:
        raise EvalkitError(f"{plan.spec.name}: {fatal} ({summary.scored} finished samples kept in {run.path})")
    return summary


def reusable(plan: RunPlan, units: list, done: dict[str, SampleResult]) -> tuple[dict[str, SampleResult], int]:
    """The logged results a resumed run keeps, and how many it must send again: a result is kept
    only if its prompt hash and target are those this plan would send now."""
    kept, changed = {}, 0
    for smp, j, uid in units:
        old = done.get(uid)
        if old is None:
            continue
        if old.target == plan.target_of(smp) and old.messages_sha256 == messages_digest(plan.request(smp, j, uid).messages):
            kept[uid] = old
        else:
            changed += 1
    return kept, changed


async def _send_all(plan: RunPlan, backend: Backend, run: LoggedRun, results: dict, todo: list,
                    grading: "Grading | None") -> RunStats:
    opts = plan.opts
    cache = None if opts.no_cache else Cache(cache_dir() / "completions.sqlite")
    pricer = backend.pricer()
    estimate = cost_estimate(plan, pricer, backend) if opts.max_cost is not None else None
    every = progress_every()
    replicas = [connect(opts.model, url, opts, opts.concurrency) for url in opts.replicas]
    for each in (backend, *replicas):
        await open_backend(each, status_line(plan), every)
    ropts = runner_options(opts)
    if ropts.concurrency is None and backend.max_in_flight():
        ropts.concurrency = backend.max_in_flight()      # no queue hidden inside the backend
    channel = Channel(backend, ropts, cache=cache, pricer=pricer, estimate=estimate, replicas=replicas)
    services: dict[str, object] = {"unsafe_exec": opts.unsafe_exec}
    if grading is not None:
        services["grader"] = grading.open(cache, opts)
        await open_backend(grading.live().backend, status_line(plan), every)
    recorder = Recorder(plan, run, results, {uid: s for s, _, uid in todo}, services)
    try:
        requests = (plan.request(s, j, uid) for s, j, uid in todo)
        stats = await run_requests(channel, requests, len(todo), recorder, plan.spec.name)
        stats.spent = channel.spent
        return stats
    finally:
        await channel.aclose()
        if grading is not None:
            await grading.aclose()
        if cache is not None:
            cache.close()


async def _send_batched(plan: RunPlan, backend: Backend, run: LoggedRun, results: dict, todo: list,
                        grading: "Grading | None") -> RunStats:
    """The same requests and the same sink as `_send_all`, through the Batch API (evalkit.send.batch)."""
    from evalkit.send.batch import BatchRun
    from evalkit.send.batch_journal import Journal
    from evalkit.send.batch_phase import BatchOptions
    from evalkit.send.limiter import Budget

    opts = plan.opts
    cache = None if opts.no_cache else Cache(cache_dir() / "completions.sqlite")
    pricer = pricer_for(opts.model, "batch")
    budget = Budget(opts.max_cost, cost_estimate(plan, pricer, backend) if opts.max_cost is not None else None)
    services: dict[str, object] = {"unsafe_exec": opts.unsafe_exec}
    grader = await batch_grader(plan, grading, cache, services) if grading is not None else None
    fallback = Channel(backend, runner_options(opts), cache=None, pricer=backend.pricer()) if opts.batch_fallback else None
    bopts = BatchOptions(poll=opts.batch_poll, size=opts.batch_size, quiet=opts.quiet)
    batches = BatchRun(backend.batch_api(), Journal(run.batches, run.note_batch), bopts, plan.spec.name, cache=cache,
                       pricer=pricer, budget=budget, grader=grader, fallback=fallback)
    recorder = Recorder(plan, run, results, {uid: s for s, _, uid in todo}, services)
    try:
        return await batches.run([plan.request(s, j, uid) for s, j, uid in todo], recorder)
    finally:
        await batches.api.aclose()
        if grader is not None:
            await grader.api.aclose()
        await backend.aclose()
        if grading is not None:
            await grading.aclose()
        if cache is not None:
            cache.close()


