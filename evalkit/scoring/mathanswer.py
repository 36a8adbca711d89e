"""Competition-math answers: MATH / MATH-500 (`math`) and AIME (`aime`).

`math`: the reply's final answer (`mathextract.final_answer`: the last `\\boxed{}`/`\\fbox{}`, or the
text after "final answer is" / "Answer:") is compared with the reference answer (the contents of
the solution's last box) by `math-verify` (Hugging Face): both are parsed into sympy and compared
as numbers, sets, intervals, matrices or equations. Before that, the two strings with spaces,
`\\left`/`\\right`, `\\!`, `dfrac`/`tfrac` and one pair of `$` removed are compared as text, so
an answer that is written exactly as the reference never depends on a parser.
How this agrees with Hendrycks' `is_equiv` and PRM800K's grader is measured in
docs/benchmarks-math.md (scripts/math_reference/ holds those reference implementations).

`aime`: the final answer must be an integer 0-999 (leading zeros ignored, as AIME writes `025`);
anything else is not parsed and scores 0.

math-verify bounds each parse and comparison with SIGALRM, which works only in the main thread;
the scorer runs inline (on the event loop, the main thread of `evalkit run`), so a hostile answer
(`9^{9^{9^{9}}}`) holds the loop for at most 3 x TIMEOUT_S and scores 0. In any other thread it
runs without the alarm. Answers longer than `MAX_PARSED` characters are compared as text only.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Literal

from evalkit.scoring import Score, ScoreInput, ScorerOptions, scorer
from evalkit.scoring.mathextract import final_answer

MAX_PARSED = 400          # longer answers are compared as text (sympy on hostile input can run for long)
TIMEOUT_S = 2            # per parse and per comparison; legitimate answers take well under 0.2 s
logging.getLogger("math_verify").addHandler(logging.NullHandler())   # its timeouts are our False, not news
_SQUASH = re.compile(r"\s+|\\left|\\right|\\!|\\,|\\;|\\%|\\\$|\^\{?\\circ\}?")
_FRACTION = re.compile(r"(-?)(?:\\frac\{(\d+)\}\{(\d+)\}|(\d+)/(\d+))")


class MathOptions(ScorerOptions):
    method: Literal["math"]


class AimeOptions(ScorerOptions):
    method: Literal["aime"]


def fraction(answer: str) -> tuple[str, str, str] | None:
    """A plain integer fraction (`\\frac{a}{b}`, `a/b`, signed) as written: (sign, a, b)."""
    m = _FRACTION.fullmatch(squash(answer))
    return None if m is None else (m[1], m[2] or m[4], m[3] or m[5])


def squash(answer: str) -> str:
    text = _SQUASH.sub("", answer).replace("dfrac", "frac").replace("tfrac", "frac")
    return text[1:-1] if len(text) > 1 and text[0] == text[-1] == "$" else text


def _parsed(latex: str, timeout: int | None):
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    return parse("\\boxed{" + latex + "}", extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()],
                 parsing_timeout=timeout)


def equivalent(reference: str, answer: str) -> bool:
    """True when `answer` means the same as `reference` (text first, then math-verify)."""
    if squash(reference) == squash(answer):
        return True
    both = fraction(reference), fraction(answer)
    if None not in both:
        return both[0] == both[1]          # an unreduced fraction is not the answer (PRM800K's rule)
    if max(len(reference), len(answer)) > MAX_PARSED:
        return False
    from math_verify import verify

    timeout = TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    try:
        gold, got = _parsed(reference, timeout), _parsed(answer, timeout)
        return bool(gold and got and verify(gold, got, timeout_seconds=timeout))
    except Exception:          # noqa: BLE001 - a parser's failure on model text is "not equivalent"
        return False


@scorer("math", MathOptions)
def math_answer(inp: ScoreInput) -> Score:
    got = final_answer(inp.reply.text)
    if got is None:
        return Score(0.0, None, parsed=False)
    return Score(float(equivalent(inp.sample.answer, got)), got)


_INT = re.compile(r"[+]?0*(\d{1,3})")
_TEXT = re.compile(r"\\(?:text|textbf|mathbf|mathrm)\{([^{}]*)\}")


def aime_integer(answer: str) -> int | None:
    """An AIME answer, 0-999, from its final-answer text (`025`, `\\text{25}`, `25.`), else None."""
    text = _TEXT.sub(r"\1", answer).replace(" ", "").replace("{", "").replace("}", "").rstrip(".")
    m = _INT.fullmatch(text)
    return int(m.group(1)) if m else None


@scorer("aime", AimeOptions)
def aime(inp: ScoreInput) -> Score:
    raw = final_answer(inp.reply.text)
    got = aime_integer(raw) if raw is not None else None
    if got is None:
        return Score(0.0, raw, parsed=False)
    want = aime_integer(inp.sample.answer)
    return Score(float(want is not None and got == want), str(got))
