"""Streamed replies and a limiter that finds the server's capacity, through the real CLI and client
against the test server: a streamed reply keeps everything a whole one has, a slow server that
keeps producing tokens is not cut off, a silent one is, a one-slot server's queue is not taken
for a dead server (nothing abandoned, nothing sent twice), a timed-out request is not re-sent
into the same queue at once, and a server with room gets it."""

from __future__ import annotations

import json

from conftest import read_jsonl
from test_robustness import quiz


def run_json(evalkit, *args, code=0) -> dict:
    res = evalkit("run", *args, "--json")
    assert res.returncode == code, (res.returncode, res.stderr)
    return json.loads(res.stdout.splitlines()[0])


def samples(summary: dict) -> dict[str, dict]:
    return {r["id"]: r for r in read_jsonl(summary["log"]) if r["type"] == "sample"}


KEEP = ("completion", "finish_reason", "usage", "top_logprobs", "score", "error")


def test_a_streamed_reply_keeps_what_a_whole_one_has(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 8)
    key[0]["reply"] = "B is right: 😀 " + "x" * 40          # several tokens, an emoji
    key[1]["logprobs"] = {"B": -0.25, "A": -1.5}
    server = start_server(key, fault=["surrogate=0.3", "badusage=0.2"], seed=4)
    base = [str(spec), "--model", "openai/m", "--base-url", server.url, "--logprobs", "--no-cache", "--fail-on-error", "1",
            "--concurrency", "1"]                 # one at a time: both servers draw the same faults for the same samples
    streamed = run_json(evalkit, *base, "--log-dir", str(tmp_path / "s"))
    bodies = [r["body"] for r in server.requests() if r["path"].endswith("/chat/completions")]
    assert all(b["stream"] is True and b["stream_options"] == {"include_usage": True} for b in bodies)
    server2 = start_server(key, fault=["surrogate=0.3", "badusage=0.2"], seed=4)
    whole = run_json(evalkit, *base[:3], "--base-url", server2.url, *base[5:], "--no-stream", "--log-dir", str(tmp_path / "w"))
    assert all("stream" not in r["body"] for r in server2.requests() if r["path"].endswith("/chat/completions"))
    a, b = samples(streamed), samples(whole)
    assert {k: [a[i].get(f) for f in KEEP] for k, i in enumerate(sorted(a))} == \
           {k: [b[i].get(f) for f in KEEP] for k, i in enumerate(sorted(b))}
    assert a["q0"]["completion"].startswith("B is right: 😀 " + "x" * 40) and a["q1"]["top_logprobs"] == [[["B", -0.25], ["A", -1.5]]]
    assert any(any("\ud800" <= ch <= "\udfff" for ch in r["completion"]) for r in a.values())   # a lone surrogate, kept
    assert streamed["usage"]["invalid"] == whole["usage"]["invalid"] > 0       # absurd counts dropped alike
    assert streamed["metrics"] == whole["metrics"]


def test_null_content_and_huge_streams_are_sample_errors(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 4)
    server = start_server(key, fault="null=1.0")
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url, code=1)
    assert all(r["error"] == "the reply has no content (message.content is null)" for r in samples(s).values())
    server = start_server(key, fault="huge=1.0", huge_bytes=3_000_000)
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url, "--fresh", code=1)
    assert all(r["error"] == "the reply is larger than --max-reply-bytes 2,097,152" for r in samples(s).values())


def test_a_slow_server_that_keeps_producing_tokens_is_not_cut_off(evalkit, start_server, tmp_path):
    """20 tokens at 0.15 s each: 3 s per reply, longer than --idle-timeout 1. Streamed, every token
    resets the clock; asked whole, nothing comes for 3 s and each attempt is abandoned."""
    spec, key = quiz(tmp_path, 3)
    key = [{**k, "reply": "Let me think" + " step" * 17 + f"\nAnswer: {k['reply']}"} for k in key]
    server = start_server(key, token_interval=0.15)
    args = [str(spec), "--model", "openai/m", "--base-url", server.url, "--idle-timeout", "1", "--no-cache"]
    s = run_json(evalkit, *args)
    assert s["scored"] == 3 and s["requests"]["retries"] == 0 and s["metrics"]["accuracy"]["value"] == 1.0
    s = run_json(evalkit, *args, "--no-stream", "--max-retries", "0", "--fresh", code=1)
    assert [r["error"] for r in samples(s).values()] == ["gave up after 1 attempts: no reply for --idle-timeout 1s"] * 3


def test_a_silent_server_is_abandoned_at_the_idle_timeout(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 2)
    server = start_server(key, fault="stall=1.0", stall_seconds=60)
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url, "--idle-timeout", "0.5",
                 "--max-retries", "0", code=1)
    assert [r["error"] for r in samples(s).values()] == ["gave up after 1 attempts: no reply for --idle-timeout 0.5s"] * 2
    assert all(r["model_s"] < 5 for r in samples(s).values())


