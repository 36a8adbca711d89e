"""Key-like strings out of anything evalkit stores or prints.

Text that came from somewhere untrusted (a sandboxed program's error message, a server's error
body) can carry a credential: a model's code that found one, or a proxy that echoed a header.
`redact` replaces what looks like an API key with "[REDACTED]" before such text reaches a log:

- OpenAI `sk-...` (also `sk-proj-...`, `sk-svcacct-...`) and Anthropic `sk-ant-...`,
- Google `AIza...`, Groq `gsk_...`, Hugging Face `hf_...`,
- the token of an HTTP `Bearer <token>` (the word "Bearer" stays, so the text still reads),
- and the exact strings in `known` (e.g. the values of the API-key variables in use); strings
  shorter than 8 characters are ignored there, since redacting them would garble ordinary text.

Speed: each family of keys starts with a fixed string, so each is its own expression beginning
with that literal (which `re` finds by a fast substring scan), run only when the literal occurs
at all; a single alternation of all of them is about 50 times slower. Ordinary text costs a few
substring searches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MARK = "[REDACTED]"
MIN_KNOWN = 8

# (literal that must occur, expression, replacement). A key starts where a word starts, so
# "task-..." holds no `sk-` key: the look-behind after the literal checks the character before it.
_FAMILIES = (
    ("sk-", re.compile(r"sk-(?<![\w-]sk-)[\w-]{16,}"), MARK),               # OpenAI, Anthropic
    ("AIza", re.compile(r"AIza(?<![\w-]AIza)[\w-]{30,}"), MARK),            # Google
    ("gsk_", re.compile(r"gsk_(?<![\w-]gsk_)[A-Za-z0-9]{20,}"), MARK),      # Groq
    ("hf_", re.compile(r"hf_(?<![\w-]hf_)[A-Za-z0-9]{20,}"), MARK),         # Hugging Face
    ("earer", re.compile(r"earer(?<=[Bb]earer)(?<![\w-].earer)(\s+)[\w.~+/=-]{8,}"), r"earer\1" + MARK),
    ("EARER", re.compile(r"EARER(?<=BEARER)(?<![\w-].EARER)(\s+)[\w.~+/=-]{8,}"), r"EARER\1" + MARK),
)


def redact(text: str, known: Iterable[str] = ()) -> str:
    """`text` with every key-like string and every string of `known` replaced by "[REDACTED]"."""
    for key in sorted({k for k in known if isinstance(k, str) and len(k) >= MIN_KNOWN}, key=len, reverse=True):
        if key in text:
            text = text.replace(key, MARK)
    for literal, pattern, replacement in _FAMILIES:
        if literal in text:
            text = pattern.sub(replacement, text)
    return text


SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_ACCESS_KEY")


def env_secrets() -> tuple[str, ...]:
    """The values of the environment's credential variables (OPENAI_API_KEY, HF_TOKEN, ...): the
    exact keys in use, which `redact` removes even where they look like nothing in particular."""
    import os

    return tuple(v for k, v in os.environ.items() if k.upper().endswith(SECRET_SUFFIXES) and len(v) >= MIN_KNOWN)

