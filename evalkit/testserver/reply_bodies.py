"""The bodies of the test server's replies: a completion as OpenAI's streamed events, errors as servers say them.

`_tokens` cuts a reply into the tokens a model would stream, `_stream_events` turns a whole
completion into the server-sent events OpenAI sends (role, one chunk per token, finish_reason,
usage, `[DONE]`), `_logprobs` gives the first token's alternatives, and `forced_error` writes an
error body in one of `ERROR_SHAPES` (`--error-shape`: OpenAI, llama.cpp, vLLM, Ollama, FastAPI, ...).
"""

from __future__ import annotations

import json
import re

from evalkit.testserver.answer_matching import Policy
from evalkit.testserver.wire import Reply


def _tokens(text: str) -> list[str]:
    """A reply cut into tokens as a model streams them: words with their leading space, at most
    4,096 characters each."""
    words = re.findall(r"\s*\S+|\s+", text) or [""]
    return [w[i:i + 4096] for w in words for i in range(0, max(len(w), 1), 4096)]


def _stream_events(out: dict, req: dict, null: bool) -> list[bytes]:
    """A whole completion as OpenAI's server-sent events: role, one chunk per token (the first with
    the logprobs), finish_reason, usage (when asked), [DONE]."""
    choice = out["choices"][0]
    head = {"id": out["id"], "object": "chat.completion.chunk", "created": out["created"], "model": out["model"]}

    def chunk(delta: dict, finish=None, extra: dict | None = None) -> bytes:
        c = {"index": 0, "delta": delta, "finish_reason": finish, **(extra or {})}
        more = [{**c, "delta": {"content": "not " + delta["content"]}}] if len(out["choices"]) > 1 and \
            delta.get("content") else []
        return b"data: " + json.dumps({**head, "choices": [c, *more]}).encode() + b"\n\n"

    events = [chunk({"role": "assistant", "content": None if null else ""})]
    for name in ("reasoning", "reasoning_content"):      # thinking streams before the answer
        if choice["message"].get(name):
            events += [chunk({name: tok}) for tok in _tokens(choice["message"][name])]
    if not null:
        for i, tok in enumerate(_tokens(choice["message"]["content"])):
            events.append(chunk({"content": tok}, extra={"logprobs": choice["logprobs"]} if i == 0 and
                                "logprobs" in choice else None))
    events.append(chunk({}, finish=choice["finish_reason"]))
    if (req.get("stream_options") or {}).get("include_usage"):
        events.append(b"data: " + json.dumps({**head, "choices": [], "usage": out["usage"]}).encode() + b"\n\n")
    return events + [b"data: [DONE]\n\n"]


ERROR_SHAPES = ("openai", "llamacpp", "vllm", "ollama", "fastapi", "pydantic", "text", "html")


def forced_error(status: int, shape: str, message: str) -> Reply:
    """An error reply saying `message` as one kind of server says it (`--error-shape`)."""
    bodies = {
        "openai": {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}},
        "llamacpp": {"error": {"code": status, "message": message, "type": "invalid_request_error"}},
        "vllm": {"object": "error", "message": message, "type": "BadRequestError", "param": None, "code": status},
        "ollama": {"error": message},
        "fastapi": {"detail": message},
        "pydantic": {"detail": [{"type": "missing", "loc": ["body", "model"], "msg": message, "input": None}]},
    }
    if shape == "text":
        return Reply(status, message.encode(), {"content-type": "text/plain; charset=utf-8"})
    if shape == "html":
        page = (f"<!DOCTYPE html><html><head><title>{status}</title><style>h1 {{ color: red }}</style></head>"
                f"<body><h1>{message}</h1></body></html>")
        return Reply(status, page.encode(), {"content-type": "text/html"})
    return Reply(status, json.dumps(bodies[shape]).encode())


def _logprobs(policy: Policy, needle: str | None, reply: str, top_n: int) -> dict:
    """The first token's alternatives: the key's chosen {token: logprob}, else the reply's first
    character with probability 1."""
    alts = (policy.logprobs.get(needle) if needle is not None else None) or {reply[:1]: 0.0}
    top = sorted(alts.items(), key=lambda kv: -kv[1])[: top_n or 1]
    return {"content": [{"token": top[0][0], "logprob": top[0][1], "bytes": None,
                         "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top]}]}
