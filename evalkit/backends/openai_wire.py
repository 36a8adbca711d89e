"""The OpenAI chat-completions wire format: evalkit's request as a JSON body, and a reply's JSON
body as evalkit's Completion. Shared by the per-request backend (`openai_api`) and the Batch API
(`openai_batch`), which send the same bodies by different routes.

A `Wire` is resolved once per model from its preset and the preset's first matching model rule
(`evalkit.providers.ModelRule`): renamed fields, fields never sent (refused by the model, or
ignored by the endpoint), the token limit's name, whether the model reasons, and each effort
level's body fragment. For a model that reasons (or was asked to think), the limit sent is the
eval's answer budget plus a reasoning budget: `--max-reasoning-tokens`, else the default of the
effort asked for (`REASONING_BUDGET`). `--extra-body` is merged last, so it can set anything.

A reply's thinking, where the server separates it (`message.reasoning`, vLLM and Ollama;
`message.reasoning_content`, DeepSeek and older vLLM), is kept apart in `Completion.reasoning`;
thinking inline in the content (`<think>...`) is separated later, for every backend alike
(`evalkit.backends.thinking`). Usage keeps `reasoning_tokens` and `cached_tokens` from the
`*_tokens_details` objects.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from evalkit.backends.base import Completion, Request, SampleError, TransientError

OPTION_TOP_LOGPROBS = 20   # the most alternatives OpenAI returns per position


# The reasoning budget sent on top of an eval's answer budget when none is given, by effort asked
# for ("" when none is: the provider's default effort, medium at OpenAI).
REASONING_BUDGET = {"": 16384, "none": 0, "minimal": 2048, "low": 4096, "medium": 16384, "high": 32768,
                    "xhigh": 65536, "max": 65536}


@dataclass(frozen=True)
class Wire:
    """How one model at a preset's endpoint is spoken to (see the module docstring)."""

    renames: dict = field(default_factory=dict)
    unsent: frozenset = frozenset()          # fields the endpoint ignores: not sent
    max_top_logprobs: int = OPTION_TOP_LOGPROBS
    refused: frozenset = frozenset()         # fields the model refuses: not sent either
    thinking_refused: frozenset = frozenset()   # refused while thinking is asked for
    token_limit: str = "max_tokens"
    reasoning: bool = False
    effort: dict = field(default_factory=dict)  # level -> body fragment
    rule: str | None = None                  # the model rule that applied (its patterns), for summaries

    @classmethod
    def for_preset(cls, preset, model: str = "") -> "Wire":
        caps, rule = preset.capabilities, preset.rule_for(model)
        base: dict[str, Any] = dict(renames=dict(preset.renames), unsent=frozenset() if caps.seed else frozenset({"seed"}),
                    max_top_logprobs=min(caps.max_top_logprobs or OPTION_TOP_LOGPROBS, OPTION_TOP_LOGPROBS))
        if rule is None:
            return cls(**base)
        return cls(**base, refused=frozenset(rule.refuses), thinking_refused=frozenset(rule.thinking_refuses),
                   token_limit=rule.token_limit, reasoning=rule.reasoning, effort=dict(rule.effort),
                   rule=", ".join(rule.match))

    def identity(self) -> dict | None:
        """What a model rule changes in the bodies sent, for cache keys and run identities (None for
        the plain wire, so runs and cached replies of models without a rule keep their keys)."""
        if self.rule is None:
            return None
        return {"rule": self.rule, "refused": sorted(self.refused), "thinking_refused": sorted(self.thinking_refused),
                "token_limit": self.token_limit, "reasoning": self.reasoning, "effort": self.effort}

    def thinks(self, sampling) -> bool:
        """Whether a request thinks: a reasoning model, or an effort asked for; never with effort
        "none" (which turns thinking off)."""
        if sampling.reasoning_effort == "none":
            return False
        return self.reasoning or sampling.reasoning_effort is not None

    def not_sent(self, sampling) -> frozenset:
        """Fields left out of the body: ignored, refused, refused while thinking, and `stop` for a
        request that thinks (a stop such as a blank line would end the thinking, not the answer;
        evalkit cuts the answer at it on its own side)."""
        thinking = (self.thinking_refused | {"stop"}) if self.thinks(sampling) else frozenset()
        return self.unsent | self.refused | thinking

    def budget(self, sampling) -> int:
        """The reasoning tokens allowed on top of the answer's: --max-reasoning-tokens as given (a
        model evalkit does not know to think may), else the effort's default where it thinks, else 0."""
        if sampling.max_reasoning_tokens is not None and sampling.reasoning_effort != "none":
            return sampling.max_reasoning_tokens
        if not self.thinks(sampling):
            return 0
        return REASONING_BUDGET[sampling.reasoning_effort or ""]


