"""The test server as a reasoning endpoint: OpenAI's refusals, thinking that costs tokens, usage details.

    python -m evalkit.testserver --answers key.jsonl --reasoning-strict --think-tokens 40 --think-in reasoning

- `--reasoning-strict` refuses what OpenAI's reasoning models refuse, with OpenAI's error bodies
  (HTTP 400, `invalid_request_error`): `max_tokens` (param `max_tokens`, code
  `unsupported_parameter`, "Use 'max_completion_tokens' instead."), a temperature other than the
  default 1 (code `unsupported_value`), and `top_p`, `stop`, `logprobs`, `top_logprobs`.
- `--think-tokens N` makes every reply think first: N tokens at the default (medium) effort,
  scaled by the `reasoning_effort` asked for (`REASONING_SCALE`), from `--think-text` repeated.
  The thinking goes where `--think-in` says: `reasoning` (vLLM, Ollama), `reasoning_content`
  (DeepSeek) or `inline` (`<think>...</think>` before the answer in the content, as a server
  without a reasoning parser sends it). Usage then says `completion_tokens` = thinking + answer
  tokens and `completion_tokens_details.reasoning_tokens`.
- The limit (`max_completion_tokens`, else `max_tokens`) cuts the reply where it runs out, as a
  real model does: in the thinking (no answer; inline, a `<think>` that never closes) or in the
  answer, with `finish_reason: "length"`.
- `--cached-tokens N` reports up to N prompt tokens as cached (`prompt_tokens_details.cached_tokens`);
  `--usage-lies` reports 9,000,000 of each, more than the reply's own totals.

Streams carry the same: the thinking as `delta.reasoning` / `delta.reasoning_content` chunks (or
inline in `delta.content`) before the answer's. The Batch API answers with the same bodies.
"""

from __future__ import annotations

import json

REASONING_SCALE = {"none": 0.0, "minimal": 0.25, "low": 0.5, "medium": 1.0, "high": 2.0, "xhigh": 3.0, "max": 4.0}
REFUSED = ("top_p", "stop", "logprobs", "top_logprobs")


def add_arguments(p) -> None:
    p.add_argument("--reasoning-strict", action="store_true",
                   help="refuse max_tokens and non-default temperature (and top_p, stop, logprobs) as OpenAI's "
                        "reasoning models do")
    p.add_argument("--think-tokens", type=int, default=0, help="tokens of thinking per reply at medium effort")
    p.add_argument("--think-in", choices=["reasoning", "reasoning_content", "inline"], default="reasoning")
    p.add_argument("--think-text", default="Hmm. Answer: A. The answer is 123456789. Let me check that again.",
                   help="the thinking, repeated to --think-tokens")
    p.add_argument("--cached-tokens", type=int, default=0, help="report up to N prompt tokens as cached")
    p.add_argument("--usage-lies", action="store_true",
                   help="report 9,000,000 reasoning and cached tokens, more than the completion and prompt hold")


def refusal(req: dict, args) -> tuple[int, bytes] | None:
    """OpenAI's 400 for a field a reasoning model refuses, or None."""
    if not args.reasoning_strict:
        return None
    if "max_tokens" in req:
        return 400, _error("Unsupported parameter: 'max_tokens' is not supported with this model. "
                           "Use 'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter")
    if req.get("temperature") not in (None, 1, 1.0):
        return 400, _error(f"Unsupported value: 'temperature' does not support {req['temperature']} with this "
                           "model. Only the default (1) value is supported.", "temperature", "unsupported_value")
    for name in REFUSED:
        if name in req:
            return 400, _error(f"Unsupported parameter: '{name}' is not supported with this model.", name,
                               "unsupported_parameter")
    return None


def _error(message: str, param: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": param,
                                 "code": code}}).encode()


def effort_of(req: dict) -> str:
    """The effort asked for, in OpenAI's or OpenRouter's spelling (medium when none is)."""
    effort = req.get("reasoning_effort")
    if effort is None and isinstance(req.get("reasoning"), dict):
        effort = req["reasoning"].get("effort")
    return effort if effort in REASONING_SCALE else "medium"


def think(reply_tokens: list[str], req: dict, args) -> tuple[dict, dict, str]:
    """The message fields, usage and finish_reason of a reply that thinks first (see the module
    docstring); `reply_tokens` is the answer as tokens."""
    wanted = round(args.think_tokens * REASONING_SCALE[effort_of(req)])
    thought = (args.think_text.split() * (wanted // max(len(args.think_text.split()), 1) + 1))[:wanted]
    limit = req.get("max_completion_tokens", req.get("max_tokens"))
    limit = limit if isinstance(limit, int) and limit >= 0 else len(thought) + len(reply_tokens)
    thought_kept = thought[:limit]
    answer = reply_tokens[: max(limit - len(thought_kept), 0)]
    finish = "length" if len(thought) + len(reply_tokens) > limit else "stop"
    thinking, text = " ".join(thought_kept), "".join(answer)
    if args.think_in == "inline":
        closed = len(thought_kept) == len(thought)
        message = {"content": (f"<think>{thinking}</think>" if closed else f"<think>{thinking}") + text if wanted
                   else text}
    else:
        message = {"content": text, **({args.think_in: thinking} if wanted else {})}
    usage = {"completion_tokens": len(thought_kept) + len(answer),
             "completion_tokens_details": {"reasoning_tokens": len(thought_kept)}}
    return message, usage, finish


def cached(prompt_tokens: int, args) -> dict:
    if args.usage_lies:
        return {"prompt_tokens_details": {"cached_tokens": 9_000_000},
                "completion_tokens_details": {"reasoning_tokens": 9_000_000}}
    return {"prompt_tokens_details": {"cached_tokens": min(args.cached_tokens, prompt_tokens)}} \
        if args.cached_tokens else {}
