"""HellaSwag in the derived text form (`hellaswag_val_full.txt.bz2`): 6 lines per item.

    <activity label>: <context>
    <gold ending index, 0-3>
    <ending 0> ... <ending 3>

This is a preprocessed rendering of the 10,042 validation items (see shared/data/SOURCES.md);
only the `val` split exists. The activity label (before the first ": ") is the sample's group.
"""

from __future__ import annotations

import bz2
from pathlib import Path

from evalkit.core.sample import Sample
from evalkit.core.errors import EvalkitError
from evalkit.loaders import data_file

GROUP = "activity"   # samples are grouped by this field (a spec's group_by may name it)

FILE = "hellaswag_val_full.txt.bz2"


def load(spec, root: Path, split: str) -> list[Sample]:
    if split not in ("val", "validation"):
        raise EvalkitError(f"{spec.name}: HellaSwag's text form has only the val split, not {split!r}")
    path = data_file(root, FILE)
    try:
        with bz2.open(path, "rt", encoding="utf-8") as fh:
            lines = fh.read().split("\n")
    except OSError as exc:
        raise EvalkitError(f"{path}: cannot read ({exc})") from None
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) % 6:
        raise EvalkitError(f"{path}:{len(lines)}: {len(lines)} lines is not a whole number of 6-line items")
    labels = spec.scoring.labels
    out = []
    for i in range(0, len(lines), 6):
        ctx, gold, endings = lines[i], lines[i + 1].strip(), lines[i + 2:i + 6]
        if gold not in ("0", "1", "2", "3"):
            raise EvalkitError(f"{path}:{i + 2}: gold label {gold!r} is not 0-3")
        activity = ctx.split(": ", 1)[0] if ": " in ctx else None
        out.append(Sample(id=f"hellaswag/{i // 6}", question=ctx, choices=tuple(endings), answer=labels[int(gold)],
                          group=activity))
    return out
