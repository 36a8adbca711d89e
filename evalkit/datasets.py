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
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EvalkitError
from .spec import DatasetSpec, EvalSpec


@dataclass(frozen=True)
class Sample:
    id: str
    question: str
    answer: str
    choices: tuple[str, ...] | None = None
    group: str | None = None
    fields: dict = field(default_factory=dict, hash=False, compare=False)


# ----------------------------------------------------------------------------- where data lives

def cache_dir() -> Path:
    if os.environ.get("EVALKIT_CACHE_DIR"):
        return Path(os.environ["EVALKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "evalkit"


def data_root() -> Path:
    env = os.environ.get("EVALKIT_DATA_DIR")
    return Path(env) if env else cache_dir() / "data"


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


# ----------------------------------------------------------------------------- loaders

def load_samples(spec: EvalSpec, split: str | None = None) -> list[Sample]:
    """All samples of `split` (default: the spec's) in file order."""
    ds = spec.dataset
    split = split or ds.split
    loader = LOADERS[ds.format]
    return loader(spec, dataset_dir(spec), split)


def _load_mmlu(spec: EvalSpec, root: Path, split: str) -> list[Sample]:
    """MMLU's original release: `<split>/<subject>_<split>.csv`, headerless, question,A,B,C,D,answer."""
    subjects = [spec.subset] if spec.subset else (spec.dataset.subsets or sorted(
        p.name[: -len(f"_{split}.csv")] for p in (root / split).glob(f"*_{split}.csv")))
    if not subjects:
        raise EvalkitError(f"{spec.name}: no {split} files in {root / split} (expected <subject>_{split}.csv)")
    out: list[Sample] = []
    for subject in subjects:
        path = root / split / f"{subject}_{split}.csv"
        if not path.is_file():
            raise EvalkitError(f"{spec.name}: missing data file {path}")
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            for i, row in enumerate(reader):
                if len(row) != 6 or row[5].strip() not in ("A", "B", "C", "D"):
                    raise EvalkitError(f"{path}:{reader.line_num}: broken MMLU row {i} (want question,A,B,C,D,answer-letter; got {len(row)} fields)")
                out.append(Sample(
                    id=f"{subject}/{i}",
                    question=row[0],
                    choices=tuple(row[1:5]),
                    answer=row[5].strip(),
                    group=subject,
                    fields={"subject": subject, "subject_name": subject.replace("_", " ")},
                ))
    return out


def _records_jsonl(path: Path):
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalkitError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from None
            if not isinstance(rec, dict):
                raise EvalkitError(f"{path}:{lineno}: a record must be a JSON object")
            yield lineno, rec


def _records_csv(path: Path):
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        for rec in reader:
            if None in rec:
                raise EvalkitError(f"{path}:{reader.line_num}: more fields than the header has")
            yield reader.line_num, rec


def _split_file(root: Path, split: str, ext: str) -> Path:
    if root.is_file():
        return root
    for cand in (root / f"{split}.{ext}", root / split):
        if cand.is_file():
            return cand
    raise EvalkitError(f"no {split} split at {root} (looked for {root / f'{split}.{ext}'})")


def _mapped_loader(records, ext: str):
    def load(spec: EvalSpec, root: Path, split: str) -> list[Sample]:
        path = _split_file(root, split, ext)
        f = {"question": "question", "answer": "answer", **spec.dataset.fields}
        out = []
        for lineno, rec in records(path):
            def get(key: str, name: str):
                if name not in rec:
                    raise EvalkitError(f"{path}:{lineno}: record has no field {name!r} (dataset.fields.{key})")
                return rec[name]
            choices = None
            if "choices" in f:
                spec_c = f["choices"]
                choices = tuple(str(get("choices", c)) for c in spec_c) if isinstance(spec_c, list) else tuple(map(str, get("choices", spec_c)))
            answer = get("answer", f["answer"])
            if isinstance(answer, int) and choices is not None and spec.scoring.method == "letter":
                answer = spec.scoring.labels[answer]
            group = str(get("group", f["group"])) if "group" in f else None
            if spec.subset and group != spec.subset:
                continue
            out.append(Sample(
                id=str(get("id", f["id"])) if "id" in f else f"{path.stem}/{lineno}",
                question=str(get("question", f["question"])),
                choices=choices,
                answer=str(answer),
                group=group,
                fields={k: v for k, v in rec.items() if isinstance(v, (str, int, float))},
            ))
        return out
    return load


LOADERS = {"mmlu": _load_mmlu, "jsonl": _mapped_loader(_records_jsonl, "jsonl"), "csv": _mapped_loader(_records_csv, "csv")}


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
