"""The OpenAI Batch API on the test server: files, batches, their life and their result files.

It follows OpenAI's documented behaviour closely enough for the official client and for a
harness that must survive it, with timing compressed so tests run in seconds:

- `POST /v1/files` (multipart, `purpose=batch`) stores a JSONL file; `GET /v1/files/{id}` and
  `GET /v1/files/{id}/content` return it (input, output and error files alike); `DELETE
  /v1/files/{id}` deletes it (as OpenAI does with result files after 30 days).
- `POST /v1/batches` (`input_file_id`, `endpoint=/v1/chat/completions`, `completion_window=24h`,
  `metadata`) creates a batch: `validating` for `--batch-validate` seconds, then `failed` (with
  `errors`, nothing run) if a line is not a request (not JSON, no unique `custom_id`, another
  method or URL, a second model), the file holds more than `--batch-max-requests` lines or more
  than `--batch-max-bytes` bytes; else `in_progress`, answering `--batch-rate` requests a second
  with the same answer key as `/v1/chat/completions`, `request_counts` updated as it goes; then
  `finalizing` (`--batch-finalize` seconds) and `completed`, with an output file (the successful
  replies) and an error file (the failed ones).
- `--batch-fail-rate` (seeded) answers that share of requests with HTTP 500 in the error file: a
  partial failure. `--batch-window` seconds after creation an unfinished batch `expired`: what
  ran is in the output file, the rest in the error file with code `batch_expired`.
- `POST /v1/batches/{id}/cancel`: `cancelling`, then `cancelled`, the unrun requests in the error
  file with code `batch_cancelled`. `GET /v1/batches` lists batches newest first, paginated with
  `limit` and `after`.
- `--batch-create-delay` seconds between creating the first batch and replying (a client killed
  in that window has a batch it never heard of); `--batch-lies`: output files drop their last result and
  gain a line that is not JSON, a result for a request nobody sent and a second answer to the
  first request; `--batch-junk BYTES`: output files end with that many bytes of lines that are
  not results.

`/stats` counts `batch_files`, `batches_created`, `batch_lines` (requests submitted in created
batches) and `batch_unique` (distinct custom ids among them), so a test can prove that no
request was ever submitted twice.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

CHAT = "/v1/chat/completions"
TERMINAL = ("failed", "completed", "expired", "cancelled")


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def as_dict(self) -> dict:
        return {"id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed",
                "expires_at": None, "status_details": None}


@dataclass
class SimBatch:
    id: str
    input_file_id: str
    endpoint: str
    metadata: dict | None
    created: float
    window: float
    status: str = "validating"
    times: dict = field(default_factory=dict)
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: list | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    cancel_requested: bool = False

    def as_dict(self) -> dict:
        return {"id": self.id, "object": "batch", "endpoint": self.endpoint, "input_file_id": self.input_file_id,
                "completion_window": "24h", "status": self.status, "created_at": int(self.created),
                "expires_at": int(self.created + self.window), "metadata": self.metadata,
                "output_file_id": self.output_file_id, "error_file_id": self.error_file_id,
                "errors": {"object": "list", "data": self.errors} if self.errors else None,
                "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
                **{f"{k}_at": int(v) for k, v in self.times.items()}}


class BatchAPI:
    """Files and batches for one test server; `Server.route` hands it every /files and /batches path."""

    def __init__(self, server, args) -> None:
        self.server, self.args = server, args
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, SimBatch] = {}
        self.ids = itertools.count(1)
        self.submitted: set[str] = set()
        self.tasks: set[asyncio.Task] = set()

    async def route(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, bytes, dict] | None:
        """The reply to a Batch API request as (status, body, headers), or None when `path` is not one."""
        parts = urlsplit(path)
        segs = [s for s in parts.path.split("/") if s][1:]          # after "v1"
        if not segs or segs[0] not in ("files", "batches"):
            return None
        if segs[0] == "files":
            reply = self.files_route(method, segs[1:], headers, body)
        else:
            reply = await self.batches_route(method, segs[1:], parse_qs(parts.query), body)
        if reply is None:
            return 404, error_body(f"no such route: {method} {parts.path}", "invalid_request_error"), {}
        status, payload = reply
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return status, data, {"content-type": "application/octet-stream"} if isinstance(payload, bytes) else {}

    # ------------------------------------------------------------------ files

    def files_route(self, method: str, segs: list[str], headers: dict, body: bytes):
        if method == "POST" and not segs:
            return self.upload(headers.get("content-type", ""), body)
        f = self.files.get(segs[0]) if segs else None
        if f is None or method not in ("GET", "DELETE"):
            return (404, error_body("No such File object", "invalid_request_error")) if segs else None
        if method == "DELETE" and len(segs) == 1:
            del self.files[f.id]
            return 200, {"id": f.id, "object": "file", "deleted": True}
        if segs[1:] == ["content"]:
            return 200, f.data
        return (200, f.as_dict()) if len(segs) == 1 else None

    def upload(self, content_type: str, body: bytes):
        parts = parse_multipart(content_type, body)
        purpose = parts.get("purpose", (None, b""))[1].decode("utf-8", "replace")
        if "file" not in parts:
            return 400, error_body("'file' is a required property", "invalid_request_error")
        if purpose != "batch":
            return 400, error_body(f"purpose {purpose!r}: this server takes purpose=batch only", "invalid_request_error")
        f = StoredFile(f"file-{next(self.ids):06d}", parts["file"][0] or "upload.jsonl", purpose, parts["file"][1],
                       int(time.time()))
        self.files[f.id] = f
        self.server.stats["batch_files"] += 1
        return 200, f.as_dict()

    def store(self, name: str, lines: list[bytes]) -> str:
        f = StoredFile(f"file-{next(self.ids):06d}", name, "batch_output", b"".join(lines), int(time.time()))
        self.files[f.id] = f
        return f.id

    # ------------------------------------------------------------------ batches

    async def batches_route(self, method: str, segs: list[str], query: dict, body: bytes):
        if not segs:
            if method == "POST":
                return await self.create(json.loads(body or b"{}"))
            return self.listing(query) if method == "GET" else None
        b = self.batches.get(segs[0])
        if b is None:
            return 404, error_body(f"No batch found with id '{segs[0]}'.", "invalid_request_error")
        if method == "GET" and len(segs) == 1:
            return 200, b.as_dict()
        if method == "POST" and segs[1:] == ["cancel"]:
            return self.cancel(b)
        return None

    async def create(self, req: dict):
        f = self.files.get(req.get("input_file_id") or "")
        if f is None or f.purpose != "batch":
            return 400, error_body(f"Invalid input_file_id {req.get('input_file_id')!r}", "invalid_request_error")
        if req.get("endpoint") != CHAT or req.get("completion_window") != "24h":
            return 400, error_body("endpoint must be /v1/chat/completions and completion_window 24h", "invalid_request_error")
        b = SimBatch(f"batch_{next(self.ids):06d}", f.id, CHAT, req.get("metadata"), time.time(), self.args.batch_window)
        self.batches[b.id] = b
        ids = [_custom_id(line) for line in f.data.splitlines() if line.strip()]
        self.server.stats["batches_created"] += 1
        self.server.stats["batch_lines"] += len(ids)
        self.submitted.update(i for i in ids if i is not None)
        self.server.stats["batch_unique"] = len(self.submitted)
        task = asyncio.create_task(self.lifecycle(b, f))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if self.args.batch_create_delay and self.server.stats["batches_created"] == 1:
            await asyncio.sleep(self.args.batch_create_delay)
        return 200, b.as_dict()

    def listing(self, query: dict):
        newest = sorted(self.batches.values(), key=lambda b: b.id, reverse=True)
        after = (query.get("after") or [None])[0]
        if after is not None:
            ids = [b.id for b in newest]
            newest = newest[ids.index(after) + 1:] if after in ids else []
        limit = max(1, min(100, int((query.get("limit") or ["20"])[0])))
        page = newest[:limit]
        return 200, {"object": "list", "data": [b.as_dict() for b in page], "has_more": len(newest) > limit,
                     "first_id": page[0].id if page else None, "last_id": page[-1].id if page else None}

    def cancel(self, b: SimBatch):
        if b.status in TERMINAL:
            return 409, error_body(f"Cannot cancel a batch with status '{b.status}'.", "invalid_request_error")
        b.cancel_requested = True
        if b.status != "cancelling":
            b.status = "cancelling"
            b.times["cancelling"] = time.time()
        return 200, b.as_dict()

    async def lifecycle(self, b: SimBatch, f: StoredFile) -> None:
        a = self.args
        await asyncio.sleep(a.batch_validate)
        lines, problems = validate_input(f.data, a.batch_max_requests, a.batch_max_bytes)
        if b.cancel_requested:
            return self.finish(b, [], [], [_expired(line, "batch_cancelled") for line in lines], "cancelled")
        if problems:
            b.status, b.errors = "failed", problems
            b.times["failed"] = time.time()
            return
        b.status, b.total = "in_progress", len(lines)
        b.times["in_progress"] = time.time()
        done = 0
        out: list[dict] = []
        err: list[dict] = []
        started = time.monotonic()
        while done < len(lines) and not b.cancel_requested and time.time() < b.created + b.window:
            due = min(len(lines), int(a.batch_rate * (time.monotonic() - started)))
            for line in lines[done:due]:
                self.execute(line, out, err)
                done += 1
            b.completed, b.failed = len(out), len(err)
            await asyncio.sleep(a.batch_step)
        code = "batch_cancelled" if b.cancel_requested else "batch_expired"
        rest = [_expired(line, code) for line in lines[done:]]
        final = "cancelled" if b.cancel_requested else ("expired" if rest else "completed")
        if final == "completed":
            b.status = "finalizing"
            b.times["finalizing"] = time.time()
        await asyncio.sleep(a.batch_finalize)
        self.finish(b, out, err, rest, final)

    def execute(self, line: dict, out: list, err: list) -> bool:
        """Answer one request line into `out` (a reply) or `err` (a failure); True if it succeeded."""
        n = next(self.ids)
        self.server.stats["batch_executed"] += 1
        if self.args.batch_fail_rate and self.server.rng.random() < self.args.batch_fail_rate:
            err.append(_line({"id": f"batch_req_{n}", "custom_id": line["custom_id"], "error": None,
                              "response": {"status_code": 500, "request_id": f"req_{n}",
                                           "body": json.loads(error_body("injected batch failure", "server_error"))}}))
            return False
        reply = self.server.completion(line["body"])
        out.append(_line({"id": f"batch_req_{n}", "custom_id": line["custom_id"], "error": None,
                          "response": {"status_code": reply.status, "request_id": f"req_{n}",
                                       "body": json.loads(reply.body)}}))
        return True

    def finish(self, b: SimBatch, out: list, err: list, rest: list, status: str) -> None:
        if self.args.batch_lies and out:
            out = self.lie(out)
        if self.args.batch_junk and out:        # junk lines after the results
            junk = b"<html>not a result</html>\n"
            out = out + [junk * (self.args.batch_junk // len(junk))]
        b.output_file_id = self.store(f"{b.id}_output.jsonl", out) if out else None
        b.error_file_id = self.store(f"{b.id}_error.jsonl", err + rest) if err or rest else None
        b.completed, b.failed = len(out), len(err) + len(rest)
        b.status = status
        b.times[status] = time.time()


    @staticmethod
    def lie(out: list[bytes]) -> list[bytes]:
        """--batch-lies: the last result dropped, a line that is not JSON, a result for a request
        nobody sent, and a second, different result for the first request."""
        first = json.loads(out[0])
        first["response"]["body"]["choices"][0]["message"]["content"] = "a second answer"
        stray = {**json.loads(out[0]), "custom_id": "nobody-sent-this"}
        return out[:-1] + [b"<html>not a result</html>\n", _line(stray), _line(first)]


def validate_input(data: bytes, max_requests: int, max_bytes: int) -> tuple[list[dict], list[dict]]:
    """The request lines of a batch input file, or the problems that fail the whole batch."""
    if len(data) > max_bytes:
        return [], [_problem("file_too_large", f"The input file is {len(data)} bytes; the limit is {max_bytes}.")]
    lines, seen, models = [], set(), set()
    for no, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            return [], [_problem("invalid_json_line", "This line is not parseable as valid JSON.", no)]
        cid = line.get("custom_id") if isinstance(line, dict) else None
        if not isinstance(cid, str) or cid in seen:
            return [], [_problem("duplicate_custom_id" if cid in seen else "missing_required_parameter",
                                 "The custom_id for this request is missing or a duplicate.", no)]
        if line.get("method") != "POST" or line.get("url") != CHAT or not isinstance(line.get("body"), dict):
            return [], [_problem("invalid_url", f"This line's method/url must be POST {CHAT} with a body.", no)]
        seen.add(cid)
        models.add(line["body"].get("model"))
        lines.append(line)
    if len(models) > 1:
        return [], [_problem("mixed_model", "A batch's requests must all use one model.")]
    if len(lines) > max_requests:
        return [], [_problem("too_many_requests", f"The file has {len(lines)} requests; the limit is {max_requests}.")]
    if not lines:
        return [], [_problem("empty_file", "The input file has no requests.")]
    return lines, []


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """name -> (filename, bytes) of a multipart/form-data body."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if m is None:
        return {}
    out = {}
    for part in body.split(b"--" + m.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.partition(b"\r\n\r\n")
        disposition = head.decode("utf-8", "replace")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        if name:
            out[name.group(1)] = (filename.group(1) if filename else None, data.removesuffix(b"\r\n"))
    return out


def _custom_id(raw: bytes) -> str | None:
    try:
        cid = json.loads(raw).get("custom_id")
    except (ValueError, AttributeError):
        return None
    return cid if isinstance(cid, str) else None


def _expired(line: dict, code: str) -> bytes:
    message = {"batch_expired": "This request could not be executed before the completion window expired.",
               "batch_cancelled": "This request was cancelled before it ran."}[code]
    return _line({"id": None, "custom_id": line["custom_id"], "response": None,
                  "error": {"code": code, "message": message}})


def _line(record: dict) -> bytes:
    return json.dumps(record).encode() + b"\n"


def _problem(code: str, message: str, line: int | None = None) -> dict:
    return {"code": code, "message": message, "param": None, "line": line}


def error_body(message: str, kind: str) -> bytes:
    """An OpenAI-style error body."""
    return json.dumps({"error": {"message": message, "type": kind, "code": None}}).encode()


def add_arguments(p) -> None:
    p.add_argument("--batch-validate", type=float, default=0.2, help="seconds a batch stays validating")
    p.add_argument("--batch-rate", type=float, default=5000.0, help="batch requests answered per second")
    p.add_argument("--batch-step", type=float, default=0.05, help="seconds between rounds of batch work")
    p.add_argument("--batch-finalize", type=float, default=0.2, help="seconds a batch stays finalizing")
    p.add_argument("--batch-window", type=float, default=86400.0, help="seconds before an unfinished batch expires")
    p.add_argument("--batch-fail-rate", type=float, default=0.0, help="share of batch requests that fail (HTTP 500)")
    p.add_argument("--batch-max-requests", type=int, default=50_000)
    p.add_argument("--batch-max-bytes", type=int, default=200_000_000)
    p.add_argument("--batch-lies", action="store_true",
                   help="output files drop a result, add garbage, a stranger's result and a duplicate")
    p.add_argument("--batch-junk", type=int, default=0, metavar="BYTES",
                   help="output files end with this many bytes of lines that are not results")
    p.add_argument("--batch-create-delay", type=float, default=0.0,
                   help="seconds between creating the first batch and replying")
