"""One phase of a batch run (the model's requests or the grader's): cutting, submitting, polling, collecting.

`Phase` reattaches to the live batches the journal names, cuts the fresh requests into batch files
within the provider's limits and the `--max-cost` budget, submits them, polls every `--batch-poll`
seconds until each batch is done, and reads each finished batch's results back into one
`LineResult` per wanted request (an error saying why for a request without one). `Tally` counts what
it did for the run's summary; `Interrupted` is Ctrl-C while waiting.
"""

from __future__ import annotations

from typing import cast

import asyncio
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable

from evalkit.backends.base import Request, SampleError, TransientError
from evalkit.send.batch_journal import Entry, Journal


@dataclass
class BatchOptions:
    poll: float = 30.0                 # seconds between status checks
    size: int | None = None            # requests per batch (at most the provider's limit)
    quiet: bool = False


class Interrupted(Exception):
    """Ctrl-C or SIGTERM while waiting for batches: they go on at the provider."""


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
        batch_id = e.batch_id
        if batch_id is None:              # the run died creating it: adopt the one the server made, if any
            state = await self.api.find(e.file_id) or await self.api.create(e.file_id, self._metadata())
            self.journal.created(e, state.id)
            batch_id = state.id
        self.tally.reattached.append(batch_id)
        self.say(f"batch {batch_id} ({self.phase}, {len(e.custom_ids):,} requests): reattached")

    async def _chunks(self, fresh: list, refused: dict) -> AsyncIterator[list[tuple[str, bytes]]]:
        """Request lines cut into batch files within the provider's limits and the budget."""
        from evalkit.backends.openai_batch import LineResult

        size = min(self.opts.size or self.api.max_requests, self.api.max_requests)
        chunk: list[tuple[str, bytes]] = []
        nbytes = 0
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

        pending, misses = list(live), 0
        shown: dict[str | None, tuple[str, tuple[int, int], float]] = {}
        while pending:
            for e in list(pending):
                try:
                    state = await self.api.retrieve(e.batch_id)
                    misses = 0
                except Gone:
                    state = BatchState(cast(str, e.batch_id), "gone", e.file_id)   # live: attached or submitted
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
