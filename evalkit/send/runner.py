"""Scheduling requests: the only concurrent code in evalkit.

`run_requests` sends a lazily built stream of requests through a backend and hands every outcome
to a sink as soon as it is known (the pipeline scores and logs it; the runner never looks inside
an answer). Workers pull one request at a time, so memory does not grow with the sample count.

**Retries.** The backend only says what kind of failure it saw:
- `TransientError` (429, 408, 5xx, timeouts, dropped connections, a body that is not a
  completion) is retried up to `max_retries` times. The wait is what the server asked for
  (Retry-After) when it said, else exponential backoff with full jitter: uniform(0, min(cap,
  base * 2**attempt)). A server asking for more than `max_retry_after` seconds ends the sample with
  an error instead of stalling the run. A request waiting to retry holds no concurrency slot.
- A sample that exhausts its retries, or gets a `SampleError` (other 4xx, a reply with no
  content), becomes an outcome with `error` set: recorded, counted, never scored as wrong.
- `FatalError` (bad key, unknown model) stops the run. So do failures before anything has
  succeeded that say the endpoint is wrong: a refused connection, three replies that are not
  chat completions (a web page at --base-url), or the same refusal (a 4xx other than 408/429,
  e.g. a model the server does not serve) of the first `REFUSALS_TO_STOP` requests.

**Time.** Each attempt has two clocks. `idle_timeout`: no progress (no token of a streamed reply,
no byte of a whole one) for that long abandons it, so a server that hangs is noticed in seconds
while a slow one that keeps producing tokens is not cut off. `timeout`: a generous total
deadline (connecting and every byte of the reply), so a server that trickles one byte every few
seconds cannot hang a run either. A request waiting in the server's queue gets no byte until
the ones before it are done: while those make progress it is not idle (evalkit.send.replicas: a
queue is not a dead server), so a one-slot server is not timed out on the queue the limiter
built (`--timeout`, also the client's own limit between two bytes, still counts from sending). An abandoned request may still be computed by the server, so it is not re-sent into the
same queue at once: its retry waits about as long as it had waited
(uniform 0.5-1 x the attempt's time), and the limiter counts the timeout as congestion. An
outcome records the model's time and the time spent waiting for a free slot apart.

**Where.** A `Router` (evalkit.send.replicas) holds the endpoint, or several replicas of the model,
each with its own adaptive limit (evalkit.send.limiter) and health; a failed attempt is retried
preferably on another replica.

**Cache.** Before a request is sent the cache is asked; a hit is an outcome with `cached=True`.
An answer is written to the cache only after the sink accepted it (scored and logged), so a
reply that broke scoring is asked again on the next run instead of replayed forever.

**Stopping.** On Ctrl-C or SIGTERM the run stops sending, waits up to `drain_seconds` for the
requests in flight, hands their outcomes to the sink, and returns with `stopped="interrupted"`;
a second signal stops at once (the requests it cancels end quietly), and later ones are ignored
while the summary is written. With `max_cost`, a request is only sent within the budget;
otherwise the run finishes what is in flight and reports `stopped="max_cost"`.

This module is the scheduling (`Channel`, `run_requests`, stopping on signals, `Progress`); one
request's attempts and their retry waits are in `attempts`, the options, outcomes and counts in
`runner_types`.
"""

from __future__ import annotations

from typing import Any, Sequence

import asyncio
import os
import signal
import sys
import time
from typing import Awaitable, Callable, Iterable

from evalkit.backends.base import Backend, Request
from evalkit.core.errors import EvalkitError
from evalkit.send.attempts import _attempt, _Stop
from evalkit.send.limiter import Budget
from evalkit.send.replicas import Router
from evalkit.send.runner_types import Outcome, RunnerOptions, RunStats


