"""AI2 ARC JSONL (`<root>/<Name>-<Split>.jsonl`, e.g. ARC-Challenge/ARC-Challenge-Test.jsonl).

Each record: `{"id", "question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}` with 3-5
options labelled A-E or, in a few rows, 1-4. Options are presented with the spec's letters in
their original order, and a numeric key is mapped to its option's letter.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.core.sample import Sample, short_intern
from evalkit.core.errors import EvalkitError
from evalkit.loaders.jsonl import records


def load(spec, root: Path, split: str) -> list[Sample]:
    path = root / f"{root.name}-{split.capitalize()}.jsonl"
    if not path.is_file():
        raise EvalkitError(f"{spec.name}: no {split} split at {path}")
    letters = spec.scoring.labels
    out = []
    for lineno, rec in records(path):
        try:
            q = rec["question"]
            labels = [c["label"] for c in q["choices"]]
            texts = [c["text"] for c in q["choices"]]
            index = labels.index(rec["answerKey"])
            stem, rid = q["stem"], rec["id"]
        except (KeyError, TypeError, ValueError):
            raise EvalkitError(f"{path}:{lineno}: broken ARC record (need id, question.stem, question.choices "
                               "with text/label, and an answerKey among the labels)") from None
        if len(texts) > len(letters):
            raise EvalkitError(f"{path}:{lineno}: {len(texts)} options but scoring.labels is {letters!r}")
        out.append(Sample(id=rid, question=stem, choices=short_intern(texts), answer=letters[index]))
    return out
