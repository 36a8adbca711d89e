"""One run log indexed for the viewer: a row per sample (its line's offset, flags, score), read once.

The log is scanned line by line through `evalkit.logs.parse_line`, the typed reader `read_log` and
`evalkit report` use, so a line means the same thing here. Unlike `read_log`, a line it cannot read
does not end the scan: invalid UTF-8, text that is no log line, a sample without an id, a truncated
last line are each kept in `bad_lines` (line number and why) and the page says so. The last line for
an id wins, as everywhere. A sample's full record is read back from the file (at its offset) only
when the page asks for it, so a 100,000-sample log costs its rows, not its text. A log that changes
while it is viewed (a resumed run truncates a partial summary) gives that sample an error, not a crash.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.results.runlog import check_format, parse_line
from evalkit.results.records import SampleResult

# A sample's flags; a sample can carry several (a truncated reply is also wrong: it scored 0).
FLAGS = ("correct", "wrong", "error", "unparsed", "truncated", "invalid")
BIT = {name: 1 << i for i, name in enumerate(FLAGS)}
MAX_BAD = 1000          # unreadable lines listed (all are counted): a binary file must not fill the page


@dataclass(slots=True)
class Row:
    id: str
    group: str | None
    score: float | None
    flags: int
    line: int                   # 1-based line number in the log
    offset: int                 # byte offset of the line
    length: int
    time_s: float
    cost: float | None
    tokens: int

    def flag_names(self) -> list[str]:
        return [name for name in FLAGS if self.flags & BIT[name]]


def flags_of(r: SampleResult) -> int:
    """correct: score 1 (or more); wrong: a score below 1 (partial credit too); error: ended in an
    error; unparsed: no answer could be read; truncated: the token limit cut it off; invalid: a model
    grader's reply named no valid grade."""
    bits = 0
    if r.error:
        bits |= BIT["error"]
    elif isinstance(r.score, (int, float)):
        bits |= BIT["correct"] if r.score >= 1.0 else BIT["wrong"]
    if r.parsed is False:
        bits |= BIT["unparsed"]
    if r.truncated:
        bits |= BIT["truncated"]
    grader = r.grader if isinstance(r.grader, dict) else {}
    extras = r.extras if isinstance(r.extras, dict) else {}
    if extras.get("choice/invalid") == 1.0 or grader.get("valid") is False:
        bits |= BIT["invalid"]
    return bits


def _number(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def row_of(r: SampleResult, line: int, offset: int, length: int) -> Row:
    usage = r.usage if isinstance(r.usage, dict) else {}
    tokens = int(_number(usage.get("prompt_tokens")) + _number(usage.get("completion_tokens")))
    cost = r.cost_usd if isinstance(r.cost_usd, (int, float)) else None
    score = float(r.score) if isinstance(r.score, (int, float)) and not isinstance(r.score, bool) else None
    group = r.group if isinstance(r.group, str) else None
    return Row(r.id, group, score, flags_of(r), line, offset, length, _number(r.model_s) + _number(r.queue_s),
               cost, tokens)


@dataclass
class LogIndex:
    path: Path
    header: dict
    rows: list[Row] = field(default_factory=list)
    by_id: dict[str, int] = field(default_factory=dict)          # id -> position in rows
    summary: dict | None = None
    bad_lines: list[dict] = field(default_factory=list)          # the first MAX_BAD: {"line": n, "reason": ...}
    bad_count: int = 0                                           # all the lines that could not be read
    superseded: int = 0                                          # sample lines a later line for the id replaced
    fd: int | None = None                                        # the log, open for reading lines back

    def line(self, pos: int) -> bytes:
        row = self.rows[pos]
        assert self.fd is not None               # opened with the index
        try:
            return os.pread(self.fd, row.length, row.offset)
        except OSError as exc:
            raise EvalkitError(f"{self.path}:{row.line}: cannot read the line again ({exc.strerror})") from None

    def record(self, pos: int) -> dict:
        """The sample at `pos` as the typed reader gives it, with its line number."""
        row = self.rows[pos]
        _, result = parse_line(self.line(pos), self.path, row.line)
        if result is None or result.id != row.id:
            raise EvalkitError(f"{self.path}:{row.line}: the log changed since it was opened; run evalkit view again")
        out = {name: getattr(result, name) for name in SampleResult.__slots__}
        out["line"], out["flags"] = row.line, row.flag_names()
        return out

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def groups(self) -> list[str]:
        return sorted({r.group for r in self.rows if r.group is not None})


TRUNCATED = "truncated last line (no newline at the end: the run was cut short)"


def _utf8_problem(line: bytes) -> str | None:
    """Why a line that is not a log line is not: invalid UTF-8 said precisely, or None."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 at byte {exc.start} of the line"
    return None


def open_index(path: str | Path) -> LogIndex:
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise EvalkitError(f"{path}: cannot read log ({exc.strerror})") from None
    index = LogIndex(path, {}, fd=fd)
    offset, lineno = 0, 0
    with open(os.dup(fd), "rb") as fh:
        for line in fh:
            lineno += 1
            _read_line(index, line, lineno, offset, not line.endswith(b"\n"))
            offset += len(line)
    if index.header:
        try:
            check_format(index.header, path)      # a newer format than this evalkit knows is refused
        except EvalkitError:
            os.close(fd)
            raise
    if not index.header:
        os.close(fd)
        first = next((b["reason"] for b in index.bad_lines if b["line"] == 1), None)
        raise EvalkitError(f"{path}: not an evalkit run log (no header line" + (f"; line 1: {first})" if first else ")"))
    return index


def _read_line(index: LogIndex, line: bytes, lineno: int, offset: int, last: bool) -> None:
    reason = TRUNCATED if last else None       # a cut-short last line is the usual mark of a killed run
    if reason is None:
        try:
            rec, result = parse_line(line, index.path, lineno)
        except EvalkitError as exc:
            reason = _utf8_problem(line) or str(exc).removeprefix(f"{index.path}:{lineno}: ")
    if reason is not None:
        index.bad_count += 1
        if len(index.bad_lines) < MAX_BAD:
            index.bad_lines.append({"line": lineno, "reason": reason})
        return
    kind = rec.get("type")
    if kind == "header" and lineno == 1:
        index.header = rec
    elif result is not None:
        row = row_of(result, lineno, offset, len(line))
        pos = index.by_id.get(row.id)
        if pos is None:
            index.by_id[row.id] = len(index.rows)
            index.rows.append(row)
        else:
            index.rows[pos] = row
            index.superseded += 1
    elif kind == "summary":
        index.summary = rec


def sample_text(rec: dict) -> str:
    """What the free-text search looks in: the prompt as sent, the reply (as received too), the target."""
    parts = [rec.get("target"), rec.get("completion"), rec.get("raw_completion")]
    for m in rec.get("messages") or []:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p.get("text") for p in content if isinstance(p, dict)]
    return "\n".join(p for p in parts if isinstance(p, str))


def json_fragment(text: str) -> bytes:
    """`text` as it appears inside a JSON string of a log line (lowercased), for a quick byte scan."""
    return json.dumps(text.lower(), ensure_ascii=False)[1:-1].encode("utf-8", "surrogatepass")
