"""The typed `--json` outputs beside `Summary`: compare, exam, percentile, `--dry-run`,
contamination, and the rows of `list`, `exams`, `providers`, `batches` and `data list` (one JSON
object per line).

The commands build these as plain dicts (their text formatters read them); before printing,
`as_json(kind, d)` reads the dict through its model here (`extra="forbid"`: a field the model does
not name is a bug caught at once, not a silent change of the contract) and prints its dump.
`evalkit schema NAME` prints each model's JSON Schema; the published copies are docs/schemas/.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Num = int | float        # a number as computed: an integer stays one in the output


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------- compare

class Paired(_Out):
    base: Num | None
    new: Num | None
    diff: Num | None
    ci95: list[Num | None] = Field(min_length=2, max_length=2)
    n: int
    test: Literal["mcnemar_exact", "paired_bootstrap"] | None = None
    p_value: Num | None
    right_to_wrong: int | None = Field(None, description="mcnemar_exact: samples right in BASE, wrong in NEW")
    wrong_to_right: int | None = None


class LogRef(_Out):
    log: str
    model: str | None


class PerLog(_Out):
    base: int
    new: int


class Unpaired(_Out):
    base_only: int = Field(description="scored in BASE only (missing or an error in NEW)")
    new_only: int
    errors: PerLog
    truncated: PerLog


class Flipped(_Out):
    worse: list[str] = Field(description="the first 50 ids scored lower in NEW")
    better: list[str]
    worse_count: int
    better_count: int


class Gate(_Out):
    max_drop: Num
    alpha: Num
    drop: Num
    significant: bool
    regression: bool
    missing: int
    allow_missing: bool
    passed: bool = Field(description="false: `evalkit compare` exits 1")
    failures: list[str]


class CompareResult(_Out):
    eval: str | None
    metric: str
    base: LogRef
    new: LogRef
    paired: int
    unpaired: Unpaired
    overall: Paired
    groups: dict[str, Paired]
    flipped: Flipped
    gate: Gate


# ------------------------------------------------------------------------ exams and percentile

class PercentileRange(_Out):
    low: Num | None
    high: Num | None
    approx: bool
    below: bool
    text: str


class Scale(_Out):
    min: Num
    max: Num
    unit: str
    step: Num | None = None


class Section(_Out):
    name: str
    n: int
    correct: Num = Field(description="points: an item's partial credit (human grades) counts as a fraction")
    wrong: Num
    blank: int
    errors: int
    accuracy: Num
    raw: Num
    max_raw: Num
    scaled: Num | None
    log: str | None = None


class ExamOutput(_Out):
    type: Literal["exam"] = "exam"
    exam: str
    title: str
    model: str | None
    sections: list[Section]
    composite: Num
    composite_max: Num
    scaled: Num
    scale: dict[str, Any]
    percentile: PercentileRange | None
    scaled_ci95: list[Num] | None
    percentile_ci95: list[str] | None
    incomplete: bool
    sources: list[dict[str, Any]]
    notes: list[str]
    partial: dict[str, int] | None = Field(None, description="--limit: {limit: N}, each section scored on at most N items")
    percentile_bounds_ci95: list[Num] | None = None
    created: str | None = None
    holdout: bool | None = None
    definition: str | None = None
    table1: Any = None
    requests: dict[str, dict[str, int]] | None = Field(None, description="each section eval's requests")
    log: str | None = Field(None, description="the exam's result file, a copy of this object")


class ShardSection(_Out):
    eval: str | None
    n: int
    scored: int
    errors: int
    log: str


class ExamShardOutput(_Out):
    type: Literal["exam_shard"] = "exam_shard"
    exam: str
    model: str
    shard: str
    incomplete: bool
    sections: dict[str, ShardSection]


class PercentileOutput(_Out):
    exam: str
    title: str
    raw: dict[str, Num] | None = None
    composite: Num | None = None
    composite_max: Num | None = None
    scaled: Num
    scale: dict[str, Any]
    percentile: PercentileRange | None
    no_percentile: str | None
    sources: list[dict[str, Any]]


# ---------------------------------------------------------------------------------- dry run

class CostEstimate(_Out):
    prompt: Num | None
    no_reasoning: Num | None
    worst_case: Num | None


class Prices(_Out):
    input_per_million: Num
    output_per_million: Num
    tier: str
    source: str | None
    recorded: str | None


class DryRun(_Out):
    eval: str
    model: str
    endpoint: str | None
    samples: int
    prompt_tokens: int
    tokenizer: str
    max_completion_tokens: int | None
    max_answer_tokens: int | None
    reasoning_budget_per_sample: int
    unknown: list[str]
    estimated_cost_usd: CostEstimate
    prices: Prices | None


# -------------------------------------------------------------------------- catalogue rows

class ListRow(_Out):
    kind: Literal["eval", "exam", "grader"]
    name: str
    template: str | None
    description: str | None
    subsets: int
    file: str | None


class OAIListRow(_Out):
    """`evalkit list --registry DIR --json`: an OpenAI Evals registry's eval and whether evalkit runs it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str
    class_: str | None = Field(alias="class", description="its eval class, module:Class")
    supported: bool
    reason: str | None = Field(description="why evalkit does not run it (None when it does)")


