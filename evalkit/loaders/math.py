"""MATH (Hendrycks et al. 2021) in its release layout: `<split>/<subject>/<n>.json`, one problem a file.

Each file is `{"problem", "level": "Level 3", "type": "Algebra", "solution"}`; the reference answer
is the contents of the solution's last `\\boxed{}` (every test solution has one). Subsets are the
seven subject folders (`math.algebra`) and the five levels (`math.level-5`); without one, all
5,000 test problems run, grouped by subject. A sample's id is `<subject>/<n>` (MATH-500's
`unique_id` without `test/` and `.json`, so the two benchmarks name a problem alike).
"""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.datasets.sample import Sample
from evalkit.datasets.boxed import last_box
from evalkit.loaders import MissingData

GROUP = "subject"
SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
            "prealgebra", "precalculus")
LEVELS = tuple(f"level-{n}" for n in range(1, 6))


def reference_answer(solution: str) -> str | None:
    """The contents of a solution's last box, or None when it has no (balanced) box."""
    box = last_box(solution)
    return box[0].strip() if box and box[0] is not None else None


def _record(path: Path) -> dict:
    try:
        rec = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise EvalkitError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise EvalkitError(f"{path}: not valid JSON ({getattr(exc, 'msg', 'nested too deeply')})") from None
    if not isinstance(rec, dict) or not all(isinstance(rec.get(k), str) for k in ("problem", "level", "type", "solution")):
        raise EvalkitError(f"{path}: broken MATH record (need the strings problem, level, type, solution)")
    return rec


def _files(folder: Path) -> list[Path]:
    named = [p for p in folder.glob("*.json") if p.stem.isdigit()]
    return sorted(named, key=lambda p: int(p.stem))


def load(spec, root: Path, split: str) -> list[Sample]:
    base = root / split
    if not base.is_dir():
        raise MissingData(f"no {split} split at {root} (looked for the folder {base})")
    subset = spec.subset
    subjects = [subset] if subset in SUBJECTS else list(SUBJECTS)
    out = []
    for subject in subjects:
        for path in _files(base / subject):
            rec = _record(path)
            level = rec["level"].strip().lower().replace(" ", "-")
            if subset in LEVELS and level != subset:
                continue
            answer = reference_answer(rec["solution"])
            if answer is None:
                raise EvalkitError(f"{path}: the solution has no \\boxed{{}} answer")
            out.append(Sample(id=f"{subject}/{path.stem}", question=rec["problem"], answer=answer, group=subject,
                              fields={"subject": subject, "type": rec["type"], "level": level,
                                      "solution": rec["solution"]}))
    if not out:
        raise MissingData(f"no MATH problems under {base} (want <subject>/<n>.json)")
    return out
