"""A hostile server and a careless user: one bad reply never stops a run, nothing is lost silently,
and every bad input gets one clear line. Each case drives the real CLI against the real test
server, which injects the fault (`--fault KIND=RATE`, see evalkit.testserver)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import fake_key, one_line_error, read_jsonl

QUIZ = """\
quiz:
  template: multiple_choice
  dataset: {format: jsonl, path: ./quiz.jsonl, fields: {id: id, question: q, choices: options, answer: a}}
  prompt: {template: "{question}\\n{choices}\\nAnswer:"}
"""


def quiz(tmp_path: Path, n: int) -> tuple[Path, list[dict]]:
    """An n-question eval whose every question the test server answers right."""
    rows = [{"id": f"q{i}", "q": f"Question number {i}?", "options": ["w", "x", "y", "z"], "a": "ABCD"[i % 4]}
            for i in range(n)]
    (tmp_path / "quiz.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "quiz.yaml").write_text(QUIZ)
    return tmp_path / "quiz.yaml", [{"match": r["q"] + "\n", "reply": r["a"]} for r in rows]


def run_json(evalkit, *args, code=0, **kw) -> dict:
    res = evalkit("run", *args, "--json", **kw)
    assert res.returncode == code, (res.returncode, res.stderr)
    return json.loads(res.stdout.splitlines()[0])


def samples(summary: dict) -> list[dict]:
    return [r for r in read_jsonl(summary["log"]) if r["type"] == "sample"]


# ----------------------------------------------------------------------------- a run dies or lies

def test_a_lone_surrogate_is_recorded_and_the_run_goes_on(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 12)
    server = start_server(key, fault="surrogate=0.5", seed=3)
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url)
    recs = samples(s)
    assert s["scored"] == len(recs) == 12 and s["metrics"]["accuracy"]["value"] == 1.0
    bad = [r for r in recs if r["completion"].endswith("\ud800")]
    assert len(bad) == server.stats()["fault_surrogate"] > 0          # kept exactly, not lost
    again = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url, "--fresh")
    assert again["requests"]["cached"] == 12 and again["metrics"] == s["metrics"]   # the cache replays them


def test_html_bodies_and_resets_are_retried_not_fatal(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 60)
    server = start_server(key, fault=["html=0.1", "reset=0.1"], seed=1)
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url)
    stats = server.stats()
    assert stats["fault_html"] > 0 and stats["fault_reset"] > 0
    assert s["scored"] == 60 and s["errors"] == 0 and s["metrics"]["accuracy"]["value"] == 1.0
    assert s["requests"]["retries"] == stats["errors"] and s["requests"]["sent"] == stats["requests"]


def test_null_content_is_an_error_not_a_wrong_answer(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 4)
    server = start_server(key, fault="null=1.0")
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url, code=1)
    assert s["scored"] == 0 and s["errors"] == 4 and s["status"] == "errors"
    assert all(r["error"] == "the reply has no content (message.content is null)" for r in samples(s))


def test_an_all_error_run_exits_1_and_says_incomplete(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 5)
    server = start_server(key, status=500)
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--max-retries", "0")
    assert res.returncode == 1
    assert "[INCOMPLETE: 5 samples errored; rerun the same command to retry them]" in res.stdout
    assert "quiz: no sample was scored (5 errors" in res.stderr


def test_the_gate_fails_when_new_lacks_samples(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 40)
    server = start_server(key)
    base = run_json(evalkit, str(spec), "--model", "openai/base", "--base-url", server.url)
    new = run_json(evalkit, str(spec), "--model", "openai/new", "--base-url", server.url, "--limit", "10")
    res = evalkit("compare", base["log"], new["log"])
    assert res.returncode == 1 and "NEW lacks 30 of the 40 samples BASE scored" in res.stdout
    assert evalkit("compare", base["log"], new["log"], "--allow-missing").returncode == 0


# ----------------------------------------------------------------------------- hangs and unbounded resources

def test_timeout_bounds_the_whole_request(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 2)
    server = start_server(key, fault="trickle=1.0", trickle_interval=1.0)
    started = time.monotonic()
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url, "--timeout", "3",
                 "--max-retries", "0", code=1)
    assert time.monotonic() - started < 20                   # the replies would take minutes byte by byte
    assert all(r["error"].startswith("gave up after 1 attempts: no complete reply within --timeout 3s")
               for r in samples(s))


def test_retry_after_is_capped(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 3)
    server = start_server(key, error_rate=1.0, error_status=429, retry_after=100_000_000)
    started = time.monotonic()
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url, code=1)
    assert time.monotonic() - started < 30
    assert all("asked to retry after 100,000,000s, more than --max-retry-after 600s" in r["error"] for r in samples(s))


@pytest.mark.parametrize("header", ["garbage", "nan", "Mon, 99 Foo 2026 99:99:99 GMT", "-3"])
def test_a_retry_after_that_is_no_wait_is_backoff(evalkit, start_server, tmp_path, header):
    """429s whose Retry-After is not a number of seconds: the runner backs off by itself, retries,
    and every sample ends as an error naming the 429, never an internal error."""
    spec, key = quiz(tmp_path, 3)
    server = start_server(key, error_rate=1.0, error_status=429, retry_after=header)
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url, "--max-retries", "1", code=1)
    assert s["errors"] == 3 and server.stats()["requests"] == 6
    assert all(r["error"].startswith("gave up after 2 attempts: HTTP 429") for r in samples(s)), samples(s)


def test_a_huge_reply_is_an_error_and_stays_out_of_log_and_cache(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 6)
    server = start_server(key, fault="huge=1.0", huge_bytes=3_000_000)
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url, code=1)
    assert all(r["error"].startswith("the reply is larger than --max-reply-bytes") for r in samples(s))
    assert Path(s["log"]).stat().st_size < 20_000
    cache = tmp_path / "cache" / "completions.sqlite"
    assert not cache.exists() or cache.stat().st_size < 200_000


@pytest.mark.parametrize("flags, message", [
    (["--samples", "1e20"], "--samples"),
    (["--temperature", "nan"], "--temperature"),
    (["--timeout", "nan"], "--timeout"),
    (["--seed", "-1"], "--seed"),
    (["--fail-on-error", "nan"], "--fail-on-error"),
    (["--exclude", "/dev/zero"], "--exclude /dev/zero: not a regular file"),
])
def test_absurd_flags_are_one_line(evalkit, tmp_path, flags, message):
    spec, _ = quiz(tmp_path, 2)
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1", *flags)
    assert res.returncode == 2 and "Traceback" not in res.stderr and message in res.stderr, res.stderr


def test_yaml_bombs_are_refused_quickly(evalkit, tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")))
    started = time.monotonic()
    res = evalkit("validate", str(bomb))
    assert res.returncode == 1 and "aliases expand to" in res.stdout and time.monotonic() - started < 5
    loop = tmp_path / "loop.yaml"
    loop.write_text("a: &x\n  b: *x\n")
    res = evalkit("validate", str(loop))
    assert res.returncode == 1 and f"{loop}:1: an alias refers to a value that contains it" in res.stdout


def test_long_replies_are_read_in_linear_time(evalkit, start_server, tmp_path):
    """Replies built to make backtracking regexes explode: each is scored (unparsed), quickly."""
    spec, _ = quiz(tmp_path, 4)
    replies = ["answer" + " " * 40_000 + "x", "answer:" + "\n" * 40_000, "A" + " " * 40_000 + "a",
               "The answer is " * 8_000]
    server = start_server([{"match": f"Question number {i}?", "reply": r} for i, r in enumerate(replies)])
    started = time.monotonic()
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url, code=1)   # all unread: exit 1
    assert time.monotonic() - started < 30 and s["scored"] == 4 and s["unparsed"] == 4


# ----------------------------------------------------------------------------- input files

@pytest.mark.parametrize("content, message", [
    ('id,q,a\n1,"What is 2+2?,4\n2,Capital?,Paris\n', "quiz.csv:2: unterminated quoted field"),
    ("id,q,a\n1,What is 2+2?\n", "quiz.csv:2: 2 fields, the header has 3"),
])
def test_broken_csv_rows_are_one_line(evalkit, tmp_path, content, message):
    (tmp_path / "quiz.csv").write_text(content)
    (tmp_path / "q.yaml").write_text("q:\n  dataset: {format: csv, path: ./quiz.csv, fields: {id: id, question: q, "
                                     "answer: a}}\n  scoring: {method: exact}\n")
    msg = one_line_error(evalkit("run", str(tmp_path / "q.yaml"), "--model", "openai/m",
                                 "--base-url", "http://127.0.0.1:9/v1"))
    assert message in msg


def test_a_null_answer_is_refused_not_read_as_none(evalkit, tmp_path):
    (tmp_path / "n.jsonl").write_text('{"id": "1", "question": "q", "answer": null}\n')
    (tmp_path / "n.yaml").write_text("n:\n  dataset: {format: jsonl, path: ./n.jsonl}\n  scoring: {method: exact}\n")
    msg = one_line_error(evalkit("run", str(tmp_path / "n.yaml"), "--model", "openai/m",
                                 "--base-url", "http://127.0.0.1:9/v1"))
    assert "n.jsonl:1: field 'answer' is null" in msg


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_a_data_file_that_is_not_utf8_is_one_line(evalkit, tmp_path, encoding):
    (tmp_path / "e.jsonl").write_bytes('{"id": "1", "question": "Café?", "answer": "é"}\n'.encode(encoding))
    (tmp_path / "e.yaml").write_text("e:\n  dataset: {format: jsonl, path: ./e.jsonl}\n  scoring: {method: exact}\n")
    msg = one_line_error(evalkit("run", str(tmp_path / "e.yaml"), "--model", "openai/m",
                                 "--base-url", "http://127.0.0.1:9/v1"))
    assert "e.jsonl" in msg and "not UTF-8" in msg


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_line_ending_is_a_line(evalkit, start_server, tmp_path, newline):
    rows = [{"id": str(i), "question": f"Riddle {i}: \u559c?", "answer": "\u559c"} for i in range(3)]
    (tmp_path / "r.jsonl").write_bytes(newline.join(json.dumps(r, ensure_ascii=False) for r in rows).encode())
    (tmp_path / "r.yaml").write_text("r:\n  dataset: {format: jsonl, path: ./r.jsonl}\n  scoring: {method: exact}\n")
    server = start_server([], default_reply="\u559c")
    s = run_json(evalkit, str(tmp_path / "r.yaml"), "--model", "openai/m", "--base-url", server.url)
    assert (s["scored"], s["metrics"]["accuracy"]["value"]) == (3, 1.0)
    (tmp_path / "r.jsonl").write_bytes(newline.join(['{"id": "1", "question": "q", "answer": "a"}', "{oops"]).encode())
    msg = one_line_error(evalkit("run", str(tmp_path / "r.yaml"), "--model", "openai/m", "--base-url", server.url))
    assert "r.jsonl:2: not valid JSON" in msg


def test_an_empty_spec_file_is_an_error(evalkit, tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    assert "empty.yaml:1: the file is empty" in one_line_error(evalkit("run", str(tmp_path / "empty.yaml"),
                                                                     "--model", "openai/m"))


def test_log_dir_that_cannot_hold_logs(evalkit, tmp_path):
    spec, _ = quiz(tmp_path, 2)
    (tmp_path / "file").write_text("x")
    args = ["run", str(spec), "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1"]
    assert "exists and is not a folder" in one_line_error(evalkit(*args, "--log-dir", str(tmp_path / "file")))
    assert "cannot create it" in one_line_error(evalkit(*args, "--log-dir", str(tmp_path / "file" / "sub")))


def test_a_full_disk_stops_the_run_with_one_line(evalkit_process, start_server, tmp_path):
    """The log folder is a 256 KiB tmpfs (in a private mount namespace): the run stops when it fills,
    says so in one line, and keeps what it wrote."""
    spec, key = quiz(tmp_path, 400)
    server = start_server([{**k, "reply": k["reply"] + " " * 2000} for k in key])
    small = tmp_path / "small"
    small.mkdir()
    cmd = (f"mount -t tmpfs -o size=256k tmpfs {small} && {sys.executable} -m evalkit run {spec} --model openai/m "
           f"--base-url {server.url} --log-dir {small} --concurrency 4 --json; echo rc=$?; tail -c 200 {small}/*/*")
    env = {**os.environ, "EVALKIT_CACHE_DIR": str(tmp_path / "cache"), "EVALKIT_DATA_DIR": "/nonexistent"}
    res = subprocess.run(["unshare", "-m", "sh", "-c", cmd], capture_output=True, text=True, env=env, timeout=300)
    assert "rc=2" in res.stdout and "Traceback" not in res.stderr, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("evalkit: error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "rerun to resume" in errors[0]


def test_malformed_logs_for_report_and_compare(evalkit, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "header", "eval": "x"}\n[1, 2]\n')
    assert f"{bad}:2: not a run-log line" in one_line_error(evalkit("report", str(bad)))
    assert f"{bad}:2: not a run-log line" in one_line_error(evalkit("compare", str(bad), str(bad)))
    plain = tmp_path / "plain.jsonl"
    plain.write_text("hello\n")
    assert f"{plain}:1: not a run-log line" in one_line_error(evalkit("report", str(plain)))


def test_grader_model_without_a_graded_eval(evalkit, tmp_path):
    spec, _ = quiz(tmp_path, 2)
    msg = one_line_error(evalkit("run", str(spec), "--model", "openai/m", "--grader-model", "openai/g"))
    assert "--grader-model: none of these evals is model-graded" in msg


def test_absurd_usage_is_not_summed(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 4)
    server = start_server(key, fault="badusage=1.0")
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url)
    assert s["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0, "cached_tokens": 0,
                          "invalid": 4}


def test_a_reset_connection_is_not_reported_as_a_dead_server(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 3)
    server = start_server(key, fault="reset=1.0")
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url, "--max-retries", "1", code=1)
    assert all("is the server running" not in r["error"] and "connection" in r["error"] for r in samples(s))


def test_an_echoed_key_never_reaches_log_or_terminal(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 3)
    secret = fake_key()
    server = start_server(key, fault="echo=1.0")
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--json",
                  env={"OPENAI_API_KEY": secret})
    assert res.returncode == 2                       # three requests refused alike, none answered: stopped
    assert secret in json.dumps(server.requests()[0]["headers"])            # the server did get it ...
    logs = list((tmp_path / "state").rglob("*.jsonl"))
    assert logs and all(secret not in p.read_text() for p in logs)          # ... and echoed it, redacted here
    assert secret not in res.stdout + res.stderr and "[REDACTED]" in logs[0].read_text()
    assert "HTTP 400: bad request; headers were" in res.stderr and "[REDACTED]" in res.stderr


# ----------------------------------------------------------------------------- work thrown away or miscounted

def test_ctrl_c_waits_for_the_replies_in_flight(evalkit_process, start_server, tmp_path, data_dir):
    """SIGINT: no new requests, the ones in flight are logged, the summary counts what was sent,
    and the resumed run sends exactly the rest: no answered request is paid for twice."""
    spec, key = quiz(tmp_path, 200)
    server = start_server(key, latency=1.0)
    env = {**os.environ, "EVALKIT_CACHE_DIR": str(tmp_path / "cache"), "EVALKIT_DATA_DIR": str(data_dir)}
    cmd = [sys.executable, "-m", "evalkit", "run", str(spec), "--model", "openai/m", "--base-url", server.url,
           "--concurrency", "40", "--json", "--log-dir", str(tmp_path / "logs"), "--no-cache"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    while server.stats().get("completions", 0) < 50:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err and "waiting for the requests in flight" in err
    s = json.loads(out.splitlines()[0])
    served = server.stats()["completions"]
    assert s["status"] == "interrupted" and s["requests"]["sent"] == server.stats()["requests"]
    assert s["scored"] == served == len(samples(s)) and 50 <= served < 200
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert server.stats()["requests"] == 200 and json.loads(resumed.stdout)["scored"] == 200


def test_ctrl_c_twice_stops_at_once_with_one_line_and_the_log_intact(evalkit, start_server, tmp_path, data_dir):
    """A second SIGINT while replies are still in flight (0.8 s each): exit 130 at once, the
    one-line message, no traceback of the requests it cancelled, and a log `report` can read."""
    spec, key = quiz(tmp_path, 40)
    server = start_server(key, latency=0.8)
    env = {**os.environ, "EVALKIT_CACHE_DIR": str(tmp_path / "cache"), "EVALKIT_DATA_DIR": str(data_dir)}
    log = tmp_path / "run.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "evalkit", "run", str(spec), "--model", "openai/m", "--base-url",
                             server.url, "--concurrency", "4", "--json", "--log-file", str(log)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while server.stats().get("completions", 0) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    while server.stats()["requests"] <= server.stats()["completions"]:   # until some are in flight again
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - started < 5, err
    for word in ("Traceback", "never retrieved", "CancelledError"):
        assert word not in err, err
    assert err.strip().splitlines()[-1] == "evalkit: interrupted; finished samples are in the log, run the same " \
                                           "command to resume"
    s = json.loads(out)
    assert s["status"] == "interrupted" and 4 <= s["scored"] < 40
    lines = read_jsonl(log)                                       # every line whole
    assert lines[-1]["type"] == "summary" and lines[-1]["incomplete"]
    assert len([r for r in lines if r["type"] == "sample"]) == s["scored"]
    report = evalkit("report", str(log))
    from evalkit.results.intervals import clopper_pearson      # k of k right is not certain (it said 1.0000-1.0000)

    lo = clopper_pearson(s["scored"], s["scored"])[0]
    assert report.returncode == 0 and f"| openai/m (incomplete: interrupted) | 1.0000 [{lo:.4f}, 1.0000] | " \
        f"{s['scored']}/40 |" in report.stdout, report.stderr


def test_relative_openai_evals_registry_path(evalkit, start_server, tmp_path):
    reg = tmp_path / "reg"
    (reg / "evals").mkdir(parents=True)
    (reg / "data").mkdir()
    (reg / "evals" / "t.yaml").write_text("tiny:\n  id: tiny.v0\ntiny.v0:\n  class: evals.elsuite.basic.match:Match\n"
                                          "  args: {samples_jsonl: tiny.jsonl}\n")
    (reg / "data" / "tiny.jsonl").write_text('{"input": "Say yes", "ideal": "yes"}\n')
    server = start_server([{"match": "Say yes", "reply": "yes"}])
    s = run_json(evalkit, "--registry", "reg", "tiny", "--model", "openai/m", "--base-url", server.url)
    assert s["metrics"]["accuracy"]["value"] == 1.0
    body = server.requests()[-1]["body"]
    assert body == {"model": "m", "messages": [{"role": "user", "content": "Say yes"}], "temperature": 0.0,
                    "stream": True, "stream_options": {"include_usage": True}}
