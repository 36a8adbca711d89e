"""evalkit as a user outside this repository has it: the wheel in a fresh virtualenv, run from an
unrelated folder (plug-in packages installed into such a virtualenv: test_plugins.py).

These tests need real processes (the installed entry point), so they do not use the in-process
`evalkit` fixture. The virtualenv is built once per module (tests/wheel_venv.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, fake_key
from wheel_venv import build_venv, installed


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    return build_venv(tmp_path_factory.mktemp("install"))


def test_the_wheel_works_outside_the_source_tree(venv, tmp_path, data_dir):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    names = {json.loads(line)["name"] for line in installed(venv, "list", "--json", cwd=elsewhere).stdout.splitlines()}
    assert {"mmlu", "humaneval", "lsat", "refusal"} <= names
    assert "ap-biology" in installed(venv, "exams", cwd=elsewhere).stdout
    assert "85th - 100th" in installed(venv, "percentile", "ap-biology", "5", cwd=elsewhere).stdout
    res = installed(venv, "validate", cwd=elsewhere)
    assert res.returncode == 0 and "valid" in res.stderr, res.stdout + res.stderr
    # the provider presets and their price tables ship too
    res = installed(venv, "providers", "--json", cwd=elsewhere)
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in map(json.loads, res.stdout.splitlines())}
    assert rows["anthropic"]["key_env"] == ["ANTHROPIC_API_KEY"] and rows["anthropic"]["prices"]["table"] == "anthropic"
    assert rows["azure"]["base_url_env"] == "AZURE_OPENAI_ENDPOINT" and rows["gemini"]["prices"]["models"]
    # the README's fake-server recipe, from the install it names (no test extra needed)
    server = subprocess.Popen([str(venv / "bin" / "python"), "-m", "evalkit.testserver", "--default-reply", "B"],
                              stdout=subprocess.PIPE, text=True, cwd=elsewhere)
    try:
        url = server.stdout.readline().split()[-1]
        res = installed(venv, "run", "mmlu.anatomy", "--model", "openai/m", "--base-url", url, "--limit", "7", "--json",
                        "--log-file", str(elsewhere / "run.jsonl"),
                        env={"EVALKIT_DATA_DIR": str(data_dir), "EVALKIT_CACHE_DIR": str(tmp_path / "cache")},
                        cwd=elsewhere)
    finally:
        server.kill()
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["scored"] == 7 and s["log"] == str(elsewhere / "run.jsonl")
    shown = installed(venv, "show", "mmlu", cwd=elsewhere).stdout
    assert shown.startswith("name: mmlu") and f"{venv}/lib/" in shown      # the spec file inside the install


def ci_page_steps() -> dict[str, str]:
    """The CI example of docs/ci.md: each named step's `run:` command, as written there."""
    page = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    block = page[page.index("# .github/workflows/eval.yml"):]
    block = block[:block.index("```")]
    steps, name = {}, None
    for line in block.splitlines():
        if m := re.match(r"\s*- (?:name: (.+)|run: (.+))$", line):
            name, command = (m.group(1), None) if m.group(1) else (None, m.group(2))
            if command:
                steps["install"] = command
        elif (m := re.match(r"\s+run: (.+)$", line)) and name:
            steps[name] = m.group(1)
    return steps


def test_the_ci_page_example_works_as_written(venv, tmp_path, start_server, data_dir):
    """Its commands run as written in a fresh checkout with evalkit installed from the wheel (what
    `pip install "evalkit @ git+..."` builds): the baseline is that same command's log, the gate
    passes on the same model run again (the job run twice in one folder keeps one log path), and a
    worse model fails it."""
    steps = ci_page_steps()
    assert steps["install"].startswith('pip install "evalkit @ git+https://')
    assert "--log-file" in steps["Evaluate"] and steps["Gate on the baseline"].startswith("evalkit compare ")
    good = start_server([], default_reply="B")
    ci_key = fake_key("sk-")

    def job(server, name: str, step: str) -> subprocess.CompletedProcess:
        work = tmp_path / name
        work.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EVALKIT_", "PYTHON", "VIRTUAL_ENV", "OPENAI_"))}
        env.update(PATH=f"{venv / 'bin'}:{env['PATH']}", OPENAI_API_KEY=ci_key, OPENAI_BASE_URL=server.url,
                   EVALKIT_DATA_DIR=str(data_dir), EVALKIT_CACHE_DIR=str(work / ".cache"), HOME=str(work))
        return subprocess.run(["bash", "-eo", "pipefail", "-c", step], cwd=work, env=env, capture_output=True,
                              text=True, timeout=900)

    made = job(good, "baseline", steps["Evaluate"])
    assert made.returncode == 0, made.stderr[-2000:]
    baseline = (tmp_path / "baseline" / "runs" / "mmlu.jsonl").read_bytes()
    summary = json.loads((tmp_path / "baseline" / "summary.json").read_text())
    assert summary["n"] == 2000 and summary["scored"] == 2000 and not summary["incomplete"]
    for name, server, gate in (("baseline", good, 0), ("worse", start_server([], answers_from="mmlu", accuracy="0.1"), 1)):  # readable, 10% right
        (tmp_path / name / "baselines").mkdir(parents=True, exist_ok=True)
        (tmp_path / name / "baselines" / "mmlu.jsonl").write_bytes(baseline)      # committed to the repository
        ran = job(server, name, steps["Evaluate"])    # in baseline/: the job again, resuming the same log
        assert ran.returncode == 0, (name, ran.stderr[-2000:])
        res = job(server, name, steps["Gate on the baseline"])
        assert res.returncode == gate, (name, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr and ci_key not in (tmp_path / name / "runs" / "mmlu.jsonl").read_text()
    assert json.loads((tmp_path / "baseline" / "summary.json").read_text())["requests"]["resumed_samples"] == 2000


def test_ci_runs_the_readme_test_command():
    """.ci/run's command is the README's test block, character for character."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("The test command", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0].strip()
    ci = ROOT / ".ci" / "run"
    commands = [line for line in ci.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert commands[-1] == block == "scripts/test"
    assert os.access(ci, os.X_OK)
