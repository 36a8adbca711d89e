"""Typed eval specs read from YAML, with errors that name file, line and field.

A spec file maps eval names to specs. A spec has a `dataset`, a `prompt`, `generation`
parameters, `scoring` and the `metrics` to report; `extends: other-name` starts from another
spec and deep-merges this one over it, so MMLU's 57 subjects are one spec with
`dataset.subsets`, not 57 files.

- **`template`** is a preset: it fills defaults under the spec (`multiple_choice` scores letters,
  `match` exact text, `code` runs the tests and reports pass@1, `model_graded` asks a grader).
  It is optional; everything it sets can be written out instead.
- **`scoring`** is the options of one scorer, chosen by `method`: a discriminated union over the
  registered scorers (evalkit.scoring), so an option of another scorer is refused by `validate`.
- **`metrics`** must be metrics the scorer emits; the first is the main one. The default is the
  scorer's own list.
- **`generation.stop`**: where a reply ends; by default the text that starts the next few-shot
  example, derived from the template (evalkit.specs.stops); `[]` for none.
- **`group_by`** names any sample field (a loader's own group, e.g. MMLU's `subject`, or any field
  of the record): per-group tables and the macro average use it.

Validation is strict: unknown keys are errors (with a "did you mean" hint), and every problem is
reported as `file:line: eval.field.path: message`.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Annotated, Any, Callable, Literal, Mapping, Union

from pydantic import BaseModel, Field, ValidationError, create_model, field_validator, model_validator

from evalkit.core.errors import SpecError
from evalkit.core.plugins import LOADERS, SCORERS
from evalkit.core.yamlfile import Strict, dotted, error_text
from evalkit.specs.options import ScorerOptions


def scorers() -> dict:
    """Every registered scorer by name, asked of the generic registry (which imports the scoring
    stage's modules by name, so this spec module does not import a later stage)."""
    return dict(SCORERS.items())

TEMPLATES: dict[str, dict] = {
    "multiple_choice": {"scoring": {"method": "letter"}},
    "match": {"scoring": {"method": "exact"}},
    "code": {"scoring": {"method": "code"}},
    "model_graded": {"scoring": {"method": "graded"}},
}


# Request fields evalkit itself owns: an extra body may not replace them (it would change what
# is asked, or how the reply is read, behind the run's back).
OWNED_FIELDS = ("model", "messages", "stream", "stream_options", "n")


def check_extra_body(value) -> dict:
    """An extra request body as given: a JSON object of at most 64 KiB that leaves evalkit's own
    fields alone; a ValueError says what is wrong."""
    import json

    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object ({{...}}), not {type(value).__name__}")
    owned = sorted(set(value) & set(OWNED_FIELDS))
    if owned:
        raise ValueError(f"{', '.join(owned)}: evalkit sets these itself")
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
    except UnicodeEncodeError:       # (a ValueError too: first)
        raise ValueError("holds a lone surrogate (\\ud800-\\udfff), which no server can read") from None
    except ValueError:
        raise ValueError("holds NaN or an infinite number, which JSON has no spelling for") from None
    if len(text) > 65536:
        raise ValueError("larger than 64 KiB")
    return value


class FewShot(Strict):
    split: str = Field(description="dataset split the examples come from (e.g. `dev`)")
    k: int = Field(ge=0, description="number of examples")
    sampling: Literal["first", "random"] = "first"


class DatasetSpec(Strict):
    format: str = Field(description="a data format (evalkit.loaders or a plug-in): mmlu, jsonl, csv, arc, ...")
    path: str = Field(description="relative to the data root ($EVALKIT_DATA_DIR), or ./ relative to the spec file")
    split: str = "test"
    subsets: list[str] = Field(default_factory=list, description="subsets addressable as `<eval>.<subset>`")
    fields: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="record field for each sample field: id, question (input), choices (list), answer, group",
    )
    answer_is: Literal["label", "text"] | None = Field(
        None, description="multiple choice: what the answer field holds; label (default): a label (A, B, ...) or "
                          "an index into the options; text: the option's own text, mapped to its label")

    @model_validator(mode="after")
    def _known_format(self) -> "DatasetSpec":
        formats = sorted(LOADERS.names())
        if self.format not in formats:
            close = difflib.get_close_matches(self.format, formats, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ValueError(f"unknown dataset format {self.format!r}; {hint}known: {', '.join(formats)}")
        return self


class PromptSpec(Strict):
    system: str | None = None
    preamble: str = ""
    template: str = "{question}"
    choice_format: str = "{label}. {text}"
    target_format: str = " {answer}"
    separator: str = "\n\n"
    fewshot: FewShot | None = None
    chain_of_thought: bool = False
    cot_instruction: str = "Think step by step, then give your final answer on the last line as `Answer: <answer>`."
    chat: bool = Field(False, description="the sample's own chat messages (an OpenAI Evals `input`) are the prompt")
    vision: bool = Field(True, description="items' images (dataset.fields.images) embedded as image parts; "
                                           "false (--no-vision): an `IMAGE: <name>` tag per image instead")


class GenerationSpec(Strict):
    temperature: float | None = Field(0.0, ge=0.0, le=2.0, description="null: the provider's default")
    n: int = Field(1, ge=1, le=1000, description="completions per item (pass@k needs n >= k)")
    max_tokens: int | None = Field(None, ge=1)
    stop: list[str] | None = Field(None, description="stop strings (at most 4); default: derived from the few-shot "
                                                     "format (evalkit.specs.stops), [] for none")
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    send_seed: bool = Field(True, description="send the run's seed with each request (false: as OpenAI Evals does)")
    extra_body: dict | None = Field(None, description="fields merged into every request body, for what evalkit "
                                                      "does not model (as --extra-body; the flag's win)")

    @field_validator("extra_body")
    @classmethod
    def _plain_body(cls, value):
        if value is not None:
            check_extra_body(value)
        return value


    @field_validator("stop")
    @classmethod
    def _sendable_stops(cls, v: list[str] | None) -> list[str] | None:
        from evalkit.specs.stops import check

        return None if v is None else check(v)


class EvalSpec(Strict):
    """One runnable eval, fully resolved (extends applied, template filled in, subset chosen)."""

    name: str
    description: str = ""
    template: Literal["multiple_choice", "match", "code", "model_graded"] | None = None
    dataset: DatasetSpec
    prompt: PromptSpec = PromptSpec()
    generation: GenerationSpec = GenerationSpec()
    scoring: ScorerOptions
    metrics: list[str] = Field(default_factory=list, description="metrics the scorer emits, the main one first "
                                                                 "(default: the scorer's own)")
    group_by: str | None = Field(None, description="the sample field that groups samples (per-group tables, "
                                                   "macro average); default: the data format's own group")
    subset: str | None = Field(None, description="set by the registry for `<eval>.<subset>` names")
    source_file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_metrics(cls, data: Any) -> Any:
        method = (data.get("scoring") or {}).get("method") if isinstance(data, dict) else None
        if isinstance(data, dict) and not data.get("metrics") and method in scorers():
            data = {**data, "metrics": list(scorers()[method].metrics)}
        return data

    @model_validator(mode="after")
    def _metrics_emitted(self) -> "EvalSpec":
        s = scorers()[self.scoring.method]
        bad = [m for m in self.metrics if not s.emits(m)]
        if bad:
            raise ValueError(f"metrics {', '.join(bad)}: scorer {s.name} emits {', '.join(s.metrics)}"
                             + (" (and pass@K)" if any("pass" in p for p in s.metric_patterns) else ""))
        if len(set(self.scoring.labels)) != len(self.scoring.labels) or not self.scoring.labels:
            raise ValueError("scoring.labels must be distinct characters, e.g. ABCD")
        if self.dataset.answer_is is not None and self.scoring.method != "letter":
            raise ValueError(f"dataset.answer_is applies to multiple-choice evals (scoring.method letter), "
                             f"not {self.scoring.method}")
        return self

    @property
    def scorer(self):
        return scorers()[self.scoring.method]


@lru_cache(maxsize=1)
def spec_model() -> type[EvalSpec]:
    """EvalSpec with `scoring` as the discriminated union of every registered scorer's options."""
    # built at run time from the registry, so a static checker cannot see the union's members
    union: Any = Union[tuple(s.options for s in scorers().values())]  # noqa: UP007
    scoring: Any = Annotated[union, Field(discriminator="method")]
    return create_model("EvalSpec", __base__=EvalSpec, scoring=(scoring, ...))


# Keys a spec may carry in YAML but that are not part of the resolved spec.
META_KEYS = {"extends", "abstract"}


def apply_template(raw: dict) -> dict:
    """The raw spec over its template's defaults (a template name that is not known is left for
    validation to report)."""
    preset = TEMPLATES.get(t) if isinstance(t := raw.get("template"), str) else None
    if not preset:
        return raw
    out = dict(raw)
    for key, value in preset.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**value, **out[key]}
        else:
            out.setdefault(key, value)
    return out


