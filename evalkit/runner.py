"""Scheduling requests: the only concurrent code in evalkit.

`run_requests` sends a lazily built stream of requests through a backend and hands every outcome
to a sink callback as soon as it is known (the caller scores and logs it; the runner never looks
inside an answer). Requests are pulled one at a time by a pool of workers, so memory does not
grow with the number of samples.

**Retries.** The backend only says what kind of failure it saw:
- `TransientError` (429, 408, 5xx, timeouts, dropped connections) is retried up to `max_retries`
  times. The wait is what the server asked for (Retry-After / x-ratelimit-reset-*) when it said,
  else exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt)). A request
  waiting to retry does not hold a concurrency slot.
- A sample that exhausts its retries, or gets a `SampleError` (other 4xx), becomes an outcome with
  `error` set: recorded, counted, never scored as a wrong answer.
- `FatalError` (bad key, unknown model, malformed body) stops the run. So does a failed connection
  before any request has succeeded: the server is not there, and waiting out retries for every
  sample would only delay saying so.

**Concurrency.** With `concurrency` fixed, exactly that many requests are in flight. Left adaptive
(the default), the limit follows AIMD, as TCP does: each success adds 1/limit (about +1 per round
trip of the whole window), and rate limiting halves it, at most once per `cut_interval` so one
burst of 429s from a single window counts as one signal. "Rate limiting" means sustained pressure:
more than `pressure_threshold` of the last `pressure_window` responses were 429s. A stray 429 is
already handled by its own retry after the server's Retry-After; halving the window for it too
would slow a healthy run for nothing (measured: 10% random 429s took 2.2x the error-free time
with a cut on every 429, within 2x without).

**Cache.** Before a request is sent the cache is asked; a hit is an outcome with `cached=True`
and costs nothing. Successful answers are written back.

**Budget.** With `max_cost`, a request is only sent if the money spent plus the worst case of
everything in flight plus this request's worst case stays within it; otherwise the run stops
taking new requests, finishes those in flight, and reports `stopped = "max_cost"`.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable

from .backends import Backend, Completion, FatalError, Request, SampleError, TransientError


@dataclass
class RunnerOptions:
    concurrency: int | None = None     # None: adaptive between 1 and max_concurrency
    start_concurrency: int = 32
    max_concurrency: int = 128
    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    cut_interval: float = 1.0
    pressure_window: int = 100        # recent responses looked at for rate-limit pressure
    pressure_threshold: float = 0.2   # share of them that must be 429s before the window is cut
    max_cost: float | None = None
    quiet: bool = False


@dataclass
class Outcome:
    completion: Completion | None
    error: str | None
    attempts: int
    latency: float
    cached: bool = False
    cost: float | None = None


@dataclass
class RunStats:
    total: int = 0
    done: int = 0
    ok: int = 0
    errors: int = 0
    sent: int = 0
    cached: int = 0
    retries: int = 0
    rate_limited: int = 0
    spent: float = 0.0
    reserved: float = 0.0
    stopped: str | None = None
    peak_limit: int = 0
    started: float = field(default_factory=time.monotonic)


class _Stop(Exception):
    """Raised inside a worker when the run is stopping and no new request may be sent."""


class Limiter:
    """How many requests may be in flight: fixed, or adapted by AIMD. A freed slot is handed
    straight to the longest waiter, so release never needs to await."""

    def __init__(self, opts: RunnerOptions):
        self.adaptive = opts.concurrency is None
        self.max = opts.max_concurrency if self.adaptive else opts.concurrency
        self.limit = float(min(opts.start_concurrency, self.max) if self.adaptive else opts.concurrency)
        self.cut_interval = opts.cut_interval
        self.threshold = opts.pressure_threshold
        self._recent: deque[bool] = deque(maxlen=opts.pressure_window)   # True: that response was a 429
        self._recent_429 = 0
        self.in_flight = 0
        self.peak = 0
        self._last_cut = 0.0
        self._waiters: deque[asyncio.Future] = deque()

    async def acquire(self, retry: bool = False) -> None:
        """Wait for a slot. A retry goes to the front of the queue: it has already waited out
        the server's Retry-After once, and queueing it behind fresh requests would stretch the
        run's tail by a queue's worth of round trips per attempt."""
        if self.in_flight < int(self.limit) and not self._waiters:
            self._take()
            return
        fut = asyncio.get_running_loop().create_future()
        if retry:
            self._waiters.appendleft(fut)
        else:
            self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():   # the slot was handed over just as we were cancelled
                self.release()
            raise

    def _take(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            fut = self._waiters.popleft()
            if not fut.done():
                self._take()
                fut.set_result(None)

    def _observe(self, limited: bool) -> None:
        if len(self._recent) == self._recent.maxlen:
            self._recent_429 -= self._recent[0]
        self._recent.append(limited)
        self._recent_429 += limited

    def success(self) -> None:
        if not self.adaptive:
            return
        self._observe(False)
        if self.limit < self.max:
            self.limit = min(self.max, self.limit + 1.0 / self.limit)
            self._wake()

    def rate_limited(self) -> None:
        if not self.adaptive:
            return
        self._observe(True)
        now = time.monotonic()
        if self._recent_429 > self.threshold * len(self._recent) and now - self._last_cut >= self.cut_interval:
            self._last_cut = now
            self.limit = max(1.0, self.limit / 2)


class Progress:
    """done/total, rate, ETA, errors, retries and cost on stderr; silent unless stderr is a terminal."""

    def __init__(self, stats: RunStats, label: str, quiet: bool, limiter: Limiter):
        self.stats, self.label, self.limiter = stats, label, limiter
        self.enabled = not quiet and sys.stderr.isatty()
        self._last = 0.0

    def update(self, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self._last < 0.2:
            return
        self._last = now
        s = self.stats
        elapsed = max(now - s.started, 1e-9)
        rate = s.done / elapsed
        eta = f"{(s.total - s.done) / rate:,.0f}s" if rate > 0 else "?"
        cost = f" ${s.spent:,.4f}" if s.spent else ""
        sys.stderr.write(f"\r{self.label}: {s.done}/{s.total} {rate:,.1f}/s eta {eta} errors {s.errors} "
                         f"retries {s.retries} cached {s.cached} in-flight {self.limiter.in_flight}/{int(self.limiter.limit)}{cost}   ")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


class _Budget:
    def __init__(self, stats: RunStats, max_cost: float | None, estimate: Callable[[Request], float] | None):
        self.stats, self.max_cost, self.estimate = stats, max_cost, estimate

    def reserve(self, req: Request) -> float | None:
        """The worst-case cost reserved for `req`, or None if it would break the budget."""
        if self.max_cost is None or self.estimate is None:
            return 0.0
        worst = self.estimate(req)
        if self.stats.spent + self.stats.reserved + worst > self.max_cost:
            return None
        self.stats.reserved += worst
        return worst


async def _attempt(backend: Backend, req: Request, opts: RunnerOptions, stats: RunStats, limiter: Limiter) -> Outcome:
    start = time.monotonic()
    for attempt in itertools.count(1):
        await limiter.acquire(retry=attempt > 1)
        if stats.stopped == "fatal":  # another request hit a fatal error while this one waited
            limiter.release()
            raise _Stop
        stats.sent += 1
        try:
            completion = await backend.complete(req)
        except (SampleError, TransientError) as exc:
            failure = exc
        except FatalError:
            stats.stopped = "fatal"
            raise
        else:
            failure = None
        finally:
            limiter.release()
        if failure is None:
            stats.ok += 1
            limiter.success()
            return Outcome(completion, None, attempt, time.monotonic() - start)
        if isinstance(failure, SampleError):
            return Outcome(None, failure.reason, attempt, time.monotonic() - start)
        if failure.connect and stats.ok == 0:
            stats.stopped = "fatal"
            raise FatalError(failure.reason + " (is the server running? check --base-url)")
        if failure.rate_limited:
            stats.rate_limited += 1
            limiter.rate_limited()
        if attempt > opts.max_retries:
            return Outcome(None, f"gave up after {attempt} attempts: {failure.reason}", attempt, time.monotonic() - start)
        stats.retries += 1
        wait = failure.retry_after if failure.retry_after is not None else random.uniform(
            0, min(opts.backoff_cap, opts.backoff_base * 2 ** (attempt - 1)))
        await asyncio.sleep(wait)
    raise AssertionError("unreachable")


async def run_requests(backend: Backend, requests: Iterable[Request], total: int,
                       sink: Callable[[Request, Outcome], Awaitable[None] | None], opts: RunnerOptions, label: str,
                       cache=None, pricer=None, estimate: Callable[[Request], float] | None = None) -> RunStats:
    """Send every request, calling `sink(request, outcome)` as each finishes; raise FatalError to stop.

    `cache` (a `Cache`) answers repeated requests; `pricer` turns usage into dollars; `estimate`
    gives a request's worst-case cost for `opts.max_cost`.
    """
    channel = Channel(backend, opts, cache=cache, pricer=pricer, estimate=estimate)
    stats, limiter = channel.stats, channel.limiter
    stats.total = total
    progress = Progress(stats, label, opts.quiet, limiter)
    it = iter(requests)

    async def worker() -> None:
        for req in it:  # a shared iterator: each worker pulls the next request when it is free
            if stats.stopped:
                return
            try:
                outcome = await channel.complete(req)
            except _Stop:
                return
            if outcome is None:
                return
            pending = sink(req, outcome)
            if pending is not None:       # a sink may score asynchronously (code runs in a sandbox)
                await pending
            progress.update()

    n_workers = max(1, min(limiter.max, total))
    workers = [asyncio.create_task(worker()) for _ in range(n_workers)]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        stats.peak_limit = limiter.peak
        progress.update(final=True)
    return stats


class Channel:
    """One model's send path: the cache, the concurrency limit (fixed or AIMD), retries, the
    --max-cost budget and the counts. `run_requests` drives one for a run's requests; a grader gets
    its own, so it has its own limit and cache entries. `complete` returns one request's outcome,
    or None when sending it would break the budget (and marks the stats stopped); it raises
    FatalError as a run would."""

    def __init__(self, backend: Backend, opts: RunnerOptions, cache=None, pricer=None,
                 estimate: Callable[[Request], float] | None = None):
        self.backend, self.opts, self.cache, self.pricer = backend, opts, cache, pricer
        self.stats = RunStats()
        self.limiter = Limiter(opts)
        self.budget = _Budget(self.stats, opts.max_cost, estimate)

    async def complete(self, req: Request) -> Outcome | None:
        from .cache import cache_key

        stats = self.stats
        key = cache_key(self.backend.endpoint, self.backend.model, req) if self.cache is not None else None
        hit = self.cache.get(key) if key is not None else None
        if hit is not None:
            stats.cached += 1
            out = Outcome(hit, None, 0, 0.0, cached=True, cost=0.0)
        else:
            reserved = self.budget.reserve(req)
            if reserved is None:
                stats.stopped = "max_cost"
                return None
            try:
                out = await _attempt(self.backend, req, self.opts, stats, self.limiter)
            finally:
                stats.reserved -= reserved
            if out.completion is not None:
                if self.pricer is not None and self.pricer.known:
                    u = out.completion.usage
                    out.cost = self.pricer.cost(u.get("prompt_tokens", 0), u.get("completion_tokens", 0))
                    stats.spent += out.cost
                if key is not None:
                    self.cache.put(key, out.completion)
        stats.done += 1
        if out.error:
            stats.errors += 1
        return out

    def summary(self) -> dict:
        s = self.stats
        return {"sent": s.sent, "retries": s.retries, "rate_limited": s.rate_limited, "cached": s.cached,
                "errors": s.errors, "peak_concurrency": self.limiter.peak, "cost_usd": round(s.spent, 10)}

    async def aclose(self) -> None:
        await self.backend.aclose()
