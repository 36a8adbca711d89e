"""Reading an OpenAI-compatible reply's body: whole and capped, or streamed as server-sent events.

`streamable` decides whether a request's reply is worth streaming (`STREAM_MIN_TOKENS`);
`_read_capped` reads a whole body up to `--max-reply-bytes`; `read_stream` reads a stream event by
event (`_EventReader` cuts the bytes into events, `_Chunks` puts the chunks together into one
`Completion`), with the size caps, the progress it reports for `--idle-timeout`, and the
`DONE_GRACE` left to a server that never sends `[DONE]` (see `evalkit.backends.openai_api`).
"""

from __future__ import annotations

import json

from evalkit.backends.base import Completion, Request, SampleError, TransientError, note_activity
from evalkit.backends.openai_errors import server_words
from evalkit.backends.openai_wire import REASONING_FIELDS, read_usage, reasoning_of, short_error, top_logprobs

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
        self.pending, self.limit = b"", limit
        self.data: list[bytes] = []
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
