"""AIME 2024 I/II and 2025 I/II in MathArena's layout (eth-sri/matharena `data/aime/`).

`<root>/aime_<year>_<I|II>/problems/<n>.tex` holds problem n (LaTeX; figures only as the Asymptote
code some problems embed), `answers.csv` is `id,answer` with AIME's leading zeros (`025`). Subsets
are the contests (`aime.2024-I`) and the years (`aime.2025`: I and II); without one, all four
contests (60 problems) run, grouped by contest. A sample's id is `<contest>/<n>` (`2024-II/7`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.core.sample import Sample
from evalkit.loaders import MissingData

GROUP = "contest"
CONTESTS = ("2024-I", "2024-II", "2025-I", "2025-II")


def _text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise MissingData(f"cannot read {path} ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise EvalkitError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def _answers(path: Path) -> dict[str, str]:
    rows = list(csv.reader(io.StringIO(_text(path), newline="")))
    if not rows or [c.strip() for c in rows[0]] != ["id", "answer"]:
        raise EvalkitError(f"{path}:1: want the header id,answer")
    out = {}
    for lineno, row in enumerate(rows[1:], 2):
        if len(row) != 2 or not row[0].strip().isdigit() or not row[1].strip().isdigit() or len(row[1].strip()) > 3:
            raise EvalkitError(f"{path}:{lineno}: want <problem number>,<answer 0-999>")
        out[row[0].strip()] = row[1].strip()
    return out


def _contest(root: Path, contest: str) -> list[Sample]:
    year, part = contest.split("-")
    folder = root / f"aime_{year}_{part}"
    answers = _answers(folder / "answers.csv")
    out = []
    for n in sorted(answers, key=int):
        problem = _text(folder / "problems" / f"{n}.tex").strip()
        out.append(Sample(id=f"{contest}/{n}", question=problem, answer=answers[n], group=contest,
                          fields={"contest": contest, "year": year, "number": int(n)}))
    return out


def load(spec, root: Path, split: str) -> list[Sample]:
    if split != "test":
        raise EvalkitError(f"{spec.name}: AIME has only the test split, not {split!r}")
    sub = spec.subset
    contests = [c for c in CONTESTS if sub is None or c == sub or c.split("-")[0] == sub]
    if not contests:
        raise EvalkitError(f"{spec.name}: unknown AIME subset {sub!r}; known: {', '.join(CONTESTS)}, 2024, 2025")
    return [s for c in contests for s in _contest(root, c)]
