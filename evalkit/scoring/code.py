"""Code: run the model's program and then the item's test in the sandbox; 1 if the test passed.

Which code: the fenced block of the reply (```python, ```py or a bare ```) that defines the
entry point, else the first block that defines or imports anything, else the first block; a
reply without a fence is taken as code as it is.

How the program is assembled, so that every usual shape of a correct reply passes (all 164
HumanEval canonical solutions do, in each shape):
- the whole function (the prompt's signature and docstring, then the body; with or without
  helpers and imports around it): the prompt runs first with a `pass` body, so the helpers and
  imports the prompt itself defines stay available, then the reply, whose definition replaces
  the stub. The prompt's own in-function lines (HumanEval/115 imports `math` inside the function,
  before its docstring) are the reply's business: a reply that repeats the prompt keeps them;
- the body only: appended to the prompt; a body whose first line is not indented (a frequent
  way of writing one) is indented as a whole.
The program runs under the module name `solution` (`if __name__ == "__main__":` blocks do not
run; exits and exceptions are failures). The test is the item's `test` followed by
`check(<entry point>)`, run by the sandbox's checker in a process of its own, after the prompt
(with a `pass` body: its helpers, e.g. HumanEval/32's `poly`, are the task's, not the reply's),
calling the program's entry point with plain data (see sandbox_driver.py). The extracted field in
the log is the sandbox's verdict: `passed` (`passed (in-process)` when the test had to run in the
program's process), or the status and its reason (`failed: AssertionError (test line 12)`,
`timeout: ...`, `killed: ...`, `exited: ...`, `limit: MemoryError ...`). A sandbox that could not
start is the sample's error (a rerun tries it again), never a score.
"""

from __future__ import annotations

import re
import textwrap
from typing import Literal

from evalkit.core.sample import Sample
from evalkit.scoring.sandbox import require_isolation, run_python
from evalkit.scoring.sandbox_limits import Limits
from evalkit.scoring import Score, ScoreInput, ScorerOptions, ScoringError, scorer

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\r?\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
_DEFINES = re.compile(r"^[ \t]*+(?:async[ \t]+def|def|class|import|from)\s", re.M)   # linear in blank runs


def _defines(entry: str) -> re.Pattern[str]:
    return re.compile(rf"^(?:async\s+)?def\s+{re.escape(entry)}\s*\(", re.M)


def extract_code(reply: str, entry: str | None = None) -> str:
    blocks = _FENCE.findall(reply)
    if not blocks:
        return reply
    if entry is not None:
        defining = _defines(entry)
        found = next((b for b in blocks if defining.search(textwrap.dedent(b))), None)
        if found is not None:
            return found
    return next((b for b in blocks if _DEFINES.search(b)), blocks[0])


def build_program(sample: Sample, code: str) -> tuple[str, str]:
    """(program, test) for the sandbox: the prompt and the model's code, then the item's test."""
    prompt, entry = sample.fields["prompt"], sample.fields["entry_point"]
    prompt = prompt if prompt.endswith("\n") else prompt + "\n"
    dedented = textwrap.dedent(code)
    if _defines(entry).search(dedented):
        program = prompt + "    pass\n\n" + dedented
    else:
        first = next((line for line in code.splitlines() if line.strip()), "")
        body = code if first[:1] in (" ", "\t") or not first else textwrap.indent(code, "    ")
        program = prompt + body
    return program, f"{sample.fields['test']}\n\ncheck({entry})\n"


def score_code(completion: str, sample: Sample, limits: Limits = Limits(), unsafe_exec: bool = False) -> Score:
    code = extract_code(completion, sample.fields.get("entry_point"))
    prompt, entry = sample.fields["prompt"], sample.fields["entry_point"]
    prelude = (prompt if prompt.endswith("\n") else prompt + "\n") + "    pass\n"   # the prompt's helpers, trusted
    result = run_python(*build_program(sample, code), limits=limits, unsafe_exec=unsafe_exec, prelude=prelude,
                        entry=entry)
    if result.status == "error":          # the sandbox never ran the program: this sample's error, tried again
        raise ScoringError(f"sandbox: {result.detail}")
    if result.passed:
        verdict = f"passed ({result.detail})" if result.detail else "passed"
    else:
        verdict = f"{result.status}: {result.detail}"
    return Score(1.0 if result.passed else 0.0, verdict[:300])


class CodeOptions(ScorerOptions):
    method: Literal["code"]


def _isolation(services: dict) -> None:
    require_isolation(services.get("unsafe_exec", False))


@scorer("code", CodeOptions, metrics=("pass@1",), work="thread", metric_patterns=(r"pass@[1-9][0-9]*",),
        precheck=_isolation)
def code(inp: ScoreInput) -> Score:
    """Runs in a worker thread that blocks until the sandbox ends (bwrap --die-with-parent follows
    the calling thread), one per core."""
    return score_code(inp.reply.text, inp.sample, unsafe_exec=inp.services.get("unsafe_exec", False))
