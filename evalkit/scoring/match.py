"""Free-text answers: exact, includes, fuzzy and numeric match against the ideal answer.

- exact: the reply equals the ideal after trimming and folding whitespace (and case, unless
  `case_sensitive`).
- includes: the ideal occurs in the reply.
- fuzzy: after SQuAD-style normalisation (lower case, no punctuation, no articles a/an/the,
  folded whitespace) either string contains the other.
- numeric: the number the reply concludes with ("Answer: 42", else the last number in the text;
  "$1,234.50" reads as 1234.5) equals the ideal within `tolerance`.

An ideal may list several accepted answers separated by `|||` in the data; any one counts.
"""

from __future__ import annotations

import re
import string

from ..datasets import Sample
from ..spec import ScoringSpec
from . import Score

_WS = re.compile(r"\s+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_NUMBER = re.compile(r"-?\$?\s?\d[\d,]*(?:\.\d+)?|-?\$?\s?\.\d+")
_ANSWER_LINE = re.compile(r"(?:answer\s*(?:is|:)|####)\s*(.+)", re.IGNORECASE)


def _basic(text: str, case_sensitive: bool) -> str:
    text = _WS.sub(" ", text.strip())
    return text if case_sensitive else text.lower()


def fuzzy_normalize(text: str) -> str:
    text = text.lower().translate(_PUNCT)
    return _WS.sub(" ", _ARTICLES.sub(" ", text)).strip()


def parse_number(text: str) -> float | None:
    """The number a text concludes with: after an `Answer:`/`####` marker if present, else the last one."""
    m = None
    for m in _ANSWER_LINE.finditer(text):
        pass
    region = m.group(1) if m else text
    nums = _NUMBER.findall(region) or _NUMBER.findall(text)
    if not nums:
        return None
    raw = nums[0] if m and _NUMBER.findall(region) else nums[-1]
    try:
        return float(raw.replace("$", "").replace(",", "").replace(" ", ""))
    except ValueError:
        return None


def extract_answer(completion: str, how: str | None) -> str | None:
    """The part of a reply to compare: all of it, the text after the last 'Answer:', or a regex group."""
    if how is None:
        return completion
    if how == "answer_line":
        found = re.findall(r"answer\s*(?:is|:)\s*(.+)", completion, re.IGNORECASE)
        return found[-1].strip().rstrip(".") if found else None
    found = list(re.finditer(how, completion, re.DOTALL))
    return found[-1].group(1).strip() if found else None


def score_match(method: str, completion: str, sample: Sample, cfg: ScoringSpec) -> Score:
    ideals = [i for i in sample.answer.split("|||")]
    if cfg.extract is not None:
        extracted = extract_answer(completion, cfg.extract)
        if extracted is None:
            return Score(0.0, None, parsed=False)
        completion = extracted
    if method == "numeric":
        got = parse_number(completion)
        if got is None:
            return Score(0.0, None, parsed=False)
        ok = any((want := parse_number(i)) is not None and abs(got - want) <= cfg.tolerance for i in ideals)
        return Score(float(ok), repr(got).removesuffix(".0"))
    if method == "fuzzy":
        reply = fuzzy_normalize(completion)
        ok = any((ideal := fuzzy_normalize(i)) and (ideal in reply or (reply and reply in ideal)) for i in ideals)
        return Score(float(ok), reply)
    reply = _basic(completion, cfg.case_sensitive)
    wanted = [_basic(i, cfg.case_sensitive) for i in ideals]
    ok = any(reply == w for w in wanted) if method == "exact" else any(w and w in reply for w in wanted)
    return Score(float(ok), reply)