def parse_completion(raw: bytes, endpoint: str, request: Request) -> Completion:
    """A chat-completions body as evalkit's Completion. A body that is not a completion is worth a
    retry (a proxy's error page); a completion without content is this sample's error."""
    try:
        body = json.loads(raw)
        choice = first_choice(body["choices"])
        text = choice["message"]["content"]
        if text is not None and not isinstance(text, str):
            raise TypeError("message.content is not a string")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        snippet = raw[:80].decode("utf-8", "replace")
        raise TransientError(f"malformed response from {endpoint} ({short_error(exc)}): {snippet!r}", malformed=True) from None
    reasoning = reasoning_of(choice["message"])
    finish = choice.get("finish_reason")
    if text is None:
        if reasoning is None and finish != "length":
            raise SampleError("the reply has no content (message.content is null)")
        text = ""                 # it thought, or ran out of tokens, before answering: truncated, not absent
    wants_logprobs = request.options is not None or request.sampling.top_logprobs > 0
    return Completion(text=text, finish_reason=finish, usage=read_usage(body.get("usage")),
                      top_logprobs=top_logprobs(choice) if wants_logprobs else None, reasoning=reasoning)


def first_choice(choices: list) -> dict:
    """The choice a reply is read from: the first whose index is 0 (a choice without an index
    counts as 0), in whole and streamed replies alike; IndexError if there is none."""
    for choice in choices:
        if choice.get("index", 0) == 0:
            return choice
    raise IndexError("no choice with index 0")


REASONING_FIELDS = ("reasoning", "reasoning_content")   # vLLM and Ollama; DeepSeek and older vLLM


def reasoning_of(message: dict) -> str | None:
    """The thinking a server put beside the content (a string field; anything else is ignored)."""
    parts = [message.get(f) for f in REASONING_FIELDS if isinstance(message, dict)]
    texts = [p for p in parts if isinstance(p, str) and p]
    return "\n".join(dict.fromkeys(texts)) if texts else None


def read_usage(usage) -> dict:
    """Token counts of a reply: prompt and completion, and where the server details them, the
    completion's reasoning tokens and the prompt's cached tokens."""
    if not isinstance(usage, dict):
        return {}
    out = {k: usage[k] for k in ("prompt_tokens", "completion_tokens") if k in usage}
    for details, key in (("completion_tokens_details", "reasoning_tokens"), ("prompt_tokens_details", "cached_tokens")):
        d = usage.get(details)
        if isinstance(d, dict) and d.get(key) is not None:
            out[key] = d[key]
    return out


def wire_body(model: str, request: Request, wire: Wire = Wire()) -> dict:
    """evalkit's request as an OpenAI chat-completions body (None values and the fields the
    endpoint does not get left out, the others under the names it uses; see the module docstring)."""
    s = request.sampling
    limit = s.max_tokens + wire.budget(s) if s.max_tokens is not None else None
    body = {"model": model, "messages": [_wire_message(m) for m in request.messages],
            "temperature": s.temperature, "max_tokens": limit, "top_p": s.top_p,
            "stop": list(s.stop) or None, "seed": s.seed}
    if request.options is not None:             # one token, and its alternatives are the answer
        body.update({"max_tokens": 1, "logprobs": True, "top_logprobs": wire.max_top_logprobs})
    elif s.top_logprobs:
        body.update({"logprobs": True, "top_logprobs": min(s.top_logprobs, wire.max_top_logprobs)})
    skip = wire.not_sent(s)
    out = {wire.renames.get(k, k): v for k, v in body.items() if v is not None and k not in skip}
    if "max_tokens" in out and wire.token_limit != "max_tokens":
        out[wire.token_limit] = out.pop("max_tokens")
    if s.reasoning_effort is not None:
        fragment = wire.effort.get(s.reasoning_effort)
        if fragment is None:     # checked before the first request; this is the last line of defence
            raise SampleError(f"--reasoning-effort {s.reasoning_effort}: not a level this model takes")
        merge_into(out, _with_budget(fragment, wire.budget(s)))
    if s.extra_body:
        merge_into(out, json.loads(s.extra_body))
    return out


def merge_into(body: dict, extra: dict) -> dict:
    """`extra` merged into `body` in place: objects merge key by key, anything else replaces."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            merge_into(body[key], value)
        else:
            body[key] = value
    return body


def _with_budget(fragment, budget: int):
    """An effort fragment with each "{budget}" string replaced by the reasoning budget (an int)."""
    if isinstance(fragment, dict):
        return {k: _with_budget(v, budget) for k, v in fragment.items()}
    return budget if fragment == "{budget}" else fragment


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
