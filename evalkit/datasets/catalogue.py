"""The dataset catalogue (`registry/datasets.yaml`) and the download cache it fills.

Each benchmark's data is named with its real home, a pinned URL or Hub revision, the sha256 and
size of what is fetched, its license, and where each file lands in the layout the loaders read
(the layout of an EVALKIT_DATA_DIR mirror). `install` fills `<cache>/data/<name>/` from that:

- everything is fetched into `<cache>/data/.staging/<name>/` (a cut download resumes there);
- every file is checked against the catalogue (sha256 and size, or MMLU's parsed rows) before the
  folder is renamed into place in one step, so a dataset folder in the cache is always complete;
- a manifest (`.evalkit-manifest.json`) records the catalogue entry it was built from and every
  file's sha256: a dataset is used without being fetched again while its entry is unchanged, and
  `evalkit data verify` re-hashes the files against it.

Archives are read member by member (tar through the `data` extraction filter; zip members by
their catalogued names, copied to their catalogued paths), so nothing in an archive chooses where
its bytes go. A lock per dataset keeps two processes from filling the same folder.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import field_validator, model_validator

from evalkit.datasets.download import fetch_hub, fetch_url, mirror_url, sha256_file
from evalkit.core.errors import EvalkitError
from evalkit.core.places import cache_dir
from evalkit.core.plugins import definitions
from evalkit.core.yamlfile import Strict, load_definitions
from evalkit.datasets.archives import _from_archive
from evalkit.datasets.archives import _safe_relpath

MANIFEST = ".evalkit-manifest.json"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _hex64(v: str | None) -> str | None:
    if v is not None and not _HEX64.match(v):
        raise ValueError("sha256 must be 64 lowercase hex digits")
    return v


class HubFile(Strict):
    repo: str
    revision: str
    path: str


class FileEntry(Strict):
    """One file of the layout and where it comes from: a URL, a Hub file, or an archive member."""

    url: str | None = None
    hub: HubFile | None = None
    member: str | None = None
    sha256: str | None = None
    size: int | None = None
    drop_columns: list[str] = []

    _sha = field_validator("sha256")(_hex64)

    @model_validator(mode="after")
    def _one_source(self) -> "FileEntry":
        if sum(x is not None for x in (self.url, self.hub, self.member)) != 1:
            raise ValueError("a file names exactly one of url, hub, member")
        if self.sha256 is None and self.hub is None:
            raise ValueError("sha256 may be left out only for Hub files (checked against the Hub's digest)")
        return self


class Archive(Strict):
    url: str
    format: Literal["zip", "tar"]
    sha256: str
    size: int

    _sha = field_validator("sha256")(_hex64)


class Dataset(Strict):
    """One catalogue entry: the folder `name` under the data root and how to fill it."""

    name: str
    source_file: str = ""
    title: str
    license: str
    home: str
    pin: str = ""
    archive: Archive | None = None
    files: dict[str, FileEntry] = {}
    folders: dict[str, str] = {}
    mmlu_rows: dict[str, tuple[int, str]] = {}
    listing: dict[str, str] | None = None        # url prefix + manifest of files (evalkit.datasets.listing)

    @model_validator(mode="before")
    @classmethod
    def _listed_files(cls, data):
        if isinstance(data, dict) and data.get("listing") is not None:
            from evalkit.datasets.listing import expand

            data = {**data, "files": {**expand(data["listing"], data.get("source_file", "")), **(data.get("files") or {})}}
        return data

    @field_validator("name", "files", "folders")
    @classmethod
    def _paths(cls, v):
        for p in ([v] if isinstance(v, str) else v):
            _safe_relpath(p)
        return v

    @model_validator(mode="after")
    def _archive_needed(self) -> "Dataset":
        needs = self.folders or any(f.member for f in self.files.values())
        if bool(needs) != bool(self.archive):
            raise ValueError("`member` and `folders` go with an `archive`, and an archive needs them")
        if not self.files and not self.folders:
            raise ValueError("a dataset lists its files (or an archive's folders)")
        return self

    def source(self) -> str:
        """Where its bytes come from, for people: the archive, a GitHub repo@commit, or a Hub repo@revision."""
        if self.archive:
            return self.archive.url
        f = next(iter(self.files.values()))
        if f.hub:
            return f"hf://datasets/{f.hub.repo}@{f.hub.revision[:12]}"
        assert f.url is not None        # validated: a file without an archive has a url or a hub file
        m = re.match(r"https://(?:raw\.githubusercontent\.com|media\.githubusercontent\.com/media)/([^/]+/[^/]+)/([0-9a-f]{40})/", f.url)
        return f"github.com/{m[1]}@{m[2][:12]}" if m else f.url

    def download_size(self) -> int | None:
        if self.archive:
            return self.archive.size
        sizes = [f.size for f in self.files.values() if f.size is not None]
        return None if len(sizes) < len(self.files) else sum(sizes)

    def fingerprint(self) -> str:
        body = self.model_dump(exclude={"source_file"})
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------- the catalogue

def catalogue() -> dict[str, Dataset]:
    """The package's datasets, plug-ins' (evalkit.core.plugins), then each EVALKIT_REGISTRY
    folder's `datasets.yaml` (same name: replaced)."""
    return definitions("datasets", "dataset", lambda path, _: load_definitions(path, Dataset, "dataset"))


