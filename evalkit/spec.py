"""Typed eval specs read from YAML, with errors that name file, line and field.

A spec file is a mapping from eval name to spec. A spec names a `template` (how samples become
prompts and how answers are scored), a `dataset`, a `prompt`, `generation` parameters, `scoring`
and a `group_by` field. `extends: other-name` starts from another spec and deep-merges this one over
it, so MMLU's 57 subjects are one spec with `dataset.subsets`, not 57 files.

Validation is strict: unknown keys are errors (with a "did you mean" hint), and every problem is
reported as `file:line: eval.field.path: message`. Typing is done by pydantic models with
`extra="forbid"`; the YAML loader records the line of every key so pydantic's error locations can
be mapped back to the file.

This module reads YAML and nothing else: finding spec files is `registry`, loading data is
`datasets`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import SpecError

Loc = tuple  # a path into the YAML document: ("mmlu", "dataset", "path")


# --------------------------------------------------------------------------- YAML with lines

@dataclass
class YamlDoc:
    """A parsed YAML file: plain Python data plus the 1-based line of every key and item."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int:
        """The line of `loc`, or of its nearest ancestor that has one."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return 1


def load_yaml(path: str | Path) -> YamlDoc:
    """Parse a YAML file into plain data, recording lines; syntax errors and duplicate keys raise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{path}: cannot read: {exc}"]) from None
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise SpecError([f"{path}:{line}: YAML syntax error: {exc.problem or exc}"]) from None
    doc = YamlDoc(path=path, data=None)
    problems: list[str] = []
    doc.data = _construct(node, (), doc, problems) if node is not None else {}
    if problems:
        raise SpecError(problems)
    return doc


_SCALAR = yaml.SafeLoader("")  # used only to resolve scalar tags (int, float, bool, null)
# libyaml's composer when PyYAML was built with it (about 10x faster on the exam tables); same nodes and marks
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _construct(node: yaml.Node, loc: Loc, doc: YamlDoc, problems: list[str]) -> Any:
    doc.lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(f"{doc.path}:{key_node.start_mark.line + 1}: YAML merge keys (<<) are not supported; use `extends`")
                continue
            key = _construct(key_node, loc, doc, problems)
            if key in out:
                problems.append(f"{doc.path}:{key_node.start_mark.line + 1}: {_dotted(loc + (key,))}: duplicate key")
            doc.lines[loc + (key,)] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, loc + (key,), doc, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, loc + (i,), doc, problems) for i, item in enumerate(node.value)]
    return _SCALAR.construct_object(node, deep=True)


def _dotted(loc: Loc) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts)


# --------------------------------------------------------------------------- the typed spec

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FewShot(_Strict):
    split: str = Field(description="dataset split the examples come from (e.g. `dev`)")
    k: int = Field(ge=0, description="number of examples")
    sampling: Literal["first", "random"] = "first"


class DatasetSpec(_Strict):
    format: str = Field(description="a module of evalkit.loaders: mmlu, jsonl, csv, arc, ...")
    path: str = Field(description="relative to the data root ($EVALKIT_DATA_DIR), or ./ relative to the spec file")
    split: str = "test"
    subsets: list[str] = Field(default_factory=list, description="subsets addressable as `<eval>.<subset>`")
    fields: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="record field for each sample field: id, question (input), choices (list), answer, group",
    )

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: str) -> str:
        from .loaders import formats

        if v not in formats():
            raise ValueError(f"unknown dataset format {v!r}; known: {', '.join(formats())}")
        return v


class PromptSpec(_Strict):
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


class GenerationSpec(_Strict):
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    n: int = Field(1, ge=1, le=1000, description="completions per item (pass@k needs n >= k)")
    max_tokens: int | None = Field(None, ge=1)
    stop: list[str] | None = None
    top_p: float | None = Field(None, gt=0.0, le=1.0)


class ScoringSpec(_Strict):
    method: Literal["letter", "exact", "includes", "fuzzy", "numeric", "drop", "code", "mc2", "graded",
                    "oai_match", "oai_includes", "oai_fuzzy", "json"]
    answer_by: Literal["text", "logprob"] = Field(
        "text", description="letter evals: read the answer from the reply's text, or take the option letter with "
                            "the highest probability as the next token (one forward pass; GPT-4 report, multilingual MMLU)")
    logprobs: bool = Field(False, description="ask for the answer token's top log-probabilities (mc2 needs them; "
                                              "--logprobs turns them on for any multiple-choice eval)")
    labels: str = "ABCD"
    case_sensitive: bool = False
    tolerance: float = Field(1e-6, ge=0.0)
    extract: str | None = Field(None, description="`answer_line` (the text after the last 'Answer:') or a regex "
                                                  "whose first group is the answer; applied before matching")
    grader: str | None = Field(None, description="graded: a grader spec of the registry's graders/")
    criteria: str | None = Field(None, description="graded: the text for the grader prompt's {criteria}")
    grader_fields: dict[str, str] = Field(default_factory=dict, description="graded: more placeholders for the rubric")
    eval_type: Literal["classify", "cot_classify", "classify_cot", "cot_classify_jp"] | None = Field(
        None, description="graded: where the grader puts its choice (default: the grader spec's)")

    @field_validator("extract")
    @classmethod
    def _valid_regex(cls, v: str | None) -> str | None:
        if v not in (None, "answer_line"):
            import re

            try:
                if re.compile(v).groups < 1:
                    raise ValueError("the regex needs a group () around the answer")
            except re.error as exc:
                raise ValueError(f"not a valid regex: {exc}") from None
        return v


