"""MATH-500 (Lightman et al. 2023, PRM800K's `math_splits/test.jsonl`): 500 MATH test problems.

One JSON object a line: `{"problem", "solution", "answer", "subject", "level", "unique_id"}`, the
`answer` being the solution's last box, pre-extracted (LaTeX, not normalised). A sample's id is
the `unique_id` without `test/` and `.json` (`precalculus/807`, as `math` names it), its group the
subject folder (`precalculus`, as `math` groups), with the display name in `type`.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.core.sample import Sample
from evalkit.loaders import split_file
from evalkit.loaders.jsonl import records

GROUP = "subject"


def _id(unique_id: str) -> tuple[str, str] | None:
    parts = unique_id.removeprefix("test/").removesuffix(".json").split("/")
    return (parts[0], "/".join(parts)) if len(parts) == 2 and all(parts) else None


def load(spec, root: Path, split: str) -> list[Sample]:
    path = split_file(root, split, "jsonl")
    out = []
    for lineno, rec in records(path):
        named = _id(rec["unique_id"]) if isinstance(rec.get("unique_id"), str) else None
        if named is None or not all(isinstance(rec.get(k), str) for k in ("problem", "answer", "subject")):
            raise EvalkitError(f"{path}:{lineno}: broken MATH-500 record (need problem, answer, subject and a "
                               "unique_id like test/<subject>/<n>.json)")
        subject, sid = named
        out.append(Sample(id=sid, question=rec["problem"], answer=rec["answer"], group=subject,
                          fields={"subject": subject, "type": rec["subject"], "level": f"level-{rec.get('level')}",
                                  "solution": rec.get("solution", "")}))
    return out
