"""TruthfulQA multiple choice (`mc_task.json`): a list of {question, mc1_targets, mc2_targets}.

The split chooses the target set: `mc1` (one true option) or `mc2` (one or more true options).
Each `*_targets` maps option text to 1 (true) or 0; the true options come first in the file, so
options are shuffled with a generator seeded by the question text (the same order on every run
and machine). The answer is the letter of the true option (mc1) or the letters of all true ones
(mc2, e.g. "BE").
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from evalkit.core.sample import Sample
from evalkit.core.errors import EvalkitError
from evalkit.loaders import data_file

FILE = "mc_task.json"


def load(spec, root: Path, split: str) -> list[Sample]:
    if split not in ("mc1", "mc2"):
        raise EvalkitError(f"{spec.name}: TruthfulQA split must be mc1 or mc2, not {split!r}")
    path = data_file(root, FILE)
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalkitError(f"{path}: cannot read TruthfulQA ({exc})") from None
    letters = spec.scoring.labels
    out = []
    for i, item in enumerate(items):
        targets = item.get(f"{split}_targets") if isinstance(item, dict) else None
        if not isinstance(targets, dict) or not targets or not isinstance(item.get("question"), str):
            raise EvalkitError(f"{path}: item {i} has no question or {split}_targets")
        if len(targets) > len(letters):
            raise EvalkitError(f"{path}: item {i} has {len(targets)} options but scoring.labels has {len(letters)}")
        options = list(targets.items())
        seed = int(hashlib.sha256(item["question"].encode()).hexdigest()[:16], 16)
        random.Random(seed).shuffle(options)
        answer = "".join(letters[j] for j, (_, truth) in enumerate(options) if truth == 1)
        if not answer or (split == "mc1" and len(answer) != 1):
            raise EvalkitError(f"{path}: item {i} has {len(answer)} true options in {split}_targets")
        out.append(Sample(id=f"truthfulqa/{i}", question=item["question"], choices=tuple(t for t, _ in options),
                          answer=answer))
    return out
