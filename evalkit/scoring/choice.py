"""Multiple-choice answers: find the option letter a chat model meant.

Chat models answer "C", "(C)", "C. Paris", "c", "The answer is C", "Answer: C", or reason first and
conclude. The rules, in order (the first that finds a letter wins):

1. an explicit statement: "answer is X", "answer: X", "answer is therefore [X]" — the last one
   in the text, so a chain of thought that changes its mind is read at its conclusion;
2. the reply starts with the letter alone: "C", "(C)", "[C]", "C.", "C)", "C: ...", "c";
3. the reply is exactly one option's text ("Paris");
4. exactly one distinct label letter stands alone as a capital word in the text, not counting a
   capital "A" or "I" used as an article or pronoun ("A bird ..." is not option A).

Anything else is unparseable: scored wrong and recorded with `parsed=False`.

The patterns use possessive quantifiers (`\\s*+`), so a reply of thousands of spaces after
"answer" is read in linear time instead of hanging the run in backtracking.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from functools import lru_cache
from typing import Literal, cast

from pydantic import Field

from evalkit.core.sample import Sample
from evalkit.scoring import MissingLogprobs, Score, ScoreInput, ScorerOptions, scorer
from evalkit.scoring.match import ExtractOption
from evalkit.scoring.text import extract_answer


@lru_cache(maxsize=64)
def _patterns(labels: str):
    cls = "[" + re.escape(labels + labels.lower()) + "]"
    statement = re.compile(
        r"answer\s*+(?:is|:|=)?\s*+(?:therefore|probably|likely|clearly)?\s*+(?:option|choice)?\s*+[:\-]?\s*+"
        r"[\(\[\"'*]*+(" + cls + r")(?![A-Za-z0-9])",
        re.IGNORECASE,
    )
    leading = re.compile(r"^\s*+(?:option\s++|choice\s++)?[\(\[\"'*]*+(" + cls + r")[\)\]\"'*]*+[^\S\n]*+(?:[.:)\],]|$|\n)",
                         re.IGNORECASE)
    standalone = re.compile(r"(?<![A-Za-z0-9'])([" + re.escape(labels) + r"])(?![A-Za-z0-9'])(\s++[a-z])?")
    return statement, leading, standalone


def extract_letter(text: str, labels: str = "ABCD", options: tuple[str, ...] | None = None) -> str | None:
    statement, leading, standalone = _patterns(labels)
    found = statement.findall(text)
    if found:
        return found[-1].upper()
    m = leading.match(text)
    if m:
        return m.group(1).upper()
    if options:
        norm = text.strip().rstrip(".").strip().lower()
        hits = [labels[i] for i, opt in enumerate(options) if opt.strip().rstrip(".").strip().lower() == norm]
        if len(hits) == 1:
            return hits[0]
    letters = {m.group(1) for m in standalone.finditer(text) if not (m.group(1) in "AI" and m.group(2))}
    if len(letters) == 1:
        return letters.pop()
    return None


def extract_letters(text: str, labels: str) -> str | None:
    """Several letters for a multi-answer item ("AC", "A, C", "Answer: A and C"), sorted and joined.

    After the last "answer(s) is/are/:" the letters standing alone on that line are read; without
    such a marker the whole reply must be nothing but letters and separators ("AC", "B, D").
    """
    marker = None
    for marker in re.finditer(r"answers?\s*+(?:is|are|:)\s*+(.*)", text, re.IGNORECASE):
        pass
    if marker is not None:
        region = marker.group(1)
    elif re.fullmatch(r"[\s\(\[]*+[A-Za-z](?:[\s,&\)\]\(\[]*+(?:and)?[\s\(\[]*+[A-Za-z])*[\s\)\].]*+", text):
        region = text
        if not re.fullmatch(r"[\s\W]*+[A-Z]++[\s\W]*+", text) and re.search(r"[a-z]{2}", text.replace("and", "")):
            return None
    else:
        return None
    tokens = re.findall(r"(?<![A-Za-z])([A-Za-z]+)(?![A-Za-z])", region)
    letters = set()
    for tok in tokens:
        if tok.lower() == "and":
            continue
        if len(tok) == 1 and tok.upper() in labels:
            letters.add(tok.upper())
        elif tok.isupper() and all(ch in labels for ch in tok):   # "AC" written together
            letters.update(tok)
        else:
            break   # prose after the letters ends them
    return "".join(sorted(letters)) or None


class LetterOptions(ExtractOption):
    method: Literal["letter"]
    answer_by: Literal["text", "logprob"] = Field(
        "text", description="read the answer from the reply's text, or take the option letter with the highest "
                            "probability as the next token (one forward pass; GPT-4 report, multilingual MMLU)")
    logprobs: bool = Field(False, description="also ask for the answer token's top log-probabilities: option "
                                              "probabilities and calibration (--logprobs)")

    def wants(self) -> tuple[str | None, int]:
        if self.answer_by == "logprob":
            return self.labels, 0
        return None, TOP_LOGPROBS if self.logprobs else 0


class MC2Options(ScorerOptions):
    method: Literal["mc2"]

    def wants(self) -> tuple[str | None, int]:
        return None, TOP_LOGPROBS


TOP_LOGPROBS = 20   # alternatives asked for per generated token (the most OpenAI returns)


@scorer("letter", LetterOptions)
def letter(inp: ScoreInput) -> Score:
    o, sample = cast(LetterOptions, inp.options), inp.sample  # the registry built these options from this scorer's class
    if o.answer_by == "logprob":
        return _scored_by_probs(inp.reply, sample, o.labels, "--answer-by logprob",
                                lambda _, best: 1.0 if best == sample.answer else 0.0)
    result = score_letter(inp.reply.text, sample, o.labels, o.extract)
    if inp.reply.top_logprobs is not None and sample.choices:
        result = with_option_probs(result, inp.reply.top_logprobs, sample, o.labels)
    return result


@scorer("mc2", MC2Options, metrics=("mc2",))
def mc2(inp: ScoreInput) -> Score:
    """TruthfulQA MC2: the normalised probability the model puts on the true options (from logprobs)."""
    answer = inp.sample.answer
    return _scored_by_probs(inp.reply, inp.sample, inp.options.labels, "MC2",
                            lambda probs, _: sum(probs[x] for x in answer))


def score_letter(completion: str, sample: Sample, labels: str, extract: str | None = None) -> Score:
    """One letter for single-answer items; for items whose answer is several letters, the exact set.

    With `extract` (a regex with one group, or answer_line), only what it captures is read.
    """
    if extract is not None:
        found = extract_answer(completion, extract)
        if found is None:
            return Score(0.0, None, parsed=False)
        completion = found
    if sample.choices is not None:
        labels = labels[: len(sample.choices)]
    if len(sample.answer) > 1:
        got = extract_letters(completion, labels)
        if got is None:
            return Score(0.0, None, parsed=False)
        return Score(1.0 if got == sample.answer else 0.0, got)
    letter = extract_letter(completion, labels, sample.choices)
    if letter is None:
        return Score(0.0, None, parsed=False)
    return Score(1.0 if letter == sample.answer else 0.0, letter)


def option_probs(top_logprobs: list, labels: str) -> tuple[dict[str, float], float] | None:
    """Per-option probabilities from the answer token's top alternatives.

    The answer token is the first generated position whose alternatives include an option letter
    (a reply may open with "(" or a space). Each option's probability is the summed exp(logprob)
    of the alternatives that are that capital letter (give or take surrounding spaces or an
    opening bracket); they are renormalised over the options, and the mass the alternatives left
    off the options (other tokens, or letters below the top-k cut-off) is returned beside them.
    """
    for alts in top_logprobs:
        mass: dict[str, float] = {}
        for token, logprob in alts:
            letter = token.strip().lstrip("([")
            if len(letter) == 1 and letter in labels:
                mass[letter] = mass.get(letter, 0.0) + math.exp(logprob)
        total = sum(mass.values())
        if total > 0:
            probs = {label: mass.get(label, 0.0) / total for label in labels}
            return probs, max(0.0, 1.0 - total)
    return None


def with_option_probs(result: Score, top_logprobs: list, sample: Sample, labels: str) -> Score:
    assert sample.choices is not None           # the caller checks: a multiple-choice sample
    found = option_probs(top_logprobs, labels[: len(sample.choices)])
    if found is None:
        return result
    probs, missing = found
    return replace(result, option_probs={k: round(v, 6) for k, v in probs.items()}, missing_mass=round(missing, 6))


def _scored_by_probs(reply, sample: Sample, labels: str, needs: str, value) -> Score:
    """Score from the option probabilities: `value(probs, best_letter)`. A reply without
    log-probabilities is this sample's error (raised, recorded by the pipeline), never a 0."""
    if reply.top_logprobs is None:
        raise MissingLogprobs(f"{needs} needs log-probabilities and the reply has none "
                         "(the server must support logprobs/top_logprobs)")
    assert sample.choices is not None           # scored by option: loading checked it has choices
    found = option_probs(reply.top_logprobs, labels[: len(sample.choices)])
    if found is None:
        return Score(0.0, None, parsed=False)
    probs, missing = found
    best = max(probs, key=probs.__getitem__)
    return Score(round(value(probs, best), 6), best, option_probs={k: round(v, 6) for k, v in probs.items()},
                 missing_mass=round(missing, 6))
