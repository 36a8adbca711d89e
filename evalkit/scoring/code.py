"""Code: run the model's program against the item's tests in the sandbox; 1 if they pass.

The code is the first fenced block of the reply that defines something (```python ... ```), else
the first fenced block, else the whole reply. If it defines the entry-point function it is run
after the prompt (so helpers the prompt defines stay available and the model's definition
replaces the stub); otherwise it is taken as the function's body and appended to the prompt.
Then come the item's tests and `check(<entry point>)`. The extracted field in the log is the
sandbox's verdict: passed, failed (with the last line of the error), timeout or killed.
"""

from __future__ import annotations

import re

from ..datasets import Sample
from ..sandbox import Limits, run_python
from typing import Literal

from . import Score, ScoreInput, ScorerOptions, scorer

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def extract_code(reply: str) -> str:
    blocks = _FENCE.findall(reply)
    if not blocks:
        return reply
    return next((b for b in blocks if re.search(r"^\s*(def|class|import|from)\s", b, re.M)), blocks[0])


def build_program(sample: Sample, code: str) -> str:
    prompt, entry = sample.fields["prompt"], sample.fields["entry_point"]
    if re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.M):
        body = prompt + "\n    pass\n\n" + code
    else:
        body = prompt + code
    return f"{body}\n\n{sample.fields['test']}\n\ncheck({entry})\n"


def score_code(completion: str, sample: Sample, limits: Limits = Limits()) -> Score:
    result = run_python(build_program(sample, extract_code(completion)), limits)
    verdict = result.status + (f": {result.detail}" if result.detail and not result.passed else "")
    return Score(1.0 if result.passed else 0.0, verdict[:300])


class CodeOptions(ScorerOptions):
    method: Literal["code"]


@scorer("code", CodeOptions, metrics=("pass@1",), work="thread", metric_patterns=(r"pass@[1-9][0-9]*",))
def code(inp: ScoreInput) -> Score:
    return score_code(inp.reply.text, inp.sample)
