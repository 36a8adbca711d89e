"""The Python API behind `evalkit.run` and `evalkit.load_log` (docs/python-api.md).

`run` is `evalkit run NAME --model MODEL` for one eval, returning the typed `Summary` that
`--json` prints: the same registry, plan, log (so a second call resumes), cache and summary. Its
keywords are the fields of `RunOptions` (the long flags with `_` for `-`: `limit=20`,
`log_dir=...`, `no_cache=True`). Problems raise `EvalkitError`, whose message is the CLI's line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.results.records import Summary
from evalkit.results.runlog import LogContents, read_log


def run(eval: str | Path, model: str, **options) -> Summary:
    """Run one eval (a registry name such as "mmlu.anatomy", or a YAML file of one eval) against
    `model` ("provider/name") and return its summary."""
    from evalkit.plan.run_plan import RunOptions
    from evalkit.runs.connect import one_backend_per_model
    from evalkit.runs.pipeline import run_eval

    known = {f.name for f in dataclasses.fields(RunOptions)} - {"model"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise EvalkitError(f"evalkit.run: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    for name in ("log_dir", "log_file", "exclude"):
        if options.get(name) is not None:
            options[name] = Path(options[name])
    opts = RunOptions(model=model, **options)
    spec = _resolve(str(eval))
    with one_backend_per_model():
        return run_eval(spec, opts)


def load_log(path: str | Path) -> LogContents:
    """A run log read back: `.meta` (the typed header, with its `format`), `.samples` (id ->
    SampleResult, the last line of each), `.summary` (the summary line as written, if any)."""
    return read_log(path)


def _resolve(name: str):
    """The eval spec `name` names, as `evalkit run` finds it; an exam is refused (run it with the CLI)."""
    from evalkit.specs.registry import load_registry

    is_file = name.endswith((".yaml", ".yml")) or "/" in name
    if is_file and not Path(name).is_file():
        raise EvalkitError(f"{name}: no such file")
    reg, from_files = load_registry([name] if is_file else [])
    if is_file:
        bad = [p for p in reg.problems if p.startswith(str(Path(name)))]
        if bad:
            raise EvalkitError(bad[0])
        runnable = [m for m in from_files if not reg.raw[m].data.get("abstract")]
        if len(runnable) != 1:
            raise EvalkitError(f"{name}: evalkit.run takes a file of one eval; it defines {len(runnable)} "
                               f"({', '.join(runnable) or 'none'}): pass the eval's name")
        return reg.resolve(runnable[0])
    return reg.resolve(name)