def test_a_timed_out_request_is_not_resent_into_the_same_queue_at_once(evalkit, start_server, tmp_path):
    """One slot whose every reply stalls for 3 s before its first byte, 1.5 s without one abandons:
    nobody in the queue makes progress, so all four first attempts are abandoned while the server
    still holds them (a hung server is not taken for a queue). Their retries wait at least half as
    long as they had waited (here 0.75 s), and the limiter backs off, saying why."""
    spec, key = quiz(tmp_path, 4)
    server = start_server(key, slots=1, fault="stall=1.0", stall_seconds=3)
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--idle-timeout", "1.5",
                  "--max-retries", "1", "--no-cache", "--json", env={"EVALKIT_PROGRESS_SECONDS": "0.2"})
    assert res.returncode == 1, res.stderr
    s = json.loads(res.stdout.splitlines()[0])
    assert [r["error"] for r in samples(s).values()] == ["gave up after 2 attempts: no reply for --idle-timeout 1.5s"] * 4
    assert all(r["model_s"] < 6 for r in samples(s).values())
    assert server.stats()["requests"] == 8 and s["requests"]["retries"] == 4
    assert "backed off to 4: a request timed out with 4 in flight" in res.stderr
    arrivals: dict[str, list[float]] = {}
    for r in server.requests():
        if r["path"].endswith("/chat/completions"):
            arrivals.setdefault(r["body"]["messages"][-1]["content"], []).append(r["t"])
    assert sorted(len(t) for t in arrivals.values()) == [2] * 4 and all(t[1] - t[0] >= 1.5 + 0.75 for t in arrivals.values())


def test_the_adaptive_limit_does_not_flood_a_one_slot_server(evalkit, start_server, tmp_path):
    """40 questions, one slot, 0.1 s each, 2 s without a token abandons. A fixed window of 40 queues
    them all: the last waits 4 s for its first byte, but the ones before it are answered meanwhile,
    so none is abandoned. The adaptive limit keeps the queue short as well."""
    spec, key = quiz(tmp_path, 40)
    args = ["--model", "openai/m", "--idle-timeout", "2", "--no-cache", "--max-retries", "10"]
    flood = start_server(key, slots=1, latency=0.1)
    s = run_json(evalkit, str(spec), *args, "--base-url", flood.url, "--concurrency", "40", "--log-dir", str(tmp_path / "f"))
    assert s["scored"] == 40 and s["requests"]["retries"] == 0 and s["requests"]["peak_concurrency"] == 40
    assert flood.stats().get("abandoned", 0) == 0 and flood.stats()["requests"] == 40
    server = start_server(key, slots=1, latency=0.1)
    s = run_json(evalkit, str(spec), *args, "--base-url", server.url, "--log-dir", str(tmp_path / "a"))
    assert s["scored"] == 40 and s["requests"]["retries"] == 0
    assert server.stats().get("abandoned", 0) == 0 and server.stats()["requests"] == 40
    assert s["requests"]["peak_concurrency"] <= 12


def test_a_one_slot_server_whose_queue_outlasts_the_idle_timeout_gets_each_request_once(evalkit, start_server,
                                                                                        tmp_path):
    """One slot, 0.25 s a reply, --idle-timeout 1 s: the default first wave of 8 replies takes 2 s,
    so the last of it waits twice the idle timeout for its first byte. The server answers the ones
    before it meanwhile, so it is a queue, not a dead server: nothing is abandoned or sent twice,
    and the limit backs off to a short queue, saying so and why."""
    spec, key = quiz(tmp_path, 40)
    server = start_server(key, slots=1, latency=0.25)
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--idle-timeout", "1",
                  "--no-cache", "--json", env={"EVALKIT_PROGRESS_SECONDS": "0.5"})
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout.splitlines()[0])
    assert s["scored"] == 40 and s["errors"] == 0 and s["requests"]["retries"] == 0
    stats = server.stats()
    assert stats["requests"] == stats["completions"] == 40 and stats.get("abandoned", 0) == 0
    assert s["requests"]["peak_concurrency"] == 8                  # the first wave did queue
    assert "backed off to 5: replies " in res.stderr and "slower than the fastest: a queue" in res.stderr
    assert s["duration_s"] < 2 * 40 * 0.25                         # generous; scripts/bench_queue.py measures it


def test_a_server_with_16_slots_gets_16_at_once(evalkit, start_server, tmp_path):
    spec, key = quiz(tmp_path, 96)
    server = start_server(key, slots=16, latency=0.25)
    s = run_json(evalkit, str(spec), "--model", "openai/m", "--base-url", server.url, "--no-cache")
    assert s["scored"] == 96 and s["requests"]["retries"] == 0 and server.stats()["requests"] == 96
    assert s["requests"]["peak_concurrency"] >= 16
