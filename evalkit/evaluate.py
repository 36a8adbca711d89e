"""One eval, start to finish: the flow of DESIGN.md in one readable function.

    spec -> samples -> requests -> (runner) -> completions -> scores -> log -> metrics -> summary

Each step calls the module that owns it; nothing here is concurrent except the call into the
runner, and the runner never sees scores. The summary returned is the `--json` contract: eval,
model, n, metrics with 95% intervals, per-group metrics, usage, requests sent, log path.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import platform
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import __version__
from .backends import FatalError, Request, Sampling, get_backend
from .cache import Cache
from .costs import Pricer, TokenCounter, price_table
from .datasets import Sample, load_samples
from .places import cache_dir, default_log_dir
from .errors import EvalkitError
from .logs import RunLog, log_path
from .metrics import calibration as calibrate
from .metrics import pass_at_k, summarize
from .prompts import FewShotPool, build_messages
from .runner import Outcome, RunnerOptions, run_requests
from .scoring import score
from .spec import EvalSpec


@dataclass
class RunOptions:
    model: str
    base_url: str | None = None
    limit: int | None = None
    seed: int = 0
    concurrency: int | None = None      # None: adaptive (AIMD)
    max_retries: int = 5
    timeout: float = 120.0
    temperature: float | None = None
    max_tokens: int | None = None
    shots: int | None = None
    log_dir: Path | None = None
    fresh: bool = False
    log_prompts: bool = False
    quiet: bool = False
    no_cache: bool = False
    max_cost: float | None = None
    samples: int | None = None          # completions per item, overriding generation.n
    logprobs: bool = False              # ask for the answer token's top log-probabilities
    cot: bool | None = None             # chain of thought on/off, overriding the spec
    extract: str | None = None          # answer extraction (answer_line or a regex), overriding the spec
    exclude: Path | None = None         # a file of sample ids to leave out (e.g. contaminated ones)
    answer_by: str | None = None        # "text" or "logprob": how a multiple-choice answer is read
    no_vision: bool = False             # items' images as IMAGE: tags instead of image parts
    grader_model: str | None = None     # model-graded evals: the grader (default: --model itself)
    grader_base_url: str | None = None  # its endpoint (default: --base-url)
    unsafe_exec: bool = False           # code evals: run model code unisolated when bubblewrap is unusable


def effective_spec(spec: EvalSpec, opts: RunOptions) -> EvalSpec:
    """The spec with command-line overrides applied (they are part of the run's identity)."""
    gen = spec.generation
    if opts.temperature is not None:
        gen = gen.model_copy(update={"temperature": opts.temperature})
    if opts.max_tokens is not None:
        gen = gen.model_copy(update={"max_tokens": opts.max_tokens})
    if opts.samples is not None:
        gen = gen.model_copy(update={"n": opts.samples})
    prompt = spec.prompt
    if opts.shots is not None:
        if prompt.fewshot is None:
            if opts.shots:
                raise EvalkitError(f"{spec.name}: --shots {opts.shots}: this eval declares no few-shot split (prompt.fewshot)")
        else:
            prompt = prompt.model_copy(update={"fewshot": prompt.fewshot.model_copy(update={"k": opts.shots})})
    if opts.no_vision:
        prompt = prompt.model_copy(update={"vision": False})
    if opts.cot is not None:
        prompt = prompt.model_copy(update={"chain_of_thought": opts.cot})
        if opts.cot and opts.max_tokens is None and (gen.max_tokens or 0) < 1024:
            gen = gen.model_copy(update={"max_tokens": 1024})   # room to reason before the answer
    scoring = spec.scoring
    if opts.answer_by is not None:
        if scoring.method != "letter":
            raise EvalkitError(f"{spec.name}: --answer-by applies to multiple-choice (letter) evals only")
        scoring = scoring.model_copy(update={"answer_by": opts.answer_by})
    if opts.extract is not None:
        from .spec import ScoringSpec

        try:
            scoring = ScoringSpec.model_validate({**scoring.model_dump(), "extract": opts.extract})
        except ValueError as exc:
            raise EvalkitError(f"--extract {opts.extract!r}: {exc.errors()[0]['msg']}") from None
    return spec.model_copy(update={"generation": gen, "prompt": prompt, "scoring": scoring})


def select_samples(spec: EvalSpec, opts: RunOptions) -> list[Sample]:
    samples = load_samples(spec)
    seen: set[str] = set()
    for s in samples:
        if s.id in seen:
            raise EvalkitError(f"{spec.name}: duplicate sample id {s.id!r} in the data; ids must be unique (dataset.fields.id)")
        seen.add(s.id)
    if opts.exclude is not None:
        drop = excluded_ids(opts.exclude)
        samples = [s for s in samples if s.id not in drop]
    random.Random(opts.seed).shuffle(samples)
    return samples[: opts.limit] if opts.limit is not None else samples


@functools.lru_cache(maxsize=8)
def excluded_ids(path: Path) -> frozenset[str]:
    """The ids listed in an --exclude file (read once per run, however often asked)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalkitError(f"--exclude {path}: cannot read ({exc.strerror})") from None
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def fewshot_pool(spec: EvalSpec) -> FewShotPool | None:
    fs = spec.prompt.fewshot
    if not fs or not fs.k:
        return None
    return FewShotPool(load_samples(spec, fs.split), same_split=fs.split == spec.dataset.split)


def connect(model: str, base_url: str | None, timeout: float, concurrency: int | None, flag: str = ""):
    """The backend for `model`; a configuration problem (no key, unknown provider) as a one-line error."""
    try:
        return get_backend(model, base_url=base_url, timeout=timeout,
                           max_connections=concurrency or RunnerOptions().max_concurrency, concurrency=concurrency)
    except FatalError as exc:
        raise EvalkitError(flag + exc.reason) from None


def run_eval(spec: EvalSpec, opts: RunOptions) -> dict:
    spec = effective_spec(spec, opts)
    if spec.scoring.method == "code":      # refuse before asking the model anything
        from .sandbox import require_isolation
        require_isolation(opts.unsafe_exec)
    samples = select_samples(spec, opts)
    pool = fewshot_pool(spec)
    pricer = Pricer.for_model(opts.model)
    if opts.max_cost is not None and not pricer.known:
        raise EvalkitError(f"--max-cost: no price is known for {opts.model} (see evalkit/registry/prices.yaml)")
    backend = connect(opts.model, opts.base_url, opts.timeout, opts.concurrency)

    grading = _grading(spec, opts) if spec.scoring.method == "graded" else None
    gen = spec.generation
    by_option = spec.scoring.answer_by == "logprob"      # one forward pass: the next token's probabilities
    sampling = Sampling(temperature=gen.temperature, max_tokens=None if by_option else gen.max_tokens,
                        top_p=gen.top_p, stop=tuple(gen.stop or ()), seed=opts.seed,
                        top_logprobs=20 if (spec.scoring.logprobs or opts.logprobs) and not by_option else 0)
    options = spec.scoring.labels if by_option else None
    params = {**sampling.as_dict(), "options": options}
    identity = {
        "spec": spec.model_dump(exclude={"source_file", "description"}),
        "model": opts.model, "endpoint": backend.endpoint, "params": params, "limit": opts.limit,
    }
    if opts.exclude is not None:
        identity["exclude"] = sorted(excluded_ids(opts.exclude))
    if grading is not None:
        identity["grader"] = grading.identity
    run_key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    header = {
        "type": "header", "run_key": run_key, "eval": spec.name, "model": opts.model, "endpoint": backend.endpoint,
        "params": params, "seed": opts.seed, "limit": opts.limit, "spec": identity["spec"],
        "excluded": {"file": str(opts.exclude), "count": len(identity["exclude"])} if opts.exclude else None,
        "grader": grading.identity if grading is not None else None,
        "versions": {"evalkit": __version__, "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    log = RunLog(log_path(opts.log_dir or default_log_dir(), spec.name, opts.model, run_key), header, fresh=opts.fresh)
    started = time.monotonic()
    n = spec.generation.n
    wanted = {s.id for s in samples} if n == 1 else {f"{s.id}#{j}" for s in samples for j in range(n)}
    results: dict[str, tuple[str | None, float | None, bool]] = {}
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    calibration: dict[str, tuple[dict, str, float]] = {}   # id -> (option probabilities, answer, missing mass)
    for sid, rec in log.state.done.items():
        if sid in wanted:
            results[sid] = (rec.get("group"), rec.get("score"), rec.get("parsed", True), rec.get("extras"))
            _add_usage(usage, rec.get("usage"))
            if rec.get("option_probs"):
                calibration[sid] = (rec["option_probs"], rec.get("target") or "", rec.get("missing_mass") or 0.0)
    log.state.done.clear()   # what is needed of it is in `results`; the rest would only hold memory
    del wanted
    units = [(smp, j, smp.id if n == 1 else f"{smp.id}#{j}") for smp in samples for j in range(n)]
    resumed = sum(1 for _, _, uid in units if uid in results)
    todo = [u for u in units if u[2] not in results]
    by_key = {uid: (smp, j) for smp, j, uid in todo}
    del units

    def requests():
        for smp, j, uid in todo:
            shots = pool.choose(spec, smp, opts.seed) if pool else []
            yield Request(key=uid, messages=build_messages(spec, smp, shots), options=options,
                          sampling=sampling if n == 1 else replace(sampling, seed=opts.seed + j))

    errored: set[str] = set()
    code_slots = asyncio.Semaphore(os.cpu_count() or 2)   # code runs off the event loop, one per core

    def record(req: Request, out: Outcome, sc) -> None:
        smp, _ = by_key[req.key]
        rec = {"id": req.key, "group": smp.group, "target": smp.answer if spec.scoring.method != "code" else None,
               "messages_sha256": hashlib.sha256(json.dumps(req.messages).encode()).hexdigest()[:16]}
        if n > 1:
            rec["sample_id"] = smp.id
        if opts.log_prompts:
            rec["messages"] = req.messages
        rec.update({"attempts": out.attempts, "latency": round(out.latency, 4), "cached": out.cached})
        if out.cost is not None:
            rec["cost_usd"] = out.cost
        if out.error:
            rec.update({"error": out.error, "score": None})
            errored.add(req.key)
        else:
            rec.update({**out.completion.to_fields(), "extracted": sc.extracted, "parsed": sc.parsed, "score": sc.value})
            if sc.extras:
                rec["extras"] = sc.extras
            if sc.detail is not None:
                rec["grader"] = sc.detail
            if sc.option_probs is not None:
                rec.update({"option_probs": sc.option_probs, "missing_mass": sc.missing_mass})
                calibration[req.key] = (sc.option_probs, smp.answer, sc.missing_mass or 0.0)
            results[req.key] = (smp.group, sc.value, sc.parsed, sc.extras or None)
            _add_usage(usage, out.completion.usage)
        log.write_sample(rec)

    async def score_code_then_record(req: Request, out: Outcome) -> None:
        async with code_slots:
            sc = await asyncio.to_thread(score, spec, by_key[req.key][0], out.completion, opts.unsafe_exec)
        record(req, out, sc)

    async def grade_then_record(req: Request, out: Outcome) -> None:
        from .scoring.graded import GraderError, graded_fields, score_graded

        smp = by_key[req.key][0]
        fields = {**spec.scoring.grader_fields,
                  **graded_fields(smp, req.messages, out.completion.text, spec.scoring.criteria)}
        try:
            sc = await score_graded(grading.spec, spec.scoring.eval_type, fields, grading.complete)
        except GraderError as exc:
            record(req, Outcome(out.completion, f"grader: {exc.reason}", out.attempts, out.latency, out.cached, out.cost), None)
            return
        record(req, out, sc)

    def sink(req: Request, out: Outcome):
        if out.error is None and spec.scoring.method == "code":
            return score_code_then_record(req, out)      # awaited by the runner
        if out.error is None and grading is not None:
            return grade_then_record(req, out)
        record(req, out, None if out.error else score(spec, by_key[req.key][0], out.completion))
        return None

    stats = None
    status = "complete"
    fatal: str | None = None
    cache = None if opts.no_cache or not todo else Cache(cache_dir() / "completions.sqlite")
    estimate = None
    if opts.max_cost is not None:
        counter = TokenCounter(opts.model)
        worst_out = gen.max_tokens or 1024
        estimate = lambda req: pricer.cost(counter.count_messages(req.messages), worst_out)  # noqa: E731
    try:
        if todo:
            runner_opts = RunnerOptions(concurrency=opts.concurrency, max_retries=opts.max_retries, quiet=opts.quiet,
                                        max_cost=opts.max_cost)
            if grading is not None:
                grading.open(cache, runner_opts)
            stats = asyncio.run(_run(backend, requests(), len(todo), sink, runner_opts, spec.name, cache, pricer, estimate,
                                     grading))
            if stats.stopped:
                status = "stopped: " + stats.stopped
        else:
            asyncio.run(backend.aclose())
    except FatalError as exc:
        status, fatal = "failed", exc.reason
    except KeyboardInterrupt:
        status = "interrupted"
    except BaseException:
        status = "failed"
        raise
    finally:
        if cache is not None:
            cache.close()
        ids = [uid for smp in samples for uid in ([smp.id] if n == 1 else (f"{smp.id}#{j}" for j in range(n)))
               if uid in results]
        summary = _summary(spec, opts, backend.endpoint, samples, results, ids, len(errored), stats, resumed,
                           log.path, time.monotonic() - started, status, pricer, usage)
        if hasattr(backend, "describe"):
            summary["backend"] = backend.describe()
        if grading is not None:
            summary["grader"] = {**grading.identity, "invalid": sum(1 for i in ids if not results[i][2]),
                                 "requests": grading.channel.summary() if grading.channel else None}
        cal = [calibration[i] for i in ids if i in calibration]
        if cal:
            summary["calibration"] = calibrate([(probs, answer) for probs, answer, _ in cal])
            summary["calibration"]["mean_missing_mass"] = round(sum(m for _, _, m in cal) / len(cal), 6)
        if todo or not log.state.complete:
            log.write_summary(summary)
        log.close()
    if fatal:
        raise EvalkitError(f"{spec.name}: {fatal} ({len(ids)} finished samples kept in {log.path})")
    return summary


async def _run(backend, requests, total, sink, opts, label, cache, pricer, estimate, grading=None):
    try:
        return await run_requests(backend, requests, total, sink, opts, label, cache=cache, pricer=pricer, estimate=estimate)
    finally:
        await backend.aclose()
        if grading is not None and grading.channel is not None:
            await grading.channel.aclose()


class _Grading:
    """A model-graded eval's grader: its spec, model and channel (own limit, retries, cache entries)."""

    def __init__(self, spec, model: str, base_url: str | None, timeout: float, concurrency: int | None):
        self.spec, self.model, self.base_url = spec, model, base_url
        self.timeout, self.concurrency = timeout, concurrency
        self.channel = None
        self.identity = {"model": model, "spec": spec.name,
                         "prompt_sha256": hashlib.sha256(json.dumps(spec.model_dump(exclude={"source_file"}),
                                                                    sort_keys=True).encode()).hexdigest()[:16]}
        self.sampling = Sampling(temperature=0.0, max_tokens=spec.max_tokens)

    def open(self, cache, runner_opts: RunnerOptions) -> None:
        from .runner import Channel

        backend = connect(self.model, self.base_url, self.timeout, self.concurrency, flag="--grader-model: ")
        self.channel = Channel(backend, RunnerOptions(concurrency=self.concurrency, max_retries=runner_opts.max_retries,
                                                      quiet=True), cache=cache, pricer=Pricer.for_model(self.model))

    async def complete(self, messages: list[dict]) -> str:
        from .scoring.graded import GraderError

        out = await self.channel.complete(Request(key="grader", messages=messages, sampling=self.sampling))
        if out.error:
            raise GraderError(out.error)
        return out.completion.text


def _grading(spec: EvalSpec, opts: RunOptions) -> _Grading:
    from .errors import warn
    from .graders import GraderRegistry

    extra = []
    if spec.source_file:       # the registry the eval file sits in: <root>/graders, or OpenAI Evals' <root>/modelgraded
        for root in Path(spec.source_file).resolve().parents:
            if (root / "graders").is_dir() or (root / "modelgraded").is_dir():
                extra = [root / "graders", root / "modelgraded"]
                break
    grader = GraderRegistry.default(extra=extra).get(spec.scoring.grader)
    if list(grader.input_outputs.items()) != [("input", "completion")]:
        raise EvalkitError(f"{spec.name}: grader {grader.name} grades {len(grader.input_outputs)} inputs at once "
                           f"({', '.join(grader.input_outputs)}); evalkit grades one reply per sample (pairwise: --versus)")
    model = opts.grader_model
    if model is None:
        model = opts.model
        warn(f"{spec.name}: no --grader-model given, so {model} grades its own replies")
    return _Grading(grader, model, opts.grader_base_url or opts.base_url, opts.timeout, None)


def dry_run(spec: EvalSpec, opts: RunOptions) -> dict:
    """What a run would send, before sending anything: samples, prompt tokens, worst-case cost."""
    spec = effective_spec(spec, opts)
    samples = select_samples(spec, opts)
    pool = fewshot_pool(spec)
    counter = TokenCounter(opts.model)
    prompt_tokens = 0
    for s in samples:
        prompt_tokens += counter.count_messages(build_messages(spec, s, pool.choose(spec, s, opts.seed) if pool else []))
    max_out = spec.generation.max_tokens
    pricer = Pricer.for_model(opts.model)
    source = price_table()["source"]
    return {
        "eval": spec.name, "model": opts.model, "samples": len(samples), "prompt_tokens": prompt_tokens,
        "tokenizer": counter.name,
        "max_completion_tokens": len(samples) * max_out if max_out else None,
        "estimated_cost_usd": {
            "prompt": pricer.cost(prompt_tokens, 0),
            "worst_case": pricer.cost(prompt_tokens, len(samples) * max_out) if max_out else None,
        },
        "prices": ({"input_per_million": pricer.input_per_m, "output_per_million": pricer.output_per_m,
                    "source": source["url"], "recorded": source["recorded"]} if pricer.known else None),
    }


def _pass_at_k(spec: EvalSpec, results: dict, ids: list[str]) -> tuple[list, dict[str, list[float]]]:
    """Per problem: (group, pass@1 estimate) records and the other pass@k metrics the spec asks for."""
    per: dict[str, list] = {}
    for uid in ids:
        group, value = results[uid][0], results[uid][1]
        entry = per.setdefault(uid.rsplit("#", 1)[0] if spec.generation.n > 1 else uid, [group, 0, 0])
        entry[1] += value == 1.0
        entry[2] += 1
    records = [(g, c / m) for g, c, m in per.values()]
    extras: dict[str, list[float]] = {}
    for metric in spec.metrics[1:]:
        if metric.startswith("pass@"):
            k = int(metric[5:])
            extras[metric] = [pass_at_k(m, c, k) for _, c, m in per.values() if m >= k]
    return records, extras


def _add_usage(total: dict, usage: dict | None) -> None:
    for k in total:
        total[k] += (usage or {}).get(k, 0)


def _summary(spec, opts, endpoint, samples, results, ids, errors, stats, resumed, path, duration, status, pricer,
             usage) -> dict:
    primary = spec.metrics[0]
    extras: dict[str, list[float]] = {}
    if spec.generation.n > 1 or primary.startswith("pass@"):
        scored, extras = _pass_at_k(spec, results, ids)
    else:
        # a sample without a score (a grader reply naming no valid class) is counted, not averaged
        scored = [(results[i][0], results[i][1]) for i in ids if results[i][1] is not None]
        for i in ids:
            for k, v in (results[i][3] or {}).items():
                extras.setdefault(k, []).append(v)
    notes = [f"{k} not computed: it needs at least {k[5:]} completions per problem (--samples {k[5:]})"
             for k, v in extras.items() if not v]
    metrics = summarize(scored, seed=opts.seed, name=primary, extras={k: v for k, v in extras.items() if v})
    groups = metrics.pop("groups", None)
    return {
        "eval": spec.name,
        "model": opts.model,
        "endpoint": endpoint,
        "incomplete": status != "complete" or len(ids) < len(samples),
        "status": status,
        "primary_metric": primary,
        "excluded": len(excluded_ids(opts.exclude)) if opts.exclude else 0,
        "n": len(samples),
        "scored": len(ids),
        "errors": errors,
        "unparsed": sum(1 for i in ids if not results[i][2]),
        "metrics": metrics,
        "groups": groups,
        "usage": usage,
        "requests": {"sent": stats.sent if stats else 0, "retries": stats.retries if stats else 0,
                     "rate_limited": stats.rate_limited if stats else 0,
                     "cached": stats.cached if stats else 0, "resumed_samples": resumed,
                     "peak_concurrency": stats.peak_limit if stats else 0},
        "cost_usd": {"this_run": round(stats.spent, 10) if stats else 0.0,
                     "all_samples": pricer.cost(usage["prompt_tokens"], usage["completion_tokens"])} if pricer.known else None,
        "seed": opts.seed,
        "notes": notes,
        "duration_s": round(duration, 3),
        "log": str(path),
    }
