"""IFEval's checkers about the shape of a reply: length, paragraphs, lists, sections, markup,
how it starts and ends.

Each takes the reply and the instruction's validated arguments and follows the authors'
definitions (Zhou et al. 2023, google-research/instruction_following_eval); the regular
expressions below are those definitions, spelled as the paper's code matches them.
"""

from __future__ import annotations

import json
import re

from evalkit.loaders.ifeval_instructions import postscript_pattern, section_pattern

from evalkit.scoring.ifeval import scan
from evalkit.scoring.ifeval.textutil import count_sentences, count_words
from evalkit.scoring.ifeval.words import compare

CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
# The authors' bullets are the matches of `^\s*\*[^\*].*$` and `^\s*-.*$` (multi-line); tried from
# each line start in turn, as below (evalkit.scoring.ifeval.scan), without the quadratic time a
# long run of blank lines costs the regex engine.
_BULLET_STAR = re.compile(r"\s*\*[^\*].*$", flags=re.MULTILINE)
_BULLET_DASH = re.compile(r"\s*-.*$", flags=re.MULTILINE)
_HIGHLIGHT = re.compile(r"\*[^\n\*]*\*")
_DOUBLE_HIGHLIGHT = re.compile(r"\*\*[^\n\*]*\*\*")
_PARAGRAPH_DIVIDER = re.compile(r"\s?\*\*\*\s?")
_FIRST_WORD_STOPS = frozenset(".,?!'\"")


def number_sentences(text: str, kw: dict) -> bool:
    return compare(count_sentences(text), kw["relation"], kw["num_sentences"])


def number_words(text: str, kw: dict) -> bool:
    return compare(count_words(text), kw["relation"], kw["num_words"])


def number_paragraphs(text: str, kw: dict) -> bool:
    """Paragraphs divided by `***`: an empty one first or last is not counted, an empty one
    between two others fails the instruction."""
    parts = _PARAGRAPH_DIVIDER.split(text)
    count = len(parts)
    for i, part in enumerate(parts):
        if not part.strip():
            if 0 < i < len(parts) - 1:
                return False
            count -= 1
    return count == kw["num_paragraphs"]


def _first_word(paragraph: str) -> str:
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    out = []
    for ch in word:
        if ch in _FIRST_WORD_STOPS:
            break
        out.append(ch.lower())
    return "".join(out)


def nth_paragraph_first_word(text: str, kw: dict) -> bool:
    """Paragraphs divided by a blank line ("\\n\\n"); the count leaves out empty ones, but the
    n-th is taken from all of them, empty ones included, as the authors do."""
    parts = text.split("\n\n")
    count = sum(1 for p in parts if p.strip())
    nth = kw["nth_paragraph"]
    if nth > count:
        return False
    paragraph = parts[nth - 1].strip()
    if not paragraph:
        return False
    return count == kw["num_paragraphs"] and _first_word(paragraph) == kw["first_word"].lower()


def number_placeholders(text: str, kw: dict) -> bool:
    return scan.placeholders(text) >= kw["num_placeholders"]


def postscript(text: str, kw: dict) -> bool:
    return re.search(postscript_pattern(kw["postscript_marker"]), text.lower(), flags=re.MULTILINE) is not None


def number_bullet_lists(text: str, kw: dict) -> bool:
    found = scan.line_start_matches(_BULLET_STAR, text) + scan.line_start_matches(_BULLET_DASH, text)
    return found == kw["num_bullets"]


def constrained_response(text: str, kw: dict) -> bool:
    text = text.strip()
    return any(option in text for option in CONSTRAINED_OPTIONS)


def number_highlighted_sections(text: str, kw: dict) -> bool:
    single = sum(1 for h in _HIGHLIGHT.findall(text) if h.strip("*").strip())
    double = sum(1 for h in _DOUBLE_HIGHLIGHT.findall(text) if h[2:-2].strip())
    return single + double >= kw["num_highlights"]


def multiple_sections(text: str, kw: dict) -> bool:
    return len(re.split(section_pattern(kw["section_spliter"]), text)) - 1 >= kw["num_sections"]


def json_format(text: str, kw: dict) -> bool:
    body = text.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        body = body.removeprefix(fence)
    body = body.removesuffix("```").strip()
    try:
        json.loads(body)
    except (ValueError, RecursionError):    # RecursionError: nesting too deep for Python's parser
        return False
    return True


def title(text: str, kw: dict) -> bool:
    return any(t.lstrip("<").rstrip(">").strip() for t in scan.titles(text))


def two_responses(text: str, kw: dict) -> bool:
    parts = text.split("******")
    kept = []
    for i, part in enumerate(parts):
        if part.strip():
            kept.append(part)
        elif 0 < i < len(parts) - 1:
            return False
    return len(kept) == 2 and kept[0].strip() != kept[1].strip()


def repeat_prompt(text: str, kw: dict) -> bool:
    return text.strip().lower().startswith(kw["prompt_to_repeat"].strip().lower())


def end_checker(text: str, kw: dict) -> bool:
    return text.strip().strip('"').lower().endswith(kw["end_phrase"].strip().lower())


def quotation(text: str, kw: dict) -> bool:
    text = text.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'
