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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable

from evalkit.backends.base import FatalError, Request, SampleError, Sampling, TransientError
from evalkit.send.runner import Channel, Outcome, RunStats, on_signals, run_requests


@dataclass
class BatchOptions:
    poll: float = 30.0                 # seconds between status checks
    size: int | None = None            # requests per batch (at most the provider's limit)
    quiet: bool = False


@dataclass
class BatchStats(RunStats):
    batches: dict | None = None        # what the summary says about the batches (Tally.as_dict)


class Interrupted(Exception):
    """Ctrl-C or SIGTERM while waiting for batches: they go on at the provider."""


def custom_id(phase: str, key: str) -> str:
    """A request's custom id: stable across runs, short, and free of whatever the sample id holds."""
    return f"{phase[0]}-{hashlib.sha256(key.encode()).hexdigest()[:24]}"


# ----------------------------------------------------------------------------- the journal

@dataclass
class Entry:
    """One batch as the run log knows it."""

    file_id: str
    phase: str
    custom_ids: list[str]
    model: str
    endpoint: str
    batch_id: str | None = None
    settled: str | None = None          # the state it was settled in


class Journal:
    """The run log's batch lines, read back and appended to (`note` writes one line at once)."""

    def __init__(self, lines: list[dict], note: Callable[[dict], None]):
        self.note = note
        self.entries: dict[str, Entry] = {}
        for rec in lines:
            event, fid = rec.get("event"), rec.get("file_id")
            if event == "file" and isinstance(fid, str) and isinstance(rec.get("custom_ids"), list):
                self.entries[fid] = Entry(fid, str(rec.get("phase")), [str(c) for c in rec["custom_ids"]],
                                          str(rec.get("model")), str(rec.get("endpoint")))
            elif fid in self.entries and event == "created":
                self.entries[fid].batch_id = str(rec.get("batch_id"))
            elif fid in self.entries and event == "settled":
                self.entries[fid].settled = str(rec.get("status"))

    def unsettled(self, phase: str) -> list[Entry]:
        return [e for e in self.entries.values() if e.phase == phase and e.settled is None]

    def tried(self, phase: str) -> set[str]:
        """Custom ids that were in a settled batch (they ended in an error if still wanted)."""
        return {c for e in self.entries.values() if e.phase == phase and e.settled for c in e.custom_ids}

    def filed(self, file_id: str, phase: str, ids: list[str], api, size: int) -> Entry:
        entry = Entry(file_id, phase, ids, api.model, api.endpoint)
        self.note({"event": "file", "phase": phase, "file_id": file_id, "model": api.model,
                   "endpoint": api.endpoint, "requests": len(ids), "bytes": size,
                   "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "custom_ids": ids})
        self.entries[file_id] = entry
        return entry

    def created(self, entry: Entry, batch_id: str) -> None:
        entry.batch_id = batch_id
        self.note({"event": "created", "file_id": entry.file_id, "batch_id": batch_id, "phase": entry.phase})

    def settle(self, entry: Entry, status: str) -> None:
        if entry.settled is None:
            entry.settled = status
            self.note({"event": "settled", "file_id": entry.file_id, "batch_id": entry.batch_id, "status": status})


def unrecorded(lines: list[dict], todo: list[str] | None = None) -> int:
    """How many batches a run log names whose results it has not recorded yet (with `todo`, the
    model batches holding one of those unit ids): sending their requests again would pay twice."""
    journal = Journal(lines, lambda rec: None)
    if todo is None:
        return len(journal.unsettled("model") + journal.unsettled("grader"))
    wanted = {custom_id("model", uid) for uid in todo}
    return sum(1 for e in journal.unsettled("model") if wanted & set(e.custom_ids))


# ----------------------------------------------------------------------------- sending and waiting

@dataclass
class Tally:
    created: list[str] = field(default_factory=list)
    reattached: list[str] = field(default_factory=list)
    submitted: int = 0
    answered: int = 0
    failed: int = 0
    fallback: int = 0
    skipped_lines: int = 0

    def as_dict(self, grader: "Tally | None") -> dict:
        out = {"price_tier": "batch", "created": self.created, "reattached": self.reattached,
               "submitted": self.submitted, "answered": self.answered, "failed": self.failed,
               "fallback": self.fallback, "skipped_result_lines": self.skipped_lines}
        if grader is not None and (grader.created or grader.reattached):
            out["grader"] = grader.as_dict(None)
        return out


class Phase:
    """One phase's batches (the model's or the grader's) against one provider API."""

    def __init__(self, api, journal: Journal, phase: str, opts: BatchOptions, say: Callable[[str], None],
                 stop: asyncio.Event, budget=None):
        self.api, self.journal, self.phase, self.opts, self.say = api, journal, phase, opts, say
        self.stop, self.budget = stop, budget
        self.tally = Tally()
        self.stopped: str | None = None

    async def results(self, items: dict[str, Request], tidy: bool = False) -> AsyncIterator[tuple[Entry, dict]]:
        """(batch, {custom id: LineResult}) for each finished batch covering `items`; requests
        already in a live batch are not submitted again. `tidy`: settle the live batches none of
        whose requests is wanted any more (a run killed after recording them, before settling)."""
        from evalkit.backends.openai_batch import LineResult

        live = []
        for e in self.journal.unsettled(self.phase):
            if any(c in items for c in e.custom_ids):
                live.append(e)
            elif tidy and e.batch_id is not None:
                self.journal.settle(e, "answered")
        covered = {c for e in live for c in e.custom_ids}
        fresh = [(c, r) for c, r in items.items() if c not in covered]
        for e in live:
            await self._attach(e)
        refused: dict[str, LineResult] = {}
        async for chunk in self._chunks(fresh, refused):
            if self.stop.is_set():            # Ctrl-C while submitting: submit no more
                raise Interrupted
            live.append(await self._submit(chunk))
        if refused:
            yield Entry("", self.phase, list(refused), "", ""), refused
        async for entry, state in self._wait(live):
            yield entry, await self._collect(entry, state, items)

    async def _attach(self, e: Entry) -> None:
        if e.batch_id is None:            # the run died creating it: adopt the one the server made, if any
            state = await self.api.find(e.file_id) or await self.api.create(e.file_id, self._metadata())
            self.journal.created(e, state.id)
        self.tally.reattached.append(e.batch_id)
        self.say(f"batch {e.batch_id} ({self.phase}, {len(e.custom_ids):,} requests): reattached")

    async def _chunks(self, fresh: list, refused: dict) -> AsyncIterator[list[tuple[str, bytes]]]:
        """Request lines cut into batch files within the provider's limits and the budget."""
        from evalkit.backends.openai_batch import LineResult

        size = min(self.opts.size or self.api.max_requests, self.api.max_requests)
        chunk, nbytes = [], 0
        for cid, req in fresh:
            line = self.api.line(cid, req)
            if len(line) > self.api.max_bytes:
                refused[cid] = LineResult(cid, None, f"the request is larger than a batch file may be "
                                                     f"({len(line):,} bytes)")
                continue
            if self.budget is not None and self.budget.reserve(req) is None:
                self.stopped = "max_cost"
                break
            if chunk and (len(chunk) >= size or nbytes + len(line) > self.api.max_bytes):
                yield chunk
                chunk, nbytes = [], 0
            chunk.append((cid, line))
            nbytes += len(line)
        if chunk:
            yield chunk

    async def _submit(self, chunk: list[tuple[str, bytes]]) -> Entry:
        data = b"".join(line for _, line in chunk)
        file_id = await self.api.upload(data, f"evalkit-{self.phase}-{chunk[0][0]}.jsonl")
        entry = self.journal.filed(file_id, self.phase, [c for c, _ in chunk], self.api, len(data))
        state = await self.api.create(file_id, self._metadata())
        self.journal.created(entry, state.id)
        self.tally.created.append(state.id)
        self.tally.submitted += len(chunk)
        self.say(f"batch {state.id} ({self.phase}, {len(chunk):,} requests, {len(data):,} bytes): submitted")
        return entry

    def _metadata(self) -> dict[str, str]:
        return {"created_by": "evalkit", "phase": self.phase}

    async def _wait(self, live: list[Entry]) -> AsyncIterator[tuple[Entry, object]]:
        """Each batch's final state as it finishes, polling every `poll` seconds (a batch the
        provider no longer knows is "gone": its requests become errors)."""
        from evalkit.backends.openai_batch import BatchState, Gone

        pending, shown, misses = list(live), {}, 0
        while pending:
            for e in list(pending):
                try:
                    state = await self.api.retrieve(e.batch_id)
                    misses = 0
                except Gone:
                    state = BatchState(e.batch_id, "gone", e.file_id)
                except TransientError as exc:      # a blip while waiting hours is no reason to stop
                    misses += 1
                    if misses >= 10:
                        raise
                    self.say(f"batch {e.batch_id}: cannot check it ({exc.reason}); trying again")
                    continue
                self._progress(e, state, shown)
                if state.done:
                    pending.remove(e)
                    yield e, state
            if pending:
                try:
                    await asyncio.wait_for(self.stop.wait(), self.opts.poll)
                except TimeoutError:
                    continue
                raise Interrupted

    def _progress(self, e: Entry, state, shown: dict) -> None:
        """A line when a batch changes state, and every 10 s while its counts move."""
        last = shown.get(e.batch_id)
        now = time.monotonic()
        counts = (state.completed, state.failed)
        if last is not None and last[0] == state.status and (last[1] == counts or now - last[2] < 10):
            return
        shown[e.batch_id] = (state.status, counts, now)
        total = state.total or len(e.custom_ids)
        self.say(f"batch {e.batch_id} ({self.phase}): {state.status}, {state.completed:,}/{total:,} completed, "
                 f"{state.failed:,} failed")

    async def _read(self, entry: Entry, state, wanted: dict, got: dict, skipped) -> str:
        """Fill `got` from the batch's result files; say why a request without a result has none."""
        from evalkit.backends.openai_batch import Gone

        try:
            for file_id in (state.output_file_id, state.error_file_id):
                if file_id:
                    async for r in self.api.results(file_id, wanted, set(entry.custom_ids), skipped):
                        got.setdefault(r.custom_id, r)
        except Gone as exc:
            return f"the results of batch {state.id} are gone ({exc.reason}); the next run sends it again"
        except SampleError as exc:           # a file of junk: what it answered before is kept
            self.say(f"batch {state.id}: {exc.reason}")
            return f"no result for this request in batch {state.id}: {exc.reason}"
        if state.status == "gone":
            return f"the provider no longer knows batch {state.id}; the next run sends it again"
        if state.status == "failed" and state.errors:
            return f"batch {state.id} failed: {state.errors[0]}"
        return f"no result for this request in batch {state.id} ({state.status})"

    async def _collect(self, entry: Entry, state, items: dict[str, Request]) -> dict:
        """The finished batch's results for the requests still wanted; a request without one
        (a failed batch, a result the provider never wrote) gets an error saying so."""
        from evalkit.backends.openai_batch import LineResult, Skipped

        wanted = {c: items[c] for c in entry.custom_ids if c in items}
        got: dict[str, LineResult] = {}
        skipped = Skipped(self.api.target.max_reply_bytes)
        why = await self._read(entry, state, wanted, got, skipped)
        if skipped.count:
            self.tally.skipped_lines += skipped.count
            self.say(f"batch {entry.batch_id}: skipped {skipped.count} result line(s) (first: {skipped.first})")
        for c in wanted:
            got.setdefault(c, LineResult(c, None, why))
        self.tally.answered += sum(r.error is None for r in got.values())
        self.tally.failed += sum(r.error is not None for r in got.values())
        return got


# ----------------------------------------------------------------------------- the grader's phase

class BatchGrader:
    """The `grader` service of model-graded scorers in a batch run: each `complete` waits until
    the grader phase has submitted every pending grader request and the verdicts are back."""

    def __init__(self, spec, api, pricer=None):
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
        if unanswered:
            await self._send_one_by_one(unanswered, sink)
        if self.grader is not None:
            entries += await self._grade()
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
        task.entry = entry
        self.tasks.append(task)

    async def _settle(self, entry: Entry) -> None:
        """Settle a batch once the outcomes of its requests are all recorded."""
        mine = [t for t in self.tasks if getattr(t, "entry", None) is entry]
        await asyncio.gather(*mine)
        if entry.file_id:
            self.journal.settle(entry, "recorded")

    async def _send_one_by_one(self, requests: list[Request], sink) -> None:
        """--batch-fallback: what the batches left unanswered, through the per-request API."""
        self._say(f"{len(requests):,} request(s) the batches did not answer: sending them one by one (--batch-fallback)")
        self.model.tally.fallback += len(requests)
        outcomes: list[tuple[Request, Outcome]] = []

        def keep(req: Request, out: Outcome) -> bool:
            outcomes.append((req, out))
            return False                  # cached by _spawn once recorded
        stats = await run_requests(self.fallback, requests, len(requests), keep, self.label)
        on_signals(asyncio.get_running_loop(), self.stop.set)     # the runner removed its own, and so ours
        self.stats.spent += self.fallback.spent
        self.stats.retries += stats.retries
        for req, out in outcomes:
            self._spawn(sink, req, out, None)
        if stats.stopped == "interrupted":
            raise Interrupted

    async def _grade(self) -> list[Entry]:
        """Second phase: once every scorer waits for a verdict, batch the grader requests. The
        grader's batches are settled by the caller, once the samples they graded are recorded."""
        entries = []
        while True:
            while sum(not t.done() for t in self.tasks) > self.grader.waiting():
                await asyncio.sleep(0.01)
            if not self.grader.pending:
                return entries
            items = {cid: req for cid, (req, _) in self.grader.pending.items()}
            items = self._grader_cache(items)
            async for entry, got in self.graders.results(items):
                for cid, r in got.items():
                    self._grader_cost(r)
                    self.grader.answer(cid, r.completion.text if r.completion else None, r.error)
                    if r.completion is not None and self.cache is not None:
                        from evalkit.send.cache import cache_key

                        self.cache.put(cache_key(self.grader.api.endpoint, self.grader.api.model, items[cid]),
                                       r.completion)
                entries.append(entry)

    def _grader_cache(self, items: dict[str, Request]) -> dict[str, Request]:
        from evalkit.send.cache import cache_key

        if self.cache is None:
            return items
        left = {}
        for cid, req in items.items():
            hit = self.cache.get(cache_key(self.grader.api.endpoint, self.grader.api.model, req))
            if hit is None:
                left[cid] = req
            else:
                self.grader.cached += 1
                self.grader.answer(cid, hit.text, None)
        return left

    def _grader_cost(self, r) -> None:
        p = self.grader.pricer
        self.grader.cost += (p.cost_of(r.completion) if p is not None else None) or 0.0


# ----------------------------------------------------------------------------- `evalkit batches LOG`

def list_batches(lines: list[dict], cancel: bool = False, timeout: float = 120.0,
                 base_url: str | None = None) -> list[dict]:
    """Each batch a run log names, with its state at the provider; `cancel`: cancel the ones
    still running first (their finished requests are still collected by the next run). The
    provider's key goes only where `base_url` (the command line's) or the preset's default
    points: a log naming another endpoint is refused before anything is sent."""
    journal = Journal(lines, lambda rec: None)
    entries = list(journal.entries.values())
    check_endpoints(entries, base_url)
    return asyncio.run(_states(entries, cancel, timeout, base_url))


def check_endpoints(entries: list[Entry], base_url: str | None) -> None:
    """Refuse (one line) a log whose batches are at another endpoint than the one the user names:
    a crafted log must not send the user's key to a URL of its choosing."""
    from evalkit.core.errors import EvalkitError
    from evalkit.backends.presets import endpoint_of

    for e in entries:
        if e.batch_id is None:
            continue                  # nothing is asked about it
        expected = endpoint_of(e.model, base_url)
        if expected is None:
            raise EvalkitError(f"the log's batches are for {e.model!r}, which is not a provider with a Batch API "
                               "in evalkit; nothing was sent")
        if e.endpoint != expected:
            raise EvalkitError(f"the log's batches are at {e.endpoint}, but {e.model}'s key goes only to {expected}; "
                               f"nothing was sent (pass --base-url {e.endpoint} if you trust that endpoint)")


async def _states(entries: list[Entry], cancel: bool, timeout: float, base_url: str | None) -> list[dict]:
    from evalkit.backends import BackendOptions, get_backend
    from evalkit.backends.openai_batch import Gone

    apis, rows = {}, []
    try:
        for e in entries:
            row = {"batch_id": e.batch_id, "phase": e.phase, "requests": len(e.custom_ids), "file_id": e.file_id,
                   "settled": e.settled, "status": None, "completed": None, "failed": None}
            rows.append(row)
            if e.batch_id is None:
                row["status"] = "not created (the run stopped while creating it; a rerun adopts or creates it)"
                continue
            if e.model not in apis:       # the endpoint is the user's (checked), never the log's
                apis[e.model] = get_backend(e.model, BackendOptions(base_url=base_url, timeout=timeout)).batch_api()
            api = apis[e.model]
            if api is None:
                from evalkit.core.errors import EvalkitError

                raise EvalkitError(f"{e.model} has no Batch API in evalkit")
            try:
                state = await api.retrieve(e.batch_id)
            except Gone as exc:
                row["status"] = f"gone ({exc.reason})"
                continue
            if cancel and not state.done:
                state = await api.cancel(e.batch_id)
                row["cancelled_now"] = True
            row.update(status=state.status, completed=state.completed, failed=state.failed, total=state.total)
    finally:
        for api in apis.values():
            if api is not None:
                await api.aclose()
    return rows
