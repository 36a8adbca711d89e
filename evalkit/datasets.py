"""Loading samples from the real benchmark formats.

A `Sample` is plain data: an id, the question text, the options (multiple choice), the answer
(a letter for multiple choice, the ideal text otherwise), a group, and the raw record's fields
for prompt templates. Loaders turn a `DatasetSpec` into a list of samples and stop at the first
broken row with an error naming file and line: a row is never silently skipped.

Where data comes from (`data_root`): `$EVALKIT_DATA_DIR` if set (an offline mirror, e.g.
`../shared/data`), else a per-user cache that named sources (MMLU) are downloaded into on first use.
A download is verified against a hash of its parsed content before it is used.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EvalkitError
from .places import data_root
from .spec import EvalSpec


@dataclass(frozen=True, slots=True)
class Sample:
    """One item. `fields` holds the record's other fields for prompt templates (read-only)."""

    id: str
    question: str
    answer: str
    choices: tuple[str, ...] | None = None
    group: str | None = None
    fields: dict = field(default_factory=dict, hash=False, compare=False)


def short_intern(values) -> tuple[str, ...]:
    """Options such as "True, False" repeat across thousands of rows: share one copy of each short one."""
    return tuple(sys.intern(v) if len(v) <= 40 else v for v in values)


# ----------------------------------------------------------------------------- where data lives

def dataset_dir(spec: EvalSpec) -> Path:
    """The file or folder a spec's dataset lives at, downloading a named source if needed."""
    raw = spec.dataset.path
    if raw.startswith(("./", "../")) and spec.source_file:
        return (Path(spec.source_file).parent / raw).resolve()
    if Path(raw).is_absolute():
        return Path(raw)
    path = data_root() / raw
    if not path.exists():
        source = Path(raw).parts[0]
        if os.environ.get("EVALKIT_DATA_DIR"):
            raise EvalkitError(
                f"{spec.name}: data not found at {path} (EVALKIT_DATA_DIR={os.environ['EVALKIT_DATA_DIR']}); "
                f"point EVALKIT_DATA_DIR at a folder holding {raw}/, or unset it to download"
                + (" into the cache" if source in DOWNLOADS else "")
            )
        if source not in DOWNLOADS:
            raise EvalkitError(f"{spec.name}: data not found at {path}; set EVALKIT_DATA_DIR to a folder holding {raw}")
        DOWNLOADS[source](data_root() / source)
    return path


# ----------------------------------------------------------------------------- loading

def load_samples(spec: EvalSpec, split: str | None = None) -> list[Sample]:
    """All samples of `split` (default: the spec's) in file order, via `evalkit.loaders.<format>`."""
    from .loaders import get_loader

    return get_loader(spec.dataset.format).load(spec, dataset_dir(spec), split or spec.dataset.split)


# ----------------------------------------------------------------------------- downloads

MMLU_URL = "https://people.eecs.berkeley.edu/~hendrycks/data.tar"
# sha256 over the parsed rows (subject, fields with CRLF folded to LF) of each split, computed from a
# verified copy of the final release. Hashing parsed content rather than the tar file lets the same
# check accept copies that differ only in line endings, as known mirrors do.
MMLU_CONTENT_SHA256 = {
    "test": (14042, "4681a830b9f1214d37592f2b722ea469447742cb384e69095e271af6e5bb4b6c"),
    "dev": (285, "9d2d2ef030e536c68b765179c01083385672f23d53bb0df602bfce9a27ddbfbe"),
    "val": (1531, "b8d69a2a9be23b45b7bff574e53891aea947ca3b2789c0475def95c8f902b737"),
}


def mmlu_content_hash(root: Path, split: str) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    for f in sorted((root / split).glob(f"*_{split}.csv")):
        subject = f.name[: -len(f"_{split}.csv")]
        with open(f, newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                h.update(("\x1f".join([subject] + [c.replace("\r\n", "\n") for c in row]) + "\x1e").encode())
                n += 1
    return n, h.hexdigest()


def download_mmlu(dest: Path, url: str | None = None) -> None:
    """Fetch the official MMLU release into `dest` ({dev,val,test}/), verify it, then move it in place.

    `EVALKIT_MMLU_URL` points at a mirror of `data.tar`; its content must still pass verification.
    """
    url = url or os.environ.get("EVALKIT_MMLU_URL") or MMLU_URL
    hint = "set EVALKIT_DATA_DIR to a folder that holds mmlu/{dev,val,test}/ (e.g. an offline mirror)"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        tar_path = Path(tmp) / "data.tar"
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(tar_path, "wb") as out:
                shutil.copyfileobj(resp, out)
            with tarfile.open(tar_path) as tar:
                tar.extractall(tmp, filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise EvalkitError(f"could not download MMLU from {url} ({exc}); {hint}") from None
        extracted = Path(tmp) / "data"
        for split, want in MMLU_CONTENT_SHA256.items():
            got = mmlu_content_hash(extracted, split)
            if got != want:
                raise EvalkitError(f"MMLU download from {url} failed verification for {split} ({got[0]} rows, sha256 {got[1][:12]}…); {hint}")
        staged = dest.with_name(dest.name + ".partial")
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir()
        for split in MMLU_CONTENT_SHA256:
            shutil.move(str(extracted / split), staged / split)
        staged.rename(dest)


DOWNLOADS = {"mmlu": download_mmlu}
