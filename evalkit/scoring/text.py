"""The answer-reading toolkit every scorer shares: where the answer is, and how text is compared.

- `answer_after_marker`: the rest of the line after the last "answer is" / "answer:" / "####"
  (a chain of thought is read at its conclusion);
- `extract_answer`: a spec's `extract` (`answer_line`, or a regex whose first group is the answer);
- `fold_whitespace`: trimmed, whitespace folded, case folded unless asked not to;
- `squad_normalize`: lower case, no punctuation, no articles (a/an/the), whitespace folded — the
  normalisation of SQuAD, used by fuzzy match and OpenAI Evals' FuzzyMatch;
- `parse_number`: the number a text concludes with ("$1,234.50" reads as 1234.5).

Every pattern here is linear in the reply's length: replies are untrusted and may be long.
"""

from __future__ import annotations

import re
import string

WS = re.compile(r"\s+")
ARTICLES = re.compile(r"\b(a|an|the)\b")
PUNCT = str.maketrans("", "", string.punctuation)
_MARKER = re.compile(r"(?:answer\s*+(?:is|:)|####)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\$?[ \t]?\d[\d,]*(?:\.\d+)?|-?\$?[ \t]?\.\d+")


def answer_after_marker(text: str) -> str | None:
    """The first line after the last answer marker (which may end its own line), stripped; None
    without a marker or with nothing after it."""
    last = None
    for last in _MARKER.finditer(text):
        pass
    if last is None:
        return None
    line = text[last.end():].lstrip().split("\n", 1)[0].strip()
    return line or None


def extract_answer(completion: str, how: str | None) -> str | None:
    """The part of a reply to compare: all of it, the answer line (`answer_line`), or a regex group."""
    if how is None:
        return completion
    if how == "answer_line":
        found = answer_after_marker(completion)
        return found.rstrip(".").strip() if found is not None else None
    last = None
    for last in re.finditer(how, completion, re.DOTALL):
        pass
    return last.group(1).strip() if last is not None and last.group(1) is not None else None


def fold_whitespace(text: str, case_sensitive: bool = False) -> str:
    text = WS.sub(" ", text.strip())
    return text if case_sensitive else text.lower()


def squad_normalize(text: str) -> str:
    text = ARTICLES.sub(" ", text.lower().translate(PUNCT))
    return " ".join(text.split())


def parse_number(text: str) -> float | None:
    """The number a text concludes with: the first after the last answer marker, else the last one."""
    region = answer_after_marker(text)
    nums = _NUMBER.findall(region) if region is not None else []
    raw = nums[0] if nums else next(iter(reversed(_NUMBER.findall(text))), None)
    if raw is None:
        return None
    try:
        return float(raw.replace("$", "").replace(",", "").replace(" ", "").replace("\t", ""))
    except ValueError:
        return None
