"""Where a competition-math reply gives its final answer (MATH, MATH-500, AIME).

`final_answer(reply)` is the answer the reply ends on, as LaTeX text:

- the last `\\boxed{...}` or `\\fbox{...}` (braces balanced, as Hendrycks' `last_boxed_only_string`
  reads it; `\\boxed 5` without braces too), or
- the text after the last "final answer is" (Minerva's "The final answer is $X$. I hope it is
  correct.") or "Answer:" (simple-evals' `Answer\\s*:\\s*([^\\n]+)`, Markdown `**Answer:**` too),

whichever comes later in the reply. A box whose braces never close is no answer (Hendrycks gives
None for it too). `$...$`, `\\(...\\)`, a trailing period and Markdown bold around an answer are
dropped. Every scan here is linear in the reply's length (replies are untrusted and may be long).
"""

from __future__ import annotations

import re

from evalkit.datasets.boxed import last_box

_FINAL = re.compile(r"final answer is\b\s*:?|\banswer\s*\**\s*:", re.IGNORECASE)
_HOPE = re.compile(r"\.?\s*I hope it is correct", re.IGNORECASE)
_WRAPS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"))


def _phrase(text: str, after: int) -> tuple[str, int] | None:
    """The answer after the last "final answer is" / "Answer:" that starts at or after `after`."""
    last = None
    for last in _FINAL.finditer(text, after):
        pass
    if last is None:
        return None
    line = text[last.end():].lstrip(" \t*").split("\n", 1)[0]
    hope = _HOPE.search(line)
    return (line[:hope.start()] if hope else line), last.start()


def clean(answer: str) -> str:
    """An answer without the math delimiters, bold or trailing period a reply wraps it in."""
    text = answer.strip()
    changed = True
    while changed and text:
        changed = False
        text = text.rstrip(" .").strip()
        for left, right in _WRAPS:
            if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
                text, changed = text[len(left):len(text) - len(right)].strip(), True
                break
    inner = last_box(text)
    if inner and inner[0] is not None and inner[1] == 0 and inner[2] == len(text):
        return inner[0].strip()
    return text


def final_answer(reply: str) -> str | None:
    """The reply's final answer (see the module docstring), or None when it gives none."""
    box = last_box(reply)
    phrase = _phrase(reply, box[2] if box else 0)
    if phrase is not None and phrase[0].strip():
        got = clean(phrase[0])
        return got or None
    if box is None or box[0] is None:
        return None
    return box[0].strip() or None
