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
import hashlib
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from evalkit import __version__
from evalkit.backends import Backend, BackendOptions, FatalError, Request, Sampling, get_backend
from evalkit.send.cache import Cache
from evalkit.backends.costs import Pricer, TokenCounter
from evalkit.datasets.sample import Sample
from evalkit.core.errors import EvalkitError, warn
from evalkit.results.runlog import LoggedRun, log_path
from evalkit.core.places import cache_dir, default_log_dir
from evalkit.plan.run_plan import RunOptions, RunPlan, make_plan, worst_case_tokens
from evalkit.backends.presets import endpoint_of, pricer_for
from evalkit.results.records import Cost, MetricPart, Requests, SampleResult, Summary, Usage
from evalkit.results.summary import build_summary
from evalkit.send.runner import Channel, Outcome, RunnerOptions, RunStats, progress_every, run_requests
from evalkit.backends.thinking import Separated, separate
from evalkit.scoring import MissingLogprobs, ScoreInput, ScoringError
from evalkit.scoring.graded import is_graded
from evalkit.specs.evals import EvalSpec
from evalkit.specs.stops import at_stop
from evalkit.results.unread import unread_note


_kept: ContextVar[dict | None] = ContextVar("evalkit_backends", default=None)


@contextmanager
def one_backend_per_model():
    """Within this block, a reusable backend (a local model) is made once per model and settings
    and serves every eval that asks for it: one command loads a local model once."""
    token = _kept.set({})
    try:
        yield
    finally:
        _kept.reset(token)


def connect(model: str, base_url: str | None, opts: RunOptions, concurrency: int | None, flag: str = "") -> Backend:
    """The backend for `model`; a configuration problem (no key, unknown provider) as a one-line error."""
    kept, key = _kept.get(), (model, base_url, concurrency)
    if kept is not None and key in kept:
        return kept[key]
    try:
        backend = get_backend(model, BackendOptions(
            base_url=base_url, timeout=opts.timeout, max_reply_bytes=opts.max_reply_bytes,
            max_connections=concurrency or RunnerOptions().max_concurrency, concurrency=concurrency))
    except FatalError as exc:
        raise EvalkitError(flag + exc.reason) from None
    if hasattr(backend, "streaming"):
        backend.streaming = opts.stream
    if kept is not None and backend.reusable:
        kept[key] = backend
    return backend


def runner_options(opts: RunOptions, quiet: bool | None = None) -> RunnerOptions:
    return RunnerOptions(concurrency=opts.concurrency, max_retries=opts.max_retries, timeout=opts.timeout,
                         idle_timeout=opts.idle_timeout, max_retry_after=opts.max_retry_after, max_cost=opts.max_cost,
                         quiet=opts.quiet if quiet is None else quiet)


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
        _keep_live_batches(path, opts.base_url)
    run = LoggedRun(path, _header(plan, backend, grading), fresh=opts.fresh, keep_truncated=not opts.retry_truncated)
    try:
        _same_budget(run, backend.reasoning_budget(plan.sampling))
        _same_scale(run, opts.scale)
        if not opts.batch and run.batches:
            _no_live_batches(run, [uid for _, _, uid in plan.units() if uid not in run.done], opts.base_url)
        return _execute(plan, backend, run, grading)
    finally:
        run.close()


def _same_budget(run: LoggedRun, budget: int) -> None:
    """A resumed log's answers hold for this run's reasoning budget: a smaller one than they were
    made with is another run (an answer may have needed more); a larger one keeps them, and the
    truncated ones are sent again with --retry-truncated."""
    before = (run.previous_header or {}).get("reasoning_budget", 0)
    if not run.done or before == budget:
        return
    if budget < before:
        raise EvalkitError(f"{run.path}: its {len(run.done)} samples were answered with a reasoning budget of "
                           f"{before:,} tokens and this command allows {budget:,}; a smaller budget is another run: "
                           "pass --fresh, or another --log-dir")
    truncated = sum(1 for r in run.done.values() if r.truncated)
    warn(f"{run.path}: resuming {len(run.done)} samples answered with a reasoning budget of {before:,} tokens "
         f"(now {budget:,}); {truncated} truncated ones are sent again only with --retry-truncated")


def _same_scale(run: LoggedRun, scale: float | None) -> None:
    """The header is written once: a resumed log keeps the scale it recorded, so another is refused."""
    before = (run.previous_header or {}).get("scale")
    if run.previous_header is not None and scale is not None and before != scale:
        raise EvalkitError(f"{run.path}: this log recorded --scale {before}; a resumed run cannot change it "
                           f"to {scale:g}: pass --fresh, or give `evalkit predict --x` the value instead")


