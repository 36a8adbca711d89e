"""Typed results: one sample's record, and a run's summary (the `--json` contract).

- `SampleResult` is one line of the run log: which sample, what was sent (a hash, or the messages
  with `--log-prompts`), the completion in its one serialisation (`Completion.to_fields`; its
  text cut at the run's stops, with the reply as received in `raw_completion` when that differs), the
  score, and how it went (attempts, model seconds, queue seconds, cached, cost) — or the error
  that ended it. `from_record` reads a line back.
- `Summary` is a pydantic model; its JSON Schema (`evalkit schema`, docs/summary.schema.json) is
  the contract of `evalkit run --json`.
- `score_metrics` turns sample results into the metric part of a summary. The run pipeline and
  `evalkit report` (which re-summarises a killed run from its log) both call it, so a report shows
  exactly what the run would have printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from evalkit.results.metrics import calibration as calibrate
from evalkit.results.metrics import pass_at_k, summarize
from evalkit.results.unread import example as unread_example
from evalkit.results.unread import is_blank, is_invalid_grade


@dataclass(slots=True)
class SampleResult:
    id: str                                 # the sample id, or <id>#<j> for the j-th of n completions
    group: str | None = None
    target: str | None = None
    sample_id: str | None = None            # with n > 1 completions per item
    messages_sha256: str | None = None
    messages: list | None = None            # with --log-prompts
    attempts: int = 0
    model_s: float = 0.0                    # seconds the model worked on it (all attempts)
    queue_s: float = 0.0                    # seconds it waited: for a free slot, and in the backend's queue
    cached: bool = False
    cost_usd: float | None = None
    error: str | None = None
    completion: str | None = None           # the answer the scorer read: thinking out, cut at the first stop
    raw_completion: str | None = None       # the reply as the backend returned it, when that changed it
    reasoning_chars: int | None = None      # the thinking's length (always), ...
    reasoning: str | None = None            # ... and its text (with --log-reasoning)
    truncated: str | None = None            # why the token limit left no whole answer: scored 0, never read
    finish_reason: str | None = None
    usage: dict[str, int] | None = None     # token counts (vetted: non-negative integers)
    top_logprobs: list | None = None
    extracted: str | None = None
    parsed: bool | None = None
    blank: bool | None = None               # the answer was empty or whitespace only (True, else absent)
    score: float | None = None
    extras: dict[str, float] | None = None  # further per-sample metrics (and `weight:<metric>`)
    option_probs: dict[str, float] | None = None
    missing_mass: float | None = None
    grader: dict | None = None              # a model grader's exchange, logged beside the sample

    def to_record(self) -> dict:
        """The log line: `id` first, `score` always (null when the sample has none), other fields
        only when set."""
        out = {"type": "sample"}
        for name in _ALL:
            v = getattr(self, name)
            if (v is not None and v != {}) or name == "score":
                out[name] = v
        return out

    @classmethod
    def from_record(cls, rec: dict, slim: bool = False, checked: bool = True) -> "SampleResult":
        """A log line as a result; `slim` keeps only what summaries need (resuming 100,000 samples).
        `checked`: every field of its declared type (pydantic's lax mode: a number written as a
        string is read as one), else a ValidationError naming the field; unchecked, as the line
        says (`evalkit view` shows a field of any type)."""
        data = {k: rec[k] for k in (_SLIM if slim else _ALL) if k in rec}
        return sample_adapter().validate_python(data) if checked else cls(**data)

    def values(self, main: str) -> dict[str, float]:
        """Every per-sample metric: the scorer's main one under its name, then the extras."""
        out = {main: self.score} if self.score is not None else {}
        return {**out, **(self.extras or {})}


_ALL = tuple(f.name for f in fields(SampleResult))
_ADAPTER: list = []


def sample_adapter() -> TypeAdapter:
    """The pydantic validator (and JSON Schema) of a `SampleResult`, built once on first use."""
    if not _ADAPTER:
        _ADAPTER.append(TypeAdapter(SampleResult))
    return _ADAPTER[0]
_SLIM = ("id", "group", "target", "sample_id", "messages_sha256", "error", "usage", "parsed", "score", "extras", "option_probs",
         "missing_mass", "truncated", "blank")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stat(_Model):
    value: float | None
    ci95: list[float | None] = Field(min_length=2, max_length=2)
    n: int | None = None                     # samples behind the value
    weight: float | None = Field(None, description="for a weighted mean, the total weight behind it "
                                                   "(IFEval's instruction level: the instructions)")
    groups: int | None = None                # for a macro average: groups behind it


