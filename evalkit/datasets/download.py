"""Fetching one file over HTTP or from the Hugging Face Hub, verified, never left half-written.

A file is downloaded to `<dest>.partial`; a cut download is resumed with an HTTP Range request when
the server allows it (a server that ignores Range starts the file over). Only when the bytes have
the expected size and sha256 is the file renamed to `dest`; a file that fails the check is deleted,
so the next attempt starts clean instead of trusting it. Progress goes to stderr: a live bar on a
terminal, a line every few seconds otherwise (CI logs).

`EVALKIT_DATA_MIRROR=<base>` fetches `https://host/path` from `<base>/host/path` instead (an internal
mirror or a test server); the bytes must still match the catalogue. Hub files go through
`huggingface_hub` (which honours `HF_ENDPOINT`), then through the same check.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from evalkit.core.errors import EvalkitError

CHUNK = 1 << 16
TIMEOUT = 60.0


@dataclass(frozen=True)
class Fetched:
    """A file now at `path`: its sha256, size, and where it came from."""

    path: Path
    sha256: str
    size: int
    source: str


def mirror_url(url: str) -> str:
    """The URL actually fetched: `url` itself, or its place under $EVALKIT_DATA_MIRROR."""
    base = os.environ.get("EVALKIT_DATA_MIRROR", "").rstrip("/")
    if not base:
        return url
    parts = urllib.parse.urlsplit(url)
    return f"{base}/{parts.netloc}{parts.path}"


def sha256_file(path: Path) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            n += len(block)
    return h.hexdigest(), n


class Progress:
    """Bytes received out of `total`, on stderr: redrawn in place on a terminal, else a line every 5 s."""

    def __init__(self, label: str, total: int | None, done: int = 0, quiet: bool = False):
        self.label, self.total, self.done = label, total, done
        self.tty = sys.stderr.isatty()
        self.quiet = quiet
        self.last = 0.0 if self.tty else time.monotonic()

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if not self.quiet and now - self.last >= (0.2 if self.tty else 5.0):
            self.last = now
            self._show("\r" if self.tty else "", "" if self.tty else "\n")

    def close(self) -> None:
        if self.tty and not self.quiet:
            self._show("\r", "\n")

    def _show(self, head: str, tail: str) -> None:
        of = f" of {_mb(self.total)}" if self.total else ""
        pct = f" {100 * self.done / self.total:5.1f}%" if self.total else ""
        sys.stderr.write(f"{head}evalkit: downloading {self.label}: {_mb(self.done)}{of}{pct}{tail}")
        sys.stderr.flush()


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


def fetch_url(url: str, dest: Path, sha256: str | None, size: int | None, label: str) -> Fetched:
    """`url` (or its mirror) into `dest`, resuming `dest.partial`; refused unless size and sha256 match."""
    real = mirror_url(url)
    partial = dest.with_name(dest.name + ".partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if size is not None and partial.exists() and partial.stat().st_size > size:
        partial.unlink()                      # longer than the file can be: not a prefix of it
    _download(real, partial, size, label)
    got, n = sha256_file(partial)
    if size is not None and n < size:
        raise EvalkitError(f"{label}: download of {real} stopped at {n:,} of {size:,} bytes; "
                           "run the command again to resume it")
    _check(partial, label, real, got, n, sha256, size)
    os.replace(partial, dest)
    return Fetched(dest, got, n, real)


def _check(path: Path, label: str, where: str, got: str, n: int, sha256: str | None, size: int | None) -> None:
    if (size is not None and n != size) or (sha256 is not None and got != sha256):
        path.unlink(missing_ok=True)
        want = f"{size:,} bytes, sha256 {sha256}" if size is not None else f"sha256 {sha256}"
        raise EvalkitError(f"{label}: {where} failed verification ({n:,} bytes, sha256 {got}; "
                           f"expected {want}); the download was deleted")


def _download(url: str, partial: Path, size: int | None, label: str) -> None:
    have = partial.stat().st_size if partial.exists() else 0
    if size is not None and have == size:
        return                                 # complete already: only the check is left
    req = urllib.request.Request(url, headers={"User-Agent": "evalkit", "Accept-Encoding": "identity"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:           # nothing past what we have: let the check decide
            return
        raise EvalkitError(f"{label}: cannot download {url} (HTTP {exc.code} {exc.reason})") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EvalkitError(f"{label}: cannot download {url} ({reason})") from None
    with resp:
        resumed = resp.status == 206 and _range_start(resp.headers.get("Content-Range")) == have
        if not resumed:
            have = 0
        total = size or _content_length(resp, have)
        _stream(resp, partial, "ab" if resumed else "wb", Progress(label, total, have), label, url)


def _stream(resp, partial: Path, mode: str, progress: Progress, label: str, url: str) -> None:
    try:
        with open(partial, mode) as out:
            while block := resp.read(CHUNK):
                out.write(block)
                progress.add(len(block))
    except (OSError, http.client.HTTPException) as exc:
        progress.close()
        raise EvalkitError(f"{label}: download of {url} was cut at {progress.done:,} bytes ({exc}); "
                           "run the command again to resume it") from None
    progress.close()


def _range_start(header: str | None) -> int | None:
    # "bytes 100-199/200"
    try:
        return int(header.split()[1].split("-")[0]) if header else None
    except (IndexError, ValueError):
        return None


def _content_length(resp, offset: int) -> int | None:
    try:
        return int(resp.headers["Content-Length"]) + offset
    except (KeyError, TypeError, ValueError):
        return None


def fetch_hub(repo: str, revision: str, path: str, dest: Path, sha256: str | None, size: int | None,
              label: str) -> Fetched:
    """A dataset file from the Hub at a pinned revision, checked against the catalogue's sha256 or,
    where the catalogue has none, against the digest the Hub reports for that revision."""
    try:
        import huggingface_hub as hf
        from huggingface_hub.utils import disable_progress_bars
    except ImportError:
        raise EvalkitError(f"{label}: needs the huggingface_hub package (pip install huggingface_hub)") from None
    if not sys.stderr.isatty():
        disable_progress_bars()
    endpoint = os.environ.get("HF_ENDPOINT") or None
    where = f"hf://datasets/{repo}@{revision}/{path}"
    staging = dest.parent / ".hub"
    try:
        meta = hf.get_hf_file_metadata(hf.hf_hub_url(repo, path, repo_type="dataset", revision=revision,
                                                     endpoint=endpoint), endpoint=endpoint)
        got_path = Path(hf.hf_hub_download(repo, path, repo_type="dataset", revision=revision,
                                           local_dir=staging, endpoint=endpoint))
    except Exception as exc:  # huggingface_hub raises many types (HTTP, offline, not found): one line each
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EvalkitError(f"{label}: cannot download {where} from {endpoint or 'the Hugging Face Hub'} "
                           f"({type(exc).__name__}: {first})") from None
    if meta.commit_hash and len(revision) == 40 and meta.commit_hash != revision:
        got_path.unlink(missing_ok=True)
        raise EvalkitError(f"{label}: the Hub answered {where} with revision {meta.commit_hash}, not the pinned one")
    got, n = sha256_file(got_path)
    _check(got_path, label, where, got, n, sha256, size)
    if sha256 is None:
        _check_hub_digest(got_path, label, where, got, n, meta.etag)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(got_path, dest)
    shutil.rmtree(staging, ignore_errors=True)
    return Fetched(dest, got, n, where)


def _check_hub_digest(path: Path, label: str, where: str, got: str, n: int, etag: str | None) -> None:
    """The Hub's ETag is the sha256 of an LFS file, or the git blob id (sha1) of a small one."""
    etag = (etag or "").strip('"').lower()
    if len(etag) == 64:
        ok = etag == got
    elif len(etag) == 40:
        blob = hashlib.sha1(f"blob {n}\0".encode())
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                blob.update(block)
        ok = etag == blob.hexdigest()
    else:
        ok = False
    if not ok:
        path.unlink(missing_ok=True)
        raise EvalkitError(f"{label}: {where} does not match the digest the Hub reports for it "
                           f"({etag or 'none'}); the download was deleted")
