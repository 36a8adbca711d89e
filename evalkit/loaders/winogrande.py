"""WinoGrande 1.1: `<split>.jsonl` (qID, sentence with `_`, option1, option2, answer "1"/"2")
plus the official `<split>-labels.lst`, one label per line.

The labels file is authoritative; a record whose own `answer` disagrees with it is an error.
The two options are presented as choices A and B.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.core.sample import Sample
from evalkit.core.errors import EvalkitError
from evalkit.loaders.jsonl import records


def load(spec, root: Path, split: str) -> list[Sample]:
    path, labels_path = root / f"{split}.jsonl", root / f"{split}-labels.lst"
    if not path.is_file():
        raise EvalkitError(f"{spec.name}: no {split} split at {path}")
    labels = labels_path.read_text(encoding="utf-8").split() if labels_path.is_file() else None
    letters = spec.scoring.labels
    out = []
    for n, (lineno, rec) in enumerate(records(path)):
        try:
            gold = labels[n] if labels is not None else str(rec["answer"])
            options = (rec["option1"], rec["option2"])
            sentence, qid = rec["sentence"], rec["qID"]
        except (KeyError, IndexError):
            raise EvalkitError(f"{path}:{lineno}: broken WinoGrande record (need qID, sentence, option1, option2, "
                               f"and a label in {labels_path.name})") from None
        if gold not in ("1", "2") or ("answer" in rec and str(rec["answer"]) != gold):
            raise EvalkitError(f"{path}:{lineno}: answer {rec.get('answer')!r} disagrees with label {gold!r} in {labels_path.name}")
        out.append(Sample(id=qid, question=sentence, choices=options, answer=letters[int(gold) - 1]))
    if labels is not None and len(labels) != len(out):
        raise EvalkitError(f"{labels_path}: {len(labels)} labels for {len(out)} records")
    return out