class Channel:
    """One model's send path: the cache, the concurrency limit, retries, the --max-cost budget and
    the counts. `run_requests` drives one for a run's requests; a grader gets its own, so it has
    its own limit and cache entries."""

    def __init__(self, backend: Backend, opts: RunnerOptions, cache=None, pricer=None,
                 estimate: Callable[[Request], float] | None = None, replicas: Sequence[Backend] = ()):
        self.backend, self.opts, self.cache, self.pricer = backend, opts, cache, pricer
        self.stats = RunStats()
        self.router = Router.of([backend, *replicas], opts, quiet=opts.quiet)
        self.budget = Budget(opts.max_cost, estimate)

    async def complete(self, req: Request, remember: bool = True) -> Outcome | None:
        """One request's outcome (from the cache, or sent with retries); None when sending it
        would break the budget. `remember=False` leaves the cache write to `remember()`."""
        from evalkit.send.cache import cache_key

        key = cache_key(self.backend.endpoint, self.backend.model, req, self.backend.wire_identity()) \
            if self.cache is not None else None
        hit = self.cache.get(key) if key is not None else None
        if hit is not None:
            self.stats.cached += 1
            out = Outcome(hit, None, 0, 0.0, cached=True, cost=0.0, cache_key=key)
        else:
            reserved = self.budget.reserve(req)
            if reserved is None:
                self.stats.stopped = self.stats.stopped or "max_cost"
                return None
            out = await self._send(req, reserved)
            out.cache_key = key
            if remember:
                self.remember(out)
        self.stats.done += 1
        self.stats.errors += out.error is not None
        return out

    async def _send(self, req: Request, reserved: float) -> Outcome:
        cost = None
        try:
            out = await _attempt(self.router, req, self.opts, self.stats)
            if self.pricer is not None:
                cost = out.cost = self.pricer.cost_of(out.completion)
            return out
        finally:
            self.budget.settle(reserved, cost)

    def remember(self, out: Outcome) -> None:
        if out.cache_key is not None and out.completion is not None and not out.cached and out.error is None:
            self.cache.put(out.cache_key, out.completion)

    @property
    def spent(self) -> float:
        return self.budget.spent

    def summary(self) -> dict:
        s = self.stats
        return {"sent": s.sent, "retries": s.retries, "rate_limited": s.rate_limited, "cached": s.cached,
                "errors": s.errors, "peak_concurrency": self.router.peak, "cost_usd": round(self.spent, 10)}

    async def aclose(self) -> None:
        for replica in self.router.replicas:
            await replica.backend.aclose()


Sink = Callable[[Request, Outcome], Awaitable[bool] | bool]


async def run_requests(channel: Channel, requests: Iterable[Request], total: int, sink: Sink, label: str) -> RunStats:
    """Send every request through `channel`, calling `sink(request, outcome)` as each finishes; the
    sink returns whether it accepted the outcome (then its answer is cached). Raises FatalError."""
    stats, opts = channel.stats, channel.opts
    stats.total = total
    progress = Progress(stats, label, opts.quiet, channel.router)
    it = iter(requests)
    stopping = asyncio.Event()

    async def worker() -> None:
        for req in it:  # a shared iterator: each worker pulls the next request when it is free
            if stats.stopped or stopping.is_set():
                return
            try:
                outcome = await channel.complete(req, remember=False)
            except _Stop:
                return
            if outcome is None:
                return
            accepted = sink(req, outcome)
            if not isinstance(accepted, bool):       # a sink may score asynchronously (code, graders)
                accepted = await accepted
            if accepted:
                channel.remember(outcome)
            progress.update()

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(channel.router.max, total)))]
    ticker = asyncio.create_task(progress.tick())      # a line on time even while no sample finishes
    try:
        await _until_done_or_signalled(workers, stopping, stats, opts.drain_seconds)
    finally:
        for w in (*workers, ticker):
            w.cancel()
        await asyncio.gather(*workers, ticker, return_exceptions=True)
        stats.peak_limit = channel.router.peak
        if len(channel.router.replicas) > 1:
            stats.replicas = channel.router.describe()
        progress.update(final=True)
    return stats