def validate_spec(name: str, raw: dict, lines_of: Callable[[tuple], object], file_of: Callable[[tuple], object]) -> EvalSpec:
    """Type-check one merged raw spec; raise SpecError listing every problem with its line.

    `lines_of(loc)` and `file_of(loc)` map a path under this spec to where it was written (a merged
    spec's keys can come from several files through `extends`).
    """
    data = apply_template({k: v for k, v in raw.items() if k not in META_KEYS})
    data.setdefault("name", name)
    try:
        return spec_model().model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in sorted(exc.errors(), key=_most_telling):
            loc = _user_loc(tuple(err["loc"]), data)
            problems.append(f"{file_of(loc)}:{lines_of(loc)}: {dotted((name,) + loc)}: {_message(err, loc, data)}")
        raise SpecError(problems) from None


def _user_loc(loc: tuple, data: dict) -> tuple:
    """pydantic puts the union's tag into the path (`scoring.letter.labels`); the file does not."""
    if len(loc) > 1 and loc[0] == "scoring" and loc[1] == (data.get("scoring") or {}).get("method"):
        return (loc[0],) + loc[2:]
    return loc


def _most_telling(err: Mapping[str, Any]) -> int:
    """A wrong scoring method or unknown key explains the rest: report those first."""
    return 0 if err["type"] in ("union_tag_invalid", "extra_forbidden", "literal_error") else 1


