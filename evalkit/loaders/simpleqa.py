"""SimpleQA (Wei et al. 2024): `simple_qa_test_set.csv`, header `metadata,problem,answer`.

`metadata` is a Python dict literal (single quotes, not JSON) with the topic, the answer type and
the source URLs; it is read with `ast.literal_eval` (literals only, no code). A sample's id is its
0-based row, its group the topic.
"""

from __future__ import annotations

import ast
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.core.sample import Sample
from evalkit.loaders import MissingData, data_file
from evalkit.loaders.csv import records

GROUP = "topic"
FILE = "simple_qa_test_set.csv"
HEADER = ("metadata", "problem", "answer")


def metadata(text: str, where: str) -> dict:
    try:
        meta = ast.literal_eval(text) if len(text) < 100_000 else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        meta = None
    if not isinstance(meta, dict) or not isinstance(meta.get("topic"), str):
        raise EvalkitError(f"{where}: metadata is not a dict literal with a topic")
    return meta


def load(spec, root: Path, split: str) -> list[Sample]:
    path = data_file(root, FILE)
    if not path.is_file():
        raise MissingData(f"no {FILE} at {path}")
    out: list[Sample] = []
    for lineno, rec in records(path):
        if tuple(rec) != HEADER:
            raise EvalkitError(f"{path}:1: header must be {','.join(HEADER)}")
        if not rec["problem"].strip() or not rec["answer"].strip():
            raise EvalkitError(f"{path}:{lineno}: empty problem or answer")
        meta = metadata(rec["metadata"], f"{path}:{lineno}")
        out.append(Sample(id=f"simpleqa/{len(out)}", question=rec["problem"], answer=rec["answer"],
                          group=meta["topic"], fields={"topic": meta["topic"],
                                                       "answer_type": str(meta.get("answer_type", ""))}))
    return out