def entries_for(path: str, subset: str | None = None, cat: dict[str, Dataset] | None = None) -> list[Dataset]:
    """The catalogue entries that fill the layout folder `path`: the entry named `path`, one named
    after a folder above it, or the entries below it (all of them, or only the `subset`'s part)."""
    cat = catalogue() if cat is None else cat
    parts = PurePosixPath(path).parts
    for i in range(len(parts), 0, -1):
        name = "/".join(parts[:i])
        if name in cat:
            return [cat[name]]
    below = [d for n, d in cat.items() if n.startswith(path.rstrip("/") + "/")]
    if subset and f"{path}/{subset}" in cat:
        return [cat[f"{path}/{subset}"]]
    return below


def cache_root() -> Path:
    """Where downloads go: `<cache>/data`, whether or not EVALKIT_DATA_DIR is set (it is never written)."""
    return cache_dir() / "data"


def is_installed(ds: Dataset, root: Path | None = None) -> bool:
    manifest = _read_manifest((root or cache_root()) / ds.name)
    return manifest is not None and manifest.get("fingerprint") == ds.fingerprint()


def _read_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ----------------------------------------------------------------------------- installing

def install(ds: Dataset) -> Path:
    """`<cache>/data/<name>`, fetched, verified and moved into place unless it is there already."""
    dest = cache_root() / ds.name
    with _lock(ds.name):
        if is_installed(ds):
            return dest
        staging = cache_root() / ".staging" / ds.name
        staging.mkdir(parents=True, exist_ok=True)
        try:
            hashes = _fill(ds, staging)
            _check_rows(ds, staging)
        except EvalkitError:
            _tidy(staging)
            raise
        manifest = {"name": ds.name, "fingerprint": ds.fingerprint(), "source": ds.source(), "files": hashes}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)          # an older or broken copy (no manifest, or another entry's)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, dest)
        return dest


def _tidy(staging: Path) -> None:
    """After a failure, keep the staging folder only if it holds a download to resume."""
    if staging.is_dir() and not any(p.name.endswith((".partial", ".incomplete")) for p in staging.rglob("*")):
        shutil.rmtree(staging, ignore_errors=True)


def _fill(ds: Dataset, staging: Path) -> dict[str, str]:
    """Every file of `ds` in `staging`, verified; returns {layout path: sha256}."""
    hashes: dict[str, str] = {}
    label = ds.name
    for rel, f in ds.files.items():
        target = staging / rel
        if f.member is None and target.is_file() and f.sha256 and sha256_file(target)[0] == f.sha256:
            hashes[rel] = f.sha256       # verified in an earlier, interrupted attempt
            continue
        if f.url:
            raw = target.with_name(target.name + ".download") if f.drop_columns else target
            got = fetch_url(f.url, raw, None if f.drop_columns else f.sha256,
                            None if f.drop_columns else f.size, label)
            if f.drop_columns:
                hashes[rel] = _derive_csv(raw, target, f, label)
                continue
            hashes[rel] = got.sha256
        elif f.hub:
            hashes[rel] = fetch_hub(f.hub.repo, f.hub.revision, f.hub.path, target, f.sha256, f.size, label).sha256
    if ds.archive:
        hashes.update(_from_archive(ds, ds.archive, staging))
    return hashes


