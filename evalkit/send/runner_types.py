"""What the runner is told and what it gives back: its options, each request's outcome, the run's counts.

`RunnerOptions` are the retry, timeout, drain and budget settings on top of the limiter's;
`Outcome` is one request's result as the sink receives it (the completion or the error, attempts,
time inside the backend and in the queue, cache hit, cost); `RunStats` counts a whole run (sent,
answered, cached, retries, rate limits, spend, why it stopped) for its summary.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from evalkit.backends.base import Completion
from evalkit.send.limiter import LimiterOptions


@dataclass
class RunnerOptions(LimiterOptions):
    max_retries: int = 5
    timeout: float = 1800.0
    idle_timeout: float = 120.0
    max_retry_after: float = 600.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    drain_seconds: float = 30.0
    max_cost: float | None = None
    quiet: bool = False


@dataclass
class Outcome:
    completion: Completion | None
    error: str | None
    attempts: int
    latency: float                 # seconds inside the backend, all attempts
    queue_s: float = 0.0           # seconds waiting for a free slot
    cached: bool = False
    cost: float | None = None
    cache_key: str | None = None


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
    malformed: int = 0
    spent: float = 0.0
    stopped: str | None = None
    peak_limit: int = 0
    refusals: Counter = field(default_factory=Counter)   # 4xx reasons while nothing succeeded
    replicas: list | None = None     # with several: each replica's counts
    batches: dict | None = None      # with --batch: the batches created, reattached and their counts
    started: float = field(default_factory=time.monotonic)
