"""The OpenAI Batch API's wire side: request lines, files, batches and their result lines.

`evalkit.send.batch` decides what goes into which batch and when; this module only speaks the
protocol, through the official `openai` client: a JSONL file of `{"custom_id", "method": "POST",
"url": "/v1/chat/completions", "body"}` lines uploaded with `purpose=batch`, a batch created on
it with a 24 h completion window, polled, cancelled, listed, and its output and error files read
back line by line.

The control calls are few, so the client's own retries (with backoff) cover a flaky network, with
one exception: creating a batch is not idempotent, so it is never retried blindly. When a create
call fails without an answer, the batches are listed first; the one made on that input file (the
server did create it) is adopted instead of making a second.

Everything a server returns is untrusted: a result line that is not JSON, names no request of the
batch, or comes twice is skipped and counted, never kept (the first answer for a request wins);
a result line larger than the reply cap fails that request only. More than `--max-reply-bytes`
of such lines, or a file larger than its requests' results can be, is read no further: the
requests it has not answered yet get an error saying so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import AsyncIterator

from evalkit.backends.base import Completion, FatalError, Request, SampleError, TransientError, vet_completion
from evalkit.backends.openai_wire import Wire, parse_completion, short_error, wire_body

CHAT_URL = "/v1/chat/completions"
MAX_REQUESTS = 50_000            # OpenAI's limits per batch input file
MAX_BYTES = 200_000_000
TERMINAL = ("completed", "expired", "cancelled", "failed", "gone")   # gone: 404, deleted or expired


class Gone(FatalError):
    """The provider no longer has a batch or a result file (HTTP 404): it was deleted or expired."""


@dataclass
class BatchState:
    """What the provider says about one batch."""

    id: str
    status: str
    input_file_id: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


@dataclass
class LineResult:
    """One result line: the custom id and either a completion or the reason it failed."""

    custom_id: str
    completion: Completion | None
    error: str | None


@dataclass(frozen=True)
class BatchTarget:
    """Where one model's batches go and how its request lines are spelled (from its backend)."""

    endpoint: str
    model: str           # provider/name, for messages
    name: str            # the model as the server knows it
    wire: Wire
    key: str = field(repr=False)   # never printed
    timeout: float = 120.0
    max_reply_bytes: int = 2 * 2**20


