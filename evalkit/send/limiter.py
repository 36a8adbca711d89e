"""How many requests may be in flight at one endpoint, and how much money they may cost.

**Why latency, not only 429s.** A server with one slot (llama.cpp on a laptop) never says 429: it
queues. A limit that only shrinks on rate limits sends 32 requests into that queue, most wait past
the deadline, are abandoned (the server still computes them) and sent again: measured on such a
server, 221 requests for 50 samples. So the limit follows the server's latency, in the spirit of
TCP Vegas and gradient concurrency limiters:

- The shortest latency seen (`base`) is the server with no queue in front of a request. With
  streaming, latency is the time to the first token, which is where queueing shows, whatever the
  length of the reply.
- **Slow start.** From `start_concurrency` (8), each reply that came within `tolerance` x base adds
  `slow_start_gain` (3) to the limit (x4 per round trip), so a server with room for 128 gets 128
  in two round trips. Two replies in a row slower than that end slow start (one may just be a
  long prompt). The first reply only sets the floor (it is fast by definition), so on one slot no
  more than the first 8 ever queue: at 10 s a reply (llama.cpp on a laptop, 5-shot MMLU) the last
  waits 80 s for its first byte, at 30 s 240 s, longer than --idle-timeout; it is not abandoned,
  the server answering the ones before it meanwhile (evalkit.send.replicas: a queue is not a dead
  server).
- **Then by gradient,** once per window of `limit` replies: gradient = tolerance x base / median
  latency of the window, kept within [0.5, 1]. Below 1 (requests are queueing) the limit is
  multiplied by it, plus one (one request kept waiting, so the server never idles between two);
  at 1 it grows by sqrt(limit). A window at the floor latency (within 10% of base) starts slow
  start again, the server having room once more, but only up to twice the limit it starts from
  (TCP's ssthresh, in spirit): every reply to a request sent before the queue forms looks fast,
  so an unbounded slow start would quadruple the limit per round trip straight into the queue
  it left (measured on a 4-slot server: from 7 to 40 in flight). On one slot this settles at 2-3
  requests in flight: the server is never idle, and nobody waits long.
- **Timeouts are congestion:** a request abandoned at its deadline (no byte for --idle-timeout
  while nothing ahead of it made progress either) halves the limit (at most once
  per `cut_interval`), as sustained rate limiting does: more than `pressure_threshold` of the last
  `pressure_window` replies were 429s. A stray 429 is handled by its own retry after Retry-After;
  halving the window for it too would slow a healthy run for nothing.

Each time the limit goes down, `backoff` says when and why (the progress line shows it).

The shortest latency is kept for the whole run (a base that followed recent latencies would
creep up with the queue it should detect). `--concurrency N` fixes the limit instead. Waiting for
a slot is the router's job (evalkit.send.replicas): this class only counts and decides.

`Budget`: with `--max-cost`, a request is only sent if the money spent plus the worst case of
everything in flight plus this request's worst case stays within it.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from evalkit.backends.base import Request


@dataclass
class LimiterOptions:
    concurrency: int | None = None     # None: adaptive between 1 and max_concurrency
    start_concurrency: int = 8
    max_concurrency: int = 128
    cut_interval: float = 1.0
    pressure_window: int = 100        # recent responses looked at for rate-limit pressure
    pressure_threshold: float = 0.2   # share of them that must be 429s before the window is cut
    tolerance: float = 1.5            # latency up to this multiple of the shortest means "no queue"
    slow_start_gain: float = 3.0      # added to the limit per fast reply in slow start


class Limiter:
    """The limit of requests in flight at one endpoint: fixed, or adapted to its latency (see the
    module docstring). `take`/`release` count; `success`, `timed_out`, `rate_limited` adapt."""

    def __init__(self, opts: LimiterOptions):
        self.adaptive = opts.concurrency is None
        self.max = opts.max_concurrency if opts.concurrency is None else opts.concurrency
        self.limit = float(min(opts.start_concurrency, self.max) if self.adaptive else self.max)
        self.opts = opts
        self.base = math.inf
        self.slow_start = True
        self._ceiling = float(self.max)   # where this slow start ends even if no queue shows
        self._slow_replies = 0            # in a row, in slow start
        self._window: list[float] = []
        self._recent: deque[bool] = deque(maxlen=opts.pressure_window)   # True: that response was a 429
        self._recent_429 = 0
        self.in_flight = 0
        self.peak = 0
        self._last_cut = -math.inf
        self.backoff: tuple[float, str] | None = None   # when the limit last went down, and why

    def room(self) -> bool:
        return self.in_flight < int(self.limit)

    def take(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    def release(self) -> None:
        self.in_flight -= 1

    def success(self, latency: float) -> None:
        """A reply came; `latency` is its time to first token (or to the whole reply)."""
        if not self.adaptive:
            return
        self._observe(False)
        if self.base == math.inf:          # the first reply only sets the floor: it is fast by definition
            self.base = latency
            return
        self.base = min(self.base, latency)
        if self.slow_start:
            if latency <= self.opts.tolerance * self.base:
                self._slow_replies = 0
                self.limit = min(self._ceiling, self.limit + self.opts.slow_start_gain)
                self.slow_start = self.limit < self._ceiling or self._ceiling == self.max
                return
            self._slow_replies += 1
            if self._slow_replies < 2:      # one slow reply may be a long prompt; two in a row are a queue
                return
            self.slow_start = False
        self._window.append(latency)
        if len(self._window) >= int(self.limit):
            self._adjust(statistics.median(self._window))
            self._window.clear()

    def _adjust(self, latency: float) -> None:
        gradient = max(0.5, min(1.0, self.opts.tolerance * self.base / latency)) if latency > 0 else 1.0
        grown = self.limit * gradient + (math.sqrt(self.limit) if gradient == 1.0 else 1.0)
        if int(grown) < int(self.limit):
            self._backed_off(max(1.0, grown), f"replies {latency / self.base:.1f}x slower than the fastest: a queue")
        self.limit = max(1.0, min(float(self.max), grown))
        if latency <= 1.1 * self.base:
            self.slow_start, self._slow_replies = True, 0
            self._ceiling = min(float(self.max), 2 * self.limit)

    def timed_out(self) -> None:
        """A request was abandoned at its deadline: the server is overloaded (congestion)."""
        if self.adaptive:
            self._cut(f"a request timed out with {self.in_flight + 1} in flight")

    def rate_limited(self) -> None:
        if not self.adaptive:
            return
        self._observe(True)
        if self._recent_429 > self.opts.pressure_threshold * len(self._recent):
            self._cut(f"{self._recent_429} of the last {len(self._recent)} replies were 429s")

    def _cut(self, why: str) -> None:
        now = time.monotonic()
        if now - self._last_cut >= self.opts.cut_interval:
            self._last_cut = now
            if self.limit > 1:
                self._backed_off(max(1.0, self.limit / 2), why)
            self.limit = max(1.0, self.limit / 2)
            self.slow_start = False
            self._window.clear()

    def _backed_off(self, to: float, why: str) -> None:
        self.backoff = (time.monotonic(), f"backed off to {int(to)}: {why}")

    def _observe(self, limited: bool) -> None:
        if len(self._recent) == self._recent.maxlen:
            self._recent_429 -= self._recent[0]
        self._recent.append(limited)
        self._recent_429 += limited


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