class ExamRow(_Out):
    name: str
    title: str
    runnable: bool
    sections: list[str]
    percentile: Literal["forms", "yes", "no"]
    file: str | None


class ProviderRow(_Out):
    name: str
    kind: Literal["hosted", "azure", "local server", "in-process", "plug-in"]
    title: str
    base_url: str | None
    base_url_env: str | None
    key_env: list[str]
    key_required: bool | None
    logprobs: bool | None
    max_top_logprobs: int | None
    seed: bool | None
    system_messages: bool | None
    images: bool | None
    renames: dict[str, str]
    prices: dict[str, Any] | None
    price_note: str
    docs: str | None
    notes: list[str]
    models: list[dict[str, Any]]
    sources: dict[str, dict[str, Any]]


# ------------------------------------------------------------- batches, contamination, data

class BatchRow(_Out):
    """`evalkit batches LOG --json`: one provider batch the run log names, as the provider reports it now."""

    batch_id: str | None
    phase: str
    requests: int
    file_id: str
    settled: str | None = Field(description="the state the run settled it in (None: its results are not recorded)")
    status: str | None
    completed: int | None
    failed: int | None
    cancelled_now: bool | None = None
    total: int | None = None


class ContaminationResult(_Out):
    eval: str
    n: int
    contaminated: list[str] = Field(description="ids of the samples found in the corpus")
    count: int
    share: Num | None
    probes: int
    corpus_bytes: int
    seconds: Num
    mb_per_s: Num | None
    engine: str
    seed: int


class DatasetRow(_Out):
    """`evalkit data list --json`: one dataset of the catalogue."""

    name: str
    size: int | None = Field(description="bytes downloaded")
    license: str
    state: Literal["cached", "mirror", "-"]
    source: str
    title: str | None


MODELS: dict[str, type[BaseModel]] = {
    "compare": CompareResult, "exam-result": ExamOutput, "exam-shard": ExamShardOutput,
    "percentile": PercentileOutput, "dry-run": DryRun, "list": ListRow, "list-oai": OAIListRow, "exams": ExamRow, "providers": ProviderRow,
    "batches": BatchRow, "contamination": ContaminationResult, "data-list": DatasetRow,
}


def typed(kind: str, d: dict) -> BaseModel:
    """`d` read through the model of `kind`."""
    return MODELS[kind].model_validate(d)


def as_json(kind: str, d: dict) -> str:
    """One JSON line of output `kind`, checked against its model; fields the dict did not set are
    left out, as before."""
    return json.dumps(typed(kind, d).model_dump(mode="json", exclude_unset=True, by_alias=True))
