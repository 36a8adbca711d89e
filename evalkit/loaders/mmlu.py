"""MMLU's original release: `<split>/<subject>_<split>.csv`, headerless: question, A, B, C, D, answer.

The same layout serves translated MMLU (a folder per language): only the path differs.
"""

from __future__ import annotations

import csv
from pathlib import Path

from evalkit.core.sample import Sample, short_intern
from evalkit.core.errors import EvalkitError

GROUP = "subject"   # samples are grouped by this field (a spec's group_by may name it)


def load(spec, root: Path, split: str) -> list[Sample]:
    subjects = [spec.subset] if spec.subset else (spec.dataset.subsets or sorted(
        p.name[: -len(f"_{split}.csv")] for p in (root / split).glob(f"*_{split}.csv")))
    if not subjects:
        raise EvalkitError(f"{spec.name}: no {split} files in {root / split} (expected <subject>_{split}.csv)")
    out: list[Sample] = []
    for subject in subjects:
        path = root / split / f"{subject}_{split}.csv"
        if not path.is_file():
            raise EvalkitError(f"{spec.name}: missing data file {path}")
        fields = {"subject": subject, "subject_name": subject.replace("_", " ")}   # one dict per subject
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            for i, row in enumerate(reader):
                if len(row) != 6 or row[5].strip() not in ("A", "B", "C", "D"):
                    raise EvalkitError(f"{path}:{reader.line_num}: broken MMLU row {i} "
                                       f"(want question,A,B,C,D,answer-letter; got {len(row)} fields)")
                out.append(Sample(
                    id=f"{subject}/{i}",
                    question=row[0],
                    choices=short_intern(row[1:5]),
                    answer=row[5].strip(),
                    group=subject,
                    fields=fields,
                ))
    return out
