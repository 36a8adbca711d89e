"""The generic registry (evalkit.core.plugins): plug-in packages built as wheels and installed
beside evalkit's wheel in a fresh virtualenv (a scorer, a format, a preset, an eval and an exam;
a broken plug-in; a shadowing one), registry folders read by kind, and the stage order."""

from __future__ import annotations

import ast
import json
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, one_line_error
from wheel_venv import build_venv, install_plugin, installed, pip

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
        from evalkit.loaders.fields import samples_from_records


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
    return build_venv(tmp_path_factory.mktemp("install"))


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


# ----------------------------------------------------------------------------- without installing


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
