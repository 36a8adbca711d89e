"""Plan a run: the spec with the command line applied, the samples, and the requests to send.

    spec + options -> effective spec -> samples (loaded, regrouped, shuffled, limited)
                   -> units (sample x completion j) -> requests (messages, sampling, mode)

Everything that decides a run's results goes into its identity, whose hash names the run log,
so the same command resumes the same log and a changed one starts another; the identity holds
a digest of the selected samples (`data`), so edited data is another run. Nothing here sends
a request or writes a file.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from pydantic import ValidationError

from evalkit.backends.base import Request, Sampling
from evalkit.datasets.load import load_samples
from evalkit.core.sample import Sample
from evalkit.core.errors import EvalkitError
from evalkit.plan.preflight import check_prompts
from evalkit.plan.prompts import FewShotPool, build_messages
from evalkit.specs import stops
from evalkit.plan.shards import Shard, ShardPart, take, unit_id
from evalkit.specs.evals import EvalSpec

MAX_ID_FILE_BYTES = 64 * 1024 * 1024


@dataclass
class RunOptions:
    model: str
    base_url: str | None = None
    limit: int | None = None
    seed: int = 0
    concurrency: int | None = None      # None: adaptive
    max_retries: int = 5
    timeout: float = 1800.0             # total seconds per request attempt, connect and every read included
    idle_timeout: float = 120.0         # seconds without a token (or byte) before an attempt is abandoned
    stream: bool = True                 # stream replies (--no-stream: whole bodies)
    replicas: tuple[str, ...] = ()      # further --base-url values: replicas of the same model
    max_retry_after: float = 600.0      # a longer Retry-After ends the sample with an error
    max_reply_bytes: int = 2 * 1024 * 1024
    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None  # --stop values, () for --no-stop; None: the spec's (evalkit.specs.stops)
    shots: int | None = None
    log_dir: Path | None = None
    log_file: Path | None = None        # the run log at exactly this path (one eval only)
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
    unsafe_exec: bool = False           # run model code without an OS sandbox (explicitly asked for)
    batch: bool = False                 # send through the provider's Batch API (evalkit.send.batch)
    batch_poll: float = 30.0            # seconds between batch status checks
    batch_size: int | None = None       # requests per batch (default: the provider's limit)
    batch_fallback: bool = False        # what batches leave unanswered goes through the per-request API
    shard: Shard | None = None          # run only this slice of the samples (evalkit.plan.shards)
    reasoning_effort: str | None = None     # ask the model to think this hard (its provider's spelling)
    max_reasoning_tokens: int | None = None  # the thinking budget on top of the answer's max_tokens
    extra_body: dict | None = None      # fields merged into every request body (after the spec's)
    log_reasoning: bool = False         # keep the thinking's text in the log (its length is always kept)
    think_tags: tuple | None = None     # inline thinking tags, (open, close) pairs (None: the defaults)
    retry_truncated: bool = False       # a resumed run sends again the samples the limit cut off
    scale: float | None = None          # the model's scale (compute, parameters), recorded for `evalkit predict`


def effective_spec(spec: EvalSpec, opts: RunOptions) -> EvalSpec:
    """The spec with command-line overrides applied (they are part of the run's identity)."""
    gen = spec.generation.model_copy(update={k: v for k, v in (
        ("temperature", opts.temperature), ("max_tokens", opts.max_tokens), ("n", opts.samples)) if v is not None})
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
    gen = gen.model_copy(update={"stop": stops.resolve(gen.stop, prompt, spec.scoring.method, opts.stop)})
    changes = {flag: value for flag, value in (("answer_by", opts.answer_by), ("extract", opts.extract),
                                               ("logprobs", opts.logprobs or None)) if value is not None}
    return spec.model_copy(update={"generation": gen, "prompt": prompt, "scoring": _rescore(spec, changes)})


def _rescore(spec: EvalSpec, changes: dict):
    """The scoring options with command-line changes, validated by the scorer's own model."""
    if not changes:
        return spec.scoring
    model = type(spec.scoring)
    for flag in changes:
        if flag not in model.model_fields:
            raise EvalkitError(f"--{flag.replace('_', '-')}: eval {spec.name} is scored by `{spec.scoring.method}`, "
                               f"which has no {flag} option (it applies to multiple-choice letter evals)")
    try:
        return model.model_validate({**spec.scoring.model_dump(), **changes})
    except ValidationError as exc:
        flag, value = next(iter(changes.items()))
        raise EvalkitError(f"--{flag.replace('_', '-')} {value!r}: {exc.errors()[0]['msg']}") from None


def select_samples(spec: EvalSpec, opts: RunOptions) -> list[Sample]:
    samples = regroup(spec, load_samples(spec))
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


def regroup(spec: EvalSpec, samples: list[Sample]) -> list[Sample]:
    """Samples grouped by the spec's `group_by` field (the format's own group when it names that)."""
    from evalkit.loaders import get_loader

    key = spec.group_by
    if key is None or key == getattr(get_loader(spec.dataset.format), "GROUP", None):
        return samples
    out = []
    for s in samples:
        if key not in s.fields:
            where = f" ({spec.source_file})" if spec.source_file else ""
            raise EvalkitError(f"{spec.name}{where}: group_by: sample {s.id} has no field {key!r} "
                               f"(fields: {', '.join(sorted(s.fields)) or 'none'})")
        out.append(replace(s, group=str(s.fields[key])))
    return out


@lru_cache(maxsize=8)
def excluded_ids(path: Path) -> frozenset[str]:
    """The ids listed in an --exclude file: a regular UTF-8 text file of at most 64 MiB."""
    try:
        if not Path(path).is_file():
            raise EvalkitError(f"--exclude {path}: not a regular file")
        if Path(path).stat().st_size > MAX_ID_FILE_BYTES:
            raise EvalkitError(f"--exclude {path}: larger than {MAX_ID_FILE_BYTES // 2**20} MiB; an id list is one id a line")
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise EvalkitError(f"--exclude {path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise EvalkitError(f"--exclude {path}: cannot read ({exc.strerror})") from None
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def fewshot_pool(spec: EvalSpec) -> FewShotPool | None:
    fs = spec.prompt.fewshot
    if not fs or not fs.k:
        return None
    return FewShotPool(regroup(spec, load_samples(spec, fs.split)), same_split=fs.split == spec.dataset.split)


@dataclass
class RunPlan:
    """What a run will send: the effective spec, the samples, the sampling and the identity."""

    spec: EvalSpec
    opts: RunOptions
    samples: list[Sample]
    sampling: Sampling
    options: str | None                       # answer by option probability over these labels
    pool: FewShotPool | None
    identity: dict = field(default_factory=dict)
    part: ShardPart | None = None             # with --shard: what this shard took from the whole selection

    def target_of(self, sample: Sample) -> str | None:
        """What a sample's log line records as its target (code evals: none, the tests are the target)."""
        return sample.answer if self.spec.scoring.method != "code" else None

    @property
    def per_item(self) -> int:
        return self.spec.generation.n

    @property
    def run_key(self) -> str:
        return hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()).hexdigest()

    @property
    def unsharded_key(self) -> str:
        """The run key of the same command without --shard: the key of the shards' merged log."""
        whole = {k: v for k, v in self.identity.items() if k != "shard"}
        return hashlib.sha256(json.dumps(whole, sort_keys=True).encode()).hexdigest()

    def units(self) -> Iterator[tuple[Sample, int, str]]:
        """(sample, completion index, unit id) in sample order. A data format may give completion j
        its own rendering of the item (`variant(sample, j)` in its loader: GPQA's repeats each
        shuffle the options anew); the request, target and score of that unit are the variant's."""
        from evalkit.loaders import get_loader

        n = self.per_item
        vary = getattr(get_loader(self.spec.dataset.format), "variant", None)
        for s in self.samples:
            for j in range(n):
                yield (vary(s, j) if vary else s), j, unit_id(s.id, j, n)

    def request(self, sample: Sample, j: int, uid: str) -> Request:
        shots = self.pool.choose(self.spec, sample, self.opts.seed) if self.pool else []
        sampling = self.sampling if self.per_item == 1 or self.sampling.seed is None else \
            replace(self.sampling, seed=self.sampling.seed + j)
        return Request(key=uid, messages=build_messages(self.spec, sample, shots), sampling=sampling,
                       options=self.options)


def make_plan(spec: EvalSpec, opts: RunOptions, endpoint: str, extra_identity: dict | None = None) -> RunPlan:
    spec = effective_spec(spec, opts)
    options, top = spec.scoring.wants()
    gen = spec.generation
    sampling = Sampling(temperature=gen.temperature, max_tokens=None if options else gen.max_tokens,
                        top_p=gen.top_p, stop=tuple(gen.stop or ()), seed=opts.seed if gen.send_seed else None,
                        top_logprobs=top, reasoning_effort=opts.reasoning_effort,
                        max_reasoning_tokens=opts.max_reasoning_tokens, extra_body=extra_body(gen.extra_body, opts))
    plan = RunPlan(spec, opts, select_samples(spec, opts), sampling, options, fewshot_pool(spec))
    # The reasoning budget is left out of the identity: a resumed run with a larger one keeps what
    # was answered and (with --retry-truncated) sends again only what the limit cut off.
    kept = {k: v for k, v in sampling.as_dict().items() if k != "max_reasoning_tokens"}
    plan.identity = {"spec": _spec_identity(spec), "model": opts.model, "endpoint": endpoint, "sampling": kept,
                     "options": options, "limit": opts.limit, "seed": opts.seed, "data": data_digest(plan.samples),
                     **(extra_identity or {})}
    if opts.think_tags is not None:     # how replies are read: a different answer is a different run
        plan.identity["think_tags"] = [list(pair) for pair in opts.think_tags]
    if opts.exclude is not None:
        plan.identity["exclude"] = sorted(excluded_ids(opts.exclude))
    if opts.shard is not None:          # only a sharded run's key changes: unsharded logs resume as before
        plan.samples, plan.part = take(plan.samples, opts.shard)
        plan.identity["shard"] = str(opts.shard)
    check_prompts(plan)                 # the checks `validate` makes too (evalkit.plan.preflight)
    return plan


def data_digest(samples: list[Sample]) -> str:
    """A hash of the samples a run selected (ids, questions, options, answers, groups, other
    fields), in order: edited data, or another version under EVALKIT_DATA_DIR, is another run."""
    h = hashlib.sha256()
    for s in samples:
        h.update(json.dumps([s.id, s.question, s.answer, s.choices, s.group, s.fields], sort_keys=True,
                            default=repr).encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest()[:16]


def extra_body(spec_fields: dict | None, opts: RunOptions) -> str | None:
    """The spec's `generation.extra_body`, then `--extra-body` over it, as canonical JSON text."""
    from evalkit.backends.openai_wire import merge_into

    if not spec_fields and not opts.extra_body:
        return None
    merged = merge_into(json.loads(json.dumps(spec_fields or {})), opts.extra_body or {})
    return json.dumps(merged, sort_keys=True, separators=(",", ":"))


def _spec_identity(spec: EvalSpec) -> dict:
    """The spec as it names a run; fields added later are left out while unset, so a run that
    uses none of them keeps the identity (and the log) it had."""
    out = spec.model_dump(exclude={"source_file", "description"}, mode="json")
    if out["generation"].get("extra_body") is None:
        out["generation"].pop("extra_body", None)
    if out["dataset"].get("answer_is") is None:
        out["dataset"].pop("answer_is", None)
    return out


def worst_case_tokens(spec: EvalSpec) -> int:
    """Completion tokens a request may use at most, for budgets (1,024 when the spec sets none)."""
    return spec.generation.max_tokens or 1024


def check_finite(name: str, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise EvalkitError(f"{name} {value}: give a finite number")
