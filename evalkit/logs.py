"""The run log: one JSONL file per run, append-only, streamed as samples finish.

    line 1        {"type": "header", "run_key": ..., "eval": ..., "spec": {...}, "model": ..., ...}
    lines 2..n    {"type": "sample", "id": ..., "group": ..., "completion": ..., "score": ..., ...}
    last line     {"type": "summary", "incomplete": false, "metrics": {...}, ...}

A run's file name carries a hash of everything that determines its results (eval spec, model,
endpoint, generation parameters, seed, limit), so running the same command again finds the same
file and resumes: samples already scored are kept and not re-sent. A line cut short by a crash is
dropped; a sample that ended in an error is tried again and its new line supersedes the old one
(the last line for an id wins). A finished run is reported again from its log without requests.

Each log is held under an exclusive lock while a run writes it, so two runs of the same command
at once fail clearly instead of interleaving lines. API keys never appear in a log.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EvalkitError



def model_slug(model: str) -> str:
    """A model name as a file name: `openai/gpt-4o` -> `openai_gpt-4o`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model)


def log_path(log_dir: Path, eval_name: str, model: str, run_key: str) -> Path:
    return Path(log_dir) / eval_name / f"{model_slug(model)}__{run_key[:12]}.jsonl"


RESUME_FIELDS = ("group", "score", "parsed", "usage", "extras", "option_probs", "target", "missing_mass")


@dataclass
class ResumeState:
    """What an existing log already holds."""

    done: dict[str, dict] = field(default_factory=dict)   # id -> RESUME_FIELDS of its line (scored, no error)
    errored: set[str] = field(default_factory=set)
    complete: bool = False


class RunLog:
    def __init__(self, path: Path, header: dict, fresh: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+b")
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise EvalkitError(f"{self.path} is being written by another evalkit run of the same command; wait for it or pass --log-dir") from None
        if fresh:
            self._fh.truncate(0)
        self.state = self._load(header)
        if self._fh.tell() == 0:
            self._write(header)

    # ------------------------------------------------------------------ reading back
    def _load(self, header: dict) -> ResumeState:
        """Stream the existing log: remember finished samples (slimmed), drop a torn last line."""
        self._fh.seek(0)
        state = ResumeState()
        keep = 0                                   # bytes of the file that stay
        partial_at = None                          # where a trailing partial summary starts
        for lineno, line in enumerate(iter(self._fh.readline, b""), 1):
            if not line.endswith(b"\n"):
                break                              # a line cut short by a crash is dropped
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise EvalkitError(f"{self.path}:{lineno}: corrupt log line; move the file away or pass --fresh") from None
            kind = rec.get("type")
            if lineno == 1:
                if kind != "header" or rec.get("run_key") != header["run_key"]:
                    raise EvalkitError(f"{self.path}: belongs to another run (header differs); pass --fresh to overwrite it")
            elif kind == "sample":
                if rec.get("error"):
                    state.errored.add(rec["id"])
                    state.done.pop(rec["id"], None)
                else:
                    state.done[rec["id"]] = {k: rec.get(k) for k in RESUME_FIELDS}
                    state.errored.discard(rec["id"])
            elif kind == "summary":
                state.complete = not rec.get("incomplete")
            partial_at = keep if kind == "summary" and rec.get("incomplete") else None
            keep += len(line)
        if partial_at is not None:
            keep = partial_at                      # a partial summary is replaced when the run goes on
        self._fh.truncate(keep)
        self._fh.seek(keep)
        return state

    # ------------------------------------------------------------------ writing
    def _write(self, record: dict) -> None:
        # backslashreplace: a lone surrogate (a hostile server can send one) becomes its JSON escape
        self._fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "backslashreplace") + b"\n")
        self._fh.flush()

    def write_sample(self, record: dict) -> None:
        self._write({"type": "sample", **record})

    def write_summary(self, summary: dict) -> None:
        self._write({"type": "summary", **summary})
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def read_log(path: str | Path) -> tuple[dict, dict[str, dict], dict | None]:
    """(header, samples by id with the last line winning, summary or None) of a finished or partial log."""
    path = Path(path)
    header, samples, summary = None, {}, None
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise EvalkitError(f"{path}: cannot read log ({exc.strerror})") from None
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.endswith("\n"):
                break
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise EvalkitError(f"{path}:{lineno}: corrupt log line") from None
            kind = rec.get("type")
            if kind == "header":
                header = rec
            elif kind == "sample":
                samples[rec["id"]] = rec
            elif kind == "summary":
                summary = rec
    if header is None:
        raise EvalkitError(f"{path}: not an evalkit run log (no header line)")
    return header, samples, summary
