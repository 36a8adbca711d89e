"""The run log: one JSONL file per run, append-only, streamed as samples finish.

    line 1        {"type": "header", "run_key": ..., "eval": ..., "spec": {...}, "model": ..., ...}
    lines 2..n    {"type": "sample", "id": ..., "group": ..., "completion": ..., "score": ..., ...}
    last line     {"type": "summary", "incomplete": false, "metrics": {...}, ...}

With `--batch`, lines of `{"type": "batch", "event": ...}` record each provider batch the run
submitted, as soon as it exists (see `evalkit.send.batch`), so a rerun reattaches instead of paying
for its requests again.

A run's file name carries a hash of everything that determines its results (eval spec, model,
endpoint, generation parameters, seed, limit), so running the same command again finds the same
file and resumes: samples already scored are kept and not re-sent. A line cut short by a crash is
dropped; a sample that ended in an error is tried again and its new line supersedes the old one
(the last line for an id wins). A finished run is reported again from its log without requests.

The header carries the log's `format` (`FORMAT`, docs/contracts.md). A log without one was written
before formats were recorded and is format 1 (the same lines); a log of a newer format than this
evalkit knows is refused in one line rather than half-read. `read_log` is the one typed reader:
the header as a `LogHeader`, each sample's last line as a `SampleResult`.

`LoggedRun` is the one writer: single-model runs, pairwise runs and the runs behind exams all use
it. It holds an exclusive lock while a run writes, so two runs of the same command at once fail
clearly instead of interleaving lines. A line that cannot be written (a full disk) stops the run
with one line saying so; what was written before stays. API keys never appear in a log: every
line passes through `redact` (key-like strings, and the values of the environment's credential
variables), whatever a server or a model put into it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from evalkit.core.errors import EvalkitError
from evalkit.core.redact import env_secrets, redact
from evalkit.results.records import LogHeader, SampleResult

FORMAT = 2      # 1: logs written before the header recorded a format (identical lines otherwise)


def model_slug(model: str) -> str:
    """A model name as a file name: `openai/gpt-4o` -> `openai_gpt-4o`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model)


def log_path(log_dir: Path, eval_name: str, model: str, run_key: str) -> Path:
    return Path(log_dir) / eval_name / f"{model_slug(model)}__{run_key[:12]}.jsonl"


def dumps(record: dict, secrets: tuple[str, ...] = ()) -> bytes:
    """One log line, with anything that looks like a key (and the exact `secrets`) redacted. Text
    is UTF-8; a lone surrogate (which UTF-8 cannot hold) is written as a JSON escape, so the line
    stays valid JSON and reads back to the same string."""
    line = redact(json.dumps(record, ensure_ascii=False, separators=(",", ":")), secrets)
    try:
        return line.encode() + b"\n"
    except UnicodeEncodeError:
        return redact(json.dumps(record, separators=(",", ":")), secrets).encode() + b"\n"


def header_line(header: dict) -> dict:
    """The header as written: `type` and `format` first, then its fields."""
    return {"type": "header", "format": FORMAT, **{k: v for k, v in header.items() if k not in ("type", "format")}}


def check_format(rec: dict, path: Path) -> None:
    """Refuse, in one line, a header of a newer log format than this evalkit reads."""
    fmt = rec.get("format", 1)
    if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > FORMAT:
        raise EvalkitError(f"{path}: run log format {fmt} is newer than this evalkit reads (formats 1 to {FORMAT}); "
                           f"upgrade evalkit (this is {_version()}) to read it")


def read_header(rec: dict, path: Path) -> LogHeader:
    """A header line, typed; a log of a newer format, or a malformed header, is one line naming the file."""
    check_format(rec, path)
    try:
        return LogHeader.model_validate(rec)
    except ValidationError as exc:
        raise EvalkitError(f"{path}:1: malformed header: {_problem(exc)}") from None


_KINDS = {"float": "a number", "int": "an integer", "string": "a string", "dict": "a mapping",
          "bool": "true or false", "list": "a list", "literal": "the expected value"}


