"""Run logs, or a published table, as a model family: each model's scale x and its per-problem values.

Logs are untrusted input. Every log of one eval must share its settings (the spec as run, the
sampling but for the seed, answer options, exclusions, grader) or the family is refused in one
line: points made with other prompts or temperatures are not one curve. Several logs of one
model (other `--seed` runs) are pooled, each problem keeping all its samples. A problem counts
only where every model has a scored sample of it; the others are counted as left out.

x comes from `--x model=VALUE`, a `--x FILE` (YAML `model: value`, or CSV `model,x`), or the
`scale` a log's header recorded from `evalkit run --scale`, in that order.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalkit.core.errors import EvalkitError
from evalkit.results.runlog import read_log

SAME = ("spec", "options", "excluded", "grader")          # header fields every log of a family shares


@dataclass
class Member:
    """One model of a family: its scale, and per problem the values of its scored samples."""

    model: str
    x: float
    logs: list[str] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)     # problem id -> one value per sample
    groups: dict[str, str | None] = field(default_factory=dict)      # problem id -> its group


@dataclass
class Family:
    """The models of one eval, smallest x first, over the problems every one of them scored."""

    eval: str
    members: list[Member]
    problems: list[str]                 # problem ids scored by every model, sorted
    left_out: dict[str, int]            # why other problems were left out -> how many
    se: np.ndarray | None = None        # a published table's standard errors (no problems then)
    points: np.ndarray | None = None    # a published table's values

    @property
    def x(self) -> np.ndarray:
        return np.array([m.x for m in self.members], float)

    def matrix(self, reduce) -> np.ndarray:
        """reduce(values of one problem) for every model and problem: (M, P)."""
        return np.array([[reduce(m.values[p]) for p in self.problems] for m in self.members], float)

    def groups(self) -> list[str]:
        first = self.members[0].groups
        return sorted({g for p in self.problems if (g := first.get(p)) is not None})


def positive(text: str, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise EvalkitError(f"{where}: {text!r} is not a positive number (x is compute, parameters or another scale)")
    return value


def scale_map(pairs: tuple[str, ...]) -> dict[str, float]:
    """--x values: model=VALUE pairs and mapping files, later ones winning."""
    out: dict[str, float] = {}
    for item in pairs:
        model, sep, value = item.rpartition("=")
        if sep and model and not Path(item).exists():
            out[model] = positive(value, f"--x {item}")
        else:
            out.update(_scale_file(Path(item)))
    return out


def _scale_file(path: Path) -> dict[str, float]:
    if path.suffix.lower() in (".yaml", ".yml"):
        from evalkit.core.yamlfile import load_yaml

        doc = load_yaml(path)
        if not isinstance(doc.data, dict):
            raise EvalkitError(f"--x {path}:1: expected a mapping of model: x")
        return {str(k): positive(str(v), f"--x {path}:{doc.line((k,))}: {k}") for k, v in doc.data.items()}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalkitError(f"--x {path}: cannot read it ({getattr(exc, 'strerror', None) or exc}); give "
                           "model=VALUE or a YAML/CSV file mapping model to x") from None
    out = {}
    for lineno, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or row[0].startswith("#") or (lineno == 1 and row[0].strip().lower() == "model"):
            continue
        if len(row) < 2:
            raise EvalkitError(f"--x {path}:{lineno}: expected model,x")
        out[row[0].strip()] = positive(row[1].strip(), f"--x {path}:{lineno}")
    return out


def _settings(header: dict) -> dict:
    """What must be equal across a family's logs: everything that makes the points comparable."""
    out = {k: header.get(k) for k in SAME}
    out["sampling"] = {k: v for k, v in (header.get("sampling") or {}).items() if k != "seed"}
    return out


