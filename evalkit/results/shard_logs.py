"""Reading the logs of `--shard I/N` runs, untrusted, and checking that shards belong to one run.

`read_shard` reads one shard's log (refusing one still being written) into a `ShardLog`: its
header's slice is checked against the whole selection (the id hash recomputed), and every sample
line must be one of the slice's samples with a well-formed result. `check_same_run` refuses shards
of one eval that come from different commands (saying which identity field differs, down to the
first differing place of the spec), split into different N, or given twice. `evalkit.results.merge`
joins what passes.
"""

from __future__ import annotations

from typing import TypeGuard

import fcntl
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.plan.shards import MAX_SHARDS, Shard, shard_of, unit_id
from evalkit.results.records import SampleResult
from evalkit.results.runlog import LogContents, read_log

# header fields that make up a run's identity, named when two shards' run keys differ
_IDENTITY = ("eval", "model", "spec", "endpoint", "sampling", "options", "seed", "limit", "excluded", "grader")


@dataclass
class ShardLog:
    path: Path
    header: dict
    shard: Shard
    key: str                          # the unsharded run key
    selected: int
    ids: list[str]
    positions: list[int]
    per_item: int
    samples: dict[str, SampleResult]
    summary: dict | None

    def units(self, sample_id: str) -> list[str]:
        return [unit_id(sample_id, j, self.per_item) for j in range(self.per_item)]


# ---------------------------------------------------------------------------------------- reading

def read_shard(path: Path) -> ShardLog:
    """A shard's log, checked: its header's slice, and every line one of the slice's samples."""
    contents = _read_unlocked(path)
    h = contents.header
    info = h.get("shard")
    if info is None:
        raise EvalkitError(f"{path}: not a shard's log (it was run without --shard); there is nothing to merge")
    for key, kind in (("eval", str), ("model", str), ("spec", dict), ("seed", int)):
        if not isinstance(h.get(key), kind) or isinstance(h.get(key), bool):
            raise EvalkitError(f"{path}:1: malformed header: {key!r} missing or of the wrong type")
    shard, key, selected, ids, positions = _slice(info, path)
    per_item = _per_item(h["spec"], path)
    log = ShardLog(path, h, shard, key, selected, ids, positions, per_item, contents.samples, contents.summary)
    expected = {uid for sid in ids for uid in log.units(sid)}
    for uid, result in contents.samples.items():
        if uid not in expected:
            raise EvalkitError(f"{path}: sample {uid!r} is not one of shard {shard}'s samples "
                               "(the log was altered, or mixes runs)")
        _check_result(result, path)
    return log


def _read_unlocked(path: Path) -> LogContents:
    """The log, refusing one that a running evalkit still writes (it holds an exclusive lock)."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise EvalkitError(f"{path}: cannot read log ({exc.strerror})") from None
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EvalkitError(f"{path}: is being written by a running evalkit run; wait for it to finish") from None
        return read_log(path)


def _slice(info, path: Path) -> tuple[Shard, str, int, list[str], list[int]]:
    """The header's `shard` record, checked field by field and against the id hash."""
    def bad(what: str) -> EvalkitError:
        return EvalkitError(f"{path}:1: malformed shard header: {what}")

    if not isinstance(info, dict):
        raise bad("not an object")
    index, count, key, selected = (info.get(k) for k in ("index", "count", "unsharded_run_key", "selected"))
    ids, positions = info.get("ids"), info.get("positions")
    if not (_is_int(index) and _is_int(count) and _is_int(selected)) or not 1 <= index <= count <= MAX_SHARDS or selected < 0:
        raise bad("index, count and selected must be integers with 1 <= index <= count")
    if not isinstance(key, str) or len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise bad("unsharded_run_key is not a SHA-256 hex digest")
    if not isinstance(ids, list) or not isinstance(positions, list) or len(ids) != len(positions) \
            or not all(isinstance(i, str) for i in ids) or not all(_is_int(p) for p in positions):
        raise bad("ids and positions must be lists of strings and integers of one length")
    if any(not 0 <= p < selected for p in positions) or any(a >= b for a, b in zip(positions, positions[1:])):
        raise bad(f"positions must rise within 0..{selected - 1}")
    if len(set(ids)) != len(ids):
        raise bad("a sample id is listed twice")
    shard = Shard(index, count)
    stray = next((i for i in ids if shard_of(i, count) != index), None)
    if stray is not None:
        raise EvalkitError(f"{path}: sample {stray!r} does not belong to shard {shard} by its id hash "
                           "(the log was altered, or written by an incompatible evalkit)")
    return shard, key, selected, ids, positions


