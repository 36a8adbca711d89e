"""evalkit: evaluate chat models on simulated exams and academic benchmarks.

The pipeline runs one way (docs/architecture.md and each module's docstring say more):

    spec -> samples -> requests -> completions -> scores -> log -> metrics -> exam -> report

Every stage works on typed data; only `runner` is concurrent.

The public Python API (docs/python-api.md) is what `__all__` names: `run` and `load_log`, and the
typed results they return. Each is imported on first use, so `import evalkit` stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "run": "evalkit.runs.api",
    "load_log": "evalkit.runs.api",
    "Summary": "evalkit.results.records",
    "Stat": "evalkit.results.records",
    "SampleResult": "evalkit.results.records",
    "LogHeader": "evalkit.results.records",
    "LogContents": "evalkit.results.runlog",
    "PairwiseSummary": "evalkit.runs.pairwise",
    "Sample": "evalkit.core.sample",
    "RunOptions": "evalkit.plan.run_plan",
    "BackendOptions": "evalkit.backends.base",
    "EvalkitError": "evalkit.core.errors",
}

__all__ = [
    "BackendOptions",
    "EvalkitError",
    "LogContents",
    "LogHeader",
    "PairwiseSummary",
    "RunOptions",
    "Sample",
    "SampleResult",
    "Stat",
    "Summary",
    "__version__",
    "load_log",
    "run",
]   # = _PUBLIC (a test says so)


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'evalkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
