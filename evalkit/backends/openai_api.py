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

This module is the backend class (`OpenAIBackend`: the client, requests, what the summary records);
reading a reply's body, whole or streamed, is in `openai_stream`, and what an HTTP error means
(and how long the server asked to wait) in `openai_errors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openai import AsyncOpenAI

import dataclasses
import functools

from evalkit.backends.costs import Pricer
from evalkit.backends.base import Backend, BackendOptions, Capabilities, Completion, Request, TransientError, note_sent
from evalkit.backends.openai_batch import BatchTarget, OpenAIBatches
from evalkit.backends.openai_errors import _classify_status
from evalkit.backends.openai_stream import _read_capped, read_stream, streamable
from evalkit.backends.openai_wire import Wire, parse_completion, short_error, wire_body

openai: Any = None    # the client modules, imported by the first backend that sends a request
httpx: Any = None


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
        self._client: AsyncOpenAI | None = None

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
        assert self._client is not None          # complete() connects first
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


def _connection_error(exc, endpoint: str) -> TransientError:
    """A refused or unresolvable connection (nothing listens there) apart from one that dropped."""
    cause = exc.__cause__ or exc
    if isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout)):
        return TransientError(f"cannot connect to {endpoint}: {short_error(cause)}", connect=True)
    return TransientError(f"the connection to {endpoint} dropped before a reply: {short_error(cause)}")


@functools.lru_cache(maxsize=1)
def _tls_context():
    """One TLS context per process: building one reads the system's CA bundle (about 40 ms), which
    a run of hundreds of evals (an OpenAI Evals set) would otherwise pay once per eval."""
    import ssl

    return ssl.create_default_context()
