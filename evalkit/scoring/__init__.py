"""Scorers: completion -> score. A scorer is one module that registers itself with `@scorer`.

A registration names the scorer (the spec's `scoring.method`), its typed options (a pydantic
model with `method: Literal[<name>]`, so `validate` refuses another scorer's options), the
metrics it emits per sample (the first is the main one; `metric_patterns` admits a family such
as pass@K), and how it runs:

- `inline`: cheap, runs on the event loop (letters, string matches);
- `thread`: CPU-bound, runs in a worker thread, at most one per core (code in the sandbox);
- `async`: awaits a model (a grader), on the event loop.

Every scorer returns a `Score`: the main value (1.0 right, 0.0 wrong, a fraction for F1-like
scorers, or None when it gives no number), what it extracted from the reply, whether extraction
succeeded (an unparseable reply scores 0 with `parsed=False`, so the summary counts it), the
other per-sample metrics (`extras`), and optional option probabilities and a logged detail.

Scorers are found in this package and in any installed package's entry point of the group
`evalkit.scorers` (the value is a module to import; importing it registers its scorers), through
the generic registry `evalkit.core.plugins.SCORERS`: a plug-in's scorer may take a built-in's
name only with `replaces=True` (docs/plugins.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Literal

from evalkit.core.plugins import SCORERS, package_modules
from evalkit.specs.options import ScorerOptions

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.backends.base import Completion
    from evalkit.core.sample import Sample


@dataclass(frozen=True)
class Score:
    value: float | None
    extracted: str | None
    parsed: bool = True
    extras: dict = field(default_factory=dict)   # further per-sample metrics, e.g. DROP's {"em": 1.0}
    option_probs: dict | None = None             # label -> probability, renormalised over the options
    missing_mass: float | None = None            # probability the top alternatives left off the options
    detail: dict | None = None                   # logged beside the sample, not a metric (the grader's exchange)


class ScoringError(Exception):
    """This sample cannot be scored (e.g. its reply lacks the log-probabilities the scorer needs):
    the pipeline records the message as the sample's error; it is never a score of 0."""


class MissingLogprobs(ScoringError):
    """The reply carries no log-probabilities and the scorer needs them. When no reply of a run has
    had them, the endpoint does not return them at all: the pipeline stops the run with one line."""


@dataclass(frozen=True)
class ScoreInput:
    sample: "Sample"
    reply: "Completion"
    messages: list[dict]                 # what the model was asked (graders quote it)
    options: ScorerOptions
    services: dict[str, Any] = field(default_factory=dict)   # e.g. "grader": an async completer


@dataclass(frozen=True)
class Scorer:
    name: str
    options: type[ScorerOptions]
    metrics: tuple[str, ...]
    run: Callable[[ScoreInput], Score | Awaitable[Score]]
    work: Literal["inline", "thread", "async"] = "inline"
    metric_patterns: tuple[str, ...] = ()
    precheck: Callable[[dict], None] | None = None   # run before the first request (e.g. "is there a sandbox?")
    # metrics of the whole run that are no mean of per-sample values (SimpleQA's F1):
    # name -> fn(results without errors, seed) -> {value, ci95, n}
    derived: dict[str, Callable] = field(default_factory=dict)
    # what is wrong with a sample's target for this scorer, or None: a loader asks it through the
    # registry (evalkit.core.plugins.SCORERS), so a broken record stops the load with one line
    check_target: Callable[[str], str | None] | None = None

    def emits(self, metric: str) -> bool:
        return metric in self.metrics or any(re.fullmatch(p, metric) for p in self.metric_patterns)


def scorer(name: str, options: type[ScorerOptions], metrics: tuple[str, ...] = ("accuracy",),
           work: Literal["inline", "thread", "async"] = "inline", metric_patterns: tuple[str, ...] = (),
           precheck: Callable[[dict], None] | None = None, derived: dict[str, Callable] | None = None,
           replaces: bool = False, check_target: Callable[[str], str | None] | None = None):
    """Register the decorated function as the scorer `name`. `precheck(services)` runs once
    before a run sends anything and raises EvalkitError when the scorer cannot work here;
    `derived` computes run-level metrics from the recorded results (evalkit.results). A plug-in
    whose scorer takes a built-in's name must say `replaces=True` (else it is refused)."""
    def register(fn):
        made = Scorer(name, options, metrics, fn, work, metric_patterns, precheck, dict(derived or {}), check_target)
        SCORERS.register(name, made, fn.__module__, replaces=replaces)
        return fn
    return register


_NOT_SCORERS = {"sandbox", "sandbox_driver", "text"}  # this folder's helpers, not scorer modules


def builtin_scorers() -> dict[str, str]:
    """This package's scorer modules (module name -> dotted path), for the generic registry."""
    return package_modules(__name__, _NOT_SCORERS)


def scorers() -> dict[str, Scorer]:
    """Every scorer: this package's modules, then plug-ins' (entry-point group `evalkit.scorers`)."""
    return dict(SCORERS.items())


def get_scorer(method: str) -> Scorer:
    return scorers()[method]