def _cancel_command(path, base_url: str | None) -> str:
    """The `evalkit batches` command that cancels a log's batches (at the run's own endpoint)."""
    return f"evalkit batches {path}{f' --base-url {base_url}' if base_url else ''} --cancel"


def _keep_live_batches(path, base_url: str | None) -> None:
    """--fresh would forget batches whose results the log has not recorded yet (running, or done
    and paid for), and send their requests again: refuse, saying how to get out."""
    from evalkit.send.batch import unrecorded
    from evalkit.results.runlog import read_log

    try:
        live = unrecorded(read_log(path).batches) if os.path.exists(path) else 0
    except EvalkitError:
        return                              # not a readable log: --fresh overwrites it
    if live:
        raise EvalkitError(f"--fresh: {path} names {live} batch(es) whose results are not recorded yet (running, "
                           "or finished and paid for): rerun without --fresh to collect them, or cancel them "
                           f"(`{_cancel_command(path, base_url)}`) and move the log away")


def _no_live_batches(run: LoggedRun, todo: list[str], base_url: str | None) -> None:
    """A run without --batch would send again what the log's unrecorded batches hold: refuse."""
    from evalkit.send.batch import unrecorded

    live = unrecorded(run.batches, todo)
    if live:
        raise EvalkitError(f"{run.path} names {live} batch(es) whose results are not recorded yet: rerun with "
                           f"--batch to collect them (`{_cancel_command(run.path, base_url)}` first if you will not "
                           "wait), instead of paying for their requests again")


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


def messages_digest(messages: list) -> str:
    """The prompt hash a log line keeps (`messages_sha256`), by which a resumed run knows it."""
    return hashlib.sha256(json.dumps(messages).encode()).hexdigest()[:16]


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
    estimate = _cost_estimate(plan, pricer, backend) if opts.max_cost is not None else None
    every = progress_every()
    replicas = [connect(opts.model, url, opts, opts.concurrency) for url in opts.replicas]
    for each in (backend, *replicas):
        await _open(each, _status(plan), every)
    ropts = runner_options(opts)
    if ropts.concurrency is None and backend.max_in_flight():
        ropts.concurrency = backend.max_in_flight()      # no queue hidden inside the backend
    channel = Channel(backend, ropts, cache=cache, pricer=pricer, estimate=estimate, replicas=replicas)
    services = {"unsafe_exec": opts.unsafe_exec}
    if grading is not None:
        services["grader"] = grading.open(cache, opts)
        await _open(grading.channel.backend, _status(plan), every)
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
    from evalkit.send.batch import BatchOptions, BatchRun, Journal
    from evalkit.send.limiter import Budget

    opts = plan.opts
    cache = None if opts.no_cache else Cache(cache_dir() / "completions.sqlite")
    pricer = pricer_for(opts.model, "batch")
    budget = Budget(opts.max_cost, _cost_estimate(plan, pricer, backend) if opts.max_cost is not None else None)
    services = {"unsafe_exec": opts.unsafe_exec}
    grader = await _batch_grader(plan, grading, cache, services) if grading is not None else None
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


async def _batch_grader(plan: RunPlan, grading: "Grading", cache, services: dict):
    """The grader as a batch phase when its endpoint has a Batch API, else one request at a time."""
    from evalkit.send.batch import BatchGrader

    backend = connect(grading.model, grading.base_url, plan.opts, None, flag="--grader-model: ")
    api = backend.batch_api()
    if api is None:
        _status(plan)(f"the grader {grading.model} has no Batch API: its requests go one by one")
        services["grader"] = grading.open(cache, plan.opts)
        await grading.channel.backend.open(_status(plan))
        return None
    grader = BatchGrader(grading.spec, api, pricer_for(grading.model, "batch"))
    services["grader"] = grader
    return grader


def _status(plan: RunPlan):
    """How a backend says what it is doing before the first reply (a line on stderr, unless --quiet).
    The stream is bound now: converting a GGUF silences the converter's own bar by swapping
    sys.stderr in its thread, and these lines must still get out meanwhile."""
    err = sys.stderr

    def say(message: str) -> None:
        if not plan.opts.quiet:
            print(f"evalkit: {plan.spec.name}: {message}", file=err, flush=True)
    return say


