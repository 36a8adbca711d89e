"""Unpacking a catalogued dataset's archive into its staging folder: zip and tar members, whole
folders, each file checked against its digest; the catalogue (evalkit.datasets.catalogue) decides
what to fetch."""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from evalkit.datasets.download import fetch_url, mirror_url, sha256_file
from evalkit.core.errors import EvalkitError
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evalkit.datasets.catalogue import Archive, Dataset, FileEntry


def _safe_relpath(p: str) -> str:
    parts = PurePosixPath(p).parts
    if not p or p.startswith("/") or "\\" in p or any(x in ("..", ".", "") for x in parts):
        raise ValueError(f"{p!r} is not a plain relative path")
    return p


def _verify_file(label: str, path: Path, f: FileEntry, what: str) -> str:
    got, n = sha256_file(path)
    if (f.sha256 and got != f.sha256) or (f.size is not None and n != f.size):
        path.unlink()
        raise EvalkitError(f"{label}: {what} failed verification ({n:,} bytes, sha256 {got}; expected "
                           f"{f.size if f.size is not None else '?'} bytes, sha256 {f.sha256}); not kept")
    return got


def _from_archive(ds: Dataset, a: Archive, staging: Path) -> dict[str, str]:
    from evalkit.datasets.catalogue import cache_root

    archive = cache_root() / ".staging" / f"{ds.name}.{a.format}"
    fetch_url(a.url, archive, a.sha256, a.size, ds.name)
    try:
        if a.format == "zip":
            out = _unzip(ds, archive, staging)
        else:
            out = _untar(ds, archive, staging)
    except (OSError, zipfile.BadZipFile, tarfile.TarError, KeyError) as exc:
        raise EvalkitError(f"{ds.name}: cannot read {mirror_url(a.url)} as {a.format} ({exc})") from None
    archive.unlink()
    return out


def _unzip(ds: Dataset, archive: Path, staging: Path) -> dict[str, str]:
    out = {}
    with zipfile.ZipFile(archive) as zf:
        for rel, f in ds.files.items():
            info = zf.getinfo(f.member)  # type: ignore[arg-type]  # None (a url file beside members): KeyError, reported
            if info.is_dir() or (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise EvalkitError(f"{ds.name}: archive member {f.member} is not a regular file")
            if f.size is not None and info.file_size != f.size:
                raise EvalkitError(f"{ds.name}: archive member {f.member} is {info.file_size:,} bytes, expected {f.size:,}")
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            out[rel] = _verify_file(ds.name, target, f, f"member {f.member}")
    return out


def _untar(ds: Dataset, archive: Path, staging: Path) -> dict[str, str]:
    out = {}
    tmp = staging / ".extract"
    shutil.rmtree(tmp, ignore_errors=True)
    wanted = {f.member: rel for rel, f in ds.files.items()}
    with tarfile.open(archive) as tf:
        members = [m for m in tf.getmembers() if m.name in wanted
                   or any(m.name.startswith(src.rstrip("/") + "/") for src in ds.folders.values())]
        targets = {m.name: wanted.get(m.name) or _folder_target(ds, m.name) for m in members if m.isfile()}
        for m in members:
            if not (m.isfile() or m.isdir()):
                raise EvalkitError(f"{ds.name}: archive member {m.name} is a link or device, not a file; refused")
        tf.extractall(tmp, members=[m for m in members if m.isfile()], filter="data")
    for name, rel in targets.items():
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / name, target)
        f = ds.files.get(rel)
        out[rel] = _verify_file(ds.name, target, f, f"member {name}") if f else sha256_file(target)[0]
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def _folder_target(ds: Dataset, member: str) -> str:
    for dst, src in ds.folders.items():
        prefix = src.rstrip("/") + "/"
        if member.startswith(prefix):
            try:
                _safe_relpath(member)
                return _safe_relpath(f"{dst}/{member[len(prefix):]}")
            except ValueError:
                raise EvalkitError(f"{ds.name}: archive member {member!r} is not a plain relative path; refused") from None
    raise KeyError(member)
