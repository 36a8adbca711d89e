"""Where each request goes: one endpoint, or several replicas of one model.

A run outgrows one server before it outgrows one machine: `--base-url` given several times (or
`--base-url @FILE`, one URL a line) spreads a run over replicas of the same model. The router
sends each request to the replica with the fewest requests outstanding, among those with room
under their own limit: every replica has its own `Limiter` (its capacity is found apart: a busy
replica's queue does not slow the others) and its own health.

**Health.** A replica whose requests fail `EJECT_AFTER` times in a row (no connection, a timeout,
a 5xx, a body that is not a completion; not a 429 or a 4xx, which say nothing about the replica)
is taken out; after a cooldown (1 s, doubling to 60 s) it gets one probe request, and comes back
if that succeeds. A request that failed on a replica is retried preferably on another, so when a
replica dies mid-run its requests in flight are retried elsewhere: none is lost, and none is
sent twice (only a failed request is sent again). With one endpoint nothing is ever taken out:
there is nowhere else to go, and the runner's retries and backoff handle it.

**Identity.** The first URL names the run (its log, resume and cache keys); the others can be
added or dropped between runs of the same log: they serve the same model, so which replica
answered does not change the results. The header lists every replica used.

**A queue is not a dead server.** A server with fewer slots than requests in flight (llama.cpp
with one) sends nothing to a request until the ones before it are done, so a request's own
bytes cannot tell a queue from a hung server. Each replica keeps its attempts in flight: while
another one makes progress (a byte of its reply, or its end with a reply), an attempt that has
had no byte of its own is not idle: its `--idle-timeout` starts again (evalkit.send.runner); but
only until as many replies have ended as could have been ahead of it in the server's queue
(those in flight when it was sent, plus the limit: requests sent after it may reach the server
first). Then only its own bytes count. A hung server makes no progress at all, so every attempt
is still abandoned one `--idle-timeout` after the last byte it sent anyone; `--timeout` bounds
each attempt whatever happens.

Waiting for a slot happens here: a freed slot is handed straight to the longest waiter (a retry
goes to the front of the queue: it has already waited out its backoff once, and queueing it
behind fresh requests would stretch the run's tail), so release never needs to await.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from evalkit.backends.base import Backend, TransientError
from evalkit.send.limiter import Limiter, LimiterOptions

EJECT_AFTER = 3
FIRST_COOLDOWN, MAX_COOLDOWN = 1.0, 60.0


@dataclass(eq=False)
class Attempt:
    """One request in flight on a replica, as the queue in front of it sees it."""

    push: Callable[[], None]     # starts its --idle-timeout again
    until: int                   # the replica's count of replies after which only its own bytes count
    answered: bool = False       # a byte of its own reply came: only its own bytes time it now


@dataclass(eq=False)
class Replica:
    backend: Backend
    limiter: Limiter
    failures: int = 0                 # in a row
    down_until: float | None = None   # taken out until then (then one probe)
    probing: bool = False
    cooldown: float = FIRST_COOLDOWN
    sent: int = 0
    ok: int = 0
    connect_failures: int = 0
    ejections: int = 0
    attempts: set = field(default_factory=set)    # in flight, for the queue (see the module docstring)
    replied: int = 0                               # attempts the server answered

    @property
    def url(self) -> str:
        return self.backend.endpoint

    def begin(self, push: Callable[[], None]) -> Attempt:
        """An attempt leaves for this replica, behind the ones already in flight."""
        attempt = Attempt(push, self.replied + len(self.attempts) + int(self.limiter.limit))
        self.attempts.add(attempt)
        return attempt

    def progress(self, attempt: Attempt) -> None:
        """Part of `attempt`'s reply arrived: those queued with it are not idle either."""
        attempt.answered = True
        self._push_queued()

    def end(self, attempt: Attempt, replied: bool) -> None:
        """`attempt` is done; `replied`: the server answered it (a reply or an HTTP error), which
        is progress for those queued with it. One abandoned at a deadline is not."""
        self.attempts.discard(attempt)
        if replied:
            self.replied += 1
            self._push_queued()

    def _push_queued(self) -> None:
        for waiting in self.attempts:
            if not waiting.answered and self.replied < waiting.until:
                waiting.push()

    def usable(self, now: float) -> bool:
        if self.down_until is None:
            return self.limiter.room()
        return now >= self.down_until and not self.probing


@dataclass
class _Waiter:
    future: asyncio.Future
    avoid: Replica | None = None