class EvalSpec(_Strict):
    """One runnable eval, fully resolved (extends applied, subset chosen)."""

    name: str
    description: str = ""
    template: Literal["multiple_choice", "match", "code", "model_graded"]
    dataset: DatasetSpec
    prompt: PromptSpec = PromptSpec()
    generation: GenerationSpec = GenerationSpec()
    scoring: ScoringSpec
    metrics: list[str] = Field(
        default=["accuracy"],
        description="the first is the main metric (the score's mean): accuracy, f1, or pass@1; then the "
                    "scorer's extras (em) or pass@k for code evals")

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, v: list[str]) -> list[str]:
        import re

        bad = [m for m in v if m not in ("accuracy", "f1", "em", "score") and not re.fullmatch(r"pass@[1-9][0-9]*", m)]
        if bad or not v:
            raise ValueError(f"unknown metric(s) {bad}: use accuracy, f1, em, score or pass@K")
        return v
    group_by: str | None = None
    subset: str | None = Field(None, description="set by the registry for `<eval>.<subset>` names")
    source_file: str | None = None

    @field_validator("scoring")
    @classmethod
    def _labels_unique(cls, v: ScoringSpec) -> ScoringSpec:
        if len(set(v.labels)) != len(v.labels) or not v.labels:
            raise ValueError("labels must be distinct characters, e.g. ABCD")
        if (v.method == "graded") != (v.grader is not None):
            raise ValueError("`grader` goes with method: graded, and method: graded needs a `grader`")
        return v


# Keys a spec may carry in YAML but that are not part of the resolved spec.
META_KEYS = {"extends", "abstract"}


def validate_spec(name: str, raw: dict, lines_of: "callable", file_of: "callable") -> EvalSpec:
    """Type-check one merged raw spec; raise SpecError listing every problem with its line.

    `lines_of(loc)` and `file_of(loc)` map a path under this spec to where it was written (a merged
    spec's keys can come from several files through `extends`).
    """
    data = {k: v for k, v in raw.items() if k not in META_KEYS}
    data.setdefault("name", name)
    try:
        return EvalSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = error_text(err) + (_suggest(loc) if err["type"] == "extra_forbidden" else "")
            where = f"{file_of(loc)}:{lines_of(loc)}"
            problems.append(f"{where}: {_dotted((name,) + loc)}: {msg}")
        raise SpecError(problems) from None


def _suggest(loc: Loc) -> str:
    """' (did you mean X?)' for a misspelt key, from the model the key sits in."""
    model: Any = EvalSpec
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        f = getattr(model, "model_fields", {}).get(part)
        if f is None:
            return ""
        ann = f.annotation
        model = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return ""
    fields = list(getattr(model, "model_fields", {}))
    if model is EvalSpec:
        fields += sorted(META_KEYS)
    close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
    return f" (did you mean `{close[0]}`?)" if close else f" (allowed: {', '.join(fields)})"


def error_text(err: dict) -> str:
    """One pydantic error in evalkit's words."""
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required field is missing"
    return err["msg"].removeprefix("Value error, ")


def load_definitions(path: Path, model: type[BaseModel], kind: str, lenient: bool = False) -> tuple[dict, list[str]]:
    """A YAML file mapping names to definitions of `model` (exams, graders): the valid ones by name,
    and one `file:line: name.field: message` per problem. Each gets `name` and `source_file`.
    `lenient` reads the file as plain PyYAML does (a repeated key: the last wins), for files of
    another project (OpenAI Evals' modelgraded specs)."""
    if lenient:
        try:
            doc = YamlDoc(path, yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {})
        except (OSError, yaml.YAMLError) as exc:
            return {}, [f"{path}:1: cannot read: {exc}"]
    else:
        try:
            doc = load_yaml(path)
        except SpecError as exc:
            return {}, exc.problems
    if not isinstance(doc.data, dict):
        return {}, [f"{path}:1: a {kind} file is a mapping from {kind} name to definition"]
    found, problems = {}, []
    for name, body in doc.data.items():
        if not isinstance(body, dict):
            problems.append(f"{path}:{doc.line((name,))}: {name}: a {kind} definition must be a mapping")
            continue
        try:
            found[name] = model.model_validate({**body, "name": name, "source_file": str(path)})
        except ValidationError as exc:
            for err in exc.errors():
                loc = (name,) + tuple(err["loc"])   # model-level errors sit at the definition's own line
                problems.append(f"{path}:{doc.line(loc)}: {_dotted(loc)}: {error_text(err)}")
    return found, problems
