"""The OpenAI chat-completions API, or any server that speaks it: every provider preset.

Uses the official `openai.AsyncOpenAI` client (`AsyncAzureOpenAI` for Azure, which puts the
deployment and `api-version` in the URL and the key in an `api-key` header) with its own retries
switched off: the runner owns retries, so a rate limit is never retried twice over. Which URL,
key variable and capabilities apply comes from the provider's preset (`evalkit.backends.presets`,
`registry/providers.yaml`): `openai/` reads `--base-url`, else `OPENAI_BASE_URL`, else OpenAI,
and the key from `OPENAI_API_KEY` (a local server needs none). A preset may rename request
fields (Mistral's `random_seed`) and withhold what its endpoint ignores (`seed`), which
`describe()` records in the run summary.

Requests go through the client's public low-level `post()` with a body that is already plain JSON
types (messages are built by evalkit as dicts of strings), and responses come back as the raw HTTP
response, decoded with `json.loads` and checked here by hand. That skips the client's per-request
walk over typed-dict annotations and its pydantic response models, which were most of its CPU
cost per request, while keeping its transport, headers, auth and error types. A malformed body
becomes one clear `FatalError`.

**Streaming.** Replies are streamed (`"stream": true`, server-sent events, with
`stream_options.include_usage` so the last event carries the token counts) and read from the same
raw response: each event reports progress to the runner (`note_activity`), so a slow but working
server is timed by the gap between tokens, not by the length of its reply, and the first token's
arrival measures the server's queue. A streamed reply keeps everything a whole one has: the text
(a UTF-16 surrogate pair split over two events is joined; a lone one survives as in a whole
reply), `finish_reason`, usage, the first positions' top log-probabilities, the
`--max-reply-bytes` cap (on the text, on each event however many `data:` lines it spans, and on
the bytes that carry no content: comments, keep-alives, empty events; the stream as a whole may
be `STREAM_OVERHEAD` times larger, each token being wrapped in a JSON chunk), and no content at
all is this sample's error. Only an event that carries content (text, thinking, finish_reason,
usage) pushes `--idle-timeout` back: keep-alive comments do not. A reply whose finish_reason and
usage came is whole: a server that then never sends `[DONE]` is left after `DONE_GRACE`. Of each
chunk's choices, the first with index 0 is read, as in a whole reply. Not streamed: answers by option probability (one token and its
alternatives: nothing to stream); short replies (`max_tokens` at most `STREAM_MIN_TOKENS`, e.g.
a multiple-choice letter), whose whole reply comes within a few tokens of the first, so the
stream would only cost CPU at both ends (measured: a tenth more client CPU over 1,000 requests);
and, with `--no-stream`, every request (a server whose streaming is broken). A server that
ignores `stream` and answers with one JSON body is read as one.
"""

from __future__ import annotations

import dataclasses
import email.utils
import functools
import json
import math
import re
import time

from evalkit.backends.costs import Pricer
from evalkit.backends.base import Backend, BackendOptions, Capabilities, Completion, FatalError, RefusedError, Request, SampleError, TransientError, note_activity, note_sent
from evalkit.backends.openai_batch import BatchTarget, OpenAIBatches
from evalkit.backends.openai_wire import REASONING_FIELDS, Wire, parse_completion, read_usage, reasoning_of, short_error, top_logprobs, wire_body

openai = httpx = None  # the client modules, imported by the first backend that sends a request