@dataclass
class Router:
    """The replicas of one model and the queue of requests waiting for a slot on any of them."""

    replicas: list[Replica]
    quiet: bool = True
    _waiters: deque = field(default_factory=deque)
    _timer: asyncio.TimerHandle | None = None

    @classmethod
    def of(cls, backends: list[Backend], opts: LimiterOptions, quiet: bool = True) -> "Router":
        return cls([Replica(b, Limiter(opts)) for b in backends], quiet)

    @property
    def in_flight(self) -> int:
        return sum(r.limiter.in_flight for r in self.replicas)

    @property
    def limit(self) -> int:
        return sum(int(r.limiter.limit) for r in self.replicas if r.down_until is None)

    @property
    def max(self) -> int:
        return sum(r.limiter.max for r in self.replicas)

    @property
    def peak(self) -> int:
        return sum(r.limiter.peak for r in self.replicas)

    async def acquire(self, retry: bool = False, avoid: Replica | None = None) -> Replica:
        """A replica with a free slot (taken); waits in line when none has one."""
        if not self._waiters:
            replica = self._pick(avoid)
            if replica is not None:
                self._take(replica)
                return replica
        waiter = _Waiter(asyncio.get_running_loop().create_future(), avoid)
        self._waiters.appendleft(waiter) if retry else self._waiters.append(waiter)
        self._arm()
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():   # handed a slot as we were cancelled
                self.release(waiter.future.result(), None, None)
            raise

    def _pick(self, avoid: Replica | None) -> Replica | None:
        now = time.monotonic()
        usable = [r for r in self.replicas if r.usable(now)]
        if len(usable) > 1 and avoid in usable:
            usable.remove(avoid)
        return min(usable, key=lambda r: r.limiter.in_flight, default=None)

    def _take(self, replica: Replica) -> None:
        replica.limiter.take()
        replica.sent += 1
        if replica.down_until is not None:
            replica.probing = True

    def release(self, replica: Replica, failure: Exception | None, latency: float | None) -> None:
        """The request on `replica` ended: `failure` None (with its latency signal) or why."""
        replica.limiter.release()
        if failure is None and latency is not None:
            replica.ok += 1
            replica.limiter.success(latency)
            self._healthy(replica)
        elif isinstance(failure, TransientError):
            replica.connect_failures += failure.connect
            if failure.timed_out:
                replica.limiter.timed_out()
            if failure.rate_limited:
                replica.limiter.rate_limited()
            elif len(self.replicas) > 1:
                self._failed(replica)
        elif failure is not None and replica.probing:
            replica.probing = False             # a 4xx: the replica answered, so it is alive
            self._healthy(replica)
        elif replica.probing:
            replica.probing = False             # the probe was never sent (the run is stopping): probe again later
        self._wake()

    def _healthy(self, replica: Replica) -> None:
        replica.failures = 0
        if replica.down_until is not None:
            replica.down_until, replica.probing, replica.cooldown = None, False, FIRST_COOLDOWN
            self._say(f"replica {replica.url} is back")

    def _failed(self, replica: Replica) -> None:
        replica.failures += 1
        if replica.probing or (replica.down_until is None and replica.failures >= EJECT_AFTER):
            if replica.down_until is None:
                replica.ejections += 1
                self._say(f"replica {replica.url} taken out after {replica.failures} failures in a row; "
                          "probing it again later")
            else:
                replica.cooldown = min(MAX_COOLDOWN, replica.cooldown * 2)
            replica.down_until, replica.probing = time.monotonic() + replica.cooldown, False

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters[0]
            if waiter.future.done():
                self._waiters.popleft()
                continue
            replica = self._pick(waiter.avoid)
            if replica is None:
                break
            self._waiters.popleft()
            self._take(replica)
            waiter.future.set_result(replica)
        self._arm()

    def _arm(self) -> None:
        """With requests waiting and every replica taken out, wake up when the first may be probed."""
        downs = [r.down_until for r in self.replicas if r.down_until is not None and not r.probing]
        if not self._waiters or not downs or (self._timer is not None and not self._timer.cancelled()):
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timer = None
            self._wake()
        self._timer = loop.call_later(max(0.0, min(downs) - time.monotonic()) + 0.001, fire)

    def unreachable(self) -> bool:
        """Every replica refused connections and none ever answered: the URLs are wrong."""
        return all(r.connect_failures and not r.ok for r in self.replicas)

    def describe(self) -> list[dict]:
        return [{"url": r.url, "sent": r.sent, "ok": r.ok, "taken_out": r.ejections,
                 "peak_concurrency": r.limiter.peak} for r in self.replicas]

    def backoff_since(self, since: float) -> str | None:
        """The latest time a limit went down after `since`, and why (with replicas, where)."""
        latest = max(((r.limiter.backoff, r) for r in self.replicas if r.limiter.backoff and r.limiter.backoff[0] > since),
                     key=lambda b: b[0][0], default=None)
        if latest is None:
            return None
        (_, why), replica = latest
        return f"{replica.url} {why}" if len(self.replicas) > 1 else why

    def up(self) -> int:
        return sum(r.down_until is None for r in self.replicas)

    def _say(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(f"\nevalkit: {text}\n")


def parse_urls(values: tuple[str, ...] | list[str]) -> list[str]:
    """--base-url values as URLs: each a URL, or @FILE naming a file of URLs (one a line, # comments).
    Raises ValueError with the one-line reason."""
    out: list[str] = []
    for value in values:
        if value.startswith("@"):
            out += _url_file(value[1:])
        else:
            out.append(_url(value, "--base-url"))
    if len(set(out)) != len(out):
        dup = next(u for u in out if out.count(u) > 1)
        raise ValueError(f"--base-url {dup}: given twice")
    return out


def _url_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read(1_000_000).splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--base-url @{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    urls = [_url(line.strip(), f"{path}:{i}") for i, line in enumerate(lines, 1)
            if line.strip() and not line.lstrip().startswith("#")]
    if not urls:
        raise ValueError(f"--base-url @{path}: no URL in the file")
    return urls


def _url(value: str, where: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - reading it is the check: a port out of range raises ValueError
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where}: {value!r} is not an http(s) URL (e.g. http://127.0.0.1:8000/v1)")
    return value
