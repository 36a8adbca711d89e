"""AGIEval v1 (`<root>/v1/<task>.jsonl`) and its few-shot file (`few_shot_prompts.permissive.csv`).

Records: `passage` (str, "" or null), `question`, `options` (["(A)2", "(B)4", ...] or null for
cloze tasks), `label` (a letter, a list of letters for multi-answer gaokao-physics rows, or null),
`answer` (cloze tasks), `other`. Multiple choice: the "(A)" prefixes are stripped (the prompt
letters its options itself) and a multi-answer label (a list, or a string such as "A B D")
becomes its letters joined ("ABD"), scored as an exact set. One published defect is kept as it
is, with a warning: sat-en row 57 (and its copy without passage) has three options and label D. Cloze: the target is `answer`.

Tasks are the spec's subsets (`agieval.sat-math`); the task is each sample's group. Split `test`
is the task file; split `fewshot` is the task's column of the few-shot file, whose `sample N`
cells are Python dict reprs (read with `ast.literal_eval`) with `explanation N` beside them.
AGIEval gives 5 examples per task, 4 for MATH and 3 for the long-passage tasks (LSAT, sat-en,
gaokao-chinese, gaokao-english): `--shots` beyond that is an error naming the number available.
"""

from __future__ import annotations

import ast
import csv
import re
from pathlib import Path

from evalkit.core.sample import Sample, short_intern
from evalkit.core.errors import EvalkitError, warn
from evalkit.loaders.jsonl import records

GROUP = "task"   # samples are grouped by this field (a spec's group_by may name it)

_PREFIX = re.compile(r"^\s*\(([A-Z])\)\s?")
FEWSHOT = "few_shot_prompts.permissive.csv"


def _sample(spec, task: str, sid: str, rec: dict, where: str, fields: dict | None = None) -> Sample:
    question = rec.get("question")
    if not isinstance(question, str):
        raise EvalkitError(f"{where}: record has no question")
    passage = rec.get("passage") or ""
    text = f"{passage}\n{question}" if passage else question
    options = rec.get("options")
    if options:
        choices = short_intern(_PREFIX.sub("", o) for o in options)
        label = rec.get("label")
        letters = spec.scoring.labels
        given = label if isinstance(label, list) else [label]
        # gaokao-mathqa writes some multi-answer labels as one string: "AD", "A B D".
        label_list = [ch for x in given if isinstance(x, str) for ch in re.findall(r"[A-Z]", x)]
        if not label_list or any(x not in letters for x in label_list):
            raise EvalkitError(f"{where}: label {label!r} is not an option letter")
        if any(letters.index(x) >= len(choices) for x in label_list):
            warn(f"{where}: label {label!r} names an option the data does not have ({len(choices)} options); "
                 "kept as published, so no reply can score on it")
        answer = "".join(sorted(set(label_list)))
    else:
        if rec.get("answer") in (None, ""):
            raise EvalkitError(f"{where}: cloze record has no answer")
        choices, answer = None, str(rec["answer"])
    return Sample(id=sid, question=text, choices=choices, answer=answer, group=task, fields=fields or {})


def load(spec, root: Path, split: str) -> list[Sample]:
    tasks = [spec.subset] if spec.subset else spec.dataset.subsets
    if not tasks:
        raise EvalkitError(f"{spec.name}: list the AGIEval tasks to run in dataset.subsets")
    if split == "fewshot":
        return _fewshot(spec, root, tasks)
    out = []
    for task in tasks:
        path = root / "v1" / f"{task}.jsonl"
        if not path.is_file():
            raise EvalkitError(f"{spec.name}: missing AGIEval task file {path}")
        for lineno, rec in records(path):
            out.append(_sample(spec, task, f"{task}/{lineno - 1}", rec, f"{path}:{lineno}"))
    return out


def _fewshot(spec, root: Path, tasks: list[str]) -> list[Sample]:
    path = root / FEWSHOT
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    cells = {row[0]: row for row in rows[1:]}
    out = []
    for task in tasks:
        if task not in header:
            raise EvalkitError(f"{path}: no few-shot column for {task}")
        col = header.index(task)
        for n in range(1, 6):
            raw = cells.get(f"sample {n}", [""] * len(header))[col]
            if not raw.strip():
                continue
            try:
                rec = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                raise EvalkitError(f"{path}: sample {n} of {task} is not a readable record") from None
            explanation = cells.get(f"explanation {n}", [""] * len(header))[col]
            out.append(_sample(spec, task, f"{task}/fewshot{n}", rec, f"{path}: sample {n} of {task}",
                               {"explanation": explanation}))
    return out