class OpenAIBackend(Backend):
    def __init__(self, name: str, options: BackendOptions | None = None, api_key: str | None = None):
        from evalkit.backends.presets import connection, registry_providers

        options = options or BackendOptions()
        timeout, max_connections, max_reply_bytes = options.timeout, options.max_connections, options.max_reply_bytes
        self.preset = options.preset or registry_providers()["openai"]
        self.name = name
        self.model = f"{self.preset.name}/{name}"
        self.connection = connection(self.preset, name, options.base_url, api_key)
        self.endpoint = self.connection.endpoint
        self.wire = Wire.for_preset(self.preset, name)
        self.capabilities = model_capabilities(self.preset, name, self.wire)
        self.key_hint = self.preset.key_hint()
        self._settings = (self.connection.key, timeout, max_connections)
        self.max_reply_bytes = max_reply_bytes
        self._client = None

    def _connect(self):
        """Build the client on first use: a run answered from its log or the cache never imports it."""
        global openai, httpx
        import openai

        try:  # openai >= 3 is built on httpx2; older releases on httpx
            import httpx2 as httpx
        except ImportError:  # pragma: no cover - depends on the installed client
            import httpx

        key, timeout, max_connections = self._settings
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._response_type = httpx.Response
        http = httpx.AsyncClient(limits=limits, timeout=timeout, verify=_tls_context())
        conn = self.connection
        if conn.kind == "azure":
            self._client = openai.AsyncAzureOpenAI(api_key=key, azure_endpoint=conn.base_url, api_version=conn.api_version,
                                                   max_retries=0, timeout=timeout, http_client=http)
        else:
            self._client = openai.AsyncOpenAI(api_key=key, base_url=conn.base_url, max_retries=0, timeout=timeout,
                                              http_client=http)
        if self.preset.name != "openai":   # OPENAI_ORG_ID / OPENAI_PROJECT_ID are OpenAI's, not another vendor's
            self._client.organization = self._client.project = None

    streaming = True     # stream replies (see the module docstring); `--no-stream` turns it off

    async def complete(self, request: Request) -> Completion:
        if self._client is None:
            self._connect()
        body = wire_body(self.name, request, self.wire)
        note_sent()
        if self.streaming and streamable(request, self.wire.budget(request.sampling)):
            return await self._stream(body, request)
        raw = await self._post(body)
        return parse_completion(raw, self.endpoint, request)

    async def _post(self, body: dict) -> bytes:
        """The reply's body, read up to `max_reply_bytes` (a larger reply is this sample's error)."""
        http = await self._open(body)
        try:
            return await _read_capped(http, self.max_reply_bytes)
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise TransientError(f"the connection dropped while the reply was read: {short_error(exc)}") from None
        finally:
            await http.aclose()

    async def _stream(self, body: dict, request: Request) -> Completion:
        """A streamed reply, read event by event (a server that ignores `stream` is read whole)."""
        http = await self._open({**body, "stream": True, "stream_options": {"include_usage": True}})
        try:
            if not http.headers.get("content-type", "").startswith("text/event-stream"):
                return parse_completion(await _read_capped(http, self.max_reply_bytes), self.endpoint, request)
            return await read_stream(http, self.max_reply_bytes, self.endpoint, request)
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise TransientError(f"the connection dropped while the reply was read: {short_error(exc)}") from None
        finally:
            await http.aclose()

    async def _open(self, body: dict):
        """The raw HTTP response to a chat-completions request, its body not yet read."""
        try:
            resp = await self._client.post("/chat/completions", body=body, cast_to=openai.AsyncAPIResponse[bytes],
                                           options={"headers": {"X-Stainless-Raw-Response": "stream"}})
        except openai.APIStatusError as exc:
            raise _classify_status(exc, self.endpoint, self.name, self.key_hint) from None
        except openai.APITimeoutError:
            raise TransientError("the request timed out", timed_out=True) from None
        except openai.APIConnectionError as exc:
            raise _connection_error(exc, self.endpoint) from None
        return resp.http_response

    def pricer(self) -> Pricer:
        """Prices from the preset's own table (none recorded: unknown)."""
        return Pricer.from_table(self.model, self.preset.prices)

    def describe(self) -> dict:
        """The provider, and what evalkit withholds or renames for it (kept in the run summary)."""
        return {"provider": self.preset.name, **self.wire_notes()}

    def wire_identity(self) -> dict | None:
        return self.wire.identity()

    def reasoning_budget(self, sampling) -> int:
        return self.wire.budget(sampling)

    def not_sent(self, sampling) -> frozenset:
        return self.wire.not_sent(sampling)

    def wire_notes(self) -> dict:
        out: dict = {}
        if "seed" in self.wire.unsent:
            out["seed"] = f"not sent: {self.preset.name} ignores or lacks it (see `evalkit providers`)"
        if self.wire.rule:
            out["model_rule"] = {"match": self.wire.rule, "reasoning": self.wire.reasoning,
                                 "token_limit": self.wire.token_limit}
        if self.wire.refused:
            out["not_sent"] = {f: f"{self.name} refuses it ({self.preset.name} model rule {self.wire.rule})"
                               for f in sorted(self.wire.refused)}
        if self.wire.thinking_refused:
            out["not_sent_while_thinking"] = sorted(self.wire.thinking_refused)
        if self.wire.renames:
            out["renamed"] = dict(self.wire.renames)
        if self.connection.api_version:
            out["api_version"] = self.connection.api_version
        return out

    def batch_api(self):
        """The Batch API at this endpoint. Azure's (global-batch deployments, its own URL scheme) is
        not spoken: None, and `--batch` is refused before anything is sent."""
        if self.connection.kind == "azure":
            return None
        key, timeout, _ = self._settings
        return OpenAIBatches(BatchTarget(self.endpoint, self.model, self.name, self.wire, key, timeout,
                                         self.max_reply_bytes))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()


