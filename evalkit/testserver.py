"""A deterministic OpenAI-compatible chat-completions server for tests, benchmarks and smoke runs.

    python -m evalkit.testserver --answers key.jsonl [--port 0] [--latency 0.2] [--error-rate 0.1]

It speaks enough of the protocol for the official `openai` client: `POST /v1/chat/completions`
(and `GET /v1/models`), HTTP/1.1 keep-alive, JSON bodies with `choices`, `usage` and the rest.
On start it prints `listening on http://127.0.0.1:PORT/v1` and serves until killed.

How it answers: the answer key is JSONL, one `{"match": "<text>", "reply": "<text>"}` per line
(or `{"messages": [...], "reply": ...}`: the reply to exactly that conversation, checked first;
an entry with `"model": NAME` applies to requests for that model only, so two models can differ),
optionally with `"logprobs": {"A": -0.1, "B": -2.3}`: the first token's top alternatives returned
when a request asks for logprobs.
For each request the server looks for every `match` text inside the last user message and replies
with the reply of the one that starts last (the asked question comes after any few-shot examples,
which may themselves contain another question's text), the longest if several start there; with
none found it replies `--default-reply`. `--tail-after SEP` restricts the search to the text after
the last SEP (e.g. the blank line before the asked item), so few-shot examples are never matched. So a test can say
"answer these questions right, those wrong, these in odd formats" from the raw data alone, and
compute the exact score a correct harness must report.

Faults on demand: `--latency` seconds per reply; `--error-rate` (of requests, chosen by a seeded
generator) answered with `--error-status` and `Retry-After: --retry-after`; `--status N` answers
every request with HTTP N (after `--fail-after` good ones); `--malformed` answers 200 with a body that is not a completion.
`GET /stats` returns counts: requests, completions served, errors sent, per-match hits, and the
delays between an injected error and the retry of the same request (to check Retry-After).
`GET /requests` returns the last 1,000 requests as received (method, path with query, headers,
JSON body), so a test can check exactly what a client sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter, deque


class Policy:
    def __init__(self, answers: list[dict], default_reply: str):
        self.default_reply = default_reply
        self.replies: dict[str, str] = {}
        self.automaton = None
        self.logprobs: dict[str, dict[str, float]] = {}
        self.exact: dict[str, str] = {}
        for entry in answers:
            if "messages" in entry:
                self.exact[conversation_key(entry["messages"])] = entry["reply"]
                continue
            self.replies[entry["match"]] = entry["reply"]
            if "logprobs" in entry:
                self.logprobs[entry["match"]] = entry["logprobs"]
        if self.replies:
            import ahocorasick

            self.automaton = ahocorasick.Automaton()
            for needle in self.replies:
                self.automaton.add_word(needle, needle)
            self.automaton.make_automaton()

    def reply(self, text: str, messages: list | None = None) -> tuple[str, str | None]:
        if self.exact and messages is not None:
            key = conversation_key(messages)
            if key in self.exact:
                return self.exact[key], key
        best, best_rank = None, None
        if self.automaton is not None:
            for end, needle in self.automaton.iter(text):
                rank = (end - len(needle), len(needle))   # latest start first, then longest
                if best_rank is None or rank > best_rank:
                    best, best_rank = needle, rank
        return (self.replies[best], best) if best is not None else (self.default_reply, None)


def conversation_key(messages: list) -> str:
    """A whole conversation as one string: roles and contents, in order."""
    return json.dumps([[m.get("role", "user"), m.get("content", "")] for m in messages], ensure_ascii=False)


class Server:
    def __init__(self, args: argparse.Namespace, policy: Policy):
        self.args = args
        self.policy = policy
        self.by_model: dict[str, Policy] = {}     # answer keys that apply to one model only
        self.rng = random.Random(args.seed)
        self.stats = Counter()
        self.hits: Counter = Counter()
        self.failed_at: dict[int, float] = {}    # prompt hash -> when an error was injected for it
        self.retry_gaps: list[float] = []        # seconds from an injected error to that prompt's retry
        self.received: deque = deque(maxlen=1000)  # the last requests as received, for GET /requests

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", 0) or 0))
                self.record(method, path, headers, body)
                status, extra, payload = await self.route(method, path, body)
                head = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}",
                        "content-type: application/json", f"content-length: {len(payload)}"]
                head += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    def record(self, method: str, path: str, headers: dict, body: bytes) -> None:
        if path.split("?", 1)[0].endswith(("/stats", "/requests")):
            return
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        self.received.append({"method": method, "path": path, "headers": headers, "body": parsed})

    async def route(self, method: str, path: str, body: bytes) -> tuple[int, dict, bytes]:
        path = path.split("?", 1)[0]
        if method == "GET" and path.endswith("/requests"):
            return 200, {}, json.dumps(list(self.received)).encode()
        if method == "GET" and path.endswith("/stats"):
            return 200, {}, json.dumps({**self.stats, "hits": dict(self.hits),
                                        "retry_gaps": [round(g, 4) for g in self.retry_gaps[:1000]]}).encode()
        if method == "GET" and path.endswith("/models"):
            return 200, {}, json.dumps({"object": "list", "data": [{"id": "test-model", "object": "model"}]}).encode()
        if method != "POST" or not path.endswith("/chat/completions"):
            return 404, {}, _error("not found", "invalid_request_error")
        self.stats["requests"] += 1
        a = self.args
        if a.latency:
            await asyncio.sleep(a.latency)
        if a.status and self.stats["completions"] >= a.fail_after:
            self.stats["errors"] += 1
            return a.status, {}, _error(f"forced status {a.status}", "test_error")
        prompt_id = hash(body)
        now = time.monotonic()
        if prompt_id in self.failed_at:
            self.retry_gaps.append(now - self.failed_at.pop(prompt_id))
        if a.error_rate and self.rng.random() < a.error_rate:
            self.stats["errors"] += 1
            self.failed_at[prompt_id] = now
            return a.error_status, {"retry-after": f"{a.retry_after:g}"}, _error("injected failure", "test_error")
        if a.malformed:
            return 200, {}, b"<html>this is not a completion</html>"
        req = json.loads(body)
        messages = req.get("messages") or []
        users = [m for m in messages if m.get("role") == "user"]
        text = users[-1]["content"] if users else ""
        if isinstance(text, list):
            text = " ".join(p.get("text", "") for p in text if isinstance(p, dict))
        if a.tail_after and a.tail_after in text:
            text = text.rsplit(a.tail_after, 1)[1]   # only the last block: the item actually asked
        policy = self.by_model.get(req.get("model"), self.policy)
        reply, needle = policy.reply(text, messages)
        if needle is not None:
            self.hits[needle] += 1
        self.stats["completions"] += 1
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in messages) // 4 + 1
        choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}
        if req.get("logprobs") and not a.no_logprobs:
            # The first token's alternatives: the key's chosen {token: logprob}, else the reply's
            # first character with probability 1.
            alts = policy.logprobs.get(needle) if needle is not None else None
            alts = alts or {reply[:1]: 0.0}
            top = sorted(alts.items(), key=lambda kv: -kv[1])[: int(req.get("top_logprobs") or 0) or 1]
            first = top[0]
            choice["logprobs"] = {"content": [{"token": first[0], "logprob": first[1], "bytes": None,
                                               "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top]}]}
        out = {
            "id": f"chatcmpl-test-{self.stats['requests']}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.get("model", "test-model"),
            "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(reply) // 4 + 1,
                      "total_tokens": prompt_tokens + len(reply) // 4 + 1},
        }
        return 200, {}, json.dumps(out).encode()


def _error(message: str, kind: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": None}}).encode()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m evalkit.testserver", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--answers", help="JSONL answer key: {match, reply} per line")
    p.add_argument("--default-reply", default="I do not know.")
    p.add_argument("--tail-after", default="", help="match only in the text after the last occurrence of this")
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--error-status", type=int, default=429)
    p.add_argument("--retry-after", type=float, default=1)
    p.add_argument("--status", type=int, default=0, help="answer every request with this HTTP status")
    p.add_argument("--fail-after", type=int, default=0, help="with --status: serve this many completions first")
    p.add_argument("--malformed", action="store_true")
    p.add_argument("--no-logprobs", action="store_true", help="ignore requests for logprobs, as some servers do")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    answers = []
    if args.answers:
        with open(args.answers, encoding="utf-8") as fh:
            answers = [json.loads(line) for line in fh if line.strip()]
    server = Server(args, Policy([a for a in answers if "model" not in a], args.default_reply))
    for model in {a["model"] for a in answers if "model" in a}:
        server.by_model[model] = Policy([a for a in answers if a.get("model") == model], args.default_reply)

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
    sys.exit(main())
