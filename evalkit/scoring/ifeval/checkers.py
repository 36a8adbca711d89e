"""The checker of each of IFEval's 25 instruction kinds (the kinds and their arguments are data:
evalkit.loaders.ifeval_instructions, which also checks a record's arguments)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from evalkit.loaders.ifeval_instructions import PARAMS
from evalkit.scoring.ifeval import layout, words


@dataclass(frozen=True)
class Kind:
    check: Callable[[str, dict], bool]
    params: dict[str, str]        # argument -> "count" | "relation" | "text" | "texts" | "regex" | "regexes"


_CHECKS: dict[str, Callable[[str, dict], bool]] = {
    "keywords:existence": words.keywords_existence,
    "keywords:frequency": words.keywords_frequency,
    "keywords:forbidden_words": words.forbidden_words,
    "keywords:letter_frequency": words.letter_frequency,
    "language:response_language": words.response_language,
    "length_constraints:number_sentences": layout.number_sentences,
    "length_constraints:number_paragraphs": layout.number_paragraphs,
    "length_constraints:number_words": layout.number_words,
    "length_constraints:nth_paragraph_first_word": layout.nth_paragraph_first_word,
    "detectable_content:number_placeholders": layout.number_placeholders,
    "detectable_content:postscript": layout.postscript,
    "detectable_format:number_bullet_lists": layout.number_bullet_lists,
    "detectable_format:constrained_response": layout.constrained_response,
    "detectable_format:number_highlighted_sections": layout.number_highlighted_sections,
    "detectable_format:multiple_sections": layout.multiple_sections,
    "detectable_format:json_format": layout.json_format,
    "detectable_format:title": layout.title,
    "combination:two_responses": layout.two_responses,
    "combination:repeat_prompt": layout.repeat_prompt,
    "startend:end_checker": layout.end_checker,
    "startend:quotation": layout.quotation,
    "change_case:capital_word_frequency": words.capital_word_frequency,
    "change_case:english_capital": words.english_capital,
    "change_case:english_lowercase": words.english_lowercase,
    "punctuation:no_comma": words.no_comma,
}


def kind(instruction_id: str) -> Kind:
    return Kind(_CHECKS[instruction_id], PARAMS[instruction_id])
