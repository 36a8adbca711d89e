"""A model-graded run's grader: its backend, spec and cache, made once per run and handed to the
scorer; with --batch, the grader's requests go through the Batch API as well."""

from __future__ import annotations

from evalkit.specs.graders import GraderSpec

import hashlib
import json
from dataclasses import dataclass
from evalkit.backends import Request, Sampling
from evalkit.core.errors import warn
from evalkit.plan.run_plan import RunOptions, RunPlan
from evalkit.backends.presets import pricer_for
from evalkit.results.records import SampleResult
from evalkit.send.runner import Channel
from evalkit.backends.thinking import separate
from evalkit.scoring import ScoringError
from evalkit.specs.evals import EvalSpec
from evalkit.runs.connect import connect, runner_options, status_line


async def batch_grader(plan: RunPlan, grading: "Grading", cache, services: dict):
    """The grader as a batch phase when its endpoint has a Batch API, else one request at a time."""
    from evalkit.send.batch import BatchGrader

    backend = connect(grading.model, grading.base_url, plan.opts, None, flag="--grader-model: ")
    api = backend.batch_api()
    if api is None:
        status_line(plan)(f"the grader {grading.model} has no Batch API: its requests go one by one")
        services["grader"] = grading.open(cache, plan.opts)
        await grading.live().backend.open(status_line(plan))
        return None
    grader = BatchGrader(grading.spec, api, pricer_for(grading.model, "batch"))
    services["grader"] = grader
    return grader


@dataclass
class Grading:
    """A model-graded eval's grader: its rubric, model and channel (own limit, retries, cache entries)."""

    spec: GraderSpec
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

    def live(self) -> Channel:
        assert self.channel is not None, "Grading.open() comes first"
        return self.channel

    async def complete(self, messages: list[dict]) -> str:
        out = await self.live().complete(Request(key="grader", messages=messages,
                                                  sampling=Sampling(temperature=0.0, max_tokens=self.spec.max_tokens)))
        if out is None or out.error:
            raise ScoringError(f"grader: {out.error if out else 'stopped by --max-cost'}")
        assert out.completion is not None              # an outcome without an error has its reply
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
