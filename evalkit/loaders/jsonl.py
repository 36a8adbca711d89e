"""Generic JSON Lines: one object per line, mapped to samples by `dataset.fields`."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import EvalkitError
from . import split_file
from ._mapped import samples_from_records


def records(path: Path):
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalkitError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from None
            if not isinstance(rec, dict):
                raise EvalkitError(f"{path}:{lineno}: a record must be a JSON object")
            yield lineno, rec


def load(spec, root: Path, split: str):
    path = split_file(root, split, "jsonl")
    return samples_from_records(spec, path, records(path))
