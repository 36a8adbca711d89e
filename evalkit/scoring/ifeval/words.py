"""IFEval's checkers about words and letters: keywords, language, case, commas.

Each checker takes the reply and the instruction's arguments (already validated, see
`checkers.py`) and says whether the reply follows the instruction, as the authors define it
(Zhou et al. 2023, google-research/instruction_following_eval). Keywords are regular expressions
there (matched case-insensitively), and so they are here.
"""

from __future__ import annotations

import re

from evalkit.loaders.ifeval_instructions import forbidden_pattern

from evalkit.scoring.ifeval.textutil import language_of, word_tokens


def compare(count: int, relation: str, threshold: int) -> bool:
    """IFEval's two relations: "less than" is strict, "at least" includes the threshold."""
    return count < threshold if relation == "less than" else count >= threshold


def keywords_existence(text: str, kw: dict) -> bool:
    return all(re.search(word, text, flags=re.IGNORECASE) for word in kw["keywords"])


def keywords_frequency(text: str, kw: dict) -> bool:
    found = len(re.findall(kw["keyword"].strip(), text, flags=re.IGNORECASE))
    return compare(found, kw["relation"], kw["frequency"])


def forbidden_words(text: str, kw: dict) -> bool:
    return not any(re.search(forbidden_pattern(w), text, flags=re.IGNORECASE) for w in kw["forbidden_words"])


def letter_frequency(text: str, kw: dict) -> bool:
    """How often the letter occurs in the lower-cased reply (every character counts, so a
    reply's "A" counts for "a")."""
    letter = kw["letter"].strip().lower()
    return compare(text.lower().count(letter), kw["let_relation"], kw["let_frequency"])


def response_language(text: str, kw: dict) -> bool:
    found = language_of(text)
    return found is None or found == kw["language"]


def capital_word_frequency(text: str, kw: dict) -> bool:
    capitals = sum(1 for tok in word_tokens(text) if tok.isupper())
    return compare(capitals, kw["capital_relation"], kw["capital_frequency"])


def _english(text: str) -> bool:
    found = language_of(text)
    return found is None or found == "en"


def english_capital(text: str, kw: dict) -> bool:
    return text.isupper() and _english(text)


def english_lowercase(text: str, kw: dict) -> bool:
    return text.islower() and _english(text)


def no_comma(text: str, kw: dict) -> bool:
    return "," not in text
