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

        [project.entry-points."evalkit.registries"]
        demo = "evalkit_plugin_demo.registry"

        [tool.setuptools]
        packages = ["evalkit_plugin_demo", "evalkit_plugin_demo.registry"]

        [tool.setuptools.package-data]
        "evalkit_plugin_demo.registry" = ["*.yaml", "evals/*", "exams/*"]
        """,
    "evalkit_plugin_demo/__init__.py": "",
    "evalkit_plugin_demo/lines.py": '''\
        """A data format: `question => answer` per line, mapped by evalkit's public records helper."""
        from evalkit.datasets.fields import samples_from_records


        def load(spec, root, split):
            rows = [line.split(" => ") for line in root.read_text().splitlines() if line.strip()]
            return samples_from_records(spec, root, ((i, {"id": str(i), "question": q, "answer": a})
                                                     for i, (q, a) in enumerate(rows, 1)))
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
    # the registry folder the package ships: an eval and its data, a provider preset, an exam
    "evalkit_plugin_demo/registry/__init__.py": "",
    "evalkit_plugin_demo/registry/evals/backwards.yaml": """\
        backwards-words:
          dataset: {format: lines, path: ./words.txt, fields: {id: id}}
          scoring: {method: reverse}
        """,
    "evalkit_plugin_demo/registry/evals/words.txt": "Spell stop backwards => stop\nSpell live backwards => live\n"
                                                    "Spell time backwards => time\n",
    "evalkit_plugin_demo/registry/providers.yaml": """\
        demo:
          title: The demo plug-in's server
          local: true
          base_url: http://127.0.0.1:9/v1
          base_url_env: DEMO_BASE_URL
          key_required: false
          docs: https://example.org/demo
          capabilities: {max_top_logprobs: 5, seed: true, system_messages: true, images: false}
        """,
    "evalkit_plugin_demo/registry/exams/spelling.yaml": """\
        spelling-bee:
          title: Spelling bee (demo)
          scale: {min: 0, max: 3, unit: words}
          sections: [{name: words, eval: backwards-words, items: 3}]
          distribution:
            kind: percent_below
            year: 2026
            source: {title: demo, publisher: tests, year: 2026, url: "https://example.org"}
            step: 1
            scores: {1: 20, 2: 50, 3: 90}
        """,
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
    # A finder that refuses them (not None entries in sys.modules: scipy peeks there for torch and
    # would take None for the module).
    Path(site, "evalkit_test_no_extras.py").write_text(textwrap.dedent(f"""\
        import sys

        class NoExtras:
            blocked = set({extra_modules()!r})

            @classmethod
            def find_spec(cls, name, path=None, target=None):
                if name.partition(".")[0] in cls.blocked:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, NoExtras)
        """))
    Path(site, "evalkit-test-no-extras.pth").write_text("import evalkit_test_no_extras\n")
    # --ignore-installed: the dependencies' path also holds this checkout's editable install, which
    # pip would otherwise take for the wheel already installed (and install nothing)
    pip(base / "venv", "install", "-q", "--no-deps", "--ignore-installed", str(wheel))
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


def install_plugin(venv: Path, folder: Path, files: dict[str, str]) -> str:
    """Build the package `files` describe as a wheel and install it into `venv`; its name."""
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(folder / "dist"), str(folder)], check=True, capture_output=True)
    pip(venv, "install", "-q", "--no-deps", str(next((folder / "dist").glob("*.whl"))))
    return re.search(r'name = "(.+)"', files["pyproject.toml"]).group(1)


@pytest.fixture
def plugin(venv, tmp_path):
    """plugin(files) installs a plug-in package into the module's venv for one test only."""
    names = []
    yield lambda files: names.append(install_plugin(venv, tmp_path / f"plugin{len(names)}", files))
    for name in names:
        pip(venv, "uninstall", "-y", "-q", name)


def test_a_plugin_adds_a_format_and_a_scorer(venv, tmp_path, start_server, plugin):
    plugin(PLUGIN)
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