def model_capabilities(preset, name: str, wire: Wire) -> Capabilities:
    """The preset's capabilities as its model rule for `name` changes them."""
    caps = preset.capabilities.capabilities()
    rule = preset.rule_for(name)
    if rule is None:
        return caps
    logprobs = caps.max_top_logprobs if rule.logprobs and not ({"logprobs", "top_logprobs"} & wire.refused) else None
    return dataclasses.replace(caps, max_top_logprobs=logprobs, option_probs=logprobs is not None,
                               seed=caps.seed and "seed" not in wire.refused,
                               effort_levels=tuple(rule.effort), refused=tuple(sorted(wire.refused)))


STREAM_MIN_TOKENS = 32     # replies of at most this many tokens are asked whole (see the module docstring)


def streamable(request: Request, reasoning_budget: int = 0) -> bool:
    """Whether streaming the reply gives anything (see the module docstring); a reply that may
    think first is long whatever its answer's budget."""
    limit = request.sampling.max_tokens
    short = limit is not None and limit + reasoning_budget <= STREAM_MIN_TOKENS
    return request.options is None and not short


async def _read_capped(http, limit: int) -> bytes:
    declared = http.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise SampleError(f"the reply is larger than --max-reply-bytes {limit:,} ({int(declared):,} bytes)")
    chunks, size = [], 0
    async for chunk in http.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise SampleError(f"the reply is larger than --max-reply-bytes {limit:,}")
        chunks.append(chunk)
        note_activity()
    return b"".join(chunks)


async def read_stream(http, limit: int, endpoint: str, request: Request) -> Completion:
    """A server-sent-events reply as evalkit's Completion (see the module docstring). `limit` caps
    the reply's text, each event, and the bytes that carry no content (comments, empty events);
    the stream as a whole may carry `STREAM_OVERHEAD` times more (each token comes wrapped in a
    JSON chunk of its own). Only an event that carries content is progress for --idle-timeout."""
    events, chunks, size, junk = _EventReader(limit), _Chunks(endpoint, limit), 0, 0
    body = http.aiter_bytes()
    while (data := await _next_part(body, chunks.ended)) is not None:
        size += len(data)
        if size > limit * STREAM_OVERHEAD:
            raise SampleError(f"the streamed reply is larger than {STREAM_OVERHEAD} x --max-reply-bytes {limit:,}")
        progress = False
        for event, raw in events.feed(data):
            if event == b"[DONE]":
                chunks.done = True
                break
            if chunks.add(event):
                progress = True
            else:
                junk += raw
        junk, events.other = junk + events.other, 0
        if junk > limit:
            raise SampleError(f"the stream sent more than --max-reply-bytes {limit:,} bytes without content "
                              "(comments, keep-alives, empty events)")
        if progress:
            note_activity(token=chunks.had_text)
        if chunks.done:
            await _drain(body)
            break
    return chunks.completion(request, done=chunks.done)


DONE_GRACE = 1.0     # seconds to wait for [DONE] once finish_reason and usage have come


async def _next_part(body, ended: bool) -> bytes | None:
    """The next bytes of the body (None at its end). Once the reply is whole (finish_reason and
    usage came), a server that never sends [DONE] nor ends the body is left after `DONE_GRACE`."""
    import asyncio

    try:
        if not ended:
            return await anext(body)
        return await asyncio.wait_for(anext(body), DONE_GRACE)
    except StopAsyncIteration:
        return None
    except TimeoutError:
        return None


async def _drain(body, grace: float = 1.0, most: int = 65536) -> None:
    """Read what follows [DONE] (the end of the chunked body), so the connection can be reused; a
    server that keeps it open is left after `grace` seconds."""
    import asyncio
    import contextlib

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace):
            async for data in body:
                most -= len(data)
                if most < 0:
                    return


STREAM_OVERHEAD = 64


