"""One request's attempts: each call within its two deadlines, and the wait (or the error) after a failure.

`_attempt` takes a slot on a replica, calls the backend (`_call`, with `--idle-timeout` pushed back
by progress of the request or of those queued with it, `_in_queue`, and `--timeout` over it all),
and after a failure asks `_retry_wait` how long to wait: what the server asked for, backoff with
full jitter, about the attempt's own time after a timeout, or the error that ends the sample. A run
whose first requests are all refused alike (`REFUSALS_TO_STOP`), unreachable, or answered by
something that is not an OpenAI-compatible endpoint stops with a `FatalError`; `_Stop` ends a
worker when the run is stopping.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time

from evalkit.backends.base import (
    ACTIVITY,
    Activity,
    Completion,
    FatalError,
    RefusedError,
    Request,
    SampleError,
    TransientError,
    vet_completion,
)
from evalkit.send.replicas import Attempt, Replica, Router
from evalkit.send.runner_types import Outcome, RunnerOptions, RunStats


class _Stop(Exception):
    """Raised inside a worker when the run is stopping and no new request may be sent."""


async def _attempt(router: Router, req: Request, opts: RunnerOptions, stats: RunStats) -> Outcome:
    latency = queued = 0.0
    failed_on = None
    for attempt in itertools.count(1):
        t0 = time.monotonic()
        replica = await router.acquire(retry=attempt > 1, avoid=failed_on)
        t1 = time.monotonic()
        queued += t1 - t0
        if stats.stopped in ("fatal", "interrupted"):  # the run stopped while this one waited for a slot
            router.release(replica, None, None)
            raise _Stop
        failure, completion = await _call(router, replica, req, opts, stats)
        spent = time.monotonic() - t1
        latency += spent
        if failure is None:
            return Outcome(completion, None, attempt, latency, queued)
        wait = _retry_wait(failure, attempt, opts, stats, router, spent)
        if isinstance(wait, str):
            return Outcome(None, wait, attempt, latency, queued)
        stats.retries += 1
        failed_on = replica
        await asyncio.sleep(wait)
    raise AssertionError("unreachable")


async def _call(router: Router, replica: Replica, req: Request, opts: RunnerOptions,
                stats: RunStats) -> tuple[SampleError | TransientError | None, Completion | None]:
    """One attempt within its deadlines: (failure, completion). A fatal error stops the run."""
    stats.sent += 1
    failure: SampleError | TransientError | FatalError | None = None
    activity = Activity(time.monotonic())
    queued = None
    try:
        remote = replica.backend.remote
        async with asyncio.timeout(opts.timeout if remote else None) as total:
            async with asyncio.timeout(opts.idle_timeout if remote else None) as idle:
                if remote:
                    queued = _in_queue(replica, activity, idle, opts)
                token = ACTIVITY.set(activity)
                try:
                    completion = vet_completion(await replica.backend.complete(req))
                finally:
                    ACTIVITY.reset(token)
    except TimeoutError:
        failure = TransientError(f"no complete reply within --timeout {opts.timeout:g}s" if total.expired() else
                                 f"no reply for --idle-timeout {opts.idle_timeout:g}s", timed_out=True)
    except (SampleError, TransientError) as exc:
        failure = exc
    except FatalError as exc:
        stats.stopped = "fatal"
        failure = exc
        raise
    except Exception as exc:  # a backend bug or a reply nobody foresaw: this sample's error, not the run's end
        failure = SampleError(f"the backend failed on this request: {type(exc).__name__}: {str(exc)[:200]}")
    finally:
        done = time.monotonic()
        if queued is not None:
            replica.end(queued, replied=not (isinstance(failure, TransientError) and (failure.timed_out or failure.connect)))
        router.release(replica, failure, (activity.first_token or done) - activity.started)
    if isinstance(failure, (SampleError, TransientError)):   # a FatalError was raised above
        return failure, None
    stats.ok += 1
    return None, completion


def _in_queue(replica: Replica, activity: Activity, idle: asyncio.Timeout, opts: RunnerOptions) -> Attempt:
    """The attempt in its replica's queue (evalkit.send.replicas): a byte of its own, or while it has had
    none, progress of those queued with it, pushes back its idle deadline. (Not --timeout: the
    client has the same deadline between two bytes, which the runner cannot move.)"""
    loop = asyncio.get_running_loop()

    def waited() -> None:
        if not idle.expired():
            idle.reschedule(loop.time() + opts.idle_timeout)

    def progressed() -> None:
        waited()
        replica.progress(attempt)

    attempt = replica.begin(waited)
    activity.on_progress = progressed
    return attempt


def _retry_wait(failure: SampleError | TransientError, attempt: int, opts: RunnerOptions, stats: RunStats, router: Router,
                spent: float) -> float | str:
    """Seconds to wait before the next attempt, or the error that ends the sample."""
    if isinstance(failure, SampleError):
        _refused(failure, stats)
        return failure.reason
    if stats.ok == 0 and ((failure.connect and router.unreachable()) or (failure.malformed and stats.malformed >= 2)):
        stats.stopped = "fatal"
        hint = "is the server running? check --base-url" if failure.connect else \
            "is --base-url an OpenAI-compatible endpoint?"
        raise FatalError(f"{failure.reason} ({hint})")
    stats.malformed += failure.malformed
    stats.rate_limited += failure.rate_limited
    if attempt > opts.max_retries:
        return f"gave up after {attempt} attempts: {failure.reason}"
    if failure.retry_after is not None and failure.retry_after > opts.max_retry_after:
        return (f"the server asked to retry after {failure.retry_after:,.0f}s, more than --max-retry-after "
                f"{opts.max_retry_after:g}s: {failure.reason}")
    if failure.retry_after is not None:
        return failure.retry_after
    if failure.timed_out:           # the server may still be computing it: let its queue drain first
        return min(opts.max_retry_after, spent * random.uniform(0.5, 1.0))
    return random.uniform(0, min(opts.backoff_cap, opts.backoff_base * 2 ** (attempt - 1)))


REFUSALS_TO_STOP = 3


def _refused(failure: SampleError, stats: RunStats) -> None:
    """The same refusal of the run's first requests, none answered: the run is wrong (a model the
    server does not serve), not its samples, and sending the rest would only repeat it."""
    if not isinstance(failure, RefusedError) or stats.ok:
        return
    stats.refusals[failure.reason] += 1
    if stats.refusals[failure.reason] >= REFUSALS_TO_STOP:
        stats.stopped = "fatal"
        raise FatalError(f"{failure.reason} (the server refused the first {REFUSALS_TO_STOP} requests alike, "
                         "and answered none)")
