"""Scheduling requests: the only concurrent code in evalkit.

`run_requests` sends a lazily built stream of requests through a backend with at most
`concurrency` in flight, and hands every outcome to a sink callback as soon as it is known (the
caller scores and logs it; the runner never looks inside an answer).

Retry policy (the backend only says what kind of failure it saw):
- `TransientError` (429, 408, 5xx, timeouts, dropped connections) is retried up to `max_retries`
  times. The wait is what the server asked for (Retry-After / x-ratelimit-reset-*) when it said,
  else exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt)).
- A sample that exhausts its retries, or gets a `SampleError` (other 4xx), becomes an outcome with
  `error` set: recorded, counted, never scored as a wrong answer.
- `FatalError` (bad key, unknown model, malformed body) stops the run. So does a failed connection
  before any request has succeeded: the server is not there, and waiting out retries for every
  sample would only delay saying so.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .backends import Backend, Completion, FatalError, Request, SampleError, TransientError


@dataclass
class RunnerOptions:
    concurrency: int = 32
    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    quiet: bool = False


@dataclass
class Outcome:
    completion: Completion | None
    error: str | None
    attempts: int
    latency: float


@dataclass
class RunStats:
    total: int = 0
    done: int = 0
    ok: int = 0
    errors: int = 0
    sent: int = 0
    retries: int = 0
    started: float = field(default_factory=time.monotonic)


class Progress:
    """done/total, rate, ETA, errors and retries on stderr; silent unless stderr is a terminal."""

    def __init__(self, stats: RunStats, label: str, quiet: bool):
        self.stats, self.label = stats, label
        self.enabled = not quiet and sys.stderr.isatty()
        self._last = 0.0

    def update(self, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self._last < 0.2):
            return
        self._last = now
        s = self.stats
        elapsed = max(now - s.started, 1e-9)
        rate = s.done / elapsed
        eta = (s.total - s.done) / rate if rate > 0 else float("inf")
        eta_s = f"{eta:,.0f}s" if eta != float("inf") else "?"
        sys.stderr.write(f"\r{self.label}: {s.done}/{s.total} {rate:,.1f}/s eta {eta_s} "
                         f"errors {s.errors} retries {s.retries}   ")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


async def _attempt(backend: Backend, req: Request, opts: RunnerOptions, stats: RunStats) -> Outcome:
    start = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        stats.sent += 1
        try:
            completion = await backend.complete(req)
            stats.ok += 1
            return Outcome(completion, None, attempt, time.monotonic() - start)
        except SampleError as exc:
            return Outcome(None, exc.reason, attempt, time.monotonic() - start)
        except TransientError as exc:
            if exc.connect and stats.ok == 0:
                raise FatalError(exc.reason + " (is the server running? check --base-url)") from None
            if attempt > opts.max_retries:
                return Outcome(None, f"gave up after {attempt} attempts: {exc.reason}", attempt, time.monotonic() - start)
            stats.retries += 1
            wait = exc.retry_after if exc.retry_after is not None else random.uniform(
                0, min(opts.backoff_cap, opts.backoff_base * 2 ** (attempt - 1)))
            await asyncio.sleep(wait)


async def run_requests(backend: Backend, requests: Iterable[Request], total: int,
                       sink: Callable[[Request, Outcome], None], opts: RunnerOptions, label: str) -> RunStats:
    """Send every request, calling `sink(request, outcome)` as each finishes; raise FatalError to stop."""
    stats = RunStats(total=total)
    progress = Progress(stats, label, opts.quiet)
    it = iter(requests)

    async def worker() -> None:
        for req in it:  # a shared iterator: each worker pulls the next request when it is free
            outcome = await _attempt(backend, req, opts, stats)
            stats.done += 1
            if outcome.error:
                stats.errors += 1
            sink(req, outcome)
            progress.update()

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(opts.concurrency, total)))]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        progress.update(final=True)
    return stats
