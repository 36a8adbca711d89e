"""Backends: one file per provider behind one small async protocol.

A backend turns a `Request` (chat messages + generation parameters) into a `Completion`, or raises
one of three errors that say *what kind* of failure it was; the runner alone decides what to do
about it (retry, record, abort):

- `TransientError`: worth retrying (rate limit, 5xx, timeout, dropped connection), with the
  server's requested wait if it gave one;
- `SampleError`: this request will not succeed as it is (e.g. 400 context too long): record it;
- `FatalError`: nothing will succeed (bad key, unknown model, unreachable host, malformed body).

`get_backend("provider/name")` imports `PROVIDERS[provider]` lazily, so a new backend is one new
module plus one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import EvalkitError


@dataclass(frozen=True)
class Request:
    key: str                      # the sample id this request answers
    messages: list[dict]
    params: dict = field(default_factory=dict)   # temperature, max_tokens, stop, top_p, seed


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None = None
    usage: dict = field(default_factory=dict)    # prompt_tokens, completion_tokens
    # With logprobs requested: for each of the first few generated tokens, its top alternatives
    # as [[token, logprob], ...]; the scorer finds the answer token among them.
    top_logprobs: list | None = None


class BackendError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class TransientError(BackendError):
    def __init__(self, reason: str, retry_after: float | None = None, rate_limited: bool = False,
                 connect: bool = False):
        super().__init__(reason)
        self.retry_after = retry_after
        self.rate_limited = rate_limited
        self.connect = connect  # the connection itself failed (refused, DNS, reset before a reply)


class SampleError(BackendError):
    pass


class FatalError(BackendError):
    pass


class Backend(Protocol):
    model: str          # the full "provider/name"
    endpoint: str       # where requests go, for logs and cache keys (never a key or token)

    async def complete(self, request: Request) -> Completion: ...

    async def aclose(self) -> None: ...


PROVIDERS = {
    "openai": "evalkit.backends.openai_api:OpenAIBackend",
    "local": "evalkit.backends.local:LocalBackend",
}


def get_backend(model: str, **options) -> Backend:
    provider, sep, name = model.partition("/")
    if not sep or not name:
        raise EvalkitError(f"--model {model!r}: expected provider/name, e.g. openai/gpt-4o-mini ({', '.join(PROVIDERS)})")
    if provider not in PROVIDERS:
        raise EvalkitError(f"--model {model!r}: unknown provider {provider!r}; known: {', '.join(PROVIDERS)}")
    module, _, cls = PROVIDERS[provider].partition(":")
    return getattr(importlib.import_module(module), cls)(name, **options)
