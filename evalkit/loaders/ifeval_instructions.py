"""The 25 instruction kinds of IFEval as data: each id and the arguments it takes (the checkers
that judge a reply against them are evalkit.scoring.ifeval).

`problem(instruction_id, kwargs)` says what is wrong with one instruction of the data (an
unknown id, a missing or mistyped argument, a keyword that is not a valid regular expression),
or None; the loader calls it on every record, so a broken file is one line naming its record,
and the scorer calls it again on what a log hands back.

The authors' code replaces an argument that is missing or out of range with a random one
(`build_description`); evalkit refuses such a record instead, so a score never depends on a draw.
Arguments set to null (the Hugging Face copy lists every argument of every kind, null where
unused) are dropped first.
"""

from __future__ import annotations

import re
from typing import Callable

RELATIONS = ("less than", "at least")

# instruction id -> argument -> "count" | "relation" | "text" | "texts" | "regex" | "regexes" | ...
PARAMS: dict[str, dict[str, str]] = {
    "keywords:existence": {"keywords": "regexes"},
    "keywords:frequency": {"keyword": "regex", "frequency": "count", "relation": "relation"},
    "keywords:forbidden_words": {"forbidden_words": "forbidden"},
    "keywords:letter_frequency": {"letter": "letter", "let_frequency": "count", "let_relation": "relation"},
    "language:response_language": {"language": "text"},
    "length_constraints:number_sentences": {"num_sentences": "count", "relation": "relation"},
    "length_constraints:number_paragraphs": {"num_paragraphs": "count"},
    "length_constraints:number_words": {"num_words": "count", "relation": "relation"},
    "length_constraints:nth_paragraph_first_word": {"num_paragraphs": "count", "nth_paragraph": "count", "first_word": "text"},
    "detectable_content:number_placeholders": {"num_placeholders": "count"},
    "detectable_content:postscript": {"postscript_marker": "postscript"},
    "detectable_format:number_bullet_lists": {"num_bullets": "count"},
    "detectable_format:constrained_response": {},
    "detectable_format:number_highlighted_sections": {"num_highlights": "count"},
    "detectable_format:multiple_sections": {"section_spliter": "section", "num_sections": "count"},
    "detectable_format:json_format": {},
    "detectable_format:title": {},
    "combination:two_responses": {},
    "combination:repeat_prompt": {"prompt_to_repeat": "text"},
    "startend:end_checker": {"end_phrase": "text"},
    "startend:quotation": {},
    "change_case:capital_word_frequency": {"capital_frequency": "count", "capital_relation": "relation"},
    "change_case:english_capital": {},
    "change_case:english_lowercase": {},
    "punctuation:no_comma": {},
}


def forbidden_pattern(word: str) -> str:
    return r"\b" + word + r"\b"


def postscript_pattern(marker: str) -> str:
    r"""The authors search `\s*<marker>.*$` in the lower-cased reply; a match of it exists exactly
    when one of `<marker>` does (the `\s*` may match nothing, and `.*$` always matches after it),
    so that is searched, without the `\s*` that costs quadratic time on a long run of spaces."""
    marker = marker.strip()
    if marker == "P.P.S":
        return r"p\.\s?p\.\s?s"
    if marker == "P.S.":
        return r"p\.\s?s\."
    return marker.lower() + r".*$"


def section_pattern(splitter: str) -> str:
    return r"\s?" + splitter.strip() + r"\s?\d+\s?"


# What a pattern-valued argument becomes before it is matched (so it is the pattern checked).
_AS_PATTERN: dict[str, Callable[[str], str]] = {
    "regex": str.strip, "forbidden": forbidden_pattern,
    "postscript": postscript_pattern, "section": section_pattern,
}


def kinds() -> list[str]:
    return sorted(PARAMS)


def cleaned(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if v is not None}


def _pattern_problem(text: str) -> str | None:
    try:
        re.compile(text)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    return None


def _value_problem(what: str, value) -> str | None:
    if what == "count":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if ok else f"must be a whole number >= 0, not {value!r}"
    if what == "relation":
        return None if value in RELATIONS else f"must be one of {', '.join(map(repr, RELATIONS))}, not {value!r}"
    if what in ("regexes", "forbidden"):
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            return f"must be a non-empty list of words, not {value!r}"
        wrap = _AS_PATTERN.get(what, lambda w: w)
        return next((p for v in value if (p := _pattern_problem(wrap(v)))), None)
    if not isinstance(value, str) or not value.strip():
        return f"must be a non-empty string, not {value!r}"
    if what == "letter" and len(value.strip()) != 1:
        return f"must be one character, not {value!r}"
    return _pattern_problem(_AS_PATTERN[what](value)) if what in _AS_PATTERN else None


def problem(instruction_id, kwargs) -> str | None:
    """What is wrong with one instruction (id and arguments), or None."""
    if instruction_id not in PARAMS:
        return f"unknown instruction id {instruction_id!r}"
    if not isinstance(kwargs, dict):
        return f"{instruction_id}: arguments must be an object, not {type(kwargs).__name__}"
    params, given = PARAMS[instruction_id], cleaned(kwargs)
    if set(given) != set(params):
        return f"{instruction_id}: takes arguments {sorted(params) or 'none'}, got {sorted(given) or 'none'}"
    for name, what in params.items():
        if (bad := _value_problem(what, given[name])) is not None:
            return f"{instruction_id}: {name} {bad}"
    if instruction_id.endswith("nth_paragraph_first_word") and not 1 <= given["nth_paragraph"] <= given["num_paragraphs"]:
        return f"{instruction_id}: nth_paragraph must be between 1 and num_paragraphs"
    return None