def _derive_csv(raw: Path, target: Path, f: FileEntry, label: str) -> str:
    """The downloaded CSV with `drop_columns` removed (every other cell as it was), checked."""
    with open(raw, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header = rows[0] if rows else []
    missing = [c for c in f.drop_columns if c not in header]
    if missing:
        raw.unlink()
        raise EvalkitError(f"{label}: {f.url} has no column(s) {', '.join(missing)} to drop; the download was deleted")
    keep = [i for i, c in enumerate(header) if c not in f.drop_columns]
    buf = io.StringIO()
    csv.writer(buf).writerows([[row[i] if i < len(row) else "" for i in keep] for row in rows])
    data = buf.getvalue().encode("utf-8")
    got = hashlib.sha256(data).hexdigest()
    raw.unlink()
    if got != f.sha256 or (f.size is not None and len(data) != f.size):
        raise EvalkitError(f"{label}: {f.url} failed verification: with {', '.join(f.drop_columns)} dropped it has "
                           f"sha256 {got} ({len(data):,} bytes), expected {f.sha256}; the download was deleted")
    target.write_bytes(data)
    return got


def _check_rows(ds: Dataset, folder: Path) -> None:
    for split, (rows, digest) in ds.mmlu_rows.items():
        n, got = mmlu_content_hash(folder, split)
        if (n, got) != (rows, digest):
            shutil.rmtree(folder, ignore_errors=True)
            raise EvalkitError(f"{ds.name}: {mirror_url(ds.source())} failed verification for {split} ({n} rows, "
                               f"sha256 {got[:12]}…; expected {rows} rows, {digest[:12]}…); not kept")


def mmlu_content_hash(root: Path, split: str) -> tuple[int, str]:
    """Rows and sha256 over MMLU's parsed rows (subject, cells with CRLF folded to LF) of one split:
    the same for copies that differ only in line endings, as known mirrors of the release do."""
    h, n = hashlib.sha256(), 0
    for f in sorted((root / split).glob(f"*_{split}.csv")):
        subject = f.name[: -len(f"_{split}.csv")]
        with open(f, newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                h.update(("\x1f".join([subject] + [c.replace("\r\n", "\n") for c in row]) + "\x1e").encode())
                n += 1
    return n, h.hexdigest()


@contextmanager
def _lock(name: str):
    locks = cache_root() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / (name.replace("/", "__") + ".lock"), "w") as fh:
        try:
            import fcntl
        except ImportError:          # not POSIX: no cross-process lock
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------- verifying

def verify(ds: Dataset, root: Path) -> list[str]:
    """Problems with the copy of `ds` under `root` (empty: good). A cache copy is checked against its
    manifest and the catalogue; a mirror (no manifest) against the catalogue alone."""
    folder = root / ds.name
    manifest = _read_manifest(folder)
    recorded = (manifest or {}).get("files", {}) if manifest else {}
    problems = []
    for rel, f in ds.files.items():
        want = f.sha256 or recorded.get(rel)
        problems += _check_one(folder, rel, want, f.size)
    for rel, want in recorded.items():
        if rel not in ds.files:
            problems += _check_one(folder, rel, want, None)
    for split, (rows, digest) in ds.mmlu_rows.items():
        if (folder / split).is_dir() and mmlu_content_hash(folder, split) != (rows, digest):
            problems.append(f"{folder / split}: rows differ from the release")
        elif not (folder / split).is_dir():
            problems.append(f"{folder / split}: missing")
    if manifest is not None and manifest.get("fingerprint") != ds.fingerprint():
        problems.append(f"{folder}: built from an older catalogue entry")
    return problems


def _check_one(folder: Path, rel: str, want: str | None, size: int | None) -> list[str]:
    path = folder / rel
    if not path.is_file():
        return [f"{path}: missing"]
    got, n = sha256_file(path)
    if size is not None and n != size:
        return [f"{path}: {n:,} bytes, expected {size:,}"]
    if want is None:
        return [f"{path}: no sha256 to check against (not downloaded by evalkit)"]
    return [] if got == want else [f"{path}: sha256 {got}, expected {want}"]
