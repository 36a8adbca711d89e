"""The JSON Schemas of eval, exam and grader YAML (docs/schemas/): what the models say, what every
registry file satisfies, and what they refuse (moved from tests/test_validate_deep.py)."""

from __future__ import annotations

import json


def test_the_published_yaml_schemas_are_what_the_models_say(evalkit):
    from conftest import ROOT

    for kind in ("spec", "exam", "grader"):
        res = evalkit("schema", kind)
        assert res.returncode == 0, res.stderr
        published = json.loads((ROOT / "docs" / "schemas" / f"{kind}.schema.json").read_text())
        assert json.loads(res.stdout) == published, f"regenerate it: evalkit schema {kind} > docs/schemas/{kind}.schema.json"


def _validator(kind: str):
    import jsonschema

    from conftest import ROOT

    schema = json.loads((ROOT / "docs" / "schemas" / f"{kind}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_registry_yaml_validates_against_its_schema():
    import yaml

    from evalkit.core.places import package_registry

    seen = set()
    for kind, folder in (("spec", "evals"), ("exam", "exams"), ("grader", "graders")):
        validator = _validator(kind)
        for f in sorted((package_registry() / folder).glob("*.yaml")):
            errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(yaml.safe_load(f.read_text()))]
            assert errors == [], f"{f}: {errors}"
            seen.add(f"{folder}/{f.name}")
    assert {"evals/mmlu.yaml", "evals/gsm8k.yaml", "exams/lsat.yaml", "graders/closedqa.yaml"} <= seen


def test_the_spec_schema_refuses_what_validate_refuses():
    validator = _validator("spec")

    def problems(doc: dict) -> list[str]:
        return sorted(e.message for e in validator.iter_errors(doc))

    good = {"tiny": {"template": "match", "dataset": {"format": "jsonl", "path": "./t.jsonl"}}}
    assert problems(good) == []
    assert problems({"child": {"extends": "mmlu", "prompt": {"fewshot": {"split": "dev", "k": 3}}}}) == []
    typo = {"tiny": {**good["tiny"], "generation": {"temprature": 0.5}}}
    assert problems(typo) == ["Additional properties are not allowed ('temprature' was unexpected)"]
    assert problems({"tiny": {"template": "match"}}) == ["'dataset' is a required property"]
    assert problems({"tiny": {**good["tiny"], "dataset": {"format": "jsonl", "path": "x", "answer_is": "txt"}}}) == \
        ["'txt' is not valid under any of the given schemas"]
    assert problems({"bad name": good["tiny"]}) == ["'bad name' does not match '^[A-Za-z0-9_-]+$'"]
    wrong_method = problems({"tiny": {**good["tiny"], "scoring": {"method": "lettre"}}})
    assert wrong_method and all("lettre" in p or "is not valid under any" in p for p in wrong_method)