class Usage(_Model):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = Field(0, description="of the completion tokens, those spent thinking (as servers report)")
    cached_tokens: int = Field(0, description="of the prompt tokens, those read from the provider's prompt cache")
    invalid: int = Field(0, description="replies whose usage counts were missing, negative or absurd (not summed)")


class Requests(_Model):
    sent: int = 0
    retries: int = 0
    rate_limited: int = 0
    cached: int = 0
    resumed_samples: int = 0
    rerun_changed: int = Field(0, description="logged samples sent again because their prompt or target is not "
                                              "the one the run sends now (the data or the prompt changed)")
    peak_concurrency: int = 0


class Cost(_Model):
    this_run: float
    all_samples: float | None


class Calibration(_Model):
    ece: float | None
    points: int
    questions: int = 0
    bins: list[dict] = Field(default_factory=list)
    mean_missing_mass: float | None = None


class LogHeader(BaseModel):
    """A run log's first line, read back typed. Only `format` is checked strictly; the other fields
    are those every kind of run writes (a pairwise run has no endpoint, a merged one `merged_from`),
    and anything else an evalkit of this format wrote is kept as it is (`extra="allow"`)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["header"] = "header"
    format: int = Field(1, ge=1, strict=True, description="the log format: 1 for logs written before it was recorded")
    kind: str = Field("eval", description="eval | pairwise")
    run_key: str | None = None
    eval: str | None = None
    model: str | None = None
    endpoint: str | None = None
    seed: int | None = None
    spec: dict | None = None
    planned: int | None = Field(None, description="samples (completions) the run meant to score")
    created: str | None = None
    versions: dict | None = None


class Summary(_Model):
    kind: str = "eval"
    eval: str
    model: str
    endpoint: str | None = None
    status: str = Field(description="complete | errors (some samples errored; rerun to retry them) | interrupted | "
                                     "stopped: max_cost | failed | gaps (merged shards miss samples)")
    incomplete: bool
    primary_metric: str
    excluded: int = 0
    n: int = Field(description="samples (completions, with n per item) the run covers")
    scored: int = Field(description="samples that produced a score (an error or an invalid grade did not)")
    errors: int
    truncated: int = Field(0, description="replies the token limit cut off before a whole answer, scored 0 and "
                                          "counted against --fail-on-error (raise --max-reasoning-tokens; rerun "
                                          "with --retry-truncated)")
    truncated_ids: list[str] | None = Field(None, description="the first 100 truncated samples' ids")
    unparsed: int = Field(description="answered samples whose reply was not read: the scorer found no answer "
                                      "(scored 0), the reply was blank, or the grader named no class (not scored)")
    blank: int = Field(0, description="of the unparsed, replies that were empty or whitespace only")
    invalid_grades: int = Field(0, description="of the unparsed, model-graded samples whose grader reply named no "
                                               "valid class: never scored, counted against --fail-on-error")
    metrics: dict[str, Stat]
    groups: dict[str, Stat] | None = None
    calibration: Calibration | None = None
    usage: Usage = Usage()
    requests: Requests = Requests()
    cost_usd: Cost | None = None
    seed: int = 0
    notes: list[str] = Field(default_factory=list)
    duration_s: float = 0.0
    backend: dict | None = None
    grader: dict | None = None
    batches: dict | None = Field(None, description="--batch: the provider batches created and reattached, "
                                                   "requests submitted, answered and failed, price tier")
    log: str


@dataclass
class MetricPart:
    """The part of a summary computed from sample results alone."""

    metrics: dict[str, dict]
    groups: dict[str, dict] | None
    calibration: dict | None
    scored: int                  # samples that produced a score (an invalid grade did not)
    errors: int
    unparsed: int
    notes: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)   # ids of the replies the token limit cut off
    blank: int = 0
    invalid_grades: int = 0
    example: str | None = None   # the first unread reply, cut short (evalkit.results.unread)

    @property
    def answered(self) -> int:
        """Samples that ended without an error, scored or not."""
        return self.scored + self.invalid_grades

    def unread(self) -> dict:
        """The summary's unread-answer counts beside `unparsed`."""
        return {"blank": self.blank, "invalid_grades": self.invalid_grades}

    def truncation(self) -> dict:
        """The summary's truncated count and (the first 100) ids."""
        return {"truncated": len(self.truncated), "truncated_ids": self.truncated[:100] or None}