def _message(err: Mapping[str, Any], loc: tuple, data: dict) -> str:
    if err["type"] == "union_tag_invalid":
        got = (data.get("scoring") or {}).get("method")
        close = difflib.get_close_matches(str(got), list(scorers()), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return f"unknown scoring method {got!r}; {hint}known: {', '.join(scorers())}"
    if err["type"] == "union_tag_not_found":
        return f"`method` is missing; known: {', '.join(scorers())}"
    if err["type"] == "literal_error":
        close = difflib.get_close_matches(str(err.get("input")), _literal_choices(err), n=1)
        return f"{err.get('input')!r} is not one of {err['ctx']['expected']}" + (f" (did you mean {close[0]}?)" if close else "")
    if err["type"] == "extra_forbidden":
        return "unknown key" + _suggest(loc, data)
    return error_text(err)


def _literal_choices(err: Mapping[str, Any]) -> list[str]:
    return [c.strip(" '") for c in str(err.get("ctx", {}).get("expected", "")).replace(" or ", ",").split(",")]


def _suggest(loc: tuple, data: dict) -> str:
    """' (did you mean X?)' for a misspelt key, from the model the key sits in."""
    model: Any = EvalSpec
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if model is EvalSpec and part == "scoring":
            method = (data.get("scoring") or {}).get("method")
            model = scorers()[method].options if method in scorers() else ScorerOptions
            continue
        f = getattr(model, "model_fields", {}).get(part)
        ann = f.annotation if f is not None else None
        model = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return ""
    fields = list(getattr(model, "model_fields", {}))
    if model is EvalSpec:
        fields += sorted(META_KEYS)
    close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
    return f" (did you mean `{close[0]}`?)" if close else f" (allowed: {', '.join(fields)})"
