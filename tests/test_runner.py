"""Runner at scale through the CLI: retries, give-up, cache, resume after kill -9, cost, concurrency."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import read_jsonl
from evalkit.backends.openai_errors import retry_after_seconds
from evalkit.send.limiter import Limiter
from evalkit.send.runner_types import RunnerOptions


def anatomy_key(data_dir: Path, right: bool = True) -> list[dict]:
    with open(data_dir / "mmlu" / "test" / "anatomy_test.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return [{"match": r[0], "reply": r[5] if right else "ABCD"[("ABCD".index(r[5]) + 1) % 4]} for r in rows]


def run_json(evalkit, *args, code=0, **kw) -> dict:
    res = evalkit("run", *args, "--json", **kw)
    assert res.returncode == code, (res.returncode, res.stderr)
    return json.loads(res.stdout.splitlines()[-1])


def samples_of(summary: dict) -> list[dict]:
    return [r for r in read_jsonl(summary["log"]) if r["type"] == "sample"]


def test_retries_honour_retry_after_and_score_everything(evalkit, start_server, data_dir):
    server = start_server(anatomy_key(data_dir), error_rate=0.3, error_status=429, retry_after=0.3, seed=7)
    s = run_json(evalkit, "mmlu.anatomy", "--model", "openai/m", "--base-url", server.url, "--max-retries", "20")
    stats = server.stats()
    assert s["scored"] == 135 and s["errors"] == 0 and s["metrics"]["accuracy"]["value"] == 1.0
    assert stats["errors"] > 10 and s["requests"]["retries"] == stats["errors"] == s["requests"]["rate_limited"]
    assert s["requests"]["sent"] == stats["requests"] == 135 + stats["errors"]
    assert stats["completions"] == 135                     # every sample answered exactly once
    assert len(stats["retry_gaps"]) == stats["errors"] and min(stats["retry_gaps"]) >= 0.29
    ids = [r["id"] for r in samples_of(s)]
    assert len(ids) == len(set(ids)) == 135


def test_retry_after_header_forms():
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert 28 <= retry_after_seconds({"retry-after": future}) <= 31
    assert retry_after_seconds({"x-ratelimit-reset-requests": "1m30s", "x-ratelimit-reset-tokens": "250ms"}) == 90.0
    assert retry_after_seconds({}) is None
    # what a hostile server may send: nothing that is not a number of seconds becomes a wait
    assert retry_after_seconds({"retry-after": "nan"}) is None
    assert retry_after_seconds({"x-ratelimit-reset-requests": "nan", "x-ratelimit-reset-tokens": "2s"}) == 2.0
    assert retry_after_seconds({"x-ratelimit-reset-tokens": "nan"}) is None
    assert retry_after_seconds({"retry-after": "garbage"}) is None
    assert retry_after_seconds({"retry-after": "Mon, 99 Foo 2026 99:99:99 GMT", "x-ratelimit-reset-tokens": "3s"}) == 3.0
    assert retry_after_seconds({"retry-after": "-5"}) == 0.0 and retry_after_seconds({"retry-after": "inf"}) == math.inf


def test_give_up_after_the_bound_is_an_error_not_a_wrong_answer(evalkit, start_server):
    server = start_server([], error_rate=1.0, error_status=500, retry_after=0)
    args = ["mmlu.anatomy", "--model", "openai/m", "--base-url", server.url, "--max-retries", "2", "--limit", "10"]
    s = run_json(evalkit, *args, code=1)                   # nothing scored: a run CI must not trust
    assert s["errors"] == 10 and s["scored"] == 0 and s["metrics"]["accuracy"]["n"] == 0
    assert s["status"] == "errors" and s["incomplete"]
    assert server.stats()["requests"] == 30                 # 1 try + 2 retries each, then stop
    recs = samples_of(s)
    assert all(r["score"] is None and r["error"].startswith("gave up after 3 attempts: HTTP 500") for r in recs)
    res = evalkit("run", *args, "--fail-on-error", "0.5")
    assert res.returncode == 1 and "no sample was scored (10 errors" in res.stderr


def test_401_is_not_retried(evalkit, start_server):
    server = start_server([], status=401)
    res = evalkit("run", "mmlu.anatomy", "--model", "openai/m", "--base-url", server.url, "--concurrency", "1")
    assert res.returncode == 2 and "HTTP 401" in res.stderr
    assert server.stats()["requests"] == 1


def test_cache_serves_a_rerun_and_no_cache_bypasses_it(evalkit, start_server, data_dir, tmp_path):
    server = start_server(anatomy_key(data_dir))
    base = ["mmlu.anatomy", "--model", "openai/m", "--base-url", server.url]
    first = run_json(evalkit, *base, "--log-dir", str(tmp_path / "a"))
    second = run_json(evalkit, *base, "--log-dir", str(tmp_path / "b"))
    assert first["requests"]["sent"] == 135 and second["requests"]["sent"] == 0
    assert second["requests"]["cached"] == 135 and server.stats()["completions"] == 135
    assert second["metrics"] == first["metrics"]
    assert all(r["cached"] for r in samples_of(second))
    third = run_json(evalkit, *base, "--log-dir", str(tmp_path / "c"), "--no-cache")
    assert third["requests"]["sent"] == 135 and third["requests"]["cached"] == 0
    assert server.stats()["completions"] == 270


def test_resume_after_kill_9(evalkit, start_server, data_dir, tmp_path):
    key = anatomy_key(data_dir)
    for i in range(0, len(key), 3):       # a third answered wrong, so the metric is not trivial
        key[i]["reply"] = "ABCD"[("ABCD".index(key[i]["reply"]) + 1) % 4]
    server = start_server(key, latency=0.05)
    args = ["mmlu.anatomy", "--model", "openai/m", "--base-url", server.url, "--no-cache",
            "--concurrency", "4", "--log-dir", str(tmp_path / "logs")]
    env = {**os.environ, "EVALKIT_DATA_DIR": str(data_dir), "XDG_STATE_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "evalkit", "run", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log_dir = tmp_path / "logs" / "mmlu.anatomy"
    deadline = time.time() + 60
    while time.time() < deadline:
        logs = list(log_dir.glob("*.jsonl")) if log_dir.exists() else []
        if logs and logs[0].read_bytes().count(b"\n") > 40:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = [r for r in read_jsonl_lenient(logs[0]) if r["type"] == "sample"]
    assert 30 < len(killed) < 135
    s = run_json(evalkit, *args)
    hits = server.stats()["hits"]
    by_text = {k["match"]: k for k in key}
    assert s["requests"]["resumed_samples"] == len(killed)
    rows = {f"anatomy/{i}": k["match"] for i, k in enumerate(key)}
    for rec in killed:                                  # a finished sample is never sent again
        assert hits[rows[rec["id"]]] == 1, rec["id"]
    assert sum(hits.values()) <= 135 + 4                # at most the in-flight requests were repeated
    ids = [r["id"] for r in samples_of(s)]
    assert len(ids) == len(set(ids)) == 135
    fresh = run_json(evalkit, *args[:-2], "--log-dir", str(tmp_path / "uninterrupted"))
    assert s["metrics"] == fresh["metrics"] and s["groups"] == fresh["groups"]
    assert len(by_text) == 135


def read_jsonl_lenient(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n")[:-1]]


def test_ctrl_c_leaves_a_partial_summary(evalkit, start_server, data_dir, tmp_path):
    server = start_server(anatomy_key(data_dir), latency=0.1)
    env = {**os.environ, "EVALKIT_DATA_DIR": str(data_dir), "EVALKIT_CACHE_DIR": str(tmp_path / "c")}
    proc = subprocess.Popen([sys.executable, "-m", "evalkit", "run", "mmlu.anatomy", "--model", "openai/m",
                             "--base-url", server.url, "--concurrency", "2", "--json", "--log-dir", str(tmp_path / "l")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # as from a terminal: a shell's background job (a CI script run with &) starts
                            # with SIGINT ignored, and Python keeps it ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while server.stats().get("completions", 0) < 10 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "run the same command to resume" in err
    summary = json.loads(out)
    assert summary["incomplete"] and summary["status"] == "interrupted" and 10 <= summary["scored"] < 135
    last = read_jsonl(summary["log"])[-1]
    assert last["type"] == "summary" and last["incomplete"]
    # and the same command finishes the job
    done = run_json(evalkit, "mmlu.anatomy", "--model", "openai/m", "--base-url", server.url, "--concurrency", "2",
                    "--log-dir", str(tmp_path / "l"), env={"EVALKIT_CACHE_DIR": str(tmp_path / "c")})
    assert done["scored"] == 135 and not done["incomplete"] and done["metrics"]["accuracy"]["value"] == 1.0


def test_max_cost_stops_before_spending_more(evalkit, start_server, data_dir):
    server = start_server(anatomy_key(data_dir))
    res = evalkit("run", "mmlu.anatomy", "--model", "openai/gpt-4o-mini", "--base-url", server.url,
                  "--max-cost", "0.001", "--concurrency", "4", "--json")
    assert res.returncode == 1 and "stopped before exceeding --max-cost 0.001" in res.stderr
    s = json.loads(res.stdout)
    assert s["incomplete"] and s["status"] == "stopped: max_cost"
    assert 0 < s["cost_usd"]["this_run"] <= 0.001
    assert 5 < s["scored"] < 135 and server.stats()["completions"] == s["scored"]
    u = s["usage"]
    assert s["cost_usd"]["this_run"] == pytest.approx((u["prompt_tokens"] * 0.15 + u["completion_tokens"] * 0.60) / 1e6)


def test_max_cost_needs_a_price(evalkit):
    res = evalkit("run", "mmlu.anatomy", "--model", "openai/my-local-model", "--base-url", "http://127.0.0.1:9/v1",
                  "--max-cost", "1")
    assert res.returncode == 2 and "no price is known for openai/my-local-model" in res.stderr


def test_dry_run_counts_prompt_tokens_and_cost_without_sending(evalkit, start_server, data_dir, tmp_path):
    server = start_server(anatomy_key(data_dir))
    res = evalkit("run", "mmlu.anatomy", "--model", "openai/gpt-4o-mini", "--base-url", server.url, "--dry-run", "--json")
    assert res.returncode == 0, res.stderr
    plan = json.loads(res.stdout)
    assert server.stats().get("requests", 0) == 0
    assert plan["samples"] == 135 and plan["max_completion_tokens"] == 135 * 32
    # The same prompts, as sent by a real run, counted independently of evalkit's counter.
    s = run_json(evalkit, "mmlu.anatomy", "--model", "openai/gpt-4o-mini", "--base-url", server.url, "--log-prompts")
    if plan["tokenizer"].startswith("tiktoken"):
        import tiktoken

        enc = tiktoken.get_encoding(plan["tokenizer"].split()[-1])
        count = lambda text: len(enc.encode(text))  # noqa: E731
    else:
        assert "chars/4" in plan["tokenizer"]
        count = lambda text: (len(text) + 3) // 4  # noqa: E731
    expected = sum(3 + sum(3 + count(m["content"]) for m in r["messages"]) for r in samples_of(s))
    assert plan["prompt_tokens"] == expected
    assert plan["estimated_cost_usd"]["prompt"] == pytest.approx(expected * 0.15 / 1e6)
    assert plan["estimated_cost_usd"]["worst_case"] == pytest.approx((expected * 0.15 + 135 * 32 * 0.60) / 1e6)
    assert plan["prices"]["recorded"] and plan["prices"]["source"].startswith("https://")
    human = evalkit("run", "mmlu.anatomy", "--model", "openai/gpt-4o-mini", "--dry-run")
    assert "dry run: nothing sent" in human.stdout and "samples 135" in human.stdout


def test_two_runs_at_once_share_the_cache_safely(evalkit, start_server, data_dir, tmp_path):
    server = start_server([], default_reply="B")
    env = {**os.environ, "EVALKIT_DATA_DIR": str(data_dir), "EVALKIT_CACHE_DIR": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-m", "evalkit", "run", name, "--model", "openai/m", "--base-url",
                               server.url, "--json", "--log-dir", str(tmp_path / "logs")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("mmlu.professional_law", "mmlu.moral_scenarios")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    sums = [json.loads(o) for o, _ in outs]
    assert [s["scored"] for s in sums] == [1534, 895]
    for s in sums:
        recs = read_jsonl(s["log"])
        assert recs[0]["type"] == "header" and recs[-1]["type"] == "summary"
        assert len({r["id"] for r in recs[1:-1]}) == len(recs) - 2
    again = [run_json(evalkit, name, "--model", "openai/m", "--base-url", server.url, "--log-dir", str(tmp_path / "x"),
                      env={"EVALKIT_CACHE_DIR": str(tmp_path / "cache")})
             for name in ("mmlu.professional_law", "mmlu.moral_scenarios")]
    assert [a["requests"]["cached"] for a in again] == [1534, 895]
    assert [a["requests"]["sent"] for a in again] == [0, 0]


def test_same_command_twice_at_once_is_refused(evalkit, start_server, data_dir, tmp_path):
    server = start_server([], default_reply="B", latency=0.2)
    env = {**os.environ, "EVALKIT_DATA_DIR": str(data_dir), "EVALKIT_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "evalkit", "run", "mmlu.anatomy", "--model", "openai/m", "--base-url", server.url,
           "--concurrency", "2", "--log-dir", str(tmp_path / "logs")]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while server.stats().get("requests", 0) == 0:
        time.sleep(0.05)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2 and "being written by another evalkit run" in second.stderr
    first.kill()
    first.wait()


def test_adaptive_limiter_follows_latency():
    import math

    lim = Limiter(RunnerOptions(start_concurrency=8, max_concurrency=128, cut_interval=0.0, pressure_window=10))
    assert lim.adaptive and lim.limit == 8 and lim.slow_start
    lim.success(1.0)
    assert lim.limit == 8 and lim.base == 1.0             # the first reply sets the floor
    for _ in range(8):
        lim.success(1.0)
    assert lim.limit == 32                                # slow start: +3 a reply at the floor latency
    lim.success(1.4)
    assert lim.limit == 35 and lim.slow_start             # within 1.5 x the floor: still no queue
    lim.success(2.0)
    assert lim.limit == 35 and lim.slow_start             # one slow reply: maybe a long prompt
    lim.success(2.0)
    assert lim.limit == 35 and not lim.slow_start         # two in a row: a queue; slow start ends
    for _ in range(34):
        lim.success(3.0)
    assert lim.limit == 18.5                              # a window at 3 x the floor: x 0.5, + 1
    for _ in range(18):
        lim.success(1.2)
    assert lim.limit == pytest.approx(18.5 + math.sqrt(18.5)) and not lim.slow_start   # near the floor: + sqrt
    for _ in range(22):
        lim.success(1.05)
    assert lim.slow_start                                 # at the floor again: room, slow start again
    again = lim.limit
    for _ in range(10):                                   # +3 each would pass twice the limit
        lim.success(1.0)
    assert lim.limit == 2 * again and not lim.slow_start  # but only up to twice where it began: then by gradient
    for _ in range(int(lim.limit)):
        lim.success(1.0)
    assert lim.slow_start                                 # a window at the floor: room, slow start once more
    before = lim.limit
    lim.timed_out()
    assert lim.limit == before / 2 and not lim.slow_start  # a timeout is congestion
    lim = Limiter(RunnerOptions(start_concurrency=32, max_concurrency=40, cut_interval=0.0, pressure_window=10))
    for _ in range(8):
        lim.success(1.0)
    assert lim.limit == 40                                # never above the maximum
    lim.rate_limited()
    lim.rate_limited()
    assert lim.limit == 40                                # a stray 429 or two among 10 responses: no cut
    lim.rate_limited()
    assert lim.limit == 20                                # sustained pressure (3 of 10): halved
    for _ in range(10):
        lim.rate_limited()
    assert lim.limit == 1.0                               # never below one
    for _ in range(10_000):
        lim.success(1.0)
    assert lim.limit == 40                                # the floor latency again: back to the maximum
    fixed = Limiter(RunnerOptions(concurrency=8))
    fixed.rate_limited()
    fixed.timed_out()
    fixed.success(5.0)
    assert not fixed.adaptive and fixed.limit == 8
    slow = Limiter(RunnerOptions(start_concurrency=32, cut_interval=60, pressure_window=4))
    for _ in range(4):
        slow.rate_limited()
    assert slow.limit == 16                               # one burst of 429s is one signal


def test_rate_limits_shrink_the_window_through_the_cli(evalkit, start_server, data_dir):
    server = start_server(anatomy_key(data_dir), error_rate=0.5, error_status=429, retry_after=0.05, latency=0.02)
    s = run_json(evalkit, "mmlu.anatomy", "--model", "openai/m", "--base-url", server.url, "--max-retries", "30")
    assert s["scored"] == 135 and s["requests"]["rate_limited"] > 20
    assert s["requests"]["peak_concurrency"] <= 32
