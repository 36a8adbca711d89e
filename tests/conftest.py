"""Shared fixtures: the real benchmark data, a real OpenAI-compatible server, the real CLI.

Nothing here mocks the client: every test that runs an eval starts `evalkit.testserver` in its own
process on 127.0.0.1 and runs the real CLI against it through the real `openai` client: in-process
with click's runner (the `evalkit` fixture), or as a real process where that is what is tested.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """../shared/data beside the checkout (or $EVALKIT_DATA_DIR). Missing data fails, never skips."""
    path = Path(os.environ.get("EVALKIT_DATA_DIR") or ROOT.parent / "shared" / "data").resolve()
    assert (path / "mmlu" / "test").is_dir(), f"benchmark data not found at {path}: set EVALKIT_DATA_DIR"
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return shared_data_dir()


class TestServer:
    def __init__(self, proc: subprocess.Popen, url: str):
        self.proc, self.url = proc, url

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/stats", timeout=10) as resp:
            return json.load(resp)

    def requests(self) -> list[dict]:
        """The requests the server received (method, path, headers, body), oldest first."""
        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/requests", timeout=10) as resp:
            return json.load(resp)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def start_server(tmp_path):
    """start_server(answers=[{match, reply}], **flags) -> TestServer on a free port."""
    started: list[TestServer] = []

    def start(answers: list[dict] | None = None, **flags) -> TestServer:
        cmd = [sys.executable, "-m", "evalkit.testserver", "--port", "0"]
        if answers is not None:
            key = tmp_path / f"answers{len(started)}.jsonl"
            key.write_text("".join(json.dumps(a) + "\n" for a in answers), encoding="utf-8")
            cmd += ["--answers", str(key)]
        for k, v in flags.items():
            flag = "--" + k.replace("_", "-")
            for value in v if isinstance(v, list) else [v]:
                cmd += [flag] if value is True else [flag, str(value)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        assert line.startswith("listening on "), f"test server did not start: {line!r} {proc.stderr.read()}"
        server = TestServer(proc, line.split()[-1])
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()


@dataclass
class Result:
    """What a run of the CLI gave: exit code, stdout, stderr (as subprocess.CompletedProcess has)."""

    returncode: int
    stdout: str
    stderr: str


def cli_env(tmp_path: Path, data_dir: Path, env: dict | None) -> dict:
    """The environment of a CLI call: isolated cache and logs, the shared data, no key or base URL."""
    full = {"EVALKIT_DATA_DIR": str(data_dir), "EVALKIT_CACHE_DIR": str(tmp_path / "cache"),
            "XDG_STATE_HOME": str(tmp_path / "state"), "OPENAI_BASE_URL": None, "OPENAI_API_KEY": None}
    full.update(env or {})
    return full


@pytest.fixture
def evalkit(tmp_path, data_dir):
    """evalkit(*args, env=None) -> Result of the real CLI, run in-process (click's runner) with an
    isolated cache and log folder, from tmp_path. Tests of signals, kill -9, locks and the installed
    entry point start a real process instead (`evalkit_process`)."""
    from click.testing import CliRunner

    from evalkit.cli.main import cli

    def run(*args: str, env: dict | None = None, timeout: float = 900) -> Result:
        with contextlib.chdir(tmp_path):
            res = CliRunner().invoke(cli, list(args), env=cli_env(tmp_path, data_dir, env), catch_exceptions=True)
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception            # a bug in the CLI itself: show it, do not hide it in a result
        return Result(res.exit_code, res.stdout, res.stderr)
    return run


@pytest.fixture
def evalkit_process(tmp_path, data_dir):
    """evalkit_process(*args, env=None) -> CompletedProcess of `python -m evalkit` in its own process."""
    def run(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
        wanted = cli_env(tmp_path, data_dir, env)
        full = {k: v for k, v in {**os.environ, **wanted}.items() if v is not None}
        return subprocess.run([sys.executable, "-m", "evalkit", *args], capture_output=True, text=True,
                              env=full, timeout=timeout, cwd=tmp_path)
    return run


def read_jsonl(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def identifiable(needles: list[str], texts: list[str]) -> set[str]:
    """The needles a test server can tell apart: each occurs in exactly one of `texts`.

    `texts` are all the texts any prompt of the eval can contain (questions, options, passages,
    few-shot examples), with repeats: two items with the same question are two texts. A needle
    found in two texts could be matched in the wrong prompt, so a test leaves it out of the answer
    key and expects the server's default reply there.
    """
    import ahocorasick

    auto = ahocorasick.Automaton()
    for n in set(needles):
        auto.add_word(n, n)
    auto.make_automaton()
    counts: dict[str, int] = {}
    for t in texts:
        for found in {n for _, n in auto.iter(t)}:
            counts[found] = counts.get(found, 0) + 1
    return {n for n in needles if counts.get(n) == 1}


def fake_key(prefix: str = "sk-proj-") -> str:
    """A key-shaped value made fresh for each test run: no line of the tests holds one."""
    return prefix + secrets.token_hex(16)


def one_line_error(res, code: int = 2) -> str:
    """The single `evalkit: error:` line of a failed command (and no traceback)."""
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evalkit: error: "), res.stderr
    return lines[0]



def shapes_eval(tmp_path: Path, rows: list[dict]) -> Path:
    """shapes.yaml: a multiple-choice eval (letters A/B) over `rows` of items.jsonl, whose `img`
    field names each item's image(s)."""
    import yaml

    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = tmp_path / "shapes.yaml"
    spec.write_text(yaml.safe_dump({"shapes": {
        "template": "multiple_choice",
        "dataset": {"format": "jsonl", "path": "./items.jsonl", "split": "test",
                    "fields": {"id": "id", "question": "question", "choices": "choices", "answer": "answer",
                               "images": "img"}},
        "prompt": {"template": "{question}\n{choices}\nAnswer:"},
        "scoring": {"method": "letter", "labels": "AB"}}}))
    return spec


UNIT = ROOT / "tests" / "unit"
NOT_IN_UNIT = {"start_server", "evalkit_process", "venv"}    # a server, a process of evalkit, an install


def pytest_configure(config):
    # registered here, not in pyproject.toml: a changed pyproject.toml makes scripts/setup reinstall
    config.addinivalue_line("markers", "unit: tests/unit, the fast tier: no server, no model, no evalkit process")


def pytest_collection_modifyitems(config, items):
    """tests/unit is the fast tier (`scripts/test --fast`): no server, no model, no evalkit process.
    A test there asking for a fixture that starts one is refused at collection, not run slowly."""
    for item in items:
        if UNIT in Path(item.path).parents:
            item.add_marker(pytest.mark.unit)
            wrong = NOT_IN_UNIT & set(getattr(item, "fixturenames", ()))
            if wrong:
                raise pytest.UsageError(f"{item.nodeid}: a tests/unit test may not use {', '.join(sorted(wrong))} "
                                        "(move it to tests/)")
