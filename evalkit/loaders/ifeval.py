"""IFEval (Zhou et al. 2023): `input_data.jsonl` as google-research publishes it.

One record per line: `{"key": int, "prompt": str, "instruction_id_list": [str], "kwargs": [dict]}`,
`kwargs[i]` the arguments of `instruction_id_list[i]`. A sample's id is its key, its question the
prompt as is (sent verbatim: any added wording changes what is tested), and its answer the
instructions as JSON, which the `ifeval` scorer checks the reply against. Every instruction is
checked here (known id, the arguments its checker takes, of the right types: the `ifeval`
scorer's `check_target`, asked through the registry), so a broken record stops the load with one
line naming file, line and key.
"""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.datasets.sample import Sample
from evalkit.core.plugins import SCORERS
from evalkit.loaders import data_file
from evalkit.loaders.jsonl import records

FILE = "input_data.jsonl"


def _sample(rec: dict) -> Sample | str:
    """The record's sample, or what is wrong with it."""
    key, prompt, ids, kwargs = rec.get("key"), rec.get("prompt"), rec.get("instruction_id_list"), rec.get("kwargs")
    if not isinstance(key, int) or isinstance(key, bool):
        return "key must be a whole number"
    if not isinstance(prompt, str) or not prompt.strip():
        return f"key {key}: prompt must be a non-empty string"
    if not isinstance(ids, list) or not ids or not isinstance(kwargs, list) or len(kwargs) != len(ids):
        return f"key {key}: need a non-empty instruction_id_list and one kwargs object per instruction"
    given = json.dumps({"instruction_id_list": ids, "kwargs": kwargs}, ensure_ascii=False)
    if (bad := SCORERS.get("ifeval").check_target(given)) is not None:
        return f"key {key}: {bad}"
    cleaned = [{k: v for k, v in kw.items() if v is not None} for kw in kwargs]    # nulls: unused arguments
    target = json.dumps({"instruction_id_list": ids, "kwargs": cleaned}, ensure_ascii=False)
    return Sample(id=str(key), question=prompt, answer=target)


def load(spec, root: Path, split: str) -> list[Sample]:
    path = data_file(root, FILE)
    out, seen = [], set()
    for lineno, rec in records(path):
        got = _sample(rec)
        if isinstance(got, str):
            raise EvalkitError(f"{path}:{lineno}: broken IFEval record: {got}")
        if got.id in seen:
            raise EvalkitError(f"{path}:{lineno}: broken IFEval record: key {got.id} appears twice")
        seen.add(got.id)
        out.append(got)
    if not out:
        raise EvalkitError(f"{path}: no IFEval records")
    return out