def score_metrics(results: list[SampleResult], metrics: list[str], per_item: int, seed: int,
                  method: str | None = None) -> MetricPart:
    """Metrics of `results` (the last result per id): the main metric first, with 95% intervals,
    per group and macro, pass@k over `per_item` completions, calibration where option
    probabilities were recorded, and the run-level metrics the scorer `method` derives."""
    derived = _derived(method, metrics)
    metrics = [m for m in metrics if m not in derived]
    done = [r for r in results if r.error is None]
    errors = len(results) - len(done)
    primary = metrics[0]
    weights: dict[str, list[float]] = {}
    if primary.startswith("pass@") or per_item > 1:
        records, extras = _pass_at_k(done, metrics, per_item)
    else:
        values = [(r.group, r.values(primary)) for r in done]
        records = [(g, v[primary]) for g, v in values if primary in v]
        extras = {m: [v[m] for _, v in values if m in v] for m in _other_metrics(done, metrics)}
        weights = _weights(values, extras)
    notes = [f"{k} not computed: it needs at least {k[5:]} completions per problem (--samples {k[5:]})"
             for k, v in extras.items() if not v]
    out = summarize(records, seed=seed, name=primary, extras={k: v for k, v in extras.items() if v}, weights=weights)
    groups = out.pop("groups", None)
    out.update({name: fn(done, seed) for name, fn in derived.items()})
    probs = [(r.option_probs, r.target or "", r.missing_mass or 0.0) for r in done if r.option_probs]
    cal = None
    if probs:
        cal = calibrate([(p, t) for p, t, _ in probs])
        cal["mean_missing_mass"] = round(sum(m for *_, m in probs) / len(probs), 6)
    invalid = sum(1 for r in done if is_invalid_grade(r))
    return MetricPart(out, groups, cal, len(done) - invalid, errors, sum(1 for r in done if r.parsed is False), notes,
                      [r.id for r in results if r.truncated], sum(1 for r in done if is_blank(r)), invalid,
                      unread_example(done))


def _derived(method: str | None, metrics: list[str]) -> dict:
    """The spec's metrics that its scorer computes over the whole run, by name."""
    if method is None:
        return {}
    from evalkit.scoring import scorers

    own = scorers()[method].derived if method in scorers() else {}
    return {m: own[m] for m in metrics[1:] if m in own}
WEIGHT = "weight:"   # an extra `weight:<metric>` is that sample's weight in <metric>'s weighted mean


def _other_metrics(done: list[SampleResult], metrics: list[str]) -> list[str]:
    """The spec's other metrics, then any further per-sample metric the scorer emitted (a grader's
    choice/<class> rates); weights are not metrics."""
    seen = dict.fromkeys(metrics[1:])
    for r in done:
        seen.update(dict.fromkeys(k for k in (r.extras or {}) if k not in seen and not k.startswith(WEIGHT)))
    return [m for m in seen if m != metrics[0]]


def _weights(values: list[tuple[str | None, dict]], extras: dict[str, list[float]]) -> dict[str, list[float]]:
    """Per metric whose every value came with a `weight:<metric>`, those weights in the same order."""
    out = {}
    for m in extras:
        ws: list = [v.get(WEIGHT + m) for _, v in values if m in v]   # checked next
        if ws and all(isinstance(w, (int, float)) and w >= 0 for w in ws):
            out[m] = [float(w) for w in ws]
    return out


def _pass_at_k(done: list[SampleResult], metrics: list[str], per_item: int) -> tuple[list, dict[str, list[float]]]:
    """Per problem: (group, pass@1 estimate) records and the other pass@k metrics asked for."""
    per: dict[str, list] = {}
    for r in done:
        entry = per.setdefault(r.sample_id or r.id.rsplit("#", 1)[0] if per_item > 1 else r.id, [r.group, 0, 0])
        entry[1] += r.score == 1.0
        entry[2] += 1
    records = [(g, c / m) for g, c, m in per.values()]
    extras = {metric: [pass_at_k(m, c, int(metric[5:])) for _, c, m in per.values() if m >= int(metric[5:])]
              for metric in metrics[1:] if metric.startswith("pass@")}
    return records, extras


def total_usage(results: list[SampleResult]) -> Usage:
    u = Usage()
    for r in results:
        d = r.usage or {}
        u.prompt_tokens += d.get("prompt_tokens", 0)
        u.completion_tokens += d.get("completion_tokens", 0)
        u.reasoning_tokens += d.get("reasoning_tokens", 0)
        u.cached_tokens += d.get("cached_tokens", 0)
        u.invalid += d.get("invalid", 0)
    return u
