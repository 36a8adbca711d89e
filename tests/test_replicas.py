"""Several replicas of one model behind repeated --base-url (or @FILE), through the real CLI and
client against test servers: requests go to the replica with the fewest outstanding, a replica
that keeps failing is taken out and probed back, and when one dies mid-run no sample is lost or
answered twice."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter

from conftest import read_jsonl
from test_robustness import quiz


def run_json(evalkit, *args, code=0) -> dict:
    res = evalkit("run", *args, "--json")
    assert res.returncode == code, (res.returncode, res.stderr)
    return json.loads(res.stdout.splitlines()[0])


def sample_records(summary: dict) -> list[dict]:
    return [r for r in read_jsonl(summary["log"]) if r["type"] == "sample"]


def asked(server) -> Counter:
    """How many times the server was asked each question (by the last user message)."""
    return Counter(r["body"]["messages"][-1]["content"] for r in server.requests()
                   if r["path"].endswith("/chat/completions"))


def test_requests_go_to_the_replica_with_the_fewest_outstanding(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 60)
    slow = start_server(key, slots=1, latency=0.3)        # one slot: its queue shows in its latency
    fast = start_server(key, latency=0.02)
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", slow.url, "--base-url", fast.url, "--no-cache")
    assert s["scored"] == 60 and s["metrics"]["accuracy"]["value"] == 1.0 and s["errors"] == 0
    on_slow, on_fast = asked(slow), asked(fast)
    assert sum(on_slow.values()) + sum(on_fast.values()) == 60 and not set(on_slow) & set(on_fast)
    assert sum(on_fast.values()) > 3 * sum(on_slow.values()) and sum(on_slow.values()) >= 1
    header = read_jsonl(s["log"])[0]
    assert header["endpoint"] == slow.url and header["replicas"] == [fast.url]     # the first URL names the run
    assert [r["url"] for r in s["backend"]["replicas"]] == [slow.url, fast.url]
    assert [r["ok"] for r in s["backend"]["replicas"]] == [sum(on_slow.values()), sum(on_fast.values())]


def test_a_file_of_urls_and_bad_urls(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 8)
    a, b = start_server(key), start_server(key)
    urls = tmp_path / "urls.txt"
    urls.write_text(f"# the replicas\n{a.url}\n\n  {b.url}  \n")
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", f"@{urls}", "--no-cache")
    assert s["scored"] == 8 and sum(asked(a).values()) + sum(asked(b).values()) == 8
    assert sum(asked(a).values()) >= 1 and sum(asked(b).values()) >= 1
    urls.write_text(f"{a.url}\nftp://example.org/v1\n")
    for bad, says in [([f"@{urls}"], f"{urls}:2: 'ftp://example.org/v1' is not an http(s) URL"),
                      ([f"@{tmp_path / 'none.txt'}"], "none.txt: cannot read"),
                      ([a.url, a.url], f"--base-url {a.url}: given twice"),
                      ([a.url, b.url], "local/gemma-3-270m runs in this process; replicas are for remote endpoints")]:
        model = "local/gemma-3-270m" if "local" in says else "openai/m"
        res = evalkit("run", str(spec), "--model", model, *[x for u in bad for x in ("--base-url", u)])
        assert res.returncode == 2 and res.stderr.strip().startswith("evalkit: error: ") and says in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1


def test_a_failing_replica_is_taken_out_then_probed_back(evalkit_process, start_server, tmp_path):
    """The second replica refuses connections (nothing listens yet): after three failures in a row it
    is taken out, and probed after 1 s, 2 s, 4 s... Once a server listens there it comes back."""
    spec, key = quiz(tmp_path, 80)
    good = start_server(key, slots=1, latency=0.1)        # 10 replies a second: the run lasts ~8 s
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    late_url = f"http://127.0.0.1:{port}/v1"
    done: list = []
    run = threading.Thread(target=lambda: done.append(evalkit_process(
        "run", str(spec), "--model", "openai/m", "--base-url", good.url, "--base-url", late_url, "--no-cache", "--json")))
    run.start()
    deadline = time.monotonic() + 60
    while good.stats().get("completions", 0) < 5 and time.monotonic() < deadline:   # the run is under way
        time.sleep(0.02)
    late = start_server(key, port=port)
    run.join(120)
    res = done[0]
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["scored"] == 80 and s["errors"] == 0 and s["metrics"]["accuracy"]["value"] == 1.0
    assert f"replica {late_url} taken out after 3 failures in a row" in res.stderr
    assert f"replica {late_url} is back" in res.stderr
    on_good, on_late = asked(good), asked(late)
    assert sum(on_late.values()) >= 10 and not set(on_good) & set(on_late)     # it served again; nothing twice
    late_stats = next(r for r in s["backend"]["replicas"] if r["url"] == late_url)
    assert late_stats["taken_out"] == 1 and late_stats["ok"] == sum(on_late.values())


def test_a_replica_that_dies_mid_run_loses_nothing_and_answers_nothing_twice(evalkit_process, start_server, tmp_path):
    spec, key = quiz(tmp_path, 120)
    survivor, doomed = start_server(key, slots=2, latency=0.1), start_server(key, slots=2, latency=0.1)
    done: list = []
    run = threading.Thread(target=lambda: done.append(evalkit_process(
        "run", str(spec), "--model", "openai/m", "--base-url", survivor.url, "--base-url", doomed.url, "--no-cache",
        "--json")))
    run.start()
    deadline = time.monotonic() + 60
    while doomed.stats().get("completions", 0) < 30 and time.monotonic() < deadline:
        time.sleep(0.02)
    doomed.stop()                                         # kill -9, requests in flight on it
    run.join(120)
    res = done[0]
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    recs = sample_records(s)
    assert s["scored"] == 120 and s["errors"] == 0 and s["metrics"]["accuracy"]["value"] == 1.0
    assert len(recs) == 120 and len({r["id"] for r in recs}) == 120 and all(r["score"] == 1.0 for r in recs)
    assert max(asked(survivor).values()) == 1             # the survivor was asked each question at most once
    retried = [r for r in recs if r["attempts"] > 1]
    assert retried and s["requests"]["retries"] == sum(r["attempts"] - 1 for r in recs)
    assert s["requests"]["sent"] == 120 + s["requests"]["retries"]   # only failed requests were sent again
