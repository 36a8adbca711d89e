"""HumanEval (`HumanEval.jsonl.gz`): {task_id, prompt, entry_point, canonical_solution, test}.

The question is the prompt (signature and docstring); the answer is the canonical solution,
kept for reference (a code eval is scored by running the tests, not by comparing text).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from evalkit.core.sample import Sample
from evalkit.core.errors import EvalkitError
from evalkit.loaders import data_file

FILE = "HumanEval.jsonl.gz"


def load(spec, root: Path, split: str) -> list[Sample]:
    path = data_file(root, FILE)
    out = []
    try:
        fh = gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")
    except OSError as exc:
        raise EvalkitError(f"{path}: cannot read ({exc})") from None
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                fields = {k: rec[k] for k in ("prompt", "entry_point", "test")}
                out.append(Sample(id=rec["task_id"], question=rec["prompt"], answer=rec["canonical_solution"],
                                  fields=fields))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise EvalkitError(f"{path}:{lineno}: broken HumanEval record (need task_id, prompt, entry_point, "
                                   "canonical_solution, test)") from None
    return out
