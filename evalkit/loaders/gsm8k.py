"""GSM8K: `<split>.jsonl` of {question, answer}, the answer a worked solution ending `#### <number>`.

The target is the number after `####` (commas dropped). The worked solution, with the
calculator annotations `<<48/2=24>>` removed, is the field `{solution}` that chain-of-thought
few-shot examples show before their answer.
"""

from __future__ import annotations

import re
from pathlib import Path

from evalkit.core.sample import Sample
from evalkit.core.errors import EvalkitError
from evalkit.loaders import split_file
from evalkit.loaders.jsonl import records

_CALC = re.compile(r"<<[^>]*>>")


def load(spec, root: Path, split: str) -> list[Sample]:
    path = split_file(root, split, "jsonl")
    out = []
    for lineno, rec in records(path):
        answer = rec.get("answer")
        if not isinstance(rec.get("question"), str) or not isinstance(answer, str) or "####" not in answer:
            raise EvalkitError(f"{path}:{lineno}: broken GSM8K record (need question and an answer ending '#### <number>')")
        solution, _, final = answer.rpartition("####")
        out.append(Sample(id=f"{split}/{lineno - 1}", question=rec["question"], answer=final.strip().replace(",", ""),
                          fields={"solution": _CALC.sub("", solution).strip()}))
    return out
