"""`--batch`: a run's requests through the provider's Batch API, at half the price.

The pipeline hands this module what it would hand the runner (the requests and a sink that
scores and records each outcome); it sends the requests as batch files instead of one call each,
and gives the sink the same `Outcome`s. Data still flows one way: requests in, outcomes out.

**Never paid twice.** Each batch is written into the run log as soon as it exists, in three
lines: `file` (the uploaded input file and the custom ids in it, before the batch is created),
`created` (the batch id), `settled` (its results are all in the log). A rerun of the same
command (after Ctrl-C, a crash, `kill -9`) reads them back: requests in an unsettled batch are
not submitted again, the run reattaches to it and collects its results (a finished batch's
results are downloaded again; nothing is re-run). A `file` line without `created` means the run
died while creating the batch: the batches are listed and the one on that file adopted, and only
if there is none is it created.

**Splitting.** A run is cut into batches within the provider's limits (OpenAI: 50,000 requests
and 200 MB per input file), or `--batch-size` requests. With `--max-cost`, requests are
submitted only while the worst case of everything submitted stays within it (at batch prices).

**Results** are matched back by `custom_id` (a hash of the sample's unit id, so it is stable
across runs). A request the provider failed, or that expired or was cancelled, becomes that
sample's error, recorded like any other; the next run submits it again in a new batch, or with
`--batch-fallback` sends it (and, right away, whatever this run's batches left unanswered)
through the ordinary per-request path at the standard price.

**Model-graded evals** grade in a second phase: the scorers ask `BatchGrader` for a verdict, it
collects the grader requests (custom id: a hash of the grader's messages, so the same prompt is
one request) until every scorer is waiting, and submits them as the grader's own batches, logged
the same way.

While waiting, each batch's state and completed/failed counts are printed every poll
(`--batch-poll`). Ctrl-C stops waiting (exit 130); the batches go on at the provider, and the
same command collects them later (`evalkit batches LOG` lists them, `--cancel` cancels them).

This module is the run (`BatchRun`) and the grader's service (`BatchGrader`); the log's batch lines
are in `batch_journal`, one phase's submitting and polling in `batch_phase`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass

from evalkit.backends.base import FatalError, Request, Sampling, TransientError
from evalkit.send.batch_journal import Entry, Journal, custom_id
from evalkit.send.batch_phase import BatchOptions, Interrupted, Phase
from evalkit.send.runner import Channel, on_signals, run_requests
from evalkit.send.runner_types import Outcome, RunStats


@dataclass
class BatchStats(RunStats):
    batches: dict | None = None        # what the summary says about the batches (Tally.as_dict)


# ----------------------------------------------------------------------------- the grader's phase

class BatchGrader:
    """The `grader` service of model-graded scorers in a batch run: each `complete` waits until
    the grader phase has submitted every pending grader request and the verdicts are back."""

    def __init__(self, spec, api, pricer=None) -> None:
        self.spec, self.api, self.pricer = spec, api, pricer
        self.pending: dict[str, tuple[Request, list[asyncio.Future]]] = {}
        self.cost = 0.0
        self.cached = 0

    async def complete(self, messages: list[dict]) -> str:
        from evalkit.scoring import ScoringError

        req = Request(key="grader", messages=messages, sampling=Sampling(temperature=0.0, max_tokens=self.spec.max_tokens))
        cid = custom_id("grader", json.dumps(messages, sort_keys=True))
        fut = asyncio.get_running_loop().create_future()
        self.pending.setdefault(cid, (req, []))[1].append(fut)
        text, error = await fut
        if error is not None:
            raise ScoringError(f"grader: {error}")
        return text

    def waiting(self) -> int:
        return sum(sum(not f.done() for f in futs) for _, futs in self.pending.values())

    def answer(self, cid: str, text: str | None, error: str | None) -> None:
        for fut in self.pending.pop(cid, (None, []))[1]:
            if not fut.done():
                fut.set_result((text, error))


# ----------------------------------------------------------------------------- one run

class BatchRun:
    """A run's requests through batches, each outcome handed to `sink` as in `run_requests`."""

    def __init__(self, api, journal: Journal, opts: BatchOptions, label: str, cache=None, pricer=None,
                 budget=None, grader: BatchGrader | None = None, fallback: Channel | None = None):
        self.api, self.journal, self.opts, self.label = api, journal, opts, label
        self.cache, self.pricer, self.grader, self.fallback = cache, pricer, grader, fallback
        self.stop = asyncio.Event()
        self.model = Phase(api, journal, "model", opts, self._say, self.stop, budget)
        self.graders = Phase(grader.api, journal, "grader", opts, self._say, self.stop) if grader else None
        self.stats = BatchStats()
        self.tasks: list[asyncio.Task] = []
        self.entry_of: dict[asyncio.Task, Entry | None] = {}   # the batch each task records an outcome of
        self.keys: dict[str, str] = {}          # custom id -> cache key, computed once

    def _say(self, message: str) -> None:
        if not self.opts.quiet:
            print(f"evalkit: {self.label}: {message}", file=sys.stderr, flush=True)

    async def run(self, requests: list[Request], sink) -> BatchStats:
        self.stats.total = len(requests)
        loop = asyncio.get_running_loop()
        installed = on_signals(loop, self.stop.set)
        try:
            await self._run(requests, sink)
        except TransientError as exc:
            raise FatalError(f"{exc.reason}; the batches made so far are in the log: rerun to go on") from None
        except Interrupted:
            self.stats.stopped = "interrupted"
            self._say("stopped waiting; the batches go on at the provider: rerun the same command to collect "
                      "them (`evalkit batches LOG` lists them, with the run's --base-url; --cancel cancels them)")
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            for t in self.tasks:
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.stats.stopped = self.stats.stopped or self.model.stopped
        self.stats.sent = self.model.tally.submitted
        self.stats.batches = self.model.tally.as_dict(self.graders.tally if self.graders else None)
        if self.grader is not None:
            self.stats.batches.setdefault("grader", {})["cost_usd"] = round(self.grader.cost, 10)
            self.stats.batches["grader"]["cached"] = self.grader.cached
        return self.stats

    async def _run(self, requests: list[Request], sink) -> None:
        items = {custom_id("model", r.key): r for r in requests}
        items = self._from_cache(items, sink)
        retry_sync = [items.pop(c) for c in self._tried(items)]
        unanswered, entries = list(retry_sync), []
        async for entry, got in self.model.results(items, tidy=True):
            for cid, r in got.items():
                out = self._outcome(r)
                out.cache_key = self.keys.get(cid)
                if out.error is not None and self.fallback is not None:
                    unanswered.append(items[cid])
                else:
                    self._spawn(sink, items[cid], out, entry)
            entries.append(entry)
            if self.grader is None:
                await self._settle(entry)
        if unanswered and self.fallback is not None:     # only --batch-fallback leaves requests unanswered
            await self._send_one_by_one(self.fallback, unanswered, sink)
        if self.grader is not None and self.graders is not None:   # both or neither
            entries += await self._grade(self.grader, self.graders)
        await asyncio.gather(*self.tasks)
        for entry in entries:
            await self._settle(entry)

    def _tried(self, items: dict[str, Request]) -> list[str]:
        """--batch-fallback: the requests an earlier batch failed and no live batch holds again."""
        if self.fallback is None:
            return []
        tried = self.journal.tried("model")
        live = {c for e in self.journal.unsettled("model") for c in e.custom_ids}
        return [c for c in items if c in tried and c not in live]

    def _from_cache(self, items: dict[str, Request], sink) -> dict[str, Request]:
        from evalkit.send.cache import cache_key

        if self.cache is None:
            return items
        left = {}
        for cid, req in items.items():
            key = self.keys[cid] = cache_key(self.api.endpoint, self.api.model, req, self.api.wire_identity())
            hit = self.cache.get(key)
            if hit is None:
                left[cid] = req
            else:
                self.stats.cached += 1
                self._spawn(sink, req, Outcome(hit, None, 0, 0.0, cached=True, cost=0.0, cache_key=key), None)
        return left

    def _outcome(self, r) -> Outcome:
        cost = self.pricer.cost_of(r.completion) if self.pricer is not None else None
        self.stats.spent += cost or 0.0
        return Outcome(r.completion, r.error, 1, 0.0, cost=cost)

    def _spawn(self, sink, req: Request, out: Outcome, entry: Entry | None) -> None:
        async def one() -> None:
            accepted = sink(req, out)
            if not isinstance(accepted, bool):
                accepted = await accepted
            self.stats.done += 1
            self.stats.ok += out.error is None
            self.stats.errors += out.error is not None
            if accepted and self.cache is not None and out.completion is not None and not out.cached:
                from evalkit.send.cache import cache_key

                self.cache.put(out.cache_key or cache_key(self.api.endpoint, self.api.model, req), out.completion)
        task = asyncio.create_task(one())
        self.entry_of[task] = entry
        self.tasks.append(task)

    async def _settle(self, entry: Entry) -> None:
        """Settle a batch once the outcomes of its requests are all recorded."""
        mine = [t for t in self.tasks if self.entry_of.get(t) is entry]
        await asyncio.gather(*mine)
        if entry.file_id:
            self.journal.settle(entry, "recorded")

    async def _send_one_by_one(self, fallback: Channel, requests: list[Request], sink) -> None:
        """--batch-fallback: what the batches left unanswered, through the per-request API."""
        self._say(f"{len(requests):,} request(s) the batches did not answer: sending them one by one (--batch-fallback)")
        self.model.tally.fallback += len(requests)
        outcomes: list[tuple[Request, Outcome]] = []

        def keep(req: Request, out: Outcome) -> bool:
            outcomes.append((req, out))
            return False                  # cached by _spawn once recorded
        stats = await run_requests(fallback, requests, len(requests), keep, self.label)
        on_signals(asyncio.get_running_loop(), self.stop.set)     # the runner removed its own, and so ours
        self.stats.spent += fallback.spent
        self.stats.retries += stats.retries
        for req, out in outcomes:
            self._spawn(sink, req, out, None)
        if stats.stopped == "interrupted":
            raise Interrupted

    async def _grade(self, grader: BatchGrader, graders: Phase) -> list[Entry]:
        """Second phase: once every scorer waits for a verdict, batch the grader requests. The
        grader's batches are settled by the caller, once the samples they graded are recorded."""
        entries: list[Entry] = []
        while True:
            while sum(not t.done() for t in self.tasks) > grader.waiting():
                await asyncio.sleep(0.01)
            if not grader.pending:
                return entries
            items = {cid: req for cid, (req, _) in grader.pending.items()}
            items = self._grader_cache(grader, items)
            async for entry, got in graders.results(items):
                for cid, r in got.items():
                    self._grader_cost(grader, r)
                    grader.answer(cid, r.completion.text if r.completion else None, r.error)
                    if r.completion is not None and self.cache is not None:
                        from evalkit.send.cache import cache_key

                        self.cache.put(cache_key(grader.api.endpoint, grader.api.model, items[cid]),
                                       r.completion)
                entries.append(entry)

    def _grader_cache(self, grader: BatchGrader, items: dict[str, Request]) -> dict[str, Request]:
        from evalkit.send.cache import cache_key

        if self.cache is None:
            return items
        left = {}
        for cid, req in items.items():
            hit = self.cache.get(cache_key(grader.api.endpoint, grader.api.model, req))
            if hit is None:
                left[cid] = req
            else:
                grader.cached += 1
                grader.answer(cid, hit.text, None)
        return left

    def _grader_cost(self, grader: BatchGrader, r) -> None:
        p = grader.pricer
        grader.cost += (p.cost_of(r.completion) if p is not None else None) or 0.0


