"""Pairwise preference: `evalkit run EVAL --model A --versus B`.

Both models answer every sample of the eval (two ordinary runs, each with its own log, cache and
resume), then a grader model sees each request with the two replies and picks the better one
(registry/graders/pairwise.yaml: "1", "2" or "tie"). The judgements are a run of their
own: a `LoggedRun` with one `SampleResult` per sample, resumed like any other.

**Order.** Which model's reply is shown first is decided per sample by a seeded shuffle of a
balanced list (half A-first, half B-first), so a grader that always prefers one position gives
each model exactly as many wins from it and its bias cancels (to 0.5 for an even sample count).
The log records the order, and the summary reports how often the grader picked the first-shown
reply, so position bias is visible rather than hidden.

**Score.** Per sample, A scores 1 for a win, 0.5 for a tie, 0 for a loss; the win rate of A is the
mean with a bootstrap 95% interval. A grader reply naming no valid choice is invalid: logged and
counted, left out of the rate. Samples either model failed on (errors) are left out and counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from dataclasses import replace
from pathlib import Path

from evalkit.backends import FatalError, Request, Sampling
from evalkit.send.cache import Cache
from evalkit.core.errors import EvalkitError, warn
from evalkit.specs.graders import GraderRegistry, GraderSpec, parse_choice
from evalkit.results.runlog import LoggedRun, log_path, read_log
from evalkit.runs.connect import connect, runner_options
from evalkit.runs.pipeline import run_eval
from evalkit.core.places import cache_dir, default_log_dir
from evalkit.plan.run_plan import RunOptions, make_plan
from evalkit.results.records import SampleResult, Stat, Summary, score_metrics
from evalkit.send.runner import Channel, run_requests
from evalkit.send.runner_types import Outcome, RunStats
from evalkit.backends.thinking import separate
from evalkit.scoring.graded import prompt_text
from evalkit.specs.evals import EvalSpec


class PairwiseSummary(Summary):
    kind: str = "pairwise"
    versus: str
    wins: int
    losses: int
    ties: int
    invalid: int
    skipped_samples: int = 0
    first_shown_chosen: float | None = None
    a_first: int = 0
    logs: dict[str, str]


def balanced_order(ids: list[str], seed: int) -> dict[str, bool]:
    """id -> True when A's reply is shown first; exactly half (rounded down) of the ids are."""
    flags = [i < len(ids) // 2 for i in range(len(ids))]
    random.Random(f"pairwise:{seed}").shuffle(flags)
    return dict(zip(ids, flags))


def run_pairwise(spec: EvalSpec, opts: RunOptions, versus: str, grader_name: str = "pairwise") -> PairwiseSummary:
    if versus == opts.model:
        raise EvalkitError(f"--versus {versus}: compare two different models")
    grader = GraderRegistry.default().get(grader_name)
    if set(grader.choices) not in ({"1", "2", "tie"}, {"1", "2"}):
        raise EvalkitError(f"grader {grader.name}: a pairwise grader answers 1, 2 (and optionally tie)")
    run_a, run_b = run_eval(spec, opts), run_eval(spec, replace(opts, model=versus))
    if "interrupted" in (run_a.status, run_b.status):
        raise KeyboardInterrupt
    model = opts.grader_model or opts.model
    if opts.grader_model is None:
        warn(f"no --grader-model given, so {model} (one of the two compared models) judges the pair")
    judge = _Judging(spec, opts, versus, grader, model, run_a, run_b)
    run = LoggedRun(judge.path(), judge.header(), fresh=opts.fresh)
    try:
        return judge.execute(run)
    finally:
        run.close()


class _Judging:
    """The judgement run: which pairs to judge, the grader's requests, and their results."""

    def __init__(self, spec, opts, versus, grader: GraderSpec, model: str, run_a: Summary, run_b: Summary):
        self.opts, self.versus, self.grader, self.model = opts, versus, grader, model
        self.logs = {"a": run_a.log, "b": run_b.log}
        self.plan = make_plan(spec, opts, "pairwise")
        sa, sb = read_log(run_a.log).samples, read_log(run_b.log).samples
        self.samples = {s.id: s for s in self.plan.samples}
        self.replies = {i: (sa[i].completion or "", sb[i].completion or "") for i in self.samples
                        if i in sa and i in sb and sa[i].error is None and sb[i].error is None}
        # A reply the token limit cut off is no answer: it loses its pair without a judge (both: a tie)
        self.cut = {i: ("A" if sa[i].truncated else "") + ("B" if sb[i].truncated else "") for i in self.replies
                    if sa[i].truncated or sb[i].truncated}
        self.skipped = len(self.samples) - len(self.replies)
        self.order = balanced_order(list(self.replies), opts.seed)
        identity = {"eval": spec.name, "a": opts.model, "b": versus, "grader": model,
                    "grader_spec": grader.model_dump(exclude={"source_file"}), "seed": opts.seed, "limit": opts.limit,
                    "a_log": run_a.log, "b_log": run_b.log}
        self.run_key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    def path(self) -> Path:
        return log_path(Path(self.opts.log_dir or default_log_dir()) / "pairwise", self.plan.spec.name,
                        f"{self.opts.model}__vs__{self.versus}", self.run_key)

    def header(self) -> dict:
        return {"type": "header", "kind": "pairwise", "run_key": self.run_key, "eval": self.plan.spec.name,
                "model": self.opts.model, "versus": self.versus, "grader": {"model": self.model, "spec": self.grader.name},
                "seed": self.opts.seed, "spec": {"metrics": ["win_rate"]},
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    def request(self, i: str) -> Request:
        smp = self.samples[i]
        messages = self.plan.request(smp, 0, smp.id).messages
        first, second = self.replies[i] if self.order[i] else self.replies[i][::-1]
        fields = {"input": prompt_text(messages), "completion1": first, "completion2": second, "ideal": smp.answer or ""}
        return Request(key=i, messages=self.grader.messages(fields),
                       sampling=Sampling(temperature=0.0, max_tokens=self.grader.max_tokens))

    def judged(self, req: Request, out: Outcome) -> SampleResult:
        a_first = self.order[req.key]
        r = SampleResult(id=req.key, attempts=out.attempts, model_s=round(out.latency, 4), queue_s=round(out.queue_s, 4),
                         cached=out.cached, error=out.error)
        # the judge's verdict, not its thinking
        verdict = separate(out.completion, self.opts.think_tags).completion.text \
            if out.error is None and out.completion is not None else ""        # (no error: a reply)
        if out.error is None:
            choice = parse_choice(verdict, self.grader.eval_type or "classify", self.grader.choices)
            winner = None if choice is None else "tie" if choice == "tie" else "A" if (choice == "1") == a_first else "B"
            r.extracted, r.parsed = choice, choice is not None
            r.score = None if winner is None else {"A": 1.0, "B": 0.0, "tie": 0.5}[winner]
            r.extras = {"first_chosen": float(choice == "1")} if choice in ("1", "2") else None
            r.grader = {"first": "A" if a_first else "B", "winner": winner, "messages": req.messages,
                        "reply": verdict}
        return r

    def forfeit(self, i: str) -> SampleResult:
        """The judgement of a pair with a truncated reply: the other wins; both cut, a tie."""
        cut = self.cut[i]
        winner = "tie" if cut == "AB" else ("B" if cut == "A" else "A")
        return SampleResult(id=i, extracted="truncated", parsed=True, score={"A": 1.0, "B": 0.0, "tie": 0.5}[winner],
                            grader={"winner": winner, "truncated": cut, "judged": False})

    def execute(self, run: LoggedRun) -> PairwiseSummary:
        results = {i: r for i, r in run.done.items() if i in self.replies}
        for i in self.cut:
            if i not in results:
                results[i] = self.forfeit(i)
                run.record(results[i])
        todo = [i for i in self.replies if i not in results]
        stats, status = RunStats(), "complete"
        if todo:
            try:
                stats = asyncio.run(self._send(run, results, todo))
            except FatalError as exc:
                raise EvalkitError(f"{self.plan.spec.name} pairwise: {exc.reason} (finished judgements kept in {run.path})") from None
            status = "interrupted" if stats.stopped == "interrupted" else status
        summary = self.summary([results[i] for i in self.replies if i in results], stats, status, str(run.path))
        if todo or not run.complete:
            run.finish(summary.model_dump(mode="json"))
        return summary

    async def _send(self, run: LoggedRun, results: dict, todo: list[str]) -> RunStats:
        opts = self.opts
        cache = None if opts.no_cache else Cache(cache_dir() / "completions.sqlite")
        backend = connect(self.model, opts.grader_base_url or opts.base_url, opts, opts.concurrency,
                          flag="--grader-model: ")
        channel = Channel(backend, runner_options(opts), cache=cache)

        def sink(req: Request, out: Outcome) -> bool:
            result = self.judged(req, out)
            run.record(result)
            results[req.key] = result
            return result.error is None
        try:
            return await run_requests(channel, (self.request(i) for i in todo), len(todo), sink,
                                      f"{self.plan.spec.name} pairwise")
        finally:
            await channel.aclose()
            if cache is not None:
                cache.close()

    def summary(self, judged: list[SampleResult], stats: RunStats, status: str, log: str) -> PairwiseSummary:
        part = score_metrics(judged, ["win_rate"], 1, self.opts.seed)
        valid = [r for r in judged if r.score is not None]
        firsts = [r.extras["first_chosen"] for r in valid if r.extras]
        complete = status == "complete" and len(judged) == len(self.replies) and part.errors == 0
        return PairwiseSummary(
            eval=self.plan.spec.name, model=self.opts.model, versus=self.versus, status=status if status != "complete"
            or complete else "errors", incomplete=not complete, primary_metric="win_rate", n=len(self.replies),
            scored=part.scored, errors=part.errors, unparsed=part.unparsed, truncated=len(self.cut),
            notes=[f"{len(self.cut)} pairs held a reply the token limit cut off: it lost without a judge "
                   "(both cut: a tie)"] if self.cut else [],
            metrics={"win_rate": Stat(**part.metrics["win_rate"])},
            grader={"model": self.model, "spec": self.grader.name},
            wins=sum(r.score == 1.0 for r in valid), losses=sum(r.score == 0.0 for r in valid),
            ties=sum(r.score == 0.5 for r in valid), invalid=part.unparsed, skipped_samples=self.skipped,
            first_shown_chosen=round(sum(firsts) / len(firsts), 6) if firsts else None,
            a_first=sum(1 for r in judged if r.error is None and self.order.get(r.id)), seed=self.opts.seed,
            logs={**self.logs, "pairwise": log}, log=log)