async def _open(backend: Backend, say, every: float) -> None:
    """Get the backend ready (a local model converts and loads: minutes on a busy machine), saying
    every `every` seconds that it still is, so neither a terminal nor a CI log goes quiet."""
    started = time.monotonic()
    task = asyncio.ensure_future(backend.open(say))
    while not task.done():
        await asyncio.wait({task}, timeout=every)
        if not task.done():
            say(f"{backend.model}: still getting ready, {time.monotonic() - started:.0f}s so far")
    task.result()


def wire_for(model: str):
    """How requests to "provider/name" are spelled, without connecting (dry runs need no key);
    the plain wire for anything that is not a preset."""
    from evalkit.backends.openai_wire import Wire
    from evalkit.backends.presets import registry_providers

    provider, _, name = model.partition("/")
    preset = registry_providers().get(provider)
    return Wire.for_preset(preset, name) if preset is not None else Wire()


def _cost_estimate(plan: RunPlan, pricer: Pricer, backend: Backend):
    if not pricer.known:
        raise EvalkitError(f"--max-cost: no price is known for {plan.opts.model} (the registry records none for it; "
                           "see `evalkit providers`)")
    counter = TokenCounter(plan.opts.model)
    worst = worst_case_tokens(plan.spec) + backend.reasoning_budget(plan.sampling)
    return lambda req: pricer.cost(counter.count_messages(req.messages), worst)


def check_capabilities(plan: RunPlan, backend: Backend) -> None:
    """Refuse, before the first request, a run the endpoint cannot serve."""
    caps, name = backend.capabilities, plan.opts.model
    if plan.options is not None and not caps.option_probs:
        raise EvalkitError(f"{plan.spec.name}: {name} cannot answer by option probability (--answer-by logprob): "
                           "it returns no log-probabilities")
    if plan.sampling.top_logprobs and not caps.logprobs:
        raise EvalkitError(f"{plan.spec.name}: {name} returns no log-probabilities, which this run asks for "
                           "(--logprobs, or a scorer that needs them)")
    _check_reasoning(plan, caps, name, backend.not_sent(plan.sampling))
    if plan.spec.prompt.system and not caps.system_messages:
        raise EvalkitError(f"{plan.spec.name}: {name} takes no system message, and the eval has one (prompt.system)")
    if plan.spec.prompt.vision and "images" in plan.spec.dataset.fields and not caps.images:
        raise EvalkitError(f"{plan.spec.name}: {name} reads no images; pass --no-vision to send IMAGE: tags instead")


def _check_reasoning(plan: RunPlan, caps, name: str, not_sent: frozenset) -> None:
    """--reasoning-effort where the model has that control; no explicit flag the model refuses."""
    effort = plan.sampling.reasoning_effort
    if effort is not None and effort not in caps.effort_levels:
        takes = f"it takes {', '.join(caps.effort_levels)}" if caps.effort_levels else \
            "its provider documents no such control for it (see `evalkit providers --json`; --extra-body sends any field)"
        raise EvalkitError(f"{plan.spec.name}: --reasoning-effort {effort}: {name} has no such level: {takes}")
    if plan.opts.temperature is not None and "temperature" in not_sent:
        why = "refuses any temperature but its default" if "temperature" in caps.refused else \
            "takes no temperature while it thinks (--reasoning-effort none turns thinking off)"
        raise EvalkitError(f"{plan.spec.name}: --temperature: {name} {why}, so evalkit does not send one; "
                           "leave the flag out")


