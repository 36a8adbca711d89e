"""The backend contract: evalkit's own request and completion types, capabilities, failure kinds.

A backend turns a `Request` into a `Completion`. Both are evalkit's types, not any provider's
wire format: each backend translates them (OpenAI's JSON, a local model's tensors, ...).

- **Messages** are `{"role": "system"|"user"|"assistant", "content": ...}` where content is a
  string or a list of parts: `{"type": "text", "text": ...}` and
  `{"type": "image", "media_type": "image/png", "data": <base64>}`.
- **Sampling** holds the generation options; `None` leaves the provider's default.
- **Answer by option probability** (`Request.options`, e.g. "ABCD"): no reply is generated; the
  backend returns the log-probabilities of the next token's alternatives (at least the option
  labels it can find among them) as `Completion.top_logprobs[0]`, after one forward pass. An API
  does it with a one-token generation and its top log-probabilities; a local model reads its
  next-token distribution. The scorer renormalises over the options.
- **Capabilities** say what an endpoint can do; they are checked before the first request, so a
  run that needs log-probabilities from a server without them fails at once, in one line.

A completion has one serialisation (`to_fields` / `from_fields`), used by both the response
cache and the run log, so whatever a backend returned (log-probabilities included) survives a
cache hit or a resumed run unchanged.

Failures say what kind they are; the runner alone decides what to do about them:
`TransientError` (retry: rate limit, 5xx, timeout, dropped connection), `SampleError` (this
request will not succeed as it is: record it; `RefusedError` when the server said so with a
4xx), `FatalError` (nothing will succeed: stop).

**Progress.** The runner owns time (the total deadline, the inactivity timeout); only a backend
sees bytes and tokens arrive. A backend calls `note_activity()` whenever part of a reply arrives
(`token=True` when it carried generated text): that pushes the runner's inactivity deadline back
and, the first time a token comes, gives the time to first token, which the concurrency limiter
reads as the server's queueing delay. A backend that never calls it is timed as a whole. A
backend calls `note_sent()` when the request leaves, so the time it spent getting ready (the
first request imports and builds the client) does not count as the server's.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from evalkit.backends.costs import Pricer

if TYPE_CHECKING:
    from evalkit.backends.presets import Provider


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    top_logprobs: int = 0          # > 0: that many alternatives for each of the first generated tokens
    reasoning_effort: str | None = None      # none/minimal/low/medium/high/xhigh/max, in the provider's spelling
    max_reasoning_tokens: int | None = None  # the thinking budget on top of max_tokens (None: the default)
    extra_body: str | None = None            # a JSON object (canonical text) merged into the request body

    def as_dict(self) -> dict:
        """Every field; the reasoning ones only when set, so the identity of a run that uses none
        of them is what it was before they existed (its log still resumes)."""
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        for k in LATER_FIELDS:
            if out[k] is None:
                del out[k]
        return out


LATER_FIELDS = ("reasoning_effort", "max_reasoning_tokens", "extra_body")


@dataclass(frozen=True, slots=True)
class Request:
    key: str                       # the sample (or sample#j) this request answers
    messages: list[dict]
    sampling: Sampling = Sampling()
    options: str | None = None     # answer by option probability over these labels (see the docstring)

    def identity(self) -> dict:
        """Everything that decides the completion, for cache keys (the key field does not)."""
        return {"messages": self.messages, "sampling": self.sampling.as_dict(), "options": self.options}


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: str | None = None
    # prompt_tokens, completion_tokens, and where the server says: reasoning_tokens (part of the
    # completion's), cached_tokens (part of the prompt's); non-negative ints
    usage: dict = field(default_factory=dict)
    # For each of the first few generated positions, its top alternatives as [[token, logprob], ...].
    top_logprobs: list | None = None
    # Seconds the model itself worked on this request, when the backend knows it better than the
    # runner's clock (a local model: the batch that answered it, not the wait for earlier batches).
    # Not part of the serialisation: a cached or resumed reply took no model time.
    model_s: float | None = field(default=None, compare=False)
    # The thinking the server sent beside the content (`message.reasoning`), never scored.
    reasoning: str | None = None

    def to_fields(self) -> dict:
        """The one serialisation, shared by cache values and run-log lines."""
        out: dict[str, Any] = {"completion": self.text, "finish_reason": self.finish_reason, "usage": self.usage}
        if self.top_logprobs is not None:
            out["top_logprobs"] = self.top_logprobs
        if self.reasoning is not None:
            out["reasoning"] = self.reasoning
        return out

    @classmethod
    def from_fields(cls, data: dict) -> "Completion":
        top = data.get("top_logprobs")
        reasoning = data.get("reasoning")
        return cls(text=data["completion"], finish_reason=data.get("finish_reason"), usage=data.get("usage") or {},
                   top_logprobs=[[list(alt) for alt in pos] for pos in top] if top is not None else None,
                   reasoning=reasoning if isinstance(reasoning, str) else None)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an endpoint supports; `None` in `max_top_logprobs` means no log-probabilities at all."""

    max_top_logprobs: int | None = 20
    seed: bool = True
    system_messages: bool = True
    images: bool = True
    option_probs: bool = True      # can answer by option probability (needs log-probabilities)
    effort_levels: tuple[str, ...] = ()   # the --reasoning-effort levels it takes (none: no such control)
    refused: tuple[str, ...] = ()         # request fields the model refuses (not sent)

    @property
    def logprobs(self) -> bool:
        return self.max_top_logprobs is not None


MAX_TOKENS_PER_REPLY = 10_000_000    # usage counts above this are not believed


