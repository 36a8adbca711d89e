"""GPQA (Rein et al. 2023): `dataset.zip` as published, read in place with its published password.

The zip (legacy ZipCrypto) holds `dataset/gpqa_{main,diamond,extended}.csv`; each member is read
into memory and parsed there, never written anywhere (the authors encrypt it so crawlers do not
pick the questions up). A subset is one member (`gpqa` alone is Diamond, the one reported today;
the subsets overlap, so they are never run together); the experts file has another schema and
is not a subset.

Options are shuffled exactly as simple-evals' `gpqa_eval.py` shuffles them: one
`random.Random(0)` draws `rng.sample(range(4), 4)` for every row of the file in order, then for
every row again for each further repeat, and the permutation indexes the list
[Correct Answer, Incorrect Answer 1, 2, 3]. So row i (0-based, file order) of a file of N rows
sees, in repeat r, the (r*N + i)-th draw of that stream. Repeat 0 is the sample itself;
`--samples K` asks for K completions per question, and completion j sees repeat j
(`variant`), exactly simple-evals' `n_repeats=K` (it runs Diamond with 4). `--seed` does not
change the permutations (it does not in simple-evals either).
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.core.sample import Sample
from evalkit.loaders import MissingData, data_file

GROUP = "domain"
FILE = "dataset.zip"
PASSWORD = b"deserted-untie-orchid"          # published in idavidrein/gpqa's README
SUBSETS = ("main", "diamond", "extended")
COLUMNS = ("Record ID", "Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
           "Incorrect Answer 3", "High-level domain")
LETTERS = "ABCD"

_draws: list[tuple[int, ...]] = []
_rng = random.Random(0)


def permutation(k: int) -> tuple[int, ...]:
    """The k-th `sample(range(4), 4)` of simple-evals' `random.Random(0)` stream."""
    while len(_draws) <= k:
        _draws.append(tuple(_rng.sample(range(4), 4)))
    return _draws[k]


def _arranged(options: tuple[str, ...], perm: tuple[int, ...]) -> tuple[tuple[str, ...], str]:
    """The options in the permutation's order, and the letter the correct one (options[0]) lands on."""
    choices = tuple(options[p] for p in perm)
    return choices, LETTERS[perm.index(0)]


def variant(sample: Sample, j: int) -> Sample:
    """Completion j of a question: repeat j's permutation (the sample itself for j = 0)."""
    if j == 0:
        return sample
    f = sample.fields
    choices, answer = _arranged(f["options"], permutation(j * f["rows"] + f["row"]))
    return replace(sample, choices=choices, answer=answer)


MAX_MEMBER = 64 * 2**20       # the largest member is 4 MB: anything far larger is not GPQA's


def member_text(path: Path, subset: str) -> str:
    name = f"dataset/gpqa_{subset}.csv"
    try:
        with zipfile.ZipFile(path) as zf:
            if zf.getinfo(name).file_size > MAX_MEMBER:
                raise EvalkitError(f"{path}: {name} would unpack to over {MAX_MEMBER // 2**20} MiB; not GPQA's zip")
            raw = zf.read(name, pwd=PASSWORD)
    except KeyError:
        raise MissingData(f"{path}: no member {name} (is it GPQA's dataset.zip?)") from None
    except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, ValueError, zlib.error) as exc:
        raise EvalkitError(f"{path}: cannot read {name} ({exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EvalkitError(f"{path}: {name} is not UTF-8 text (byte {exc.start})") from None


def rows(path: Path, subset: str) -> list[dict]:
    name = f"{path}:dataset/gpqa_{subset}.csv"
    reader = csv.DictReader(io.StringIO(member_text(path, subset), newline=""), strict=True)
    try:
        out = list(reader)
    except csv.Error as exc:
        raise EvalkitError(f"{name}:{reader.line_num}: {exc}") from None
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise EvalkitError(f"{name}: no column {missing[0]!r} (want {', '.join(COLUMNS)})")
    return out


def load(spec, root: Path, split: str) -> list[Sample]:
    subsets = [spec.subset or "diamond"]      # the subsets overlap (diamond is in main, main in extended)
    path = data_file(root, FILE)
    if not path.is_file():
        raise MissingData(f"no {FILE} at {path}")
    out: list[Sample] = []
    for subset in subsets:
        if subset not in SUBSETS:
            raise EvalkitError(f"{spec.name}: GPQA subset must be one of {', '.join(SUBSETS)}, not {subset!r}")
        table = rows(path, subset)
        for i, row in enumerate(table):
            out.append(_sample(spec, path, subset, i, len(table), row))
    return out


def _sample(spec, path: Path, subset: str, i: int, n: int, row: dict) -> Sample:
    options = tuple(row[c] for c in COLUMNS[2:6])
    if any(not o.strip() for o in options) or not row["Question"].strip():
        raise EvalkitError(f"{path}:dataset/gpqa_{subset}.csv: row {i + 1} ({row['Record ID']}) "
                           "has an empty question or option")
    choices, answer = _arranged(options, permutation(i))
    fields = {"subset": subset, "domain": row["High-level domain"], "record_id": row["Record ID"],
              "row": i, "rows": n, "options": options}
    return Sample(id=f"{subset}/{row['Record ID']}", question=row["Question"], answer=answer, choices=choices,
                  group=row["High-level domain"], fields=fields)
