"""The last `\\boxed{...}` (or `\\fbox{...}`) of a LaTeX text, braces balanced as Hendrycks'
`last_boxed_only_string` reads them: how MATH's solutions give their reference answer (the loader)
and how a reply gives its final one (evalkit.scoring.mathextract). Linear in the text's length.
"""

from __future__ import annotations

import re

_BOX = re.compile(r"\\(?:boxed|fbox)")


def braced(text: str, start: int) -> tuple[str, int] | None:
    """The group that opens at text[start] == "{": (its contents, the index after its "}"), or
    None when its braces never balance."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i + 1
    return None


def last_box(text: str) -> tuple[str | None, int, int] | None:
    """The last box: (its contents or None when unbalanced, where it starts, where it ends)."""
    found = None
    for found in _BOX.finditer(text):
        pass
    if found is None:
        return None
    rest = found.end()
    if text[rest:rest + 1] == "{":
        inner = braced(text, rest)
        return (inner[0], found.start(), inner[1]) if inner else (None, found.start(), len(text))
    bare = re.match(r"\s+([^\s$]+)", text[rest:rest + 200])       # `\boxed 5`
    if bare is None:
        return None, found.start(), rest
    return bare.group(1), found.start(), rest + bare.end()
