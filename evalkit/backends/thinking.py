"""A reply's answer apart from its thinking, for every backend alike, before any scorer sees it.

Servers hand thinking back in one of three ways: in a field beside the content (read by the wire
format into `Completion.reasoning`), inline in the content as a tagged block (`<think>...</think>`
from a server without a reasoning parser), or inline with the opening tag left in the prompt by
the chat template (Qwen3, DeepSeek-R1: the content starts with the thinking and holds only the
closing tag). `separate` takes all three apart: the answer is the content outside every block,
the thinking is the field plus the blocks, and neither ever reaches a scorer as the other.

A reply is **truncated**, and so is no answer at all, when
- a think block opens and never closes (the limit cut the thinking short), or
- the limit cut it (`finish_reason: length`) and it thought (a field, a block, or
  reasoning tokens in its usage): the answer, if any, was cut as well; or it had no answer at all.
A plain reply that used its whole budget without thinking is left to its scorer, as before (a base
model writing past its answer; stop strings cut those).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .base import Completion

# (opening, closing) tags the common open models write: DeepSeek-R1, Qwen3, QwQ, gpt-oss through
# some templates, Seed-OSS, Kimi; `--think-tags` replaces the list.
DEFAULT_TAGS: tuple[tuple[str, str], ...] = (
    ("<think>", "</think>"), ("<thinking>", "</thinking>"), ("<reasoning>", "</reasoning>"),
    ("<seed:think>", "</seed:think>"), ("\u25c1think\u25b7", "\u25c1/think\u25b7"))


@dataclass(frozen=True)
class Separated:
    completion: Completion        # text: the answer alone; reasoning: all the thinking
    raw: str | None               # the content as it came, when the answer is not all of it
    truncated: str | None         # why this reply holds no whole answer (see the module docstring)


def separate(c: Completion, tags: tuple[tuple[str, str], ...] = DEFAULT_TAGS) -> Separated:
    """The answer and the thinking of `c` (see the module docstring)."""
    answer, inline, unclosed = split_inline(c.text, tags)
    thinking = "\n".join(t for t in (c.reasoning, inline) if t) or None
    raw = c.text if inline is not None or unclosed else None
    out = dataclasses.replace(c, text=answer, reasoning=thinking)
    return Separated(out, raw, _truncation(out, unclosed))


def split_inline(text: str, tags) -> tuple[str, str | None, str | None]:
    """(answer, inline thinking or None, the tag left open or None)."""
    if not tags:
        return text, None, None
    thoughts, answer, rest = [], [], text
    lead = _leading_close(rest, tags)
    if lead is not None:                     # the opening tag was in the prompt
        cut, close = lead
        thoughts.append(rest[:cut])
        rest = rest[cut + len(close):]
    while True:
        found = _first_open(rest, tags)
        if found is None:
            answer.append(rest)
            break
        at, opening, closing = found
        answer.append(rest[:at])
        end = rest.find(closing, at + len(opening))
        if end < 0:
            thoughts.append(rest[at + len(opening):])
            return "".join(answer).strip(), "\n".join(thoughts).strip(), opening
        thoughts.append(rest[at + len(opening):end])
        rest = rest[end + len(closing):]
    if not thoughts:
        return text, None, None
    return "".join(answer).strip(), "\n".join(t.strip() for t in thoughts), None


def _first_open(text: str, tags):
    best = None
    for opening, closing in tags:
        at = text.find(opening)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, opening, closing)
    return best


def _leading_close(text: str, tags):
    """A closing tag with no opening before it: (where, the tag), the earliest such."""
    best = None
    for opening, closing in tags:
        at = text.find(closing)
        if at >= 0 and opening not in text[:at] and (best is None or at < best[0]):
            best = (at, closing)
    return best


def _truncation(c: Completion, unclosed: str | None) -> str | None:
    used, thought = c.usage.get("completion_tokens"), c.usage.get("reasoning_tokens")
    if unclosed is not None:
        return f"truncated: the thinking never closed ({unclosed} without its closing tag){_used(used, thought)}"
    if c.finish_reason != "length":
        return None
    if c.reasoning or thought:
        return f"truncated: the limit cut the reply{_used(used, thought)}; raise --max-reasoning-tokens"
    if not c.text.strip():
        return f"truncated: the limit was reached before any answer{_used(used, thought)}"
    return None


def _used(used, thought) -> str:
    if used is None:
        return ""
    return f", used all {used:,} tokens" + (f", {thought:,} of them reasoning" if thought else "")


def parse_tags(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """`--think-tags OPEN,CLOSE` values as tag pairs; "none" turns inline separation off. A bad
    value is a ValueError naming it."""
    pairs = []
    for value in values:
        if value.strip().lower() == "none":
            return ()
        opening, sep, closing = value.partition(",")
        if not sep or not opening.strip() or not closing.strip():
            raise ValueError(f"--think-tags {value!r}: write OPEN,CLOSE, e.g. --think-tags '<think>,</think>' "
                             "(or none)")
        pairs.append((opening.strip(), closing.strip()))
    return tuple(pairs)
