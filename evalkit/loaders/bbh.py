"""BIG-Bench Hard (Suzgun et al. 2022) in its repository's layout.

    bbh/<task>.json          {"canary": ..., "examples": [{"input": ..., "target": ...}, ...]}
    cot-prompts/<task>.txt   the canary line, a `-----` line, then the task's published 3-shot
                             chain-of-thought prompt (a one-line description and three
                             `Q: ... A: Let's think step by step. ... So the answer is X.` exemplars)

A task is a subset and a group. Each sample carries its task's prompt as published, minus the two
header lines and surrounding blank lines, in the field `cot_prompt` (one string per task, shared),
so the eval's prompt is that text followed by the question, as the authors prompt.
"""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.core.sample import Sample, short_intern
from evalkit.loaders import MissingData

GROUP = "task"
HEADER = "-----"


def tasks(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "bbh").glob("*.json"))


def cot_prompt(root: Path, task: str) -> str:
    path = root / "cot-prompts" / f"{task}.txt"
    if not path.is_file():
        raise MissingData(f"no chain-of-thought prompt for task {task} at {path}")
    text = path.read_text(encoding="utf-8")
    head, sep, body = text.partition(f"\n{HEADER}\n")
    if not sep or "canary" not in head:
        raise EvalkitError(f"{path}: not a BBH prompt file (want a canary line, then a {HEADER} line)")
    if "Q: " not in body or "So the answer is" not in body:
        raise EvalkitError(f"{path}: holds no `Q: ... So the answer is ...` exemplar")
    return body.strip()


def examples(root: Path, task: str) -> list[dict]:
    path = root / "bbh" / f"{task}.json"
    if not path.is_file():
        raise MissingData(f"no data for task {task} at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise EvalkitError(f"{path}: not valid JSON ({getattr(exc, 'msg', 'nested too deeply')})") from None
    items = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise EvalkitError(f"{path}: want an object with an `examples` list")
    for i, ex in enumerate(items):
        if not (isinstance(ex, dict) and isinstance(ex.get("input"), str) and isinstance(ex.get("target"), str)
                and ex["target"].strip()):
            raise EvalkitError(f"{path}: example {i} needs an `input` and a non-empty `target` (strings)")
    return items


def load(spec, root: Path, split: str) -> list[Sample]:
    names = [spec.subset] if spec.subset else (spec.dataset.subsets or tasks(root))
    if not names:
        raise MissingData(f"no BBH tasks at {root / 'bbh'} (expected <task>.json)")
    out: list[Sample] = []
    for task in names:
        fields = {"task": task, "cot_prompt": cot_prompt(root, task)}     # one dict per task
        for i, ex in enumerate(examples(root, task)):
            out.append(Sample(id=f"{task}/{i}", question=ex["input"], answer=short_intern([ex["target"]])[0],
                              group=task, fields=fields))
    return out
