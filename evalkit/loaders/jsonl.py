"""Generic JSON Lines: one object per line, mapped to samples by `dataset.fields`."""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.loaders import split_file, text_lines
from evalkit.loaders.fields import samples_from_records


def records(path: Path):
    for lineno, line in enumerate(text_lines(path), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise EvalkitError(f"{path}:{lineno}: not valid JSON: {getattr(exc, 'msg', 'nested too deeply')}") from None
        if not isinstance(rec, dict):
            raise EvalkitError(f"{path}:{lineno}: a record must be a JSON object")
        yield lineno, rec


def load(spec, root: Path, split: str):
    path = split_file(root, split, "jsonl")
    return samples_from_records(spec, path, records(path))
