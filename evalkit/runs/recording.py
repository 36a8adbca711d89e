"""Completions -> sample records -> the run's summary: what a run writes for each sample it finishes,
and the summary computed from them (a resumed or merged run's the same way)."""

from __future__ import annotations

from evalkit.core.plugins import replaced_notes
from evalkit.results.records import Cost, MetricPart, Requests, Usage
from evalkit.results.summary import build_summary

import asyncio
import hashlib
import json
import os
from evalkit.backends import Backend, FatalError, Request
from evalkit.core.sample import Sample
from evalkit.results.runlog import LoggedRun
from evalkit.plan.run_plan import RunPlan
from evalkit.backends.presets import pricer_for
from evalkit.results.records import SampleResult, Summary
from evalkit.send.runner_types import Outcome, RunStats
from evalkit.backends.thinking import Separated, separate
from evalkit.scoring import MissingLogprobs, ScoreInput, ScoringError
from evalkit.specs.stops import at_stop
from evalkit.results.unread import unread_note
from evalkit.runs.grading import Grading


def messages_digest(messages: list) -> str:
    """The prompt hash a log line keeps (`messages_sha256`), by which a resumed run knows it."""
    return hashlib.sha256(json.dumps(messages).encode()).hexdigest()[:16]


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
            assert reply is not None                   # a result without an error had a reply
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
        out += replaced_notes(plugin_code_for(plan))
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


def plugin_code_for(plan: RunPlan) -> dict:
    """The plug-in code a run's scorer, loader and backend come from (none: {})."""
    from evalkit.core.plugins import plugin_code

    return plugin_code(plan.spec.scoring.method, plan.spec.dataset.format, plan.opts.model.partition("/")[0])
