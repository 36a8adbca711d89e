"""MMMLU (openai/MMMLU): MMLU's test set translated by professional translators, one CSV per locale.

Layout: `<root>/<language>/mmlu_<LOCALE>.csv` (e.g. `fr/mmlu_FR-FR.csv`), with a header row
`,Question,A,B,C,D,Answer,Subject`: an unnamed row index, the question, four options, the answer
letter and MMLU's subject name (e.g. `abstract_algebra`). The languages are the spec's subsets
(`mmlu-translated.fr` runs French only). A sample's id is `<language>/<row index>`; its group is
the subject when one language runs, else the language. Only the test split exists.
"""

from __future__ import annotations

import csv
from pathlib import Path

from evalkit.core.sample import Sample, short_intern
from evalkit.core.errors import EvalkitError

COLUMNS = ("Question", "A", "B", "C", "D", "Answer", "Subject")


def load(spec, root: Path, split: str) -> list[Sample]:
    if split != "test":
        raise EvalkitError(f"{spec.name}: MMMLU has only the test split, not {split!r}")
    languages = [spec.subset] if spec.subset else spec.dataset.subsets
    if not languages:
        raise EvalkitError(f"{spec.name}: list the languages to run in dataset.subsets")
    out: list[Sample] = []
    for lang in languages:
        out += _language(root / lang, lang, spec.name, by_subject=len(languages) == 1)
    return out


def _language(folder: Path, lang: str, name: str, by_subject: bool) -> list[Sample]:
    files = sorted(folder.glob("mmlu_*.csv")) if folder.is_dir() else []
    if len(files) != 1:
        raise EvalkitError(f"{name}: expected one mmlu_<LOCALE>.csv in {folder}, found {len(files)}")
    path = files[0]
    out = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None) or []
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise EvalkitError(f"{path}:1: header lacks {', '.join(missing)} (want ,Question,A,B,C,D,Answer,Subject)")
        at = {c: header.index(c) for c in COLUMNS}
        for n, row in enumerate(reader):
            if len(row) != len(header) or row[at["Answer"]].strip() not in ("A", "B", "C", "D"):
                raise EvalkitError(f"{path}:{reader.line_num}: broken MMMLU row {n} (want {len(header)} fields "
                                   "and an answer letter A-D)")
            index = row[0] if header[0] not in COLUMNS and row[0].strip() else str(n)
            subject = row[at["Subject"]]
            out.append(Sample(
                id=f"{lang}/{index}",
                question=row[at["Question"]],
                choices=short_intern(row[at[c]] for c in "ABCD"),
                answer=row[at["Answer"]].strip(),
                group=subject if by_subject else lang,
                fields={"subject": subject, "subject_name": subject.replace("_", " "), "language": lang},
            ))
    return out
