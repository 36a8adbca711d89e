"""JSON Schemas of the YAML files people write: eval specs, exams, graders (`evalkit schema spec`).

Each is generated from the typed model that reads the file (pydantic's JSON Schema), so the two
cannot disagree; the published copies under docs/schemas/ are kept equal by a test. A file maps
names to definitions, so the schema is an object whose every value is one definition; the fields
the loader sets itself (`name`, `source_file`, a spec's `subset`) are left out.

A spec may start from another (`extends`), which deep-merges it over the parent, so any field of
a spec, nested ones included, may come from its parent: the spec schema checks names, types and
allowed values everywhere, and requires a `dataset` (with `format` and `path`) and `scoring` or a
`template` only of a spec that extends nothing and is not abstract. `evalkit validate` checks the
rest (the merged spec, the data). Editors read the schema through a first line
`# yaml-language-server: $schema=<path or URL of the schema>` (docs/writing-evals.md).
"""

from __future__ import annotations

import copy

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SET_BY_LOADER = ("name", "source_file", "subset")


def spec_file_schema() -> dict:
    from evalkit.specs.registry import NAME_RE
    from evalkit.specs.evals import spec_model

    body = _without_loader_fields(spec_model().model_json_schema(ref_template="#/$defs/{model}"))
    defs = body.pop("$defs", {})
    body = _loosened(body)
    defs = {k: _loosened(v) for k, v in defs.items()}
    body["properties"]["extends"] = {"type": "string", "description": "the eval this one starts from (deep-merged)"}
    body["properties"]["abstract"] = {"type": "boolean", "description": "a base for `extends` only, not runnable"}
    body["if"] = {"not": {"anyOf": [{"required": ["extends"]}, {"required": ["abstract"]}]}}
    body["then"] = {"required": ["dataset"], "anyOf": [{"required": ["scoring"]}, {"required": ["template"]}],
                    "properties": {"dataset": {"required": ["format", "path"]}}}
    scoring = body["properties"]["scoring"]     # scorers register in import order: name them in a fixed one
    scoring["anyOf"] = sorted(scoring["anyOf"], key=lambda ref: ref["$ref"])
    scoring["discriminator"]["mapping"] = dict(sorted(scoring["discriminator"]["mapping"].items()))
    defs["EvalSpec"] = body
    return _file("evalkit eval spec file", "Eval names mapped to eval specs (registry/evals/*.yaml).",
                 NAME_RE.pattern, defs, "EvalSpec")


def exam_file_schema() -> dict:
    from evalkit.exams.tables import Exam

    return _definitions_file(Exam, "evalkit exam file", "Exam names mapped to exam tables (registry/exams/*.yaml).")


def grader_file_schema() -> dict:
    from evalkit.specs.graders import GraderSpec

    return _definitions_file(GraderSpec, "evalkit grader file",
                             "Grader names mapped to model-graded rubrics (registry/graders/*.yaml).")


SCHEMAS = {"spec": spec_file_schema, "exam": exam_file_schema, "grader": grader_file_schema}


def output_schemas() -> dict:
    """The JSON Schema of every `--json` output and of the run log's lines, by name (`evalkit
    schema NAME`; docs/schemas/NAME.schema.json). `list`, `exams` and `providers` print one object
    per line: theirs is the schema of one line."""
    from evalkit.analysis.predict import PredictReport
    from evalkit.results.outputs import MODELS
    from evalkit.results.records import Summary
    from evalkit.runs.pairwise import PairwiseSummary

    out = {"summary": Summary.model_json_schema, "pairwise": PairwiseSummary.model_json_schema,
           "predict": PredictReport.model_json_schema, "log-header": log_header_schema, "log-sample": log_sample_schema}
    return {**out, **{name: model.model_json_schema for name, model in MODELS.items()}}


def log_header_schema() -> dict:
    from evalkit.results.records import LogHeader

    return LogHeader.model_json_schema()


def log_sample_schema() -> dict:
    """A run log's sample line: the fields of `SampleResult` (those not set are left out), and its `type`."""
    from pydantic import TypeAdapter

    from evalkit.results.records import SampleResult

    schema = TypeAdapter(SampleResult).json_schema()
    schema["properties"] = {"type": {"const": "sample"}, **schema["properties"]}
    schema["required"] = ["type", "id", "score"]
    return schema


def _definitions_file(model, title: str, description: str) -> dict:
    body = _without_loader_fields(model.model_json_schema(ref_template="#/$defs/{model}"))
    defs = body.pop("$defs", {})
    defs[model.__name__] = body
    return _file(title, description, None, defs, model.__name__)


def _file(title: str, description: str, names: str | None, defs: dict, top: str) -> dict:
    out = {"$schema": DRAFT, "title": title, "description": description, "type": "object",
           "additionalProperties": {"$ref": f"#/$defs/{top}"}, "$defs": dict(sorted(defs.items()))}
    if names:
        out["propertyNames"] = {"pattern": names}
    return out


def _without_loader_fields(schema: dict) -> dict:
    schema = copy.deepcopy(schema)
    for key in SET_BY_LOADER:
        schema.get("properties", {}).pop(key, None)
    schema["required"] = [r for r in schema.get("required", []) if r not in SET_BY_LOADER]
    if not schema["required"]:
        del schema["required"]
    return schema


def _loosened(node):
    """A spec's parts as `extends` may leave them: nothing required (the merge may supply it), and
    a scorer's options any of the scorers' (`anyOf`: without `method`, which the template may set,
    several match)."""
    if isinstance(node, list):
        return [_loosened(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {("anyOf" if k == "oneOf" else k): _loosened(v) for k, v in node.items() if not (k == "required" and isinstance(v, list))}
    return out