class Recorder:
    """The sink the runner calls with each outcome: cut the reply at the run's stops (the one place
    a reply becomes the answer scored), score it, write its line, keep its result."""

    def __init__(self, plan: RunPlan, run: LoggedRun, results: dict, samples: dict[str, Sample], services: dict):
        self.plan, self.run, self.results, self.samples, self.services = plan, run, results, samples, services
        self.scorer = plan.spec.scorer
        self.missing_logprobs = 0
        self.cpu_slots = asyncio.Semaphore(os.cpu_count() or 2)   # CPU-bound scoring: one per core

    async def __call__(self, req: Request, out: Outcome) -> bool:
        smp = self.samples[req.key]
        reply = self._answer(out)
        result = self._result(req, out, smp, reply)
        if result.error is None and result.truncated is None:
            try:
                self._fill(result, await self._score(ScoreInput(smp, reply.completion, req.messages,
                                                                self.plan.spec.scoring, self.services)))
            except MissingLogprobs as exc:
                self._no_logprobs(exc)
                result.error = str(exc)
            except ScoringError as exc:
                result.error = str(exc)
            except Exception as exc:  # a reply must never stop the run: it is this sample's error
                result.error = f"scorer {self.scorer.name} failed on this reply: {type(exc).__name__}: {exc}"[:500]
        self.run.record(result)
        self.results[req.key] = result
        return result.error is None

    def _no_logprobs(self, exc: MissingLogprobs) -> None:
        """Three replies in a row without the log-probabilities asked for, and none with: the
        endpoint does not return them (it ignores the request), so the rest would fail alike."""
        self.missing_logprobs += 1
        if self.missing_logprobs >= 3 and not any(r.error is None for r in self.results.values()):
            raise FatalError(f"{exc} (the endpoint ignores requests for log-probabilities)")

    async def _score(self, inp: ScoreInput):
        if self.scorer.work == "async":
            return await self.scorer.run(inp)
        if self.scorer.work == "thread":
            async with self.cpu_slots:
                return await asyncio.to_thread(self.scorer.run, inp)
        return self.scorer.run(inp)

    def _answer(self, out: Outcome) -> Separated | None:
        """The reply's answer alone: its thinking taken out, then cut at the run's first stop (what
        the scorer and the log's `completion` see)."""
        if out.completion is None:
            return None
        reply = separate(out.completion, self.plan.opts.think_tags)
        answer = at_stop(reply.completion, self.plan.sampling.stop)
        # The raw reply is kept when it differs from the answer, its thinking only with --log-reasoning
        raw = out.completion.text if self.plan.opts.log_reasoning or reply.raw is None else reply.completion.text
        return Separated(answer, raw if raw != answer.text else None, reply.truncated)

    def _result(self, req: Request, out: Outcome, smp: Sample, reply: Separated | None) -> SampleResult:
        plan = self.plan
        model = _model_seconds(out)
        r = SampleResult(id=req.key, group=smp.group, target=plan.target_of(smp),
                         sample_id=smp.id if plan.per_item > 1 else None,
                         messages_sha256=messages_digest(req.messages),
                         messages=req.messages if plan.opts.log_prompts else None, attempts=out.attempts,
                         model_s=round(model, 4), queue_s=round(out.queue_s + out.latency - model, 4), cached=out.cached,
                         cost_usd=out.cost, error=out.error)
        if reply is not None:
            fields = reply.completion.to_fields()
            r.completion, r.finish_reason, r.usage = fields["completion"], fields["finish_reason"], fields["usage"]
            r.top_logprobs, r.raw_completion = fields.get("top_logprobs"), reply.raw
            thinking = reply.completion.reasoning
            if thinking is not None:
                r.reasoning_chars = len(thinking)
                r.reasoning = thinking if plan.opts.log_reasoning else None
            if reply.truncated and r.error is None:
                r.truncated, r.score = reply.truncated, 0.0   # no answer was given: wrong, and said so
            elif not reply.completion.text.strip():
                r.blank = True                                # counted apart among the unread (evalkit.results.unread)
        return r

    @staticmethod
    def _fill(r: SampleResult, sc) -> None:
        r.extracted, r.parsed, r.score, r.extras = sc.extracted, sc.parsed, sc.value, sc.extras or None
        r.option_probs, r.missing_mass, r.grader = sc.option_probs, sc.missing_mass, sc.detail


def _model_seconds(out: Outcome) -> float:
    """The model's own time for an outcome. The runner times a request from the moment it got a
    slot; a backend that queues requests internally (a local model running one batch after
    another) says how long the model actually worked on it, and the wait before counts as queue."""
    reported = out.completion.model_s if out.completion is not None else None
    return min(out.latency, reported) if reported is not None else out.latency


def summarise(plan: RunPlan, results: list[SampleResult], n: int, stats: RunStats, status: str, resumed: int,
              duration: float, backend: Backend, grading: "Grading | None", log: str) -> Summary:
    spec, opts = plan.spec, plan.opts
    pricer = pricer_for(opts.model, "batch") if opts.batch else backend.pricer()
    if status == "complete":
        status = {"interrupted": "interrupted", "max_cost": "stopped: max_cost"}.get(stats.stopped or "", "complete")

    def notes(part: MetricPart) -> list[str]:
        note = unread_note(part.unparsed, part.answered, part.example, spec.scoring.model_dump())
        out = [note] if note else []
        if plan.part is not None:
            out.append(f"shard {plan.part.shard}: {len(plan.samples)} of the {plan.part.selected} samples; "
                       "`evalkit merge` the shards' logs for the whole run")
        return out

    def cost(usage: Usage) -> Cost | None:
        return Cost(this_run=round(stats.spent, 10), all_samples=pricer.cost(
            usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)) if pricer.known else None

    return build_summary(
        results, eval=spec.name, model=opts.model, metrics=spec.metrics, n=n, status=status, seed=opts.seed,
        per_item=plan.per_item, method=spec.scoring.method, notes=notes, cost=cost, endpoint=backend.endpoint,
        excluded=len(plan.identity.get("exclude", ())),
        requests=Requests(sent=stats.sent, retries=stats.retries, rate_limited=stats.rate_limited,
                          cached=stats.cached, resumed_samples=resumed, peak_concurrency=stats.peak_limit),
        duration_s=round(duration, 3),
        backend={**backend.describe(), **({"replicas": stats.replicas} if stats.replicas else {})} or None,
        grader=grading.summary(results) if grading else None, log=log, batches=stats.batches)