class _EventReader:
    """Server-sent events from bytes as they arrive: (data, bytes on the wire) of each complete
    event. Comments and blank lines outside an event are counted in `other`, never kept; an event
    or a line larger than `limit` is this sample's error."""

    def __init__(self, limit: int):
        self.pending, self.data, self.limit = b"", [], limit
        self.size = 0          # the wire bytes of the event being read
        self.other = 0         # wire bytes of comments and stray blank lines since the caller last looked

    def feed(self, chunk: bytes) -> list[tuple[bytes, int]]:
        if b"\n" not in chunk:
            self.pending += chunk
            if len(self.pending) > self.limit:
                raise SampleError(f"the reply is larger than --max-reply-bytes {self.limit:,}")
            return []
        *lines, self.pending = (self.pending + chunk).split(b"\n")
        out = []
        for line in lines:
            wire, line = len(line) + 1, line.rstrip(b"\r")
            if not line:
                if self.data:
                    out.append((b"\n".join(self.data), self.size + wire))
                    self.data, self.size = [], 0
                else:
                    self.other += wire
            elif line.startswith(b":"):
                self.other += wire
            else:
                self.size += wire
                if self.size > self.limit:
                    raise SampleError(f"one event of the stream is larger than --max-reply-bytes {self.limit:,}")
                if line.startswith(b"data:"):
                    self.data.append(line[6:] if line[5:6] == b" " else line[5:])
        return out


class _Chunks:
    """The chat-completion chunks of one stream, put together: text, finish_reason, usage and the
    first positions' log-probabilities. Of a chunk's choices only the first with index 0 is read
    (as in a whole reply)."""

    def __init__(self, endpoint: str, limit: int):
        self.endpoint, self.limit, self.size = endpoint, limit, 0
        self.parts: list[str] = []
        self.finish = None
        self.usage: dict = {}
        self.positions: list = []
        self.thinking: dict[str, list[str]] = {}   # reasoning field -> its streamed parts
        self.had_text = False
        self.done = False                          # [DONE] came

    @property
    def ended(self) -> bool:
        """finish_reason and usage have come: the reply is whole, [DONE] or not."""
        return self.finish is not None and bool(self.usage)

    def add(self, event: bytes) -> bool:
        """Read one event; True if it carried content (text, thinking, finish_reason, usage, logprobs)."""
        try:
            obj = json.loads(event)
            if isinstance(obj, dict) and "error" in obj:
                raise TransientError(f"{self.endpoint} reported an error mid-stream: {server_words(json.dumps(obj))}")
            choices = obj.get("choices") or []
            content = False
            if isinstance(obj.get("usage"), dict):
                self.usage, content = obj["usage"], True
            for choice in choices:
                if choice.get("index", 0) == 0:
                    return self._choice(choice) or content
            return content
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            snippet = event[:80].decode("utf-8", "replace")
            raise TransientError(f"malformed stream event from {self.endpoint} ({short_error(exc)}): {snippet!r}",
                                 malformed=True) from None

    def _choice(self, choice: dict) -> bool:
        delta = choice.get("delta") or {}
        text, grown = delta.get("content"), self.size
        if text is not None:
            if not isinstance(text, str):
                raise TypeError("delta.content is not a string")
            self._grow(self.parts, text)
        for name in REASONING_FIELDS:      # thinking is progress too, and counts towards the size cap
            if isinstance(delta.get(name), str):
                self._grow(self.thinking.setdefault(name, []), delta[name])
        content = self.size > grown
        if choice.get("finish_reason"):
            self.finish, content = choice["finish_reason"], True
        lp = choice.get("logprobs")
        if isinstance(lp, dict) and isinstance(lp.get("content"), list) and len(self.positions) < 3:
            self.positions.extend(lp["content"][: 3 - len(self.positions)])
            content = True
        return content

    def _grow(self, parts: list[str], text: str) -> None:
        parts.append(text)
        self.had_text = self.had_text or bool(text)
        self.size += len(text.encode("utf-8", "surrogatepass"))
        if self.size > self.limit:
            raise SampleError(f"the reply is larger than --max-reply-bytes {self.limit:,}")

    def completion(self, request: Request, done: bool) -> Completion:
        if not done and self.finish is None:
            raise TransientError(f"the stream from {self.endpoint} ended before the reply was complete")
        reasoning = reasoning_of({name: _joined(parts) for name, parts in self.thinking.items()})
        if not self.parts and reasoning is None and self.finish != "length":
            raise SampleError("the reply has no content (message.content is null)")
        wants_logprobs = request.options is not None or request.sampling.top_logprobs > 0
        return Completion(text=_joined(self.parts), finish_reason=self.finish, usage=read_usage(self.usage),
                          top_logprobs=top_logprobs({"logprobs": {"content": self.positions}}) if wants_logprobs
                          else None, reasoning=reasoning)


def _joined(parts: list[str]) -> str:
    """The streamed text; a surrogate pair cut over two events is joined again."""
    text = "".join(parts)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _connection_error(exc, endpoint: str) -> TransientError:
    """A refused or unresolvable connection (nothing listens there) apart from one that dropped."""
    cause = exc.__cause__ or exc
    if isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout)):
        return TransientError(f"cannot connect to {endpoint}: {short_error(cause)}", connect=True)
    return TransientError(f"the connection to {endpoint} dropped before a reply: {short_error(cause)}")


