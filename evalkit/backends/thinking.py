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

from evalkit.backends.base import Completion

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


def separate(c: Completion, tags: tuple[tuple[str, str], ...] | None = None) -> Separated:
    """The answer and the thinking of `c` (see the module docstring); `tags` None: DEFAULT_TAGS."""
    answer, inline, unclosed = split_inline(c.text, DEFAULT_TAGS if tags is None else tags)
    thinking = "\n".join(t for t in (c.reasoning, inline) if t) or None
    raw = c.text if inline is not None or unclosed else None
    out = dataclasses.replace(c, text=answer, reasoning=thinking)
    return Separated(out, raw, _truncation(out, unclosed))


def split_inline(text: str, tags) -> tuple[str, str | None, str | None]:
    """(answer, inline thinking or None, the tag left open or None). Tags match in any case; a
    block holds nested blocks of its own tag; a closing tag anywhere in what is left (its opening
    one in the template, or a stray one after a block) makes everything before it thinking."""
    if not tags:
        return text, None, None
    low = text.lower()
    tags = [(o.lower(), c.lower()) for o, c in tags]
    thoughts, answer, at = [], [], 0
    while True:
        found = _first_open(low, tags, at)
        if found is None:
            answer.append((at, len(text)))
            break
        start, opening, closing = found
        answer.append((at, start))
        end = _matching_close(low, opening, closing, start + len(opening))
        if end < 0:
            thoughts.append(text[start + len(opening):])
            return _joined(text, answer), "\n".join(t.strip() for t in thoughts), text[start:start + len(opening)]
        thoughts.append(text[start + len(opening):end])
        at = end + len(closing)
    rest = _joined(text, answer)
    close = _last_close(rest.lower(), tags)
    if close is not None:                # thinking whose opening tag is not in the reply
        where, tag = close
        thoughts.append(rest[:where])
        rest = rest[where + len(tag):].strip()
    if not thoughts:
        return text, None, None
    return rest, "\n".join(t.strip() for t in thoughts if t.strip()), None


def _joined(text: str, spans) -> str:
    """The answer's parts around the blocks, one a line."""
    return "\n".join(part for a, b in spans if (part := text[a:b].strip()))


def _first_open(low: str, tags, at: int):
    best = None
    for opening, closing in tags:
        i = low.find(opening, at)
        if i >= 0 and (best is None or i < best[0]):
            best = (i, opening, closing)
    return best


def _matching_close(low: str, opening: str, closing: str, at: int) -> int:
    """Where the block opened before `at` closes, counting nested blocks of the same tag; -1: never."""
    depth = 1
    while True:
        close = low.find(closing, at)
        if close < 0:
            return -1
        nested = low.find(opening, at)
        if 0 <= nested < close:
            depth, at = depth + 1, nested + len(opening)
            continue
        depth, at = depth - 1, close + len(closing)
        if depth == 0:
            return close


def _last_close(low: str, tags):
    """The last closing tag in `low`: (where, the tag), or None."""
    best = None
    for _, closing in tags:
        i = low.rfind(closing)
        if i >= 0 and (best is None or i > best[0]):
            best = (i, closing)
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