def _problem(exc: ValidationError) -> str:
    """A typed line's first wrong field, in words: `score 'high' is not a number`."""
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err["loc"]) or "the line"
    kind = next((v for k, v in _KINDS.items() if err["type"].startswith(k)), None)
    shown = repr(err.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{where} {shown} is not {kind}" if kind else f"{where}: {err['msg']}"


def _version() -> str:
    from evalkit import __version__

    return __version__


@dataclass
class LogContents:
    path: Path
    header: dict                                                     # the header line as read
    samples: dict[str, SampleResult] = field(default_factory=dict)   # id -> its last line
    summary: dict | None = None
    batches: list[dict] = field(default_factory=list)                # the "batch" lines, in order
    meta: LogHeader = field(default_factory=LogHeader)               # the header, typed (`format` 1 if absent)

    @property
    def format(self) -> int:
        return self.meta.format


class LoggedRun:
    """A run's log opened for writing: the lock, what an earlier run of the same command left
    (`done`: results by id, errors excluded; `complete`), and `record` / `finish`."""

    def __init__(self, path: Path, header: dict, fresh: bool = False, keep_truncated: bool = True):
        self.path = Path(path)
        self._secrets = env_secrets()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a+b")
        except OSError as exc:
            raise EvalkitError(f"cannot write the run log {self.path}: {exc.strerror or exc} (see --log-dir)") from None
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise EvalkitError(f"{self.path} is being written by another evalkit run of the same command; "
                               "wait for it or pass --log-dir") from None
        if fresh:
            self._fh.truncate(0)
        self.batches: list[dict] = []       # the log's "batch" lines, in order (evalkit.send.batch reads them)
        self.keep_truncated = keep_truncated   # a truncated reply is kept on resume unless asked otherwise
        self.previous_header: dict | None = None   # the header an earlier run of this command wrote
        self.done, self.complete = self._load(header["run_key"])
        if self._fh.tell() == 0:
            self._write(header_line(header))

    def _load(self, run_key: str) -> tuple[dict[str, SampleResult], bool]:
        """Stream the existing log: keep finished samples (slimmed), drop a torn last line and a
        partial summary (the run goes on and writes a new one)."""
        self._fh.seek(0)
        done: dict[str, SampleResult] = {}
        complete, keep, partial_at = False, 0, None
        for lineno, line in enumerate(iter(self._fh.readline, b""), 1):
            if not line.endswith(b"\n"):
                break
            rec = _parse(line, self.path, lineno, hint="; move the file away or pass --fresh")
            kind = rec.get("type")
            if lineno == 1 and kind == "header":
                read_header(rec, self.path)      # a newer format is refused before anything is appended
            if lineno == 1 and (kind != "header" or rec.get("run_key") != run_key):
                raise EvalkitError(f"{self.path}: belongs to another run (header differs); pass --fresh to overwrite it")
            if lineno == 1:
                self.previous_header = rec
            if kind == "sample":
                result = _sample(rec, self.path, lineno, slim=True)
                if result.error or (result.truncated and not self.keep_truncated):
                    done.pop(result.id, None)     # an error line supersedes: the sample is tried again
                else:
                    done[result.id] = result
            elif kind == "summary":
                complete = not rec.get("incomplete")
            elif kind == "batch":
                self.batches.append(rec)
            partial_at = keep if kind == "summary" and rec.get("incomplete") else None
            keep += len(line)
        keep = partial_at if partial_at is not None else keep
        self._fh.truncate(keep)
        self._fh.seek(keep)
        return done, complete

    def _write(self, record: dict) -> None:
        try:
            self._fh.write(dumps(record, self._secrets))
            self._fh.flush()
        except OSError as exc:
            raise EvalkitError(f"cannot write the run log {self.path}: {exc.strerror or exc}; the samples "
                               "written before are kept, rerun to resume") from None

    def record(self, result: SampleResult) -> None:
        self._write(result.to_record())

    def note_batch(self, record: dict) -> None:
        """A batch line, written (and flushed) at once: a killed run's rerun finds it."""
        line = {"type": "batch", **record}
        self._write(line)
        self.batches.append(line)

    def finish(self, summary: dict) -> None:
        self._write({"type": "summary", **summary})
        try:
            os.fsync(self._fh.fileno())
        except OSError:
            pass

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError:
            pass              # what could not be written was reported when it failed


def _parse(line: bytes, path: Path, lineno: int, hint: str = "") -> dict:
    try:
        rec = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        rec = None
    if not isinstance(rec, dict):
        raise EvalkitError(f"{path}:{lineno}: not a run-log line (corrupt or not an evalkit log){hint}")
    return rec


def _sample(rec: dict, path: Path, lineno: int, slim: bool = False, checked: bool = True) -> SampleResult:
    if not isinstance(rec.get("id"), str):
        raise EvalkitError(f"{path}:{lineno}: a sample line without an id (corrupt or not an evalkit log)")
    try:
        return SampleResult.from_record(rec, slim=slim, checked=checked)
    except TypeError:
        raise EvalkitError(f"{path}:{lineno}: a malformed sample line") from None
    except ValidationError as exc:
        raise EvalkitError(f"{path}: sample {rec['id']!r} (line {lineno}): a malformed line: {_problem(exc)}") from None


def parse_line(line: bytes, path: Path, lineno: int) -> tuple[dict, SampleResult | None]:
    """One whole log line read as `read_log` reads it, but a sample's fields as the line has them
    (unchecked: the viewer shows a field of the wrong type as text). Raises EvalkitError naming
    `path:lineno` (`evalkit view` lists such lines and goes on)."""
    rec = _parse(line, path, lineno)
    return rec, (_sample(rec, path, lineno, checked=False) if rec.get("type") == "sample" else None)


def read_log(path: str | Path) -> LogContents:
    """A finished or partial log: its header, each sample's last line, and its summary if any."""
    path = Path(path)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise EvalkitError(f"{path}: cannot read log ({exc.strerror})") from None
    header, samples, summary, batches, meta = None, {}, None, [], LogHeader()
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.endswith(b"\n"):
                break
            rec = _parse(line, path, lineno)
            kind = rec.get("type")
            if kind == "header" and lineno == 1:
                header, meta = rec, read_header(rec, path)
            elif kind == "sample":
                result = _sample(rec, path, lineno)
                samples[result.id] = result
            elif kind == "summary":
                summary = rec
            elif kind == "batch":
                batches.append(rec)
    if header is None:
        raise EvalkitError(f"{path}: not an evalkit run log (no header line)")
    return LogContents(path, header, samples, summary, batches, meta)
