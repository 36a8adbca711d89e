"""A deterministic OpenAI-compatible chat-completions server for tests, benchmarks and smoke runs.

    python -m evalkit.testserver --answers key.jsonl [--port 0] [--latency 0.2] [--fault html=0.05]
    python -m evalkit.testserver --answers-from EVAL [--accuracy P]   (evalkit.testserver.answer_key)

It speaks enough of the protocol for the official `openai` client: `POST /v1/chat/completions`
(and `GET /v1/models`), HTTP/1.1 keep-alive, JSON bodies with `choices`, `usage` and the rest.
On start it prints `listening on http://127.0.0.1:PORT/v1` and serves until killed. It needs
nothing beyond evalkit's own dependencies.

How it answers: the answer key is JSONL, one `{"match": "<text>", "reply": "<text>"}` per line
(or `{"messages": [...], "reply": ...}`: the reply to exactly that conversation, checked first;
an entry with `"model": NAME` applies to requests for that model only, so two models can differ,
and one with `"seed": N` to requests with that seed only, so the n samples of `--samples n` can),
optionally with `"logprobs": {"A": -0.1, "B": -2.3}`: the first token's top alternatives returned
when a request asks for logprobs. For each request the server looks for every `match` text inside
the last user message and replies with the reply of the one that starts last (the asked question
comes after any few-shot examples, which may themselves contain another question's text), the
longest if several start there; with none found it replies `--default-reply`. `--tail-after SEP`
restricts the search to the text after the last SEP. So a test can say "answer these questions
right, those wrong, these in odd formats" from the raw data alone, and compute the exact score a
correct harness must report.

Faults on demand, as a hostile or broken server would send them:
- `--latency` seconds per reply; `--slots N` computes at most N replies at a time (the rest wait
  in a queue, as a llama.cpp server with N slots does; a reply whose client has gone is still
  computed, and counted as `abandoned` in /stats); `--token-interval` seconds per reply token
  (streamed as the tokens come; a non-streamed reply waits for all of them); `--status N`
  answers every request with HTTP N (after `--fail-after` good ones), its body saying
  `--error-message` the way `--error-shape` servers say it: `openai`, `llamacpp`
  (`{"error": {"code", "message", "type"}}`), `vllm` (`{"object": "error", "message"}`),
  `ollama` (`{"error": "<text>"}`), `fastapi` (`{"detail": "<text>"}`), `pydantic` (FastAPI's
  list of validation errors), `text` or `html`; `--malformed` answers every request with an
  HTML page;
- `--error-rate` (of requests, seeded) answered with `--error-status` and `Retry-After: --retry-after`;
- `--fault KIND=RATE` (repeatable): a seeded share of requests gets KIND, drawn afresh for each
  request (so a retry may succeed): `429` and `500` (with Retry-After), `html` (a 200 whose body is
  a web page), `trickle` (the reply one byte every `--trickle-interval` seconds), `reset` (the
  connection dropped without a reply), `huge` (a reply padded to `--huge-bytes`), `null`
  (`message.content: null`), `echo` (a 400 whose message repeats the request's headers, key
  included), `badusage` (negative and absurd token counts), `surrogate` (a lone surrogate in the
  reply text, valid JSON), `stall` (a few bytes, then nothing for `--stall-seconds`), and the
  hostile streams of `evalkit.testserver.stream`: `keepalive` (SSE comments every 0.5 s and no
  token for `--stall-seconds`), `bigevent` (one event spread over `--huge-bytes` of `data:` lines),
  `emptyevents` (`--huge-bytes` of events without content first), `nodone` (a whole reply, then
  neither `[DONE]` nor the end of the body for `--stall-seconds`), `twochoices` (a second choice
  that also says `index: 0`, answering otherwise; in whole replies too).

Streaming: a request with `"stream": true` gets server-sent events in chunked encoding, as OpenAI
sends them: a role chunk, one chunk per token (the first with `logprobs` when asked), a chunk
with `finish_reason`, a usage chunk when `stream_options.include_usage` is set, then
`data: [DONE]`. The faults apply to streams too (`null`: no content delta at all).

`GET /stats` returns counts: requests, completions served, errors and faults sent, per-match
hits, and the delays between an injected error and the retry of the same request (to check
Retry-After). `GET /requests` returns the last 1,000 requests as received (method, path with
query, headers, JSON body, arrival time `t` in monotonic seconds), so a test can check exactly
what a client sent, and when.

As a reasoning endpoint (`--reasoning-strict`, `--think-tokens`, `--think-in`, `--cached-tokens`):
OpenAI's refusals of `max_tokens` and temperature, thinking that grows with the effort asked for
and is cut by the limit, reasoning and cached token counts; see `evalkit.testserver.reasoning`.

The OpenAI Batch API (`/v1/files`, `/v1/batches`) answers from the same key, on a compressed
clock with its own faults: see `evalkit.testserver.batch` and the `--batch-*` flags.

This module is the server (`Server`: routing, faults, completions) and its command line; the answer
key's matching is in `answer_matching`, reply bodies in `reply_bodies`, the HTTP framing in `wire`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from collections import Counter, deque

from evalkit.testserver import reasoning
from evalkit.testserver import stream as hostile
from evalkit.testserver.batch import BatchAPI, add_arguments as add_batch_arguments, error_body
from evalkit.testserver.answer_key import add_arguments as add_key_arguments, answer_key
from evalkit.core.errors import EvalkitError
from evalkit.testserver.answer_matching import Policy
from evalkit.testserver.reply_bodies import ERROR_SHAPES, _logprobs, _stream_events, _tokens, forced_error
from evalkit.testserver.wire import Reply, _read_request, _reset, _send

FAULTS = ("429", "500", "html", "trickle", "reset", "huge", "null", "echo", "badusage", "surrogate", "stall",
          "keepalive", "bigevent", "emptyevents", "nodone", "twochoices")
SHAPES = ("trickle", "huge", "null", "badusage", "surrogate", "stall",      # faults that shape a completion
          "keepalive", "bigevent", "emptyevents", "nodone", "twochoices")
TIMED = ("trickle", "stall", "keepalive", "nodone")                         # ... and how its bytes go out


class Server:
    def __init__(self, args: argparse.Namespace, policy: Policy):
        self.args = args
        self.policy = policy
        self.by_model: dict[str, Policy] = {}     # answer keys that apply to one model only
        self.by_seed: dict[tuple, Policy] = {}    # ... to one (model, request seed) only
        self.rng = random.Random(args.seed)
        self.faults = _fault_table(args.fault)
        self._fault: str | None = None           # the fault `failure` drew for the request being answered
        self.stats: Counter = Counter()
        self.hits: Counter = Counter()
        self.failed_at: dict[int, float] = {}    # prompt hash -> when an error was injected for it
        self.retry_gaps: list[float] = []        # seconds from an injected error to that prompt's retry
        self.received: deque = deque(maxlen=1000)  # the last requests as received, for GET /requests
        self.batch_api = BatchAPI(self, args)
        self.slots = asyncio.Semaphore(args.slots) if args.slots else contextlib.nullcontext()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                method, path, headers, body = request
                self.record(method, path, headers, body)
                if method == "POST" and path.split("?", 1)[0].endswith("/chat/completions"):
                    if not await self.serve_completion(reader, writer, headers, body):
                        return
                    continue
                await _send(writer, await self.route(method, path, headers, body), self.args)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    def record(self, method: str, path: str, headers: dict, body: bytes) -> None:
        if path.split("?", 1)[0].endswith(("/stats", "/requests")):
            return
        if headers.get("content-type", "").startswith("multipart/"):
            self.received.append({"method": method, "path": path, "headers": headers, "body": f"<{len(body)} bytes>"})
            return
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        self.received.append({"method": method, "path": path, "headers": headers, "body": parsed,
                              "t": round(time.monotonic(), 4)})

    async def serve_completion(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict,
                               body: bytes) -> bool:
        """Compute a reply within a slot (queued while all are busy) and send it; False when the
        connection was dropped on purpose."""
        self.stats["requests"] += 1
        async with self.slots:
            reply = await self.compute(headers, body)
            if reader.at_eof():
                self.stats["abandoned"] += 1      # the client gave up while this waited or was computed
            if reply.fault == "reset":
                _reset(writer)
                return False
            await _send(writer, reply, self.args)
        return True

    async def compute(self, headers: dict, body: bytes) -> Reply:
        if self.args.latency:
            await asyncio.sleep(self.args.latency)
        reply = self.failure(body, headers) or self.completion(json.loads(body), self._fault)
        if reply.events is None and self.args.token_interval:
            await asyncio.sleep(self.args.token_interval * reply.tokens)
        if reply.fault == "stall" and reply.events is None:
            await asyncio.sleep(self.args.stall_seconds)
        return reply

    async def route(self, method: str, path: str, headers: dict, body: bytes) -> Reply:
        batch_reply = await self.batch_api.route(method, path, headers, body)
        if batch_reply is not None:
            return Reply(*batch_reply)
        path = path.split("?", 1)[0]
        if method == "GET" and path.endswith("/requests"):
            return Reply(200, json.dumps(list(self.received)).encode())
        if method == "GET" and path.endswith("/stats"):
            return Reply(200, json.dumps({**self.stats, "hits": dict(self.hits),
                                          "retry_gaps": [round(g, 4) for g in self.retry_gaps[:1000]]}).encode())
        if method == "GET" and path.endswith("/models"):
            return Reply(200, json.dumps({"object": "list", "data": [{"id": "test-model", "object": "model"}]}).encode())
        return Reply(404, error_body("not found", "invalid_request_error"))

    def failure(self, body: bytes, headers: dict) -> Reply | None:
        """A forced status, an injected error or a fault for this request, or None."""
        a = self.args
        if a.status and self.stats["completions"] >= a.fail_after:
            self.stats["errors"] += 1
            return forced_error(a.status, a.error_shape, a.error_message or f"forced status {a.status}")
        prompt_id, now = hash(body), time.monotonic()
        if prompt_id in self.failed_at:
            self.retry_gaps.append(now - self.failed_at.pop(prompt_id))
        if a.error_rate and self.rng.random() < a.error_rate:
            self.stats["errors"] += 1
            self.failed_at[prompt_id] = now
            return Reply(a.error_status, error_body("injected failure", "test_error"), {"retry-after": a.retry_after})
        if a.malformed:
            return Reply(200, b"<html>this is not a completion</html>")
        kind = self.draw_fault()
        if kind is None or kind in SHAPES:
            return None                         # these shape a completion (see `completion`)
        self.stats["errors"] += 1
        if kind in ("429", "500"):
            self.failed_at[prompt_id] = now
            return Reply(int(kind), error_body("injected failure", "test_error"), {"retry-after": a.retry_after})
        if kind == "html":
            return Reply(200, b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>")
        if kind == "echo":
            return Reply(400, error_body(f"bad request; headers were {json.dumps(headers)}", "invalid_request_error"))
        return Reply(200, b"", fault="reset")

    def draw_fault(self) -> str | None:
        self._fault = None
        if self.faults:
            x = self.rng.random()
            for kind, upto in self.faults:
                if x < upto:
                    self._fault = kind
                    self.stats[f"fault_{kind}"] += 1
                    break
        return self._fault

    def completion(self, req: dict, fault: str | None = None) -> Reply:
        """The reply to one chat-completions body, shaped by `fault` (drawn by `failure`)."""
        refused = reasoning.refusal(req, self.args)
        if refused is not None:
            self.stats["refused"] += 1
            return Reply(*refused)
        model, seed = req.get("model"), req.get("seed") if isinstance(req.get("seed"), int) else None
        model = model if isinstance(model, str) else None
        policy = self.by_seed.get((model, seed)) or self.by_seed.get((None, seed)) or \
            (self.by_model.get(model, self.policy) if model is not None else self.policy)
        messages = req.get("messages") or []
        reply, needle = policy.reply(self._asked(messages), messages)
        if needle is not None:
            self.hits[needle] += 1
        self.stats["completions"] += 1
        if fault == "surrogate":
            reply += "\ud800"
        if fault == "huge":
            reply += " " * self.args.huge_bytes
        choice: dict = {"index": 0, "finish_reason": "stop",
                  "message": {"role": "assistant", "content": None if fault == "null" else reply}}
        if req.get("logprobs") and not self.args.no_logprobs:
            choice["logprobs"] = _logprobs(policy, needle, reply, int(req.get("top_logprobs") or 0))
        choices = [choice]
        if fault == "twochoices":               # a second choice that claims index 0 too, answering otherwise
            choices.append({**choice, "message": {"role": "assistant", "content": "not " + reply}})
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in messages) // 4 + 1
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(reply) // 4 + 1,
                 **reasoning.cached(prompt_tokens, self.args)}
        if self.args.think_tokens and fault != "null":
            message, extra, choice["finish_reason"] = reasoning.think(_tokens(reply), req, self.args)
            choice["message"].update(message)
            usage.update(extra)
        if fault == "badusage":
            usage = {"prompt_tokens": -5, "completion_tokens": 10**15}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        out = {"id": f"chatcmpl-test-{self.stats['requests']}", "object": "chat.completion", "created": int(time.time()),
               "model": req.get("model", "test-model"), "choices": choices, "usage": usage}
        shape = fault if fault in TIMED else None
        if req.get("stream"):
            return Reply(200, b"", fault=shape, events=hostile.shaped(_stream_events(out, req, fault == "null"),
                                                                      fault, self.args))
        return Reply(200, json.dumps(out).encode(), fault=shape, tokens=len(_tokens(reply)))

    def _asked(self, messages: list) -> str:
        """The text of the last user message (text parts joined), after --tail-after if given."""
        users = [m for m in messages if m.get("role") == "user"]
        text = users[-1]["content"] if users else ""
        if isinstance(text, list):
            text = " ".join(p.get("text", "") for p in text if isinstance(p, dict))
        if self.args.tail_after and self.args.tail_after in text:
            text = text.rsplit(self.args.tail_after, 1)[1]   # only the last block: the item actually asked
        return text


def _fault_table(specs: list[str]) -> list[tuple[str, float]]:
    """`["html=0.05", "reset=0.05"]` -> cumulative [("html", 0.05), ("reset", 0.10)]."""
    table, total = [], 0.0
    for spec in specs:
        kind, _, rate = spec.partition("=")
        if kind not in FAULTS:
            raise SystemExit(f"--fault {spec}: unknown kind {kind!r}; kinds: {', '.join(FAULTS)}")
        total += float(rate)
        table.append((kind, total))
    if total > 1:
        raise SystemExit("--fault: the rates add up to more than 1")
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m evalkit.testserver", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--answers", help="JSONL answer key: {match, reply} per line")
    p.add_argument("--default-reply", default="I do not know.")
    p.add_argument("--tail-after", default="", help="match only in the text after the last occurrence of this")
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--slots", type=int, default=0, help="compute at most N replies at a time; 0: no limit")
    p.add_argument("--token-interval", type=float, default=0.0, help="seconds per reply token")
    p.add_argument("--stall-seconds", type=float, default=30.0, help="how long a `stall` fault stalls")
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--error-status", type=int, default=429)
    p.add_argument("--retry-after", default="1", help="the Retry-After header, as sent (a hostile value too)")
    p.add_argument("--status", type=int, default=0, help="answer every request with this HTTP status")
    p.add_argument("--fail-after", type=int, default=0, help="with --status: serve this many completions first")
    p.add_argument("--error-shape", choices=ERROR_SHAPES, default="openai",
                   help="with --status: the error body as this kind of server sends it")
    p.add_argument("--error-message", default="", help="with --status: what the error body says")
    p.add_argument("--malformed", action="store_true")
    p.add_argument("--fault", action="append", default=[], metavar="KIND=RATE", help=f"kinds: {', '.join(FAULTS)}")
    p.add_argument("--trickle-interval", type=float, default=2.0)
    p.add_argument("--huge-bytes", type=int, default=10_000_000)
    p.add_argument("--no-logprobs", action="store_true", help="ignore requests for logprobs, as some servers do")
    p.add_argument("--seed", type=int, default=0)
    reasoning.add_arguments(p)
    add_batch_arguments(p)
    add_key_arguments(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    answers = []
    if args.answers:
        with open(args.answers, encoding="utf-8") as fh:
            answers = [json.loads(line) for line in fh if line.strip()]
    if args.answers_from:
        try:
            answers += answer_key(args.answers_from, args.accuracy, args.seed, args.key_out)
        except EvalkitError as exc:
            print(f"evalkit: error: {exc.message}", file=sys.stderr)
            sys.exit(2)
    server = Server(args, Policy([a for a in answers if "model" not in a and "seed" not in a], args.default_reply))
    for model in {a["model"] for a in answers if "model" in a and "seed" not in a}:
        server.by_model[model] = Policy([a for a in answers if a.get("model") == model and "seed" not in a],
                                        args.default_reply)
    for key in {(a.get("model"), a["seed"]) for a in answers if "seed" in a}:   # a family sampled n times
        server.by_seed[key] = Policy([a for a in answers if (a.get("model"), a.get("seed")) == key], args.default_reply)

    async def serve() -> None:
        srv = await asyncio.start_server(server.handle, args.host, args.port, backlog=1024)
        port = srv.sockets[0].getsockname()[1]
        print(f"listening on http://{args.host}:{port}/v1", flush=True)
        async with srv:
            await srv.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
