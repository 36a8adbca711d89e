"""The generic registry (evalkit.core.plugins) without installing anything: registry folders read
by kind, and the stage order it makes possible. Installed plug-in packages (scorer, loader,
preset, exam; broken; shadowing) are tested in test_install.py, which builds them as wheels."""

from __future__ import annotations

import ast
import json

import yaml

from conftest import ROOT, one_line_error


def names(res) -> set[str]:
    assert res.returncode == 0, res.stderr
    return {json.loads(line)["name"] for line in res.stdout.splitlines()}


def test_a_user_registry_folder_is_read_by_kind(evalkit, tmp_path):
    """A folder without `evals/`: its providers.yaml, prices/ and a stray YAML file are not specs
    (before, every YAML there but two names was read as one; a stray file's mapping became evals)."""
    reg = tmp_path / "reg"
    (reg / "prices").mkdir(parents=True)
    (reg / "providers.yaml").write_text(yaml.safe_dump({"acme": {
        "title": "Acme inference", "base_url": "https://api.acme.example/v1", "key_env": ["ACME_TOKEN"],
        "docs": "https://acme.example/docs", "prices": "acme",
        "capabilities": {"max_top_logprobs": 5, "seed": True, "system_messages": True, "images": False}}}))
    (reg / "prices" / "acme.yaml").write_text(yaml.safe_dump({"acme": {
        "title": "Acme prices", "publisher": "Acme", "url": "https://acme.example/prices", "recorded": "2026-12-01",
        "models": {"m1": {"input": 1.0, "output": 2.0}}}}))
    (reg / "notes.yaml").write_text(yaml.safe_dump({"stray": {
        "dataset": {"format": "jsonl", "path": "./x.jsonl"}, "scoring": {"method": "exact"}}}))
    shipped = names(evalkit("list", "--json"))
    assert names(evalkit("list", "--json", env={"EVALKIT_REGISTRY": str(reg)})) == shipped
    assert "stray" not in shipped
    res = evalkit("run", "stray", "--model", "acme/m1", env={"EVALKIT_REGISTRY": str(reg)})
    assert one_line_error(res).startswith("evalkit: error: unknown eval 'stray'")
    rows = {r["name"]: r for r in map(json.loads, evalkit("providers", "--json", env={"EVALKIT_REGISTRY": str(reg)})
                                      .stdout.splitlines())}
    assert rows["acme"]["key_env"] == ["ACME_TOKEN"] and rows["acme"]["prices"]["table"] == "acme"
    assert rows["acme"]["prices"] == {"table": "acme", "recorded": "2026-12-01", "source": "https://acme.example/prices",
                                      "models": ["m1"]}


def test_an_eval_in_a_folder_of_its_kind_is_read(evalkit, tmp_path):
    """The same stray spec under `evals/` is an eval: the folder is read by kind, not ignored."""
    reg = tmp_path / "reg"
    (reg / "evals").mkdir(parents=True)
    (reg / "evals" / "capitals.yaml").write_text((ROOT / "data" / "examples" / "capitals.yaml").read_text()
                                                 .replace("./capitals.jsonl", str(ROOT / "data" / "examples" / "capitals.jsonl")))
    assert names(evalkit("list", "--json", env={"EVALKIT_REGISTRY": str(reg)})) - names(evalkit("list", "--json")) == {"capitals"}


def imports_of(path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_no_early_stage_imports_scoring_and_core_imports_only_core():
    """specs/ used to import evalkit.scoring and evalkit.loaders; the registry in core stands
    between them now, importing the built-in modules by name when asked."""
    back = [f"{p.relative_to(ROOT)}:{line}: {mod}"
            for stage in ("specs", "datasets", "loaders", "core")
            for p in sorted((ROOT / "evalkit" / stage).rglob("*.py"))
            for line, mod in imports_of(p) if mod == "evalkit.scoring" or mod.startswith("evalkit.scoring.")]
    assert back == []
    outside = [f"{p.relative_to(ROOT)}:{line}: {mod}" for p in sorted((ROOT / "evalkit" / "core").rglob("*.py"))
               for line, mod in imports_of(p) if mod.startswith("evalkit.") and not mod.startswith("evalkit.core")]
    assert outside == []
