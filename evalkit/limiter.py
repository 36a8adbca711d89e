"""How many requests may be in flight, and how much money they may cost.

`Limiter`: fixed (`--concurrency N`), or adapted by AIMD, as TCP does: each success adds
1/limit (about +1 per round trip of the whole window), and rate limiting halves it, at most once
per `cut_interval` so one burst of 429s from a single window counts as one signal. "Rate
limiting" means sustained pressure: more than `pressure_threshold` of the last `pressure_window`
responses were 429s. A stray 429 is already handled by its own retry after the server's
Retry-After; halving the window for it too would slow a healthy run for nothing (measured: 10%
random 429s took 2.2x the error-free time with a cut on every 429, within 2x without). A freed
slot is handed straight to the longest waiter, so release never needs to await; a retry goes to
the front of the queue.

`Budget`: with `--max-cost`, a request is only sent if the money spent plus the worst case of
everything in flight plus this request's worst case stays within it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from .backends.base import Request


@dataclass
class LimiterOptions:
    concurrency: int | None = None     # None: adaptive between 1 and max_concurrency
    start_concurrency: int = 32
    max_concurrency: int = 128
    cut_interval: float = 1.0
    pressure_window: int = 100        # recent responses looked at for rate-limit pressure
    pressure_threshold: float = 0.2   # share of them that must be 429s before the window is cut


class Limiter:
    """How many requests may be in flight: fixed, or adapted by AIMD. A freed slot is handed
    straight to the longest waiter, so release never needs to await."""

    def __init__(self, opts: LimiterOptions):
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




class Budget:
    """Money spent and reserved for requests in flight, against `max_cost`."""

    def __init__(self, max_cost: float | None, estimate: Callable[[Request], float] | None):
        self.max_cost, self.estimate = max_cost, estimate
        self.spent = 0.0
        self.reserved = 0.0

    def reserve(self, req: Request) -> float | None:
        """The worst-case cost reserved for `req`, or None if it would break the budget."""
        if self.max_cost is None or self.estimate is None:
            return 0.0
        worst = self.estimate(req)
        if self.spent + self.reserved + worst > self.max_cost:
            return None
        self.reserved += worst
        return worst

    def settle(self, reserved: float, cost: float | None) -> None:
        self.reserved -= reserved
        self.spent += cost or 0.0