async def _until_done_or_signalled(workers: list[asyncio.Task], stopping: asyncio.Event, stats: RunStats,
                                   drain: float) -> None:
    """Wait for the workers. The first SIGINT/SIGTERM stops new requests and gives those in flight
    `drain` seconds; a second stops at once; later ones are ignored while the run writes its
    summary and ends. A worker's error (a fatal one) is raised."""
    loop = asyncio.get_running_loop()
    signals = 0
    hard_stop = asyncio.Event()

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        stats.stopped = stats.stopped or "interrupted"
        (stopping if signals == 1 else hard_stop).set()
        if signals == 1:
            sys.stderr.write("\nevalkit: stopping: waiting for the requests in flight (Ctrl-C again to stop now)\n")

    installed = on_signals(loop, on_signal)
    gathered = asyncio.gather(*workers)
    try:
        hard = asyncio.ensure_future(hard_stop.wait())
        either: list[asyncio.Future[Any]] = [gathered, hard]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if stopping.is_set() and not gathered.done():
            await asyncio.wait(either, timeout=drain, return_when=asyncio.FIRST_COMPLETED)
        hard.cancel()
        if gathered.done():
            gathered.result()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
            if signals:            # the run is ending: the summary and the log's last line must not be cut short
                signal.signal(sig, signal.SIG_IGN)
        gathered.add_done_callback(_retrieved)   # a hard stop cancels the workers: nobody awaits this any more


def _retrieved(future: asyncio.Future) -> None:
    """Mark a future's outcome as seen, so asyncio does not print it as 'never retrieved' (with
    the traceback of every request cancelled by a second Ctrl-C)."""
    if not future.cancelled():
        future.exception()


def on_signals(loop: asyncio.AbstractEventLoop, handler: Callable[[], None]) -> list[int]:
    """`handler` on SIGINT and SIGTERM where the loop can take them (the main thread); the ones set."""
    installed: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
        except (ValueError, RuntimeError, NotImplementedError):   # not the main thread
            pass
    return installed


def progress_every() -> float:
    """Seconds between progress lines when stderr is not a terminal (a CI log):
    EVALKIT_PROGRESS_SECONDS, default 10."""
    raw = os.environ.get("EVALKIT_PROGRESS_SECONDS", "").strip()
    try:
        every = float(raw) if raw else 10.0
    except ValueError:
        every = -1.0
    if not 0 < every < float("inf"):
        raise EvalkitError(f"EVALKIT_PROGRESS_SECONDS={raw!r}: expected a number of seconds above 0")
    return every


class Progress:
    """done/total, rate, ETA, errors, retries and requests in flight on stderr (and when the limit
    last backed off, and why): redrawn in place on a terminal, a full line every `progress_every()`
    seconds otherwise (CI logs), nothing with --quiet."""

    def __init__(self, stats: RunStats, label: str, quiet: bool, router: Router):
        self.stats, self.label, self.router = stats, label, router
        self.tty = sys.stderr.isatty()
        self.enabled = not quiet
        self.every = 0.2 if self.tty else progress_every()
        self._last = time.monotonic()
        self.printed = False
        self._noted = -float("inf")     # the last backoff the line said (see Limiter.backoff)

    async def tick(self) -> None:
        """Update on the clock too: a local model on a busy CPU may take a minute per batch."""
        while self.enabled:
            await asyncio.sleep(self.every)
            self.update()

    def update(self, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or not (final or now - self._last >= self.every):
            return
        if final and not self.tty and not self.printed:
            return                 # a short run in a log: its result says it all
        self._last, self.printed = now, True
        s = self.stats
        rate = s.done / max(now - s.started, 1e-9)
        eta = f"{(s.total - s.done) / rate:,.0f}s" if rate > 0 else "?"
        speed = f"{rate:,.1f}/s" if rate >= 1 or rate == 0 else f"{rate * 60:,.1f}/min"   # a local model on a CPU
        line = (f"{self.label}: {s.done}/{s.total} {speed} eta {eta} errors {s.errors} retries {s.retries} "
                f"cached {s.cached} in-flight {self.router.in_flight}/{self.router.limit}")
        if len(self.router.replicas) > 1:
            line += f" replicas up {self.router.up()}/{len(self.router.replicas)}"
        backoff = self.router.backoff_since(self._noted if not self.tty else now - 5)
        if backoff and not final:
            line += f" ({backoff})"
            self._noted = now
        sys.stderr.write(f"\r{line}   " + ("\n" if final else "") if self.tty else line + "\n")
        sys.stderr.flush()
