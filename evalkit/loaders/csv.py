"""Generic CSV with a header row, mapped to samples by `dataset.fields`."""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import EvalkitError
from . import split_file
from ._mapped import samples_from_records


def records(path: Path):
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        for rec in reader:
            if None in rec:
                raise EvalkitError(f"{path}:{reader.line_num}: more fields than the header has")
            yield reader.line_num, rec


def load(spec, root: Path, split: str):
    path = split_file(root, split, "csv")
    return samples_from_records(spec, path, records(path))
