"""evalkit as a user outside this repository has it: the wheel in a fresh virtualenv, run from an
unrelated folder, and a plug-in package that adds a data format and a scorer through entry points.

These tests need real processes (the installed entry point), so they do not use the in-process
`evalkit` fixture. The virtualenv is built once per module.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT, fake_key

PLUGIN = {
    "pyproject.toml": """\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "evalkit-plugin-demo"
        version = "0.1"

        [project.entry-points."evalkit.loaders"]
        lines = "evalkit_plugin_demo.lines"

        [project.entry-points."evalkit.scorers"]
        reverse = "evalkit_plugin_demo.reverse"
        """,
    "evalkit_plugin_demo/__init__.py": "",
    "evalkit_plugin_demo/lines.py": '''\
        """A data format: `question => answer` per line."""
        from evalkit.core.sample import Sample


        def load(spec, root, split):
            rows = [line.split(" => ") for line in root.read_text().splitlines() if line.strip()]
            return [Sample(id=str(i), question=q, answer=a) for i, (q, a) in enumerate(rows)]
        ''',
    "evalkit_plugin_demo/reverse.py": '''\
        """A scorer: right when the reply is the ideal answer spelled backwards."""
        from typing import Literal

        from evalkit.scoring import Score, ScorerOptions, scorer


        class ReverseOptions(ScorerOptions):
            method: Literal["reverse"]


        @scorer("reverse", ReverseOptions, metrics=("reversed",))
        def reverse(inp):
            got = inp.reply.text.strip()
            return Score(float(got == inp.sample.answer[::-1]), got)
        ''',
}


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh virtualenv holding evalkit's wheel (built from this checkout) and nothing of the tree.

    Its dependencies are this environment's installed packages, put on its path by a .pth line
    (downloading them all again would take minutes); the source tree is not on that path (the
    editable install's hook is a .pth file there, which a path line does not run), and `pip check`
    proves the wheel's declared dependencies resolve."""
    import sysconfig

    base = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(base / "dist"), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next((base / "dist").glob("evalkit-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")], check=True)
    python = str(base / "venv" / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "evalkit-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # Only what the wheel itself requires: the extras' modules (pytest, the test server's old
    # matcher, torch, ...) are on that path too, so imports of them fail here as in a plain install.
    # A finder that refuses them, as a plain install would (a None in sys.modules is not the same:
    # libraries such as scipy look for torch in sys.modules and would find a None there).
    blocker = ("class NoExtras:\n names = set(%r)\n def find_spec(self, name, path=None, target=None):\n"
               "  if name.partition('.')[0] in self.names: raise ModuleNotFoundError(name)\n"
               "sys.meta_path.insert(0, NoExtras())\n") % (extra_modules(),)
    Path(site, "evalkit-test-no-extras.pth").write_text(f"import sys; exec({blocker!r})\n")
    pip(base / "venv", "install", "-q", "--no-deps", str(wheel))
    check = pip(base / "venv", "check", ok=False)
    assert "evalkit" not in check.stdout, check.stdout          # every dependency the wheel declares is there
    return base / "venv"


def extra_modules() -> list[str]:
    """The top-level modules of the packages evalkit's extras (local, test) bring and its core
    dependencies do not."""
    from importlib.metadata import packages_distributions, requires

    def name(req: str) -> str:
        return re.split(r"[<>=!~ ;\[(]", req, maxsplit=1)[0].lower().replace("_", "-")

    reqs = requires("evalkit") or []
    core = {name(r) for r in reqs if "extra ==" not in r}
    extra = {name(r) for r in reqs if "extra ==" in r} - core
    return sorted(m for m, dists in packages_distributions().items()
                  if any(name(d) in extra for d in dists) and not any(name(d) in core for d in dists))


def pip(venv: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """This environment's pip acting on `venv` (a venv without pip of its own is made in a second)."""
    return subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), *args],
                          check=ok, capture_output=True, text=True)


def installed(venv: Path, *args: str, env: dict | None = None, cwd: Path) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("EVALKIT_", "PYTHON", "VIRTUAL_ENV"))}
    full.update(env or {})
    return subprocess.run([str(venv / "bin" / "evalkit"), *args], capture_output=True, text=True, env=full, cwd=cwd,
                          timeout=600)


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
    # the README's test-server recipe (docs/testing.md), from the install it names (no test extra needed)
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


def test_a_plugin_adds_a_format_and_a_scorer(venv, tmp_path, start_server):
    plugin = tmp_path / "plugin"
    for name, text in PLUGIN.items():
        (plugin / name).parent.mkdir(parents=True, exist_ok=True)
        (plugin / name).write_text(textwrap.dedent(text))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(plugin)], check=True, capture_output=True)
    pip(venv, "install", "-q", "--no-deps", str(next((tmp_path / "dist").glob("*.whl"))))
    (tmp_path / "words.txt").write_text("Spell stop backwards => stop\nSpell live backwards => live\n"
                                        "Spell time backwards => time\n")
    (tmp_path / "rev.yaml").write_text(textwrap.dedent("""\
        backwards:
          dataset: {format: lines, path: ./words.txt}
          scoring: {method: reverse}
        """))
    server = start_server([{"match": "stop", "reply": "pots"}, {"match": "live", "reply": "evil"},
                           {"match": "time", "reply": "time"}])
    res = installed(venv, "run", str(tmp_path / "rev.yaml"), "--model", "openai/m", "--base-url", server.url,
                    "--json", "--fail-on-error", "0", env={"EVALKIT_CACHE_DIR": str(tmp_path / "cache"),
                                                           "XDG_STATE_HOME": str(tmp_path / "state")}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["primary_metric"] == "reversed" and s["metrics"]["reversed"]["value"] == pytest.approx(2 / 3, abs=1e-6)
    bad = tmp_path / "bad.yaml"
    bad.write_text("bad:\n  dataset: {format: lines, path: ./words.txt}\n  scoring: {method: reverse, tolerance: 1}\n")
    res = installed(venv, "validate", str(bad), cwd=tmp_path)
    assert res.returncode == 1 and f"{bad}:3: bad.scoring.tolerance: unknown key" in res.stdout


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
