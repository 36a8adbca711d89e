"""`evalkit merge LOG...`: the logs of `--shard I/N` runs joined into the log of the whole run.

Each shard's header names its slice (`evalkit.plan.shards`): I and N, the run key of the same command
without `--shard`, how many samples the whole selection had, and each of its samples' position
in it. Merging

1. reads every log (a log still being written is refused) and checks each header and line: a
   shard's samples must be the ones its slice holds (the id hash is recomputed), every line one
   of them;
2. groups the logs by eval and checks that the shards of one eval come from the same spec (by
   hash), model and parameters (one run key without `--shard`), refuses a shard given twice and
   a sample in two shards, and reports gaps: shards not given, and samples a shard never logged
   (a killed shard). Samples that ended in an error are not gaps: they count as errors, as in
   an unsharded run;
3. writes one log per eval, atomically: the header of the unsharded run (its run key, so the
   same command without `--shard` resumes it and sends nothing) plus where each shard came
   from, each sample's last line in the unsharded run's order, and a summary computed by the
   same `score_metrics` over results in that order, so its metrics, intervals, group tables and
   calibration are the unsharded run's own, bit for bit. Request counts and costs are the sums
   over the shards; the duration is their sum (the work done, not the wall-clock time).

Exams: shards of `evalkit run EXAM --shard I/N` log each section's eval; merge those logs, then
`evalkit run EXAM` without `--shard` converts from the merged logs.

Every input is untrusted: a malformed header or line, a log of another run, a tampered slice is
one line naming the file, never a traceback or a silently wrong merge.

This module is merging (the gaps of step 2, and step 3); reading and checking the shard logs (step 1,
and step 2's checks that the shards belong to one run) is in `evalkit.results.shard_logs`.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from evalkit import __version__
from evalkit.core.errors import EvalkitError
from evalkit.results.runlog import dumps, log_path, read_log
from evalkit.backends.presets import pricer_for
from evalkit.results.records import Cost, Requests, SampleResult, Summary
from evalkit.results.shard_logs import ShardLog, _is_number, check_same_run, read_shard
from evalkit.results.runlog import header_line
from evalkit.results.summary import build_summary


@dataclass
class Merged:
    """One eval's merged run: where it went, its summary, and the gaps found."""

    eval: str
    count: int
    shards: list[ShardLog]
    log: Path
    summary: Summary
    gaps: list[str] = field(default_factory=list)

    def report(self) -> dict:
        return {"eval": self.eval, "count": self.count, "log": str(self.log), "gaps": self.gaps,
                "shards": [{"shard": str(s.shard), "log": str(s.path), "samples": len(s.ids)} for s in self.shards]}


def merge_logs(paths: list[str], log_file: Path | None = None, log_dir: Path | None = None) -> list[Merged]:
    """Merge shard logs (of one or several evals) into one log per eval; see the module docstring."""
    if not paths:
        raise EvalkitError("merge: give the shard logs to merge")
    logs = [read_shard(Path(p)) for p in paths]
    groups: dict[str, list[ShardLog]] = {}
    for s in logs:
        groups.setdefault(s.header["eval"], []).append(s)
    if log_file is not None and len(groups) > 1:
        raise EvalkitError(f"--log-file names one merged log, and these logs hold {len(groups)} evals "
                           f"({', '.join(sorted(groups))}); pass --log-dir instead")
    inputs = {s.path.resolve() for s in logs}
    planned = []
    for name, shards in groups.items():
        check_same_run(shards)
        first = shards[0]
        out = log_file or log_path(log_dir or _default_dir(), name, first.header["model"], first.key)
        if Path(out).resolve() in inputs:
            raise EvalkitError(f"{out}: is one of the shard logs being merged; write the merged log elsewhere")
        planned.append((sorted(shards, key=lambda s: s.shard.index), Path(out)))
    return [_merge_one(shards, out) for shards, out in planned]


def _default_dir() -> Path:
    from evalkit.core.places import default_log_dir

    return default_log_dir()


# ---------------------------------------------------------------------------------------- merging

def _merge_one(shards: list[ShardLog], out: Path) -> Merged:
    first = shards[0]
    by_position: dict[int, tuple[str, ShardLog]] = {}
    owner: dict[str, ShardLog] = {}
    for s in shards:
        for sid, pos in zip(s.ids, s.positions):
            if sid in owner:
                raise EvalkitError(f"{s.path}: sample {sid!r} is also in {owner[sid].path}; shards must not overlap")
            if pos in by_position:
                raise EvalkitError(f"{s.path}: position {pos} of the selection is also taken by "
                                   f"{by_position[pos][1].path}; the data differs between the machines that ran them")
            owner[sid], by_position[pos] = s, (sid, s)
    ordered = [s.samples[uid] for pos in sorted(by_position) for sid, s in [by_position[pos]]
               for uid in s.units(sid) if uid in s.samples]
    gaps = _gaps(shards, first.selected)
    summary = _summary(shards, ordered, out, bool(gaps))
    _write(out, _header(shards, gaps), ordered, summary, first.key)
    return Merged(first.header["eval"], first.shard.count, shards, out, summary, gaps)


def _gaps(shards: list[ShardLog], selected: int) -> list[str]:
    count = shards[0].shard.count
    given = {s.shard.index for s in shards}
    missing = [i for i in range(1, count + 1) if i not in given]
    out = []
    if missing:
        held = selected - sum(len(s.ids) for s in shards)
        names = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        out.append(f"shard(s) {names} of {count} not given ({held} of the {selected} samples)")
    for s in shards:
        absent = [uid for sid in s.ids for uid in s.units(sid) if uid not in s.samples]
        if absent:
            out.append(f"shard {s.shard} ({s.path}): {len(absent)} of its {len(s.ids) * s.per_item} samples have no "
                       f"line (first: {absent[0]}); rerun that shard's command to finish it")
    return out


