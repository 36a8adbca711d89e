"""The OpenAI chat-completions wire format: evalkit's request as a JSON body, and a reply's JSON
body as evalkit's Completion. Shared by the per-request backend (`openai_api`) and the Batch API
(`openai_batch`), which send the same bodies by different routes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from .base import Completion, Request, SampleError, TransientError

OPTION_TOP_LOGPROBS = 20   # the most alternatives OpenAI returns per position


@dataclass(frozen=True)
class Wire:
    """How a preset's endpoint spells a request: renamed fields, fields it does not get (it
    ignores them), and the most alternatives per position it returns."""

    renames: dict = field(default_factory=dict)
    unsent: frozenset = frozenset()
    max_top_logprobs: int = OPTION_TOP_LOGPROBS

    @classmethod
    def for_preset(cls, preset) -> "Wire":
        caps = preset.capabilities
        return cls(renames=dict(preset.renames), unsent=frozenset() if caps.seed else frozenset({"seed"}),
                   max_top_logprobs=min(caps.max_top_logprobs or OPTION_TOP_LOGPROBS, OPTION_TOP_LOGPROBS))


def parse_completion(raw: bytes, endpoint: str, request: Request) -> Completion:
    """A chat-completions body as evalkit's Completion. A body that is not a completion is worth a
    retry (a proxy's error page); a completion without content is this sample's error."""
    try:
        body = json.loads(raw)
        choice = body["choices"][0]
        text = choice["message"]["content"]
        if text is not None and not isinstance(text, str):
            raise TypeError("message.content is not a string")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        snippet = raw[:80].decode("utf-8", "replace")
        raise TransientError(f"malformed response from {endpoint} ({short_error(exc)}): {snippet!r}", malformed=True) from None
    if text is None:
        raise SampleError("the reply has no content (message.content is null)")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    wants_logprobs = request.options is not None or request.sampling.top_logprobs > 0
    return Completion(text=text, finish_reason=choice.get("finish_reason"),
                      usage={k: usage[k] for k in ("prompt_tokens", "completion_tokens") if k in usage},
                      top_logprobs=top_logprobs(choice) if wants_logprobs else None)


def wire_body(model: str, request: Request, wire: Wire = Wire()) -> dict:
    """evalkit's request as an OpenAI chat-completions body (None values and the fields the
    endpoint does not get left out, the others under the names it uses)."""
    s = request.sampling
    body = {"model": model, "messages": [_wire_message(m) for m in request.messages],
            "temperature": s.temperature, "max_tokens": s.max_tokens, "top_p": s.top_p,
            "stop": list(s.stop) or None, "seed": s.seed}
    if request.options is not None:             # one token, and its alternatives are the answer
        body.update({"max_tokens": 1, "logprobs": True, "top_logprobs": wire.max_top_logprobs})
    elif s.top_logprobs:
        body.update({"logprobs": True, "top_logprobs": min(s.top_logprobs, wire.max_top_logprobs)})
    return {wire.renames.get(k, k): v for k, v in body.items() if v is not None and k not in wire.unsent}


def _wire_message(message: dict) -> dict:
    content = message["content"]
    if isinstance(content, list):
        content = [{"type": "image_url", "image_url": {"url": f"data:{p['media_type']};base64,{p['data']}"}}
                   if p.get("type") == "image" else p for p in content]
    return {**message, "content": content}


def top_logprobs(choice: dict, positions: int = 3) -> list | None:
    """The top alternatives of the first few generated tokens, as [[[token, logprob], ...], ...];
    whatever in the server's reply is not a token with a finite log-probability is left out."""
    lp = choice.get("logprobs")
    content = lp.get("content") if isinstance(lp, dict) else None
    out = []
    for pos in content[:positions] if isinstance(content, list) else []:
        if not isinstance(pos, dict):
            continue
        alts = [[str(a.get("token", "")), float(a["logprob"])] for a in pos.get("top_logprobs") or []
                if isinstance(a, dict) and _finite(a.get("logprob"))]
        if not alts and _finite(pos.get("logprob")):
            alts = [[str(pos.get("token", "")), float(pos["logprob"])]]
        out.append(alts)
    return out or None


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