def retry_after_seconds(headers) -> float | None:
    """The wait a server asked for: Retry-After (seconds or HTTP date) or x-ratelimit-reset-*.
    A value that is not a number of seconds ("nan") is no request at all; an infinite one stays
    infinite, so the runner ends the sample as asking more than --max-retry-after."""
    value = headers.get("retry-after")
    if value:
        try:
            seconds = float(value)
            return None if math.isnan(seconds) else max(0.0, seconds)
        except ValueError:
            pass
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (ValueError, TypeError, IndexError, OverflowError):
            pass                   # neither seconds nor a date: the reset headers may still say
    waits = [_duration(headers.get(h)) for h in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")]
    waits = [max(0.0, w) for w in waits if w is not None and not math.isnan(w)]
    return max(waits) if waits else None


def _duration(value: str | None) -> float | None:
    """OpenAI's reset headers look like '1s', '6m0s', '250ms'."""
    if not value:
        return None
    import re

    total, matched = 0.0, False
    for num, unit in re.findall(r"([\d.]+)(ms|s|m|h)", value):
        matched = True
        total += float(num) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    if matched:
        return total
    try:
        return float(value)
    except ValueError:
        return None


def _classify_status(exc, endpoint: str, model: str, key_hint: str = "OPENAI_API_KEY") -> Exception:
    """An HTTP error as the failure kind it is, with the server's own words (`server_words`)."""
    status = exc.status_code
    detail = server_words(_body_text(exc)) or short_error(exc.message if hasattr(exc, "message") else exc)
    if status in (401, 403):
        return FatalError(f"HTTP {status} from {endpoint}: not authorised ({detail}); check {key_hint}")
    if status == 404:
        return FatalError(f"HTTP 404 from {endpoint}: model {model!r} or endpoint not found ({detail})")
    if status == 429 or status == 408 or status >= 500:
        return TransientError(f"HTTP {status}: {detail}", retry_after_seconds(exc.response.headers), rate_limited=status == 429)
    return RefusedError(f"HTTP {status}: {detail}")


ERROR_BODY_READ, ERROR_WORDS = 65536, 300     # what of an error body is read, and shown


def _body_text(exc) -> str:
    """The start of an error reply's body as text ('' when there is none); the client read it."""
    try:
        return exc.response.content[:ERROR_BODY_READ].decode("utf-8", "replace")
    except Exception:  # a body the client could not read: the status alone says it
        return ""


def server_words(text: str) -> str:
    """What an error body says, on one line of at most ERROR_WORDS characters, whatever its shape:
    OpenAI's and llama.cpp's `{"error": {"message": ...}}`, Ollama's `{"error": "..."}`, vLLM's
    `{"object": "error", "message": ...}`, FastAPI's `{"detail": "..."}` or its list of pydantic
    errors, plain text, an HTML page (its text). Redacted (a proxy may echo the key); '' for an
    empty body."""
    try:
        said = _said(json.loads(text))
    except (ValueError, RecursionError):
        said = text
    if said is text and text.lstrip().startswith("<"):          # a web page: its text
        said = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>|<[^>]*>", " ", said)
    from evalkit.core.redact import env_secrets, redact

    line = " ".join("".join(c if c.isprintable() else " " for c in said).split())
    line = redact(line, env_secrets())            # before it is cut: a cut key would no longer look like one
    return line if len(line) <= ERROR_WORDS else line[:ERROR_WORDS - 3] + "..."


def _said(body) -> str:
    """The message in a parsed JSON error body (see `server_words`)."""
    if isinstance(body, dict):
        for key in ("error", "detail", "message", "msg"):
            if body.get(key) not in (None, "", [], {}):
                return _said(body[key])
    if isinstance(body, list):
        return "; ".join(_pydantic(e) if isinstance(e, dict) and "msg" in e else _said(e) for e in body[:5])
    return body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)[:ERROR_BODY_READ]


def _pydantic(error: dict) -> str:
    """One of FastAPI's validation errors: `body.model: Field required`."""
    loc = error.get("loc")
    where = ".".join(str(x) for x in loc) if isinstance(loc, list) else ""
    return f"{where}: {_said(error['msg'])}" if where else _said(error["msg"])


@functools.lru_cache(maxsize=1)
def _tls_context():
    """One TLS context per process: building one reads the system's CA bundle (about 40 ms), which
    a run of hundreds of evals (an OpenAI Evals set) would otherwise pay once per eval."""
    import ssl

    return ssl.create_default_context()