def _per_item(spec: dict, path: Path) -> int:
    metrics, n = spec.get("metrics"), (spec.get("generation") or {}).get("n", 1)
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise EvalkitError(f"{path}:1: malformed header: spec.metrics must be a list of metric names")
    if not _is_int(n) or not 1 <= n <= 1000:
        raise EvalkitError(f"{path}:1: malformed header: spec.generation.n must be an integer from 1 to 1000")
    return n


def _is_int(x) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_result(r: SampleResult, path: Path) -> None:
    """A line's fields that summaries compute with must have the types a run writes."""
    ok = _is_number(r.score, none=True) and (r.parsed is None or isinstance(r.parsed, bool)) \
        and all(v is None or isinstance(v, str) for v in (r.error, r.group, r.target, r.sample_id)) \
        and all(v is None or isinstance(v, dict) for v in (r.extras, r.usage, r.option_probs)) \
        and all(_is_number(v) for v in (r.extras or {}).values()) \
        and all(_is_number(v) for v in (r.option_probs or {}).values()) \
        and all(_is_int(v) for v in (r.usage or {}).values()) and _is_number(r.missing_mass, none=True)
    if not ok:
        raise EvalkitError(f"{path}: sample {r.id!r}: a malformed line (a score, usage or metric field of the "
                           "wrong type)")


def _is_number(x, none: bool = False) -> bool:
    if x is None:
        return none
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# ---------------------------------------------------------------------------------------- checking

def check_same_run(shards: list[ShardLog]) -> None:
    """Shards of one eval must come from one command (same unsharded run key) with one N, and
    each shard may be given once."""
    first = shards[0]
    for s in shards[1:]:
        if s.key != first.key:
            raise EvalkitError(f"{s.path}: {_difference(first, s)}; shards of one run share the spec, model and "
                               "parameters (only --shard differs)")
        if s.shard.count != first.shard.count:
            raise EvalkitError(f"{s.path}: is shard {s.shard}, but {first.path} is shard {first.shard}: "
                               "all shards of a run split it into the same N")
        if s.selected != first.selected:
            raise EvalkitError(f"{s.path}: its run selected {s.selected} samples, {first.path}'s {first.selected}: "
                               "the data differs between the machines that ran them")
    seen: dict[int, ShardLog] = {}
    for s in shards:
        if s.shard.index in seen:
            raise EvalkitError(f"{s.path}: shard {s.shard} is given twice (also {seen[s.shard.index].path}); "
                               "give each shard's log once")
        seen[s.shard.index] = s


def _difference(a: ShardLog, b: ShardLog) -> str:
    """Which identity field of b's header differs from a's, in words."""
    for key in _IDENTITY:
        va, vb = a.header.get(key), b.header.get(key)
        if va != vb:
            if key == "spec":
                where, x, y = _first_difference(va, vb)
                return (f"its eval spec (sha256 {_digest(vb)}) differs from {a.path}'s ({_digest(va)}) at "
                        f"{where or 'the top'}: {_short(y)} vs {_short(x)}")
            return f"its {key} {_short(vb)} differs from {a.path}'s {_short(va)}"
    return f"its run key (without --shard) differs from {a.path}'s"


def _first_difference(a, b, where: str = "") -> tuple[str, object, object]:
    """The dotted path of the first place two JSON values differ, and the two values there."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{where}.{k}" if where else k)
    return where, a, b


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."
