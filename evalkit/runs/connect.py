"""A run's backends: made from a model name and the run's options, kept for the whole command when
it evaluates several evals with one local model, opened with a line that says what it is doing."""

from __future__ import annotations

import asyncio
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from evalkit.backends import Backend, BackendOptions, FatalError, get_backend
from evalkit.core.errors import EvalkitError
from evalkit.plan.run_plan import RunOptions, RunPlan
from evalkit.send.runner_types import RunnerOptions


_kept: ContextVar[dict | None] = ContextVar("evalkit_backends", default=None)


@contextmanager
def one_backend_per_model():
    """Within this block, a reusable backend (a local model) is made once per model and settings
    and serves every eval that asks for it: one command loads a local model once."""
    token = _kept.set({})
    try:
        yield
    finally:
        _kept.reset(token)


def connect(model: str, base_url: str | None, opts: RunOptions, concurrency: int | None, flag: str = "") -> Backend:
    """The backend for `model`; a configuration problem (no key, unknown provider) as a one-line error."""
    kept, key = _kept.get(), (model, base_url, concurrency)
    if kept is not None and key in kept:
        return kept[key]
    try:
        backend = get_backend(model, BackendOptions(
            base_url=base_url, timeout=opts.timeout, max_reply_bytes=opts.max_reply_bytes,
            max_connections=concurrency or RunnerOptions().max_concurrency, concurrency=concurrency))
    except FatalError as exc:
        raise EvalkitError(flag + exc.reason) from None
    if hasattr(backend, "streaming"):
        backend.streaming = opts.stream
    if kept is not None and backend.reusable:
        kept[key] = backend
    return backend


def runner_options(opts: RunOptions, quiet: bool | None = None) -> RunnerOptions:
    return RunnerOptions(concurrency=opts.concurrency, max_retries=opts.max_retries, timeout=opts.timeout,
                         idle_timeout=opts.idle_timeout, max_retry_after=opts.max_retry_after, max_cost=opts.max_cost,
                         quiet=opts.quiet if quiet is None else quiet)


def status_line(plan: RunPlan):
    """How a backend says what it is doing before the first reply (a line on stderr, unless --quiet).
    The stream is bound now: converting a GGUF silences the converter's own bar by swapping
    sys.stderr in its thread, and these lines must still get out meanwhile."""
    err = sys.stderr

    def say(message: str) -> None:
        if not plan.opts.quiet:
            print(f"evalkit: {plan.spec.name}: {message}", file=err, flush=True)
    return say


async def open_backend(backend: Backend, say, every: float) -> None:
    """Get the backend ready (a local model converts and loads: minutes on a busy machine), saying
    every `every` seconds that it still is, so neither a terminal nor a CI log goes quiet."""
    started = time.monotonic()
    task = asyncio.ensure_future(backend.open(say))
    while not task.done():
        await asyncio.wait({task}, timeout=every)
        if not task.done():
            say(f"{backend.model}: still getting ready, {time.monotonic() - started:.0f}s so far")
    task.result()
