"""The CLI's everyday paths: list, show, a YAML file outside the registry, resume, limits and seeds."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ROOT, read_jsonl

CAPITALS = ROOT / "data" / "examples" / "capitals.yaml"


def test_list_and_help(evalkit):
    res = evalkit("list", "--json")
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in map(json.loads, res.stdout.splitlines())}
    assert rows["mmlu"]["subsets"] == 57 and rows["mmlu"]["template"] == "multiple_choice"
    assert rows["mmlu"]["kind"] == "eval" and rows["lsat"]["kind"] == "exam" and rows["refusal"]["kind"] == "grader"
    assert rows["ap-biology"]["template"] == "exam (convert)" and rows["sat-math"]["template"] == "exam"
    assert evalkit("--help").returncode == 0
    assert "--concurrency" in evalkit("run", "--help").stdout


def test_show_subject(evalkit):
    res = evalkit("show", "mmlu.high_school_physics")
    assert res.returncode == 0
    assert "name: mmlu.high_school_physics" in res.stdout and "subset: high_school_physics" in res.stdout


def test_eval_file_outside_registry(evalkit, start_server, tmp_path):
    server = start_server([
        {"match": "capital of France", "reply": "Paris"},
        {"match": "capital of Japan", "reply": "It is Tokyo."},
        {"match": "capital of Canada", "reply": "Toronto"},
        {"match": "capital of Brazil", "reply": "Brasilia"},
    ])
    res = evalkit("run", str(CAPITALS), "--model", "openai/m", "--base-url", server.url, "--json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["eval"] == "capitals" and s["n"] == 5
    assert s["metrics"]["accuracy"]["value"] == 0.6  # France, Japan, Brazil; Canada wrong; Australia unanswered
    by_id = {r["id"]: r for r in read_jsonl(s["log"]) if r["type"] == "sample"}
    assert by_id["jp"]["score"] == 1.0 and by_id["ca"]["score"] == 0.0 and by_id["au"]["completion"] == "I do not know."


def test_human_output_and_environment_base_url(evalkit, start_server):
    server = start_server([], default_reply="B")
    res = evalkit("run", "mmlu.anatomy", "--model", "openai/m", env={"OPENAI_BASE_URL": server.url})
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("mmlu.anatomy  openai/m  accuracy ")
    assert "n=135/135" in res.stdout and "log: " in res.stdout


def test_limit_and_seed_pick_a_deterministic_sample(evalkit, start_server, tmp_path):
    server = start_server([], default_reply="C")

    def ids(seed: int, logdir: str) -> list[str]:
        res = evalkit("run", "mmlu", "--model", "openai/m", "--base-url", server.url, "--limit", "20",
                      "--seed", str(seed), "--json", "--log-dir", str(tmp_path / logdir))
        assert res.returncode == 0, res.stderr
        return [r["id"] for r in read_jsonl(json.loads(res.stdout)["log"]) if r["type"] == "sample"]

    a, b, c = ids(1, "a"), ids(1, "b"), ids(2, "c")
    assert len(a) == 20 and sorted(a) == sorted(b) and sorted(a) != sorted(c)
    assert len({i.split("/")[0] for i in a}) > 5   # a shuffled sample spans subjects


def test_resume_after_a_cut_log(evalkit, start_server, tmp_path):
    """A log cut mid-run (as by kill -9) resumes: finished samples are not re-sent or duplicated."""
    server = start_server([], default_reply="A")
    args = ["run", "mmlu.astronomy", "--model", "openai/m", "--base-url", server.url, "--json", "--no-cache",
            "--log-dir", str(tmp_path / "logs")]
    first = json.loads(evalkit(*args).stdout)
    log = Path(first["log"])
    lines = log.read_text().splitlines(keepends=True)
    # Keep the header, 100 samples and half of the next line, as a crash would leave it.
    log.write_text("".join(lines[:101]) + lines[101][:40])
    before = server.stats()["completions"]
    second = json.loads(evalkit(*args).stdout)
    assert server.stats()["completions"] - before == 152 - 100
    assert second["requests"]["resumed_samples"] == 100
    assert second["metrics"]["accuracy"] == first["metrics"]["accuracy"]
    recs = read_jsonl(log)
    ids = [r["id"] for r in recs if r["type"] == "sample"]
    assert len(ids) == len(set(ids)) == 152
    assert [r["type"] for r in recs].count("summary") == 1


def test_shots_override_changes_the_prompt(evalkit, start_server, tmp_path):
    server = start_server([], default_reply="A")
    res = evalkit("run", "mmlu.virology", "--model", "openai/m", "--base-url", server.url, "--limit", "1",
                  "--shots", "0", "--log-prompts", "--json", "--log-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    rec = [r for r in read_jsonl(json.loads(res.stdout)["log"]) if r["type"] == "sample"][0]
    assert rec["messages"][0]["content"].count("Answer:") == 1


def test_the_published_json_schema_is_the_summary_model(evalkit):
    """docs/summary.schema.json is the --json contract: it must be what the Summary model says."""
    res = evalkit("schema")
    assert res.returncode == 0
    published = json.loads((ROOT / "docs" / "summary.schema.json").read_text())
    assert json.loads(res.stdout) == published, "regenerate it: evalkit schema > docs/summary.schema.json"
    assert {"eval", "status", "metrics", "errors", "log"} <= set(published["required"])