class OpenAIBatches:
    """Batch API calls for one OpenAI-compatible endpoint and model."""

    max_requests, max_bytes = MAX_REQUESTS, MAX_BYTES

    def __init__(self, target: "BatchTarget"):
        self.target, self.endpoint, self.model = target, target.endpoint, target.model
        self.max_line_bytes = target.max_reply_bytes + 4096
        self._client = None

    def wire_identity(self) -> dict | None:
        """How the model's rule spells its request lines (part of their cache keys)."""
        return self.target.wire.identity()

    def client(self):
        if self._client is None:
            import openai

            key, timeout = self.target.key, self.target.timeout
            self._client = openai.AsyncOpenAI(api_key=key, base_url=self.endpoint, max_retries=3,
                                              timeout=max(timeout, 300.0))
        return self._client

    def line(self, custom_id: str, request: Request) -> bytes:
        body = wire_body(self.target.name, request, self.target.wire)
        return json.dumps({"custom_id": custom_id, "method": "POST", "url": CHAT_URL, "body": body},
                          ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    async def upload(self, data: bytes, name: str) -> str:
        f = await self._call(self.client().files.create, file=(name, data, "application/jsonl"), purpose="batch")
        return f.id

    async def create(self, file_id: str, metadata: dict[str, str]) -> BatchState:
        """A batch on `file_id`; if the call fails unanswered, the batch the server made anyway."""
        import openai

        for attempt in range(4):
            try:
                b = await self.client().batches.create(input_file_id=file_id, endpoint=CHAT_URL,
                                                       completion_window="24h", metadata=metadata,
                                                       timeout=120.0)
                return _state(b)
            except (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError) as exc:
                found = await self.find(file_id)
                if found is not None:
                    return found
                if attempt == 3:
                    raise TransientError(f"cannot create a batch at {self.endpoint}: {_short(exc)}") from None
            except openai.APIStatusError as exc:
                raise _status_error(exc, self.endpoint) from None
        raise AssertionError("unreachable")

    async def find(self, file_id: str, pages: int = 20) -> BatchState | None:
        """The batch made on `file_id`, looked up in the newest `pages` x 100 batches."""
        page = await self._call(self.client().batches.list, limit=100)
        for _ in range(pages):
            for b in page.data:
                if b.input_file_id == file_id:
                    return _state(b)
            if not page.has_next_page():
                return None
            page = await page.get_next_page()
        return None

    async def retrieve(self, batch_id: str) -> BatchState:
        return _state(await self._call(self.client().batches.retrieve, batch_id))

    async def cancel(self, batch_id: str) -> BatchState:
        return _state(await self._call(self.client().batches.cancel, batch_id))

    async def results(self, file_id: str, wanted: dict[str, Request], batch: set[str],
                      skipped: "Skipped") -> AsyncIterator[LineResult]:
        """Each result line of an output or error file for a request in `wanted` (custom id ->
        request), the first line per id only. Results for the batch's other requests (already
        recorded) are passed over; anything else the file holds is counted in `skipped`."""
        seen: set[str] = set()
        async for raw in self._lines(file_id, skipped, len(batch)):
            got = _parse_line(raw, batch, seen, skipped)
            if got is not None:
                seen.add(got[0])
                if got[0] in wanted:
                    yield _result(got[0], got[1], wanted[got[0]], self.endpoint)

    async def _lines(self, file_id: str, skipped: "Skipped", requests: int) -> AsyncIterator[bytes]:
        """The file's lines, streamed; a line over `max_line_bytes` is counted as such instead. A
        file larger than its requests' lines can be is read no further (`SampleError`)."""
        import openai

        most, size = requests * self.max_line_bytes + skipped.limit, 0
        try:
            async with self.client().files.with_streaming_response.content(file_id) as resp:
                buf, too_long = b"", False
                async for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > most:
                        raise SampleError(f"result file {file_id} is larger than its {requests:,} results can be; "
                                          "stopped reading it")
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for ln in lines:
                        if too_long:
                            too_long = False
                            skipped.add("a result line larger than --max-reply-bytes", 0)
                        elif ln.strip():
                            yield ln
                        else:
                            skipped.add(None, len(ln) + 1)
                    if len(buf) > self.max_line_bytes:
                        buf, too_long = b"", True
                if buf.strip() and not too_long:
                    yield buf
        except openai.APIStatusError as exc:
            raise _status_error(exc, self.endpoint) from None
        except openai.APIConnectionError as exc:
            raise TransientError(f"cannot read batch file {file_id} from {self.endpoint}: {_short(exc)}") from None

    async def _call(self, fn, *args, **kw):
        import openai

        try:
            return await fn(*args, **kw)
        except openai.APIStatusError as exc:
            raise _status_error(exc, self.endpoint) from None
        except openai.APIConnectionError as exc:
            raise TransientError(f"cannot reach the Batch API at {self.endpoint} ({_short(exc)}); is the server "
                                 "running? check --base-url") from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()


def _state(b) -> BatchState:
    counts = b.request_counts
    errors = [f"line {e.line}: {e.code}: {e.message}" if e.line else f"{e.code}: {e.message}"
              for e in (b.errors.data or [] if b.errors else [])]
    return BatchState(b.id, b.status, b.input_file_id, b.output_file_id, b.error_file_id,
                      counts.total if counts else 0, counts.completed if counts else 0,
                      counts.failed if counts else 0, errors)


class Skipped:
    """The lines of a batch's result files that are not results wanted: counted (with the first
    reason), never kept. More than `limit` bytes of them is no provider's file: `SampleError`."""

    def __init__(self, limit: int):
        self.limit, self.count, self.bytes = limit, 0, 0
        self.first: str | None = None

    def add(self, reason: str | None, size: int) -> None:
        """One skipped line (`reason` None: a blank one, whose bytes count but which is no line)."""
        self.count += reason is not None
        self.bytes += size
        self.first = self.first or reason
        if self.bytes > self.limit:
            raise SampleError(f"the result files hold more than --max-reply-bytes {self.limit:,} bytes of lines that "
                              "are not results; stopped reading them")


def _parse_line(raw: bytes, batch: set[str], seen: set, skipped: Skipped) -> tuple[str, dict] | None:
    try:
        rec = json.loads(raw)
        cid = rec["custom_id"]
    except (ValueError, TypeError, KeyError):
        skipped.add("a result line that is not a batch result", len(raw) + 1)
        return None
    if not isinstance(cid, str) or cid not in batch:
        skipped.add(f"a result for a request not in this batch ({str(cid)[:40]!r})", len(raw) + 1)
        return None
    if cid in seen:
        skipped.add(f"a second result for {cid}", len(raw) + 1)
        return None
    return cid, rec


def _result(cid: str, rec: dict, request: Request, endpoint: str) -> LineResult:
    """A result line as a completion or this request's error."""
    err, resp = rec.get("error"), rec.get("response")
    if isinstance(err, dict) and err:
        code = str(err.get("code") or "error")
        what = "expired: the batch's 24 h window ended first" if code == "batch_expired" else \
            "cancelled before it ran" if code == "batch_cancelled" else f"{code}: {str(err.get('message'))[:200]}"
        return LineResult(cid, None, f"batch request {what}")
    if not isinstance(resp, dict) or not isinstance(resp.get("body"), dict):
        return LineResult(cid, None, "batch result without a response")
    status, body = resp.get("status_code"), resp["body"]
    if status != 200:
        detail = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else None
        return LineResult(cid, None, f"batch request failed: HTTP {status}: {str(detail)[:200]}")
    try:
        return LineResult(cid, vet_completion(parse_completion(json.dumps(body).encode(), endpoint, request)), None)
    except (TransientError, SampleError) as exc:
        return LineResult(cid, None, f"batch reply: {exc.reason}")


def _status_error(exc, endpoint: str) -> Exception:
    status, detail = exc.status_code, _short(getattr(exc, "message", exc))
    if status in (401, 403):
        return FatalError(f"HTTP {status} from {endpoint}: not authorised ({detail}); check OPENAI_API_KEY")
    if status == 404:
        return Gone(f"HTTP 404 from {endpoint}: the Batch API or the object is not there ({detail})")
    if status == 429 or status >= 500:
        return TransientError(f"HTTP {status} from the Batch API at {endpoint}: {detail}")
    return FatalError(f"HTTP {status} from the Batch API at {endpoint}: {detail}")


def _short(exc) -> str:
    return short_error(exc).rstrip(".")