def _differs(a, b, where: str = "") -> str:
    """The dotted path of the first setting where a and b differ ("" when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _differs(a.get(key), b.get(key), f"{where}.{key}" if where else str(key))
        return ""
    return where if a != b else ""


def read_families(paths: list[str], xs: dict[str, float], value) -> list[Family]:
    """The logs as families, one per eval. `value(sample) -> float | None` reads a sample's value
    (None: not scored)."""
    by_eval: dict[str, list] = {}
    for path in paths:
        log = read_log(path)
        name = log.header.get("eval")
        if not isinstance(name, str):
            raise EvalkitError(f"{path}: the header names no eval (not an evalkit run log)")
        by_eval.setdefault(name, []).append(log)
    return [_family(name, logs, xs, value) for name, logs in by_eval.items()]


def _family(name: str, logs: list, xs: dict[str, float], value) -> Family:
    first = logs[0]
    want = _settings(first.header)
    members: dict[str, Member] = {}
    seen: dict[tuple, str] = {}
    for log in logs:
        run = (str(log.header.get("model")), json.dumps(log.header.get("seed")))
        if run in seen:
            raise EvalkitError(f"predict: {log.path} and {seen[run]} are both model {run[0]} with seed {run[1]} on "
                               f"eval {name}: the same samples twice; give one (other seeds are pooled)")
        seen[run] = str(log.path)
        what = _differs(want, _settings(log.header))
        if what:
            raise EvalkitError(f"predict: {log.path} and {first.path} ran eval {name} with different settings "
                               f"({what}); a family's points must share the eval and its settings")
        if log.header.get("seed") == first.header.get("seed") and log.header.get("data") != first.header.get("data"):
            raise EvalkitError(f"predict: {log.path} and {first.path} ran eval {name} on different data "
                               "(the data digests differ); run both on the same data")
        model = str(log.header.get("model", "?"))
        member = members.setdefault(model, Member(model, _x_of(model, log, xs)))
        member.logs.append(str(log.path))
        _add_samples(member, log, value)
    if len(members) < 2:
        raise EvalkitError(f"predict: eval {name} has logs of one model only ({', '.join(members)}); a scaling "
                           "fit needs the same eval run by at least two models of the family")
    _different_x(name, list(members.values()))
    return _shared(name, sorted(members.values(), key=lambda m: m.x))


def _different_x(name: str, members: list[Member]) -> None:
    if len({m.x for m in members}) < 2:
        raise EvalkitError(f"predict: eval {name}: every model has the same x ({members[0].x:g}); a scaling law "
                           "needs models of different scale")


def _x_of(model: str, log, xs: dict[str, float]) -> float:
    if model in xs:
        return xs[model]
    recorded = log.header.get("scale")
    if recorded is not None:
        return positive(str(recorded), f"{log.path}: header scale")
    raise EvalkitError(f"predict: no x for model {model} ({log.path}): give --x {model}=VALUE, a --x FILE, "
                       "or run it with --scale VALUE")


def _add_samples(member: Member, log, value) -> None:
    for result in log.samples.values():
        problem = str(result.sample_id or result.id)
        if result.error is not None:
            member.values.setdefault(problem, [])
            continue
        if result.score is not None and (isinstance(result.score, bool) or not isinstance(result.score, (int, float))):
            raise EvalkitError(f"{log.path}: sample {result.id}: score {result.score!r} is not a number")
        v = value(result)
        if v is None:
            member.values.setdefault(problem, [])
            continue
        if not math.isfinite(v):
            raise EvalkitError(f"{log.path}: sample {result.id}: value {v!r} is not a finite number")
        member.values.setdefault(problem, []).append(v)
        member.groups[problem] = None if result.group is None else str(result.group)


def _shared(name: str, members: list[Member]) -> Family:
    every = set.union(*(set(m.values) for m in members))
    scored = [p for p in sorted(every) if all(m.values.get(p) for m in members)]
    left = len(every) - len(scored)
    if not scored:
        raise EvalkitError(f"predict: eval {name}: no problem was scored in every model's logs; the logs share no "
                           "problems (other --limit or --seed?) or every shared one ended in an error")
    return Family(name, members, scored, {"not scored in every model's logs": left} if left else {})


def read_table(path: str, higher_is_better: bool) -> list[Family]:
    """A published table as families: CSV with columns model, x, value and optionally se and eval."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalkitError(f"--points {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    if not rows or not {"model", "x", "value"} <= set(rows[0]):
        raise EvalkitError(f"--points {path}: expected a CSV header with model,x,value (and optionally se, eval)")
    by_eval: dict[str, list] = {}
    for lineno, row in enumerate(rows, 2):
        where = f"--points {path}: row {lineno}"
        value = _number(row.get("value"), where + ": value")
        if higher_is_better and not 0 <= value <= 1:
            raise EvalkitError(f"{where}: value {value} is outside [0, 1]; --higher-is-better turns a score into "
                               "the loss 1 - score")
        se = _number(row["se"], where + ": se") if row.get("se") not in (None, "") else math.nan
        entry = (row["model"], positive(row["x"], where + ": x"), 1 - value if higher_is_better else value, se)
        by_eval.setdefault(row.get("eval") or Path(path).stem, []).append(entry)
    out = []
    for name, entries in by_eval.items():
        entries.sort(key=lambda e: e[1])
        if len(entries) < 2:
            raise EvalkitError(f"--points {path}: eval {name} has one row; a fit needs at least two models")
        _different_x(name, [Member(e[0], e[1]) for e in entries])
        ses = np.array([e[3] for e in entries])
        out.append(Family(name, [Member(e[0], e[1]) for e in entries], [], {}, ses if np.isfinite(ses).all() else None,
                          np.array([e[2] for e in entries])))
    return out


def _number(text, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise EvalkitError(f"{where}: {text!r} is not a number")
    return value