def readme_ci_steps() -> dict[str, str]:
    """The README's CI example: each named step's `run:` command, as written there."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("# .github/workflows/eval.yml"):]
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


def test_the_readme_ci_example_works_as_written(venv, tmp_path, start_server, data_dir):
    """Its commands run as written in a fresh checkout with evalkit installed from the wheel (what
    `pip install "evalkit @ git+..."` builds): the baseline is that same command's log, the gate
    passes on the same model run again (the job run twice in one folder keeps one log path), and a
    worse model fails it."""
    steps = readme_ci_steps()
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
    for name, server, gate in (("baseline", good, 0), ("worse", start_server([], default_reply="none"), 1)):
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


# ----------------------------------------------------------------------------- plug-in packages

def test_a_plugin_package_ships_an_eval_a_preset_and_an_exam(venv, tmp_path, start_server, plugin):
    """Through its registry folder (entry point `evalkit.registries`): the eval runs on the
    package's preset with the package's loader and scorer, the exam converts, and the run log's
    header names the plug-in code that loaded and scored."""
    plugin(PLUGIN)
    server = start_server([{"match": "stop", "reply": "pots"}, {"match": "live", "reply": "evil"},
                           {"match": "time", "reply": "time"}])
    env = {"EVALKIT_CACHE_DIR": str(tmp_path / "cache"), "DEMO_BASE_URL": server.url}
    rows = {r["name"]: r for r in map(json.loads, installed(venv, "providers", "--json", cwd=tmp_path).stdout.splitlines())}
    assert (rows["demo"]["title"], rows["demo"]["base_url_env"], rows["demo"]["key_required"]) == \
        ("The demo plug-in's server", "DEMO_BASE_URL", False)
    log = tmp_path / "run.jsonl"
    res = installed(venv, "run", "backwards-words", "--model", "demo/m", "--json", "--log-file", str(log),
                    env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert (s["scored"], s["metrics"]["reversed"]["value"]) == (3, pytest.approx(2 / 3, abs=1e-6))
    assert s["endpoint"] == server.url and s["notes"] == []
    header = json.loads(log.read_text().splitlines()[0])
    assert header["plugins"] == {
        "scorer": {"name": "reverse", "module": "evalkit_plugin_demo.reverse", "package": "evalkit-plugin-demo",
                   "entry_point": "evalkit.scorers:reverse", "replaces": False},
        "loader": {"name": "lines", "module": "evalkit_plugin_demo.lines", "package": "evalkit-plugin-demo",
                   "entry_point": "evalkit.loaders:lines", "replaces": False}}
    assert "spelling-bee" in installed(venv, "exams", cwd=tmp_path).stdout
    res = installed(venv, "percentile", "spelling-bee", "--raw", "words=2", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["percentile"]["text"] == "~50th"
    res = installed(venv, "validate", cwd=tmp_path)
    assert res.returncode == 0 and res.stderr.startswith("ok: 26 spec(s), 25 exam(s) valid"), res.stdout + res.stderr


BROKEN = {
    "pyproject.toml": """\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "evalkit-plugin-broken"
        version = "0.1"

        [project.entry-points."evalkit.scorers"]
        fancy = "evalkit_plugin_broken.fancy"

        [project.entry-points."evalkit.registries"]
        gone = "evalkit_plugin_broken.no_registry_here"

        [tool.setuptools]
        packages = ["evalkit_plugin_broken"]
        """,
    "evalkit_plugin_broken/__init__.py": "",
    "evalkit_plugin_broken/fancy.py": "import evalkit_plugin_broken_needs_this  # not installed\n",
}


def test_a_broken_plugin_is_one_warning_line(venv, tmp_path, plugin, data_dir):
    """A plug-in that cannot be imported was `internal error: ImportError` for validate and
    --dry-run; now each broken entry point is one line naming it and its package, and the rest works."""
    plugin(BROKEN)
    scorer = ("evalkit: warning: plug-in evalkit-plugin-broken (entry point evalkit.scorers:fancy = "
              "evalkit_plugin_broken.fancy) failed to import, skipped: ModuleNotFoundError: "
              "No module named 'evalkit_plugin_broken_needs_this'")
    folder = ("evalkit: warning: plug-in evalkit-plugin-broken (entry point evalkit.registries:gone = "
              "evalkit_plugin_broken.no_registry_here) failed to import, skipped: ModuleNotFoundError: "
              "No module named 'evalkit_plugin_broken.no_registry_here'")
    env = {"EVALKIT_DATA_DIR": str(data_dir), "EVALKIT_CACHE_DIR": str(tmp_path / "cache")}
    res = installed(venv, "validate", str(ROOT / "data" / "examples" / "capitals.yaml"), cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.startswith("evalkit: warning: plug-in")]
    assert warnings == [folder, scorer] and "Traceback" not in res.stderr and "internal error" not in res.stderr
    res = installed(venv, "run", "mmlu.anatomy", "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1",
                    "--dry-run", "--limit", "2", cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert [line for line in res.stderr.splitlines() if "warning: plug-in" in line] == [folder, scorer]


SHADOW = {
    "pyproject.toml": """\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "evalkit-plugin-shadow"
        version = "0.1"

        [project.entry-points."evalkit.scorers"]
        shadow = "evalkit_plugin_shadow.scorers"

        [project.entry-points."evalkit.loaders"]
        jsonl = "evalkit_plugin_shadow.scorers"

        [project.entry-points."evalkit.registries"]
        shadow = "evalkit_plugin_shadow.registry"

        [tool.setuptools]
        packages = ["evalkit_plugin_shadow", "evalkit_plugin_shadow.registry"]

        [tool.setuptools.package-data]
        "evalkit_plugin_shadow.registry" = ["*.yaml"]
        """,
    "evalkit_plugin_shadow/__init__.py": "",
    "evalkit_plugin_shadow/scorers.py": '''\
        """`exact` taken without saying so (refused); `includes` replaced, declared (recorded)."""
        from typing import Literal

        from evalkit.scoring import Score, ScorerOptions, scorer


        class ExactOptions(ScorerOptions):
            method: Literal["exact"]


        class IncludesOptions(ScorerOptions):
            method: Literal["includes"]


        @scorer("exact", ExactOptions)
        def exact(inp):
            return Score(1.0, inp.reply.text)


        @scorer("includes", IncludesOptions, replaces=True)
        def includes(inp):
            return Score(float(inp.reply.text.strip().upper() == inp.sample.answer.upper()), inp.reply.text)
        ''',
    "evalkit_plugin_shadow/registry/__init__.py": "",
    "evalkit_plugin_shadow/registry/providers.yaml": """\
        openai:
          title: Not OpenAI
          base_url: http://127.0.0.1:9/v1
          key_required: false
          docs: https://example.org/not-openai
          capabilities: {max_top_logprobs: null, seed: false, system_messages: true, images: false}
        """,
}


def test_a_shadowing_plugin_is_refused_unless_it_declares_it_replaces(venv, tmp_path, start_server, plugin):
    """Before, a plug-in's `exact` silently replaced the built-in and the log could not tell. Now a
    built-in name taken without `replaces` is refused in one line (the built-in scores), and a
    declared replacement scores and is recorded in the header and the summary's notes."""
    plugin(SHADOW)
    server = start_server([{"match": "France", "reply": "paris"}, {"match": "Japan", "reply": "Tokyo is it"}],
                          default_reply="no idea")
    rows = [json.loads(line) for line in (ROOT / "data" / "examples" / "capitals.jsonl").read_text().splitlines()]
    env = {"EVALKIT_CACHE_DIR": str(tmp_path / "cache")}

    def run(method: str) -> tuple[subprocess.CompletedProcess, dict]:
        spec = tmp_path / f"{method}.yaml"
        spec.write_text((ROOT / "data" / "examples" / "capitals.yaml").read_text().replace(
            "method: includes", f"method: {method}").replace("./capitals.jsonl", str(ROOT / "data" / "examples" / "capitals.jsonl")))
        log = tmp_path / f"{method}.jsonl"
        res = installed(venv, "run", str(spec), "--model", "openai/m", "--base-url", server.url, "--json",
                        "--fail-on-error", "0", "--log-file", str(log), env=env, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        return res, json.loads(log.read_text().splitlines()[0])

    refused = [
        "evalkit: warning: plug-in evalkit-plugin-shadow (entry point evalkit.loaders:jsonl = "
        "evalkit_plugin_shadow.scorers) registers dataset format 'jsonl', a built-in name, without declaring it "
        "replaces it (entry-point name 'jsonl.replaces', or replaces=True); refused",
        "evalkit: warning: plug-in evalkit-plugin-shadow (entry point evalkit.registries:shadow = "
        "evalkit_plugin_shadow.registry) registers provider 'openai', a built-in name, without declaring it "
        "replaces it (entry-point name 'openai.replaces', or replaces=True); refused",
        "evalkit: warning: plug-in evalkit-plugin-shadow (entry point evalkit.scorers:shadow = "
        "evalkit_plugin_shadow.scorers) registers scorer 'exact', a built-in name, without declaring it "
        "replaces it (entry-point name 'exact.replaces', or replaces=True); refused",
    ]
    res, header = run("exact")
    assert sorted(line for line in res.stderr.splitlines() if "warning: plug-in" in line) == refused
    s = json.loads(res.stdout)
    # the built-in exact scored ("paris" is Paris; the plug-in's would have given all five)
    assert s["metrics"]["accuracy"]["value"] == pytest.approx(1 / 5, abs=1e-6) and "plugins" not in header
    assert s["endpoint"] == server.url
    res, header = run("includes")
    s = json.loads(res.stdout)
    right = sum(r["answer"].upper() == "PARIS" for r in rows)           # only "paris" equals its answer
    assert s["metrics"]["accuracy"]["value"] == pytest.approx(right / len(rows), abs=1e-6) and right == 1
    assert header["plugins"] == {"scorer": {"name": "includes", "module": "evalkit_plugin_shadow.scorers",
                                            "package": "evalkit-plugin-shadow",
                                            "entry_point": "evalkit.scorers:shadow", "replaces": True}}
    assert s["notes"] == ["scorer 'includes' is the plug-in evalkit-plugin-shadow's evalkit_plugin_shadow.scorers, "
                          "replacing evalkit's own"]
