"""Generic CSV with a header row, mapped to samples by `dataset.fields`.

Read strictly: a row with more or fewer fields than the header, or a quoted field that never
ends (which would swallow the rows after it), is an error naming the file and line.
"""

from __future__ import annotations

import csv
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.loaders import split_file, text_lines
from evalkit.loaders.fields import samples_from_records


def records(path: Path):
    reader = csv.reader(text_lines(path), strict=True)
    header, start = None, 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            what = "unterminated quoted field" if "end of data" in str(exc) or "EOF" in str(exc) else str(exc)
            raise EvalkitError(f"{path}:{start}: {what}") from None
        if header is None:
            header = row
        elif row and len(row) != len(header):
            raise EvalkitError(f"{path}:{start}: {len(row)} fields, the header has {len(header)}")
        elif row:
            yield start, dict(zip(header, row))
        start = reader.line_num + 1


def load(spec, root: Path, split: str):
    path = split_file(root, split, "csv")
    return samples_from_records(spec, path, records(path))