def vet_completion(c: Completion) -> Completion:
    """A completion as evalkit stores it, whatever the server sent: usage counts that are
    non-negative integers below `MAX_TOKENS_PER_REPLY`, reasoning within the completion's and cached
    within the prompt's (others are dropped and marked `invalid`).
    The text is kept exactly, a lone surrogate included: the log and the cache write it as a JSON
    escape, and whatever cannot use it (the sandbox writing a program) fails that sample only."""
    usage = {k: v for k, v in c.usage.items() if type(v) is int and 0 <= v <= MAX_TOKENS_PER_REPLY}
    for part, whole in (("reasoning_tokens", "completion_tokens"), ("cached_tokens", "prompt_tokens")):
        if part in usage and usage[part] > usage.get(whole, -1):    # a part larger than its whole: not believed
            del usage[part]
    if len(usage) == len(c.usage):
        return c
    return Completion(c.text, c.finish_reason, {**usage, "invalid": 1}, c.top_logprobs, c.model_s, c.reasoning)


@dataclass(slots=True)
class Activity:
    """One attempt's progress, as the backend reports it (see the module docstring)."""

    started: float
    on_progress: Callable[[], None] | None = None
    first_token: float | None = None

    def note(self, token: bool) -> None:
        if token and self.first_token is None:
            self.first_token = time.monotonic()
        if self.on_progress is not None:
            self.on_progress()


ACTIVITY: ContextVar[Activity | None] = ContextVar("evalkit_activity", default=None)


def note_sent() -> None:
    """The request is leaving now: the server's latency counts from here."""
    activity = ACTIVITY.get()
    if activity is not None:
        activity.started = time.monotonic()


def note_activity(token: bool = False) -> None:
    """Part of the reply arrived (`token`: with generated text); see the module docstring."""
    activity = ACTIVITY.get()
    if activity is not None:
        activity.note(token)


class BackendError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class TransientError(BackendError):
    def __init__(self, reason: str, retry_after: float | None = None, rate_limited: bool = False,
                 connect: bool = False, malformed: bool = False, timed_out: bool = False):
        super().__init__(reason)
        self.retry_after = retry_after
        self.rate_limited = rate_limited
        self.connect = connect      # the connection itself failed (refused, DNS) before any byte was exchanged
        self.malformed = malformed  # a 200 reply whose body is not a completion
        self.timed_out = timed_out  # abandoned at a deadline: the server may still be computing it


class SampleError(BackendError):
    pass


class RefusedError(SampleError):
    """The server refused the request as it is (an HTTP 4xx other than 408/429): the same request
    gets the same answer. The same refusal of a run's first requests stops the run (evalkit.send.runner)."""


class FatalError(BackendError):
    pass


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """What evalkit tells a backend it makes: every field has a default, so a backend reads the ones
    it uses and ignores the rest (a local model has no URL or timeout)."""

    base_url: str | None = None        # --base-url (the first one); None: the provider's own
    timeout: float = 120.0             # seconds per request attempt (--timeout); the runner also bounds it
    max_reply_bytes: int = 2 * 2**20   # a longer reply body is refused (--max-reply-bytes)
    max_connections: int = 100         # the HTTP connection pool's size (the run's concurrency ceiling)
    concurrency: int | None = None     # --concurrency if given (None: adaptive); a local model's batch size
    preset: Provider | None = None     # the provider's providers.yaml entry, for a backend serving presets


class Backend:
    """What every backend provides. Subclasses set `model`, `endpoint` and `capabilities` and
    implement `complete`; the rest has defaults.

    **The constructor** `get_backend` calls is `Backend(name, options)`: `name` is the part of
    `--model provider/name` after the slash and `options` a `BackendOptions`. A plug-in declares
    `def __init__(self, name: str, options: BackendOptions)` (no `**_` needed); one whose
    `__init__` has no `options` parameter is still called the old way, with the fields as keywords."""

    model: str                     # the full "provider/name"
    endpoint: str                  # where requests go, for logs and cache keys (never a key or token)
    capabilities: Capabilities = Capabilities()
    remote: bool = True            # requests cross a network: the runner bounds each by --timeout
    reusable: bool = False         # may serve several evals of one command, one event loop after another

    async def open(self, say: Callable[[str], None]) -> None:
        """Get ready before the first request (e.g. load a model), outside any request's deadline;
        `say` reports what is happening as it happens (a line on stderr)."""
        return None

    def max_in_flight(self) -> int | None:
        """The most requests worth sending at once (a local model's batch), or None to let the
        runner find out. More would only wait in a queue inside the backend."""
        return None

    async def complete(self, request: Request) -> Completion:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None

    def describe(self) -> dict:
        """Facts about the backend worth keeping in the run summary (e.g. how a local model loaded)."""
        return {}

    def wire_identity(self) -> dict | None:
        """How this model's requests are spelled beyond the `Request` itself, for cache keys and
        the run's identity (None: nothing beyond it)."""
        return None

    def reasoning_budget(self, sampling: Sampling) -> int:
        """The tokens a request may think on top of its answer's max_tokens (0: none)."""
        return 0

    def not_sent(self, sampling: Sampling) -> frozenset:
        """The request fields this model does not get for `sampling` (refused or ignored)."""
        return frozenset()

    def wire_notes(self) -> dict:
        """How requests to this model differ from the plain request (fields renamed, refused,
        the token limit's name, the model rule that applied), for the log's header; {} if not."""
        return {}

    def pricer(self) -> Pricer:
        """Dollars per token for this model; unknown unless the provider publishes prices."""
        return Pricer(self.model, None, None)

    def batch_api(self):
        """The provider's Batch API for this model (see `evalkit.send.batch`), or None if it has none."""
        return None
