"""MGSM answers as simple-evals reads them (openai/simple-evals `mgsm_eval.py`).

The reply's answer is the last number after the last occurrence of its language's answer word
(`Answer`, `Antwort`, `答案`, ... from the sample's `language` field), read with commas removed
(`\\d+\\.?\\d*`, a trailing period dropped); a number with a decimal point loses its trailing zeros
and point (`18.0` -> `18`). It must equal the target, commas removed, as a string. A reply
without the answer word, or without a number after it, is not parsed (and scores 0). Like
simple-evals, a period is never read as a thousands separator (`1.000` is not 1000): the
instructions ask for the bare integer.
"""

from __future__ import annotations

import re
from typing import Literal

from evalkit.scoring import Score, ScoreInput, ScorerOptions, ScoringError, scorer

ANSWER_WORD = {
    "en": "Answer", "bn": "উত্তর", "de": "Antwort", "es": "Respuesta", "fr": "Réponse", "ja": "答え",
    "ru": "Ответ", "sw": "Jibu", "te": "సమాధానం", "th": "คำตอบ", "zh": "答案",
}
_NUMBER = re.compile(r"\d+\.?\d*")


class MgsmOptions(ScorerOptions):
    method: Literal["mgsm"]


def parse_answer(reply: str, word: str) -> str | None:
    if word not in reply:
        return None
    numbers = _NUMBER.findall(reply.split(word)[-1].strip().replace(",", ""))
    return numbers[-1].rstrip(".") if numbers else None


def same_number(target: str, prediction: str) -> bool:
    if "." in prediction:
        prediction = prediction.rstrip("0").rstrip(".")
    return target.replace(",", "") == prediction.replace(",", "")


@scorer("mgsm", MgsmOptions)
def mgsm(inp: ScoreInput) -> Score:
    lang = inp.sample.fields.get("language")
    if lang not in ANSWER_WORD:
        raise ScoringError(f"sample {inp.sample.id}: no MGSM answer word for language {lang!r}")
    got = parse_answer(inp.reply.text, ANSWER_WORD[lang])
    if got is None:
        return Score(0.0, None, parsed=False)
    return Score(float(same_number(inp.sample.answer, got)), got)