@dataclass
class Grading:
    """A model-graded eval's grader: its rubric, model and channel (own limit, retries, cache entries)."""

    spec: object
    model: str
    base_url: str | None
    identity: dict
    channel: Channel | None = None

    @classmethod
    def for_spec(cls, spec: EvalSpec, opts: RunOptions) -> "Grading":
        from evalkit.specs.graders import grader_for

        grader = grader_for(spec)
        model = opts.grader_model
        if model is None:
            model = opts.model
            warn(f"{spec.name}: no --grader-model given, so {model} grades its own replies")
        digest = hashlib.sha256(json.dumps(grader.model_dump(exclude={"source_file"}), sort_keys=True).encode())
        return cls(grader, model, opts.grader_base_url or opts.base_url,
                   {"model": model, "spec": grader.name, "prompt_sha256": digest.hexdigest()[:16]})

    def open(self, cache, opts: RunOptions) -> "Grading":
        backend = connect(self.model, self.base_url, opts, None, flag="--grader-model: ")
        self.channel = Channel(backend, runner_options(opts, quiet=True), cache=cache, pricer=backend.pricer())
        self.think_tags = opts.think_tags
        return self

    async def complete(self, messages: list[dict]) -> str:
        out = await self.channel.complete(Request(key="grader", messages=messages,
                                                  sampling=Sampling(temperature=0.0, max_tokens=self.spec.max_tokens)))
        if out is None or out.error:
            raise ScoringError(f"grader: {out.error if out else 'stopped by --max-cost'}")
        reply = separate(out.completion, self.think_tags)   # a reasoning grader's thinking is not its verdict
        if reply.truncated:
            raise ScoringError(f"grader: {reply.truncated}")
        return reply.completion.text

    def summary(self, results: list[SampleResult]) -> dict:
        return {**self.identity, "invalid": sum(1 for r in results if r.error is None and r.parsed is False),
                "requests": self.channel.summary() if self.channel else None}

    async def aclose(self) -> None:
        if self.channel is not None:
            await self.channel.aclose()


def dry_run(spec: EvalSpec, opts: RunOptions) -> dict:
    """What a run would send, before sending anything: samples, prompt tokens, worst-case cost."""
    plan = make_plan(spec, opts, "dry-run")
    counter = TokenCounter(opts.model)
    prompt_tokens = sum(counter.count_messages(plan.request(s, j, uid).messages) for s, j, uid in plan.units())
    units = len(plan.samples) * plan.per_item
    max_out = plan.spec.generation.max_tokens
    budget = wire_for(opts.model).budget(plan.sampling) if max_out else 0
    pricer = pricer_for(opts.model, "batch" if opts.batch else "standard")   # the provider's own table
    most = units * (max_out + budget) if max_out else None
    return {
        "eval": plan.spec.name, "model": opts.model, "endpoint": endpoint_of(opts.model, opts.base_url),
        "samples": units, "prompt_tokens": prompt_tokens,
        "tokenizer": counter.name, "max_completion_tokens": most, "max_answer_tokens": units * max_out if max_out else None,
        "reasoning_budget_per_sample": budget,
        "unknown": ["how many tokens the model spends reasoning (between none and the budget)"] * bool(budget)
                   + ["which prompt tokens the provider's cache serves (all priced as uncached)"],
        "estimated_cost_usd": {"prompt": pricer.cost(prompt_tokens, 0),
                               "no_reasoning": pricer.cost(prompt_tokens, units * max_out) if max_out else None,
                               "worst_case": pricer.cost(prompt_tokens, most) if max_out else None},
        "prices": ({"input_per_million": pricer.input_per_m, "output_per_million": pricer.output_per_m,
                    "tier": pricer.tier, "source": pricer.source, "recorded": pricer.recorded} if pricer.known else None),
    }
