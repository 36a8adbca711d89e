"""The server's own words: whatever shape an error body has (OpenAI's, llama.cpp's, vLLM's,
Ollama's, FastAPI's, plain text, a web page), its message is on stderr and in the log, on one
line; the same refusal of a run's first requests stops the run; a run that ends with errors
names the most common one. Each case drives the real CLI against the test server's
`--status N --error-shape SHAPE --error-message TEXT`."""

from __future__ import annotations

import json
import threading
import time

import pytest

from conftest import read_jsonl
from test_robustness import quiz

REFUSAL = "model 'm' is not served here (try 'gemma-3-270m')"


def stderr_errors(res) -> list[str]:
    return [line for line in res.stderr.splitlines() if line.startswith("evalkit: error: ")]


@pytest.mark.parametrize("shape, says", [
    ("openai", REFUSAL), ("llamacpp", REFUSAL), ("vllm", REFUSAL), ("ollama", REFUSAL), ("fastapi", REFUSAL),
    ("pydantic", f"body.model: {REFUSAL}"), ("text", REFUSAL), ("html", f"400 {REFUSAL}"),
])
def test_a_refusal_of_every_shape_is_shown_and_stops_the_run(evalkit, start_server, tmp_path, shape, says):
    spec, key = quiz(tmp_path, 30)
    server = start_server(key, status=400, error_shape=shape, error_message=REFUSAL)
    log = tmp_path / "run.jsonl"
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--log-file", str(log))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    [line] = stderr_errors(res)
    assert line.startswith(f"evalkit: error: quiz: HTTP 400: {says} (the server refused the first 3 requests alike")
    assert server.stats()["requests"] <= 12                       # the first wave (8) and a few, not all 30
    samples = [r for r in read_jsonl(log) if r["type"] == "sample"]
    assert samples and all(r["error"] == f"HTTP 400: {says}" for r in samples)
    assert read_jsonl(log)[-1]["status"] == "failed"


def test_a_hostile_error_body_is_one_short_line(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 4)
    hostile = "first line\nsecond \x1b[31mred\x1b[0m line\r\n\t" + "x" * 100_000
    server = start_server(key, status=422, error_shape="text", error_message=hostile)
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    [line] = stderr_errors(res)
    assert "HTTP 422: first line second [31mred [0m line xxx" in line and "\x1b" not in line
    assert len(line) < 600 and "..." in line


def test_a_refusal_after_answers_is_each_samples_error_and_the_commonest_is_named(evalkit, start_server, tmp_path):
    """The server answered the first two: the 400s that follow are the samples' own (the run goes
    on, nothing stops early), and stderr names the commonest error with its count."""
    spec, key = quiz(tmp_path, 6)
    server = start_server(key, status=400, fail_after=2, error_shape="fastapi", error_message="prompt too long")
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--concurrency", "1")
    assert res.returncode == 1 and server.stats()["requests"] == 6
    assert "quiz: 4 of 6 samples ended in errors; most common (4): HTTP 400: prompt too long, more than " \
           "--fail-on-error 0" in res.stderr
    server = start_server(key, status=400, fail_after=2, error_shape="fastapi", error_message="prompt too long")
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--concurrency", "1",
                  "--fail-on-error", "4", "--log-dir", str(tmp_path / "again"), "--no-cache")
    assert res.returncode == 0, res.stderr                        # within --fail-on-error: a warning that says why
    assert "evalkit: warning: quiz: 4 of 6 samples ended in errors; most common (4): HTTP 400: prompt too long" \
        in res.stderr


def test_an_all_error_run_names_its_error(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 5)
    server = start_server(key, status=503, error_shape="ollama", error_message="model is loading")
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--max-retries", "0")
    assert res.returncode == 1 and server.stats()["requests"] == 5
    assert "quiz: no sample was scored (5 errors; most common (5): gave up after 1 attempts: HTTP 503: model is " \
           "loading; see the log" in res.stderr


def test_a_server_that_dies_mid_run_says_why_on_stderr(evalkit_process, start_server, tmp_path):
    spec, key = quiz(tmp_path, 40)
    server = start_server(key, latency=0.05)
    done: list = []
    run = threading.Thread(target=lambda: done.append(evalkit_process(
        "run", str(spec), "--model", "openai/m", "--base-url", server.url, "--concurrency", "2", "--max-retries", "1",
        "--no-cache", "--json")))
    run.start()
    deadline = time.monotonic() + 60
    while server.stats().get("completions", 0) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.stop()
    run.join(120)
    res = done[0]
    assert res.returncode == 1 and "Traceback" not in res.stderr
    s = json.loads(res.stdout)
    assert 5 <= s["scored"] < 40 and s["errors"] == 40 - s["scored"]
    assert f"gave up after 2 attempts: cannot connect to {server.url}" in res.stderr