def _summary(shards: list[ShardLog], results: list[SampleResult], out: Path, gaps: bool) -> Summary:
    """The merged run's summary, built as `pipeline.summarise` builds an unsharded run's."""
    h = shards[0].header
    summaries = [s.summary or {} for s in shards]
    costs = [c for c in (x.get("cost_usd") for x in summaries) if isinstance(c, dict)]
    batch = any(x.get("batches") for x in summaries)
    return build_summary(
        results, eval=h["eval"], model=h["model"], metrics=h["spec"]["metrics"], n=shards[0].selected * shards[0].per_item,
        status="gaps" if gaps else "complete", seed=h["seed"], per_item=shards[0].per_item,
        method=(h["spec"].get("scoring") or {}).get("method"),
        cost=(lambda usage: _cost(h["model"], costs, usage, batch)) if costs else None,
        endpoint=h.get("endpoint"), excluded=(h.get("excluded") or {}).get("count", 0), requests=_requests(summaries),
        duration_s=round(sum(_num(x.get("duration_s")) for x in summaries), 3),
        backend=next((x["backend"] for x in summaries if isinstance(x.get("backend"), dict)), None),
        grader=_grader(h, results, summaries), log=str(out))


def _cost(model: str, costs: list[dict], usage, batch: bool) -> Cost:
    """Spent: the shards' sum. All samples: priced as a run prices them (the model's price per
    token over the merged usage, at batch prices if a shard ran with --batch), else the shards'
    sum where the price table does not know it."""
    pricer = pricer_for(model, "batch" if batch else "standard")
    if pricer.known:
        whole = pricer.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
    else:
        parts = [c.get("all_samples") for c in costs]
        whole = round(sum(map(_num, parts)), 10) if all(_is_number(x) for x in parts) else None
    return Cost(this_run=round(sum(_num(c.get("this_run")) for c in costs), 10), all_samples=whole)


def _num(x) -> float:
    return float(x) if _is_number(x) else 0.0


def _requests(summaries: list[dict]) -> Requests:
    parts = [r for x in summaries if isinstance(r := x.get("requests"), dict)]
    total = {k: int(sum(_num(p.get(k)) for p in parts)) for k in ("sent", "retries", "rate_limited", "cached",
                                                                   "resumed_samples", "rerun_changed")}
    return Requests(**total, peak_concurrency=int(max((_num(p.get("peak_concurrency")) for p in parts), default=0)))


def _grader(h: dict, results: list[SampleResult], summaries: list[dict]) -> dict | None:
    if not isinstance(h.get("grader"), dict):
        return None
    asked = [g["requests"] for x in summaries if isinstance(g := x.get("grader"), dict)
             and isinstance(g.get("requests"), dict)]
    requests = {k: sum(_num(r.get(k)) for r in asked) for k in ("sent", "retries", "rate_limited", "cached", "errors",
                                                                 "cost_usd")} if asked else None
    return {**h["grader"], "invalid": sum(1 for r in results if r.error is None and r.parsed is False),
            "requests": requests}


def _header(shards: list[ShardLog], gaps: list[str]) -> dict:
    h = {k: v for k, v in shards[0].header.items() if k not in ("shard", "created", "versions")}
    h["run_key"] = shards[0].key
    h["merged_from"] = [{"file": str(s.path), "shard": str(s.shard), "samples": len(s.ids),
                         "created": s.header.get("created"), "versions": s.header.get("versions")} for s in shards]
    h["gaps"] = gaps
    h["versions"] = {"evalkit": __version__}
    h["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return h


# ---------------------------------------------------------------------------------------- writing

def _write(out: Path, header: dict, results: list[SampleResult], summary: Summary, key: str) -> None:
    """Write the merged log beside `out` and move it into place; an existing file there is
    replaced only if it is an earlier merge of the same run and no run is writing it."""
    guard = _claim(out, key, {r.id for r in results if r.error is None})
    tmp = out.with_name(f".{out.name}.{os.getpid()}.merging")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(dumps(header_line(header)))
            for r in results:
                fh.write(dumps(r.to_record()))
            fh.write(dumps({"type": "summary", **summary.model_dump(mode="json")}))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EvalkitError(f"{out}: cannot write the merged log ({exc.strerror or exc})") from None
    finally:
        if guard is not None:
            guard.close()


def _claim(out: Path, key: str, scored: set[str]):
    """None when `out` does not exist; else its handle, locked, if it is an earlier merge of this
    run that holds no scored sample the new merge lacks (one the unsharded command finished
    after that merge, say)."""
    if not out.exists():
        return None
    if not out.is_file():
        raise EvalkitError(f"{out}: exists and is not a file")
    fh = open(out, "rb")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise EvalkitError(f"{out}: is being written by a running evalkit run; wait for it to finish") from None
    try:
        first = json.loads(fh.readline())
    except (ValueError, UnicodeDecodeError):
        first = None
    if not (isinstance(first, dict) and first.get("merged_from") and first.get("run_key") == key):
        fh.close()
        raise EvalkitError(f"{out}: exists and is not an earlier merge of these shards; move it away or name "
                           "another --log-file")
    try:
        extra = [i for i, r in read_log(out).samples.items() if r.error is None and i not in scored]
    except EvalkitError:
        extra = []           # an unreadable earlier merge holds nothing worth keeping
    if extra:
        fh.close()
        raise EvalkitError(f"{out}: holds {len(extra)} scored samples these shards lack (first: {extra[0]}), finished "
                           "after the earlier merge; it is already the more complete log (move it away to merge anew)")
    return fh
