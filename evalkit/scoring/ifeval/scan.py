"""Three of the authors' regular expressions, matched in linear time.

A model's reply is untrusted and may be megabytes long. Python's regex engine takes quadratic time
on some of the authors' patterns with the wrong text: `\\[.*?\\]` on a line of `[`s, `<<[^\\n]+>>`
on a line of `<<`s, `^\\s*\\*...` on a long run of blank lines (100,000 characters of each took
3 to 90 seconds). Each function here gives exactly what `re.findall` gives with that pattern (the
tests compare them on every short string of the characters that matter), in one pass.
"""

from __future__ import annotations

import re


def placeholders(text: str) -> int:
    """len(re.findall(r"\\[.*?\\]", text)): each `[` with the first `]` after it on its line
    (`.` does not cross a newline); a `[` with none closes nothing on that line, nor does a later one."""
    count = 0
    for line in text.split("\n"):
        pos = 0
        while (start := line.find("[", pos)) != -1 and (end := line.find("]", start + 1)) != -1:
            count += 1
            pos = end + 1
    return count


def titles(text: str) -> list[str]:
    """re.findall(r"<<[^\\n]+>>", text): on each line at most one, from its first `<<` to its last
    `>>` (greedy), when at least one character lies between them."""
    out = []
    for line in text.split("\n"):
        start, last = line.find("<<"), line.rfind(">>")
        if start != -1 and last >= start + 3:
            out.append(line[start:last + 2])
    return out


def _next_line_start(text: str, pos: int) -> int:
    """The first position >= pos where `^` holds in multi-line mode (len(text) + 1 when none)."""
    if pos == 0 or text[pos - 1] == "\n":
        return pos
    nl = text.find("\n", pos)
    return len(text) + 1 if nl == -1 else nl + 1


def line_start_matches(rest: re.Pattern, text: str) -> int:
    """len(re.findall("^" + rest.pattern, text, re.MULTILINE)) for a `rest` that starts with `\\s*`.

    Tried from each line start; when it fails there, it fails from every line start up to the first
    non-space character after it too (their `\\s*` reaches the same character), so the next try is
    the first line start past that character."""
    count, pos, n = 0, 0, len(text)
    while pos <= n:
        m = rest.match(text, pos)
        if m is not None:
            count += 1
            nxt = m.end() if m.end() > pos else m.end() + 1
        else:
            first = pos
            while first < n and text[first].isspace():
                first += 1
            nxt = first + 1
        pos = _next_line_start(text, nxt) if nxt <= n else n + 1
    return count
