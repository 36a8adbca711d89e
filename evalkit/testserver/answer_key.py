"""The test server's answer key built from an eval's own data: `--answers-from EVAL [--accuracy P]`.

    python -m evalkit.testserver --answers-from my_eval.yaml --accuracy 0.5 [--seed N] [--key-out FILE]

The key is planned with the code `evalkit run` plans with (evalkit.plan.make_plan, the run's
`--seed` being the server's `--seed`, default 0), so each entry is the exact conversation a run
sends for a sample (few-shot examples included) and the server answers it as a whole
(`{"messages": ...}` entries of the key). A seeded choice of round(P x N) of the N samples is
answered right, the others wrong. Each reply is checked with the eval's own scorer before the
server starts: a right one must score 1, a wrong one 0 (read, not unparsed), so the run's score is
exactly what the key implies; `--key-out` writes the key (`id`, `correct`, `reply`) to compare
with. Samples whose prompts are the same get the same answer (the choice is made per distinct
prompt), since the server cannot tell them apart. Only evals scored from the reply's text (letters, exact, includes, fuzzy, numeric) can be
keyed: code and model-graded evals are refused with one line, as is a run by option probability.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from evalkit.core.errors import EvalkitError


def add_arguments(p) -> None:
    p.add_argument("--answers-from", metavar="EVAL", help="build the answer key from this eval's data "
                   "(a registry name or a YAML file), as `evalkit run` plans it with --seed")
    p.add_argument("--accuracy", type=float, default=1.0, help="with --answers-from: the share answered right")
    p.add_argument("--key-out", metavar="FILE", help="with --answers-from: write the key (id, correct, reply) here")


def answer_key(name: str, accuracy: float, seed: int, key_out: str | None = None) -> list[dict]:
    """`{"messages", "reply"}` entries, one per sample of the eval (its first completion's prompt)."""
    from evalkit.plan.run_plan import RunOptions, make_plan
    from evalkit.testserver.answer_matching import conversation_key
    from evalkit.plan.shards import unit_id

    if not 0.0 <= accuracy <= 1.0:
        raise EvalkitError(f"--accuracy {accuracy}: give a share between 0 and 1")
    spec = _resolve(name)
    if spec.scorer.work != "inline" or spec.scoring.method == "mc2":
        raise EvalkitError(f"--answers-from {name}: scored by `{spec.scoring.method}`; a key answers only evals "
                           "scored from the reply's text (letter, exact, includes, fuzzy, numeric)")
    plan = make_plan(spec, RunOptions(model="testserver", seed=seed), "testserver")
    if plan.options:
        raise EvalkitError(f"--answers-from {name}: answered by option probability; the key answers in text")
    asked = [(s, plan.request(s, 0, unit_id(s.id, 0, plan.per_item)).messages) for s in plan.samples]
    first = _first_of_each_prompt(name, asked)
    right = _chosen(sorted(set(first.values())), accuracy, seed)
    key = []
    for s, messages in asked:
        correct = first[conversation_key(messages)] in right
        key.append({"messages": messages, "reply": _reply(plan, s, messages, correct), "id": s.id, "correct": correct})
    if key_out:
        Path(key_out).write_text("".join(json.dumps({k: e[k] for k in ("id", "correct", "reply")}) + "\n"
                                         for e in key), encoding="utf-8")
    return key


def _resolve(name: str):
    from evalkit.specs.registry import load_registry

    if name.endswith((".yaml", ".yml")) or "/" in name:
        if not Path(name).is_file():
            raise EvalkitError(f"--answers-from {name}: no such file")
        reg, named = load_registry([name])
        runnable = [n for n in named if not reg.raw[n].data.get("abstract")]
        if len(runnable) != 1:
            raise EvalkitError(f"--answers-from {name}: the file defines {len(runnable)} runnable evals; "
                               f"give one by name ({', '.join(runnable)})")
        return reg.resolve(runnable[0])
    return load_registry()[0].resolve(name)


def _first_of_each_prompt(name: str, asked: list) -> dict[str, str]:
    """For each distinct conversation, the first sample asking it: samples whose prompts are the
    same (a question repeated in the data) get one answer, the server cannot tell them apart."""
    from evalkit.testserver.answer_matching import conversation_key

    first: dict[str, str] = {}
    for s, messages in asked:
        if any(not isinstance(m["content"], str) for m in messages):
            raise EvalkitError(f"--answers-from {name}: sample {s.id} carries images; the key answers text "
                               "prompts only (its eval with prompt.vision: false would do)")
        first.setdefault(conversation_key(messages), s.id)
    return first


def _chosen(ids: list[str], accuracy: float, seed: int) -> set[str]:
    order = sorted(ids)
    random.Random(f"answers-from:{seed}").shuffle(order)
    return set(order[: round(accuracy * len(order))])


def _reply(plan, sample, messages: list, correct: bool) -> str:
    """A reply the eval's scorer scores 1 (correct) or 0 with the answer read (wrong)."""
    for text in (_right(sample) if correct else _wrong(plan, sample)):
        score = _score(plan, sample, messages, text)
        if (score.value == 1.0) if correct else (score.value == 0.0 and score.parsed):
            return text
    raise EvalkitError(f"--answers-from {plan.spec.name}: sample {sample.id}: found no reply its scorer "
                       f"`{plan.spec.scoring.method}` scores {'1' if correct else '0'} (target {sample.answer!r})")


def _right(sample) -> list[str]:
    return [f"Answer: {sample.answer}", sample.answer, f"The answer is {sample.answer}."]


def _wrong(plan, sample) -> list[str]:
    if sample.choices:
        labels = plan.spec.scoring.labels[: len(sample.choices)]
        return [f"Answer: {label}" for label in labels if label not in sample.answer]
    try:
        other = str(float(sample.answer.replace(",", "")) + 1).removesuffix(".0")
    except ValueError:
        other = "none of the above"
    return [f"Answer: {other}", "Answer: none of the above", "Answer: 0"]


def _score(plan, sample, messages: list, text: str):
    """The reply scored as the pipeline scores it: cut at the run's stops, then the scorer."""
    from evalkit.backends.base import Completion
    from evalkit.scoring import ScoreInput
    from evalkit.specs.stops import at_stop

    reply = at_stop(Completion(text=text), plan.sampling.stop)
    return plan.spec.scorer.run(ScoreInput(sample=sample, reply=reply, messages=messages, options=plan.spec.scoring))
