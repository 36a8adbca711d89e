"""`--batch`: runs through the OpenAI Batch API of the test server (files, batches, their states,
output and error files), with the real CLI and the real `openai` client. The server's records
(`/stats`: batches created, request lines submitted, distinct custom ids, requests executed)
prove what was submitted and paid for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, cli_env, fake_key, one_line_error, read_jsonl

FAST = {"batch_validate": 0.05, "batch_finalize": 0.05, "batch_step": 0.02}


def items_eval(tmp_path: Path, n: int, name: str = "items") -> tuple[Path, list[dict]]:
    """An n-item exact-match eval with short prompts, and the key that answers all of it right."""
    rows = [{"id": f"i{i}", "question": f"What is item {i}?", "answer": f"a{i}"} for i in range(n)]
    (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / f"{name}.yaml").write_text(f"{name}:\n  dataset: {{format: jsonl, path: ./{name}.jsonl}}\n"
                                           "  scoring: {method: exact}\n")
    return tmp_path / f"{name}.yaml", [{"match": r["question"], "reply": r["answer"]} for r in rows]


def started(args: list[str], tmp_path: Path, data_dir: Path, server, stat: str, reached: int,
            text: bool = False) -> subprocess.Popen:
    """`evalkit ARGS` in a real process (a test kills or interrupts it), returned once the test
    server's counter `stat` has reached `reached` (or after 60 s)."""
    env = {k: v for k, v in {**os.environ, **cli_env(tmp_path, data_dir, None)}.items() if v is not None}
    proc = subprocess.Popen([sys.executable, "-m", "evalkit", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=text)
    deadline = time.monotonic() + 60
    while server.stats().get(stat, 0) < reached and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc


def batch_run(evalkit, spec: Path, server, *extra: str, code: int = 0) -> tuple[dict, str]:
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--batch",
                  "--batch-poll", "0.05", "--json", *extra)
    assert res.returncode == code, (res.returncode, res.stderr[-3000:])
    return json.loads(res.stdout.splitlines()[0]), res.stderr


def log_lines(summary: dict, kind: str) -> list[dict]:
    return [r for r in read_jsonl(summary["log"]) if r["type"] == kind]


def posts(server, suffix: str) -> list[dict]:
    return [r for r in server.requests() if r["method"] == "POST" and r["path"].split("?")[0].endswith(suffix)]


def file_content(server, file_id: str) -> bytes:
    with urllib.request.urlopen(f"{server.url}/files/{file_id}/content", timeout=10) as resp:
        return resp.read()


# ----------------------------------------------------------------------------- the basic path

def test_a_batch_run_scores_like_a_synchronous_one_through_the_batch_api_only(evalkit, start_server, tmp_path):
    spec, key = items_eval(tmp_path, 30)
    server = start_server(key, **FAST)
    s, err = batch_run(evalkit, spec, server, "--batch-size", "12")
    assert s["status"] == "complete" and s["scored"] == 30 and s["metrics"]["accuracy"]["value"] == 1.0
    b = s["batches"]
    assert len(b["created"]) == 3 and b["submitted"] == b["answered"] == 30 and b["failed"] == 0
    stats = server.stats()
    assert stats["batches_created"] == 3 and stats["batch_lines"] == stats["batch_unique"] == 30
    assert stats["batch_executed"] == 30 and stats.get("requests", 0) == 0       # no per-request call at all
    assert not posts(server, "/chat/completions")
    creates = posts(server, "/batches")
    assert [c["body"]["completion_window"] for c in creates] == ["24h"] * 3
    assert {c["body"]["endpoint"] for c in creates} == {"/v1/chat/completions"}
    uploads = posts(server, "/files")
    assert len(uploads) == 3 and all(u["headers"]["content-type"].startswith("multipart/form-data") for u in uploads)
    # the log says which batch holds which requests, as soon as each existed, and that each was recorded
    lines = log_lines(s, "batch")
    assert [r["event"] for r in lines] == ["file", "created"] * 3 + ["settled"] * 3
    assert [len(r["custom_ids"]) for r in lines if r["event"] == "file"] == [12, 12, 6]
    assert [r["batch_id"] for r in lines if r["event"] == "created"] == b["created"]
    body = file_content(server, lines[0]["file_id"]).decode()
    reqs = [json.loads(x) for x in body.splitlines()]
    assert [r["custom_id"] for r in reqs] == lines[0]["custom_ids"]
    assert all(r["method"] == "POST" and r["url"] == "/v1/chat/completions" and r["body"]["model"] == "m" for r in reqs)
    assert "submitted" in err and "completed, 12/12 completed, 0 failed" in err       # progress from the provider
    # the same command again: answered from its log, nothing submitted
    again, _ = batch_run(evalkit, spec, server)
    assert again["metrics"] == s["metrics"] and server.stats()["batches_created"] == 3


def test_batch_size_beyond_the_servers_limit_fails_the_batch_not_the_run(evalkit, start_server, tmp_path):
    spec, key = items_eval(tmp_path, 20)
    server = start_server(key, batch_max_requests=10, **FAST)
    s, _ = batch_run(evalkit, spec, server, code=1)
    assert s["errors"] == 20 and server.stats().get("batch_executed", 0) == 0
    errors = {r["error"] for r in log_lines(s, "sample")}
    assert len(errors) == 1 and "failed: too_many_requests: The file has 20 requests; the limit is 10." in errors.pop()
    s, _ = batch_run(evalkit, spec, server, "--batch-size", "10")             # the failed batch cost nothing
    assert s["scored"] == 20 and len(s["batches"]["created"]) == 2
    assert server.stats()["batch_executed"] == 20


def test_batch_files_are_cut_within_the_byte_limit():
    from evalkit.backends import get_backend
    from evalkit.backends.base import Request
    from evalkit.send.batch_journal import Journal
    from evalkit.send.batch_phase import BatchOptions, Phase

    api = get_backend("openai/m", base_url="http://127.0.0.1:9/v1").batch_api()
    api.max_bytes = 2_000
    reqs = {f"c{i}": Request(key=f"k{i}", messages=[{"role": "user", "content": "x" * (50 + 7 * i)}])
            for i in range(40)}
    reqs["huge"] = Request(key="huge", messages=[{"role": "user", "content": "y" * 3000}])
    phase = Phase(api, Journal([], lambda r: None), "model", BatchOptions(), print, None)
    refused: dict = {}

    async def cut():
        return [chunk async for chunk in phase._chunks(list(reqs.items()), refused)]
    import asyncio
    chunks = asyncio.run(cut())
    assert all(sum(len(line) for _, line in c) <= 2_000 for c in chunks) and len(chunks) > 3
    assert [cid for c in chunks for cid, _ in c] == [f"c{i}" for i in range(40)]   # every request, in order
    assert list(refused) == ["huge"] and "larger than a batch file may be" in refused["huge"].error


# ----------------------------------------------------------------------------- failures and retries

def test_partial_failures_are_sample_errors_resubmitted_alone(evalkit, start_server, tmp_path):
    spec, key = items_eval(tmp_path, 40)
    server = start_server(key, batch_fail_rate=0.3, seed=5, **FAST)
    s, _ = batch_run(evalkit, spec, server, code=1)
    failed = s["errors"]
    assert 0 < failed < 40 and s["batches"]["failed"] == failed and s["scored"] == 40 - failed
    errs = [r for r in log_lines(s, "sample") if r.get("error")]
    assert len(errs) == failed and all("batch request failed: HTTP 500: injected batch failure" in r["error"]
                                       for r in errs)
    total = 40
    for _ in range(10):                        # each rerun submits exactly the samples still in error
        again = _rerun(evalkit, spec, server)
        assert again["batches"]["submitted"] == failed
        total += failed
        failed = again["errors"]
        if not failed:
            break
    assert again["status"] == "complete" and again["metrics"]["accuracy"]["value"] == 1.0
    stats = server.stats()
    assert stats["batch_lines"] == total and stats["batch_unique"] == 40


def _rerun(evalkit, spec, server) -> dict:
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--batch", "--batch-poll", "0.05",
                  "--json")
    s = json.loads(res.stdout.splitlines()[0])
    assert res.returncode == (1 if s["errors"] else 0), res.stderr          # errors left: a run CI must not trust
    return s


def test_expired_requests_are_errors_then_sent_one_by_one_with_fallback(evalkit, start_server, tmp_path):
    spec, key = items_eval(tmp_path, 30)
    server = start_server(key, batch_rate=50, batch_window=0.4, **FAST)
    s, _ = batch_run(evalkit, spec, server, code=1)
    done = server.stats()["batch_executed"]
    assert 0 < done < 30 and s["scored"] == done and s["errors"] == 30 - done
    expired = [r for r in log_lines(s, "sample") if r.get("error")]
    assert all(r["error"] == "batch request expired: the batch's 24 h window ended first" for r in expired)
    assert log_lines(s, "batch")[-1]["status"] == "recorded"
    s2, err = batch_run(evalkit, spec, server, "--batch-fallback")
    assert s2["status"] == "complete" and s2["scored"] == 30 and s2["batches"]["fallback"] == 30 - done
    assert len(posts(server, "/chat/completions")) == 30 - done and server.stats()["batches_created"] == 1
    assert "sending them one by one (--batch-fallback)" in err


def test_fallback_answers_a_batchs_failures_in_the_same_run(evalkit, start_server, tmp_path):
    spec, key = items_eval(tmp_path, 30)
    server = start_server(key, batch_fail_rate=0.3, seed=2, **FAST)
    s, _ = batch_run(evalkit, spec, server, "--batch-fallback")
    failed = server.stats()["batch_executed"] - server.stats()["completions"] + len(posts(server, "/chat/completions"))
    assert s["status"] == "complete" and s["scored"] == 30 and s["batches"]["fallback"] == failed > 0
    assert len(posts(server, "/chat/completions")) == s["batches"]["failed"] == failed


def test_fallback_never_sends_what_a_live_batch_still_holds(evalkit, start_server, tmp_path, data_dir):
    spec, key = items_eval(tmp_path, 40)
    server = start_server(key, batch_fail_rate=0.3, seed=5, batch_rate=40, **FAST)
    first, _ = batch_run(evalkit, spec, server, code=1)              # batch A: some requests fail
    failed = first["errors"]
    args = ["run", str(spec), "--model", "openai/m", "--base-url", server.url, "--batch", "--batch-poll", "0.05"]
    proc = started(args, tmp_path, data_dir, server, "batches_created", 2)
    proc.send_signal(signal.SIGKILL)              # batch B holds A's failures again, and is still running
    proc.wait()
    res = evalkit(*args, "--batch-fallback", "--json")
    s = json.loads(res.stdout.splitlines()[0])
    assert len(s["batches"]["reattached"]) == 1 and not s["batches"]["created"]
    assert server.stats()["batch_lines"] == 40 + failed                # nothing submitted a third time
    assert len(posts(server, "/chat/completions")) == s["batches"]["failed"] == s["batches"]["fallback"]
    assert res.returncode == 0 and s["scored"] == 40


def test_a_lying_result_file_loses_nothing_and_adopts_no_strangers(evalkit, start_server, tmp_path):
    spec, key = items_eval(tmp_path, 10)
    server = start_server(key, batch_lies=True, **FAST)
    s, err = batch_run(evalkit, spec, server, code=1)
    assert s["scored"] == 9 and s["errors"] == 1 and s["metrics"]["accuracy"]["value"] == 1.0   # first answer wins
    assert s["batches"]["skipped_result_lines"] == 3 and "skipped 3 result line(s)" in err
    missing = [r for r in log_lines(s, "sample") if r.get("error")]
    assert missing[0]["error"].startswith("no result for this request in batch ")


# ----------------------------------------------------------------------------- reattaching

BIG = 20_000


def test_20000_requests_killed_and_reattached_are_each_submitted_once(evalkit, start_server, tmp_path, data_dir):
    spec, key = items_eval(tmp_path, BIG)
    server = start_server(key, batch_rate=6000, **FAST)
    args = ["run", str(spec), "--model", "openai/m", "--base-url", server.url, "--batch", "--batch-size", "8000",
            "--batch-poll", "0.1", "--json"]
    env = {k: v for k, v in {**os.environ, **cli_env(tmp_path, data_dir, None)}.items() if v is not None}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "evalkit", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stats = server.stats()
        if stats.get("batch_executed", 0) >= 1000:       # the first batch is running, the others may not exist yet
            break
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = server.stats()
    assert 1000 <= killed["batch_executed"] < BIG                       # killed in the middle
    log = next((tmp_path / "state").rglob("items/*.jsonl"))
    before = read_jsonl(log)
    assert not any(r["type"] in ("sample", "summary") for r in before)
    known = [r for r in before if r["type"] == "batch" and r["event"] == "file"]
    assert 1 <= len(known) <= 3
    s, err = batch_run(evalkit, spec, server, "--batch-size", "8000")
    elapsed = time.monotonic() - t0
    assert s["status"] == "complete" and s["scored"] == BIG and s["metrics"]["accuracy"]["value"] == 1.0
    assert len(s["batches"]["reattached"]) == len(known) == err.count("reattached"), err
    assert len(s["batches"]["created"]) == 3 - len(known)
    stats = server.stats()
    assert stats["batches_created"] == 3
    assert stats["batch_files"] - 3 in (0, 1)     # a file uploaded as the run was killed is orphaned: it costs nothing
    assert stats["batch_lines"] == stats["batch_unique"] == stats["batch_executed"] == stats["completions"] == BIG
    assert not posts(server, "/chat/completions")
    print(f"\n20,000-request batch run, killed with {killed['batches_created']} batch(es) created and "
          f"{killed['batch_executed']:,} requests executed, then reattached: {elapsed:.1f}s in all, "
          f"{stats['batch_lines']:,} requests submitted, {stats['batch_unique']:,} distinct")


def test_a_batch_created_as_the_run_died_is_adopted_not_created_again(evalkit, start_server, tmp_path, data_dir):
    spec, key = items_eval(tmp_path, 20)
    server = start_server(key, batch_create_delay=5, **FAST)
    args = ["run", str(spec), "--model", "openai/m", "--base-url", server.url, "--batch", "--batch-poll", "0.05"]
    proc = started(args, tmp_path, data_dir, server, "batches_created", 1)
    proc.send_signal(signal.SIGKILL)              # the server made the batch; the run never heard its id
    proc.wait()
    log = next((tmp_path / "state").rglob("items/*.jsonl"))
    assert [r["event"] for r in read_jsonl(log) if r["type"] == "batch"] == ["file"]
    _other_batches(server, 150)                    # the one to adopt is now on the second page of the list
    s, err = batch_run(evalkit, spec, server)
    assert s["scored"] == 20 and len(s["batches"]["reattached"]) == 1 and not s["batches"]["created"]
    stats = server.stats()
    assert stats["batches_created"] == 151 and stats["batch_lines"] == 20 + 150
    assert s["batches"]["reattached"] == [r["batch_id"] for r in read_jsonl(log) if r.get("event") == "created"]


def _other_batches(server, n: int) -> None:
    """n batches of someone else's, made with the real client."""
    import openai

    client = openai.OpenAI(api_key="no-key", base_url=server.url)
    f = client.files.create(file=("other.jsonl", json.dumps(
        {"custom_id": "other", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}).encode() + b"\n"), purpose="batch")
    for _ in range(n):
        client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")


def test_batches_command_lists_and_cancels_and_the_rerun_collects(evalkit, start_server, tmp_path, data_dir):
    spec, key = items_eval(tmp_path, 30)
    server = start_server(key, batch_rate=0.5, **FAST)    # 60 s for all: still running when listed, even on a busy machine
    args = ["run", str(spec), "--model", "openai/m", "--base-url", server.url, "--batch", "--batch-poll", "0.05"]
    proc = started(args, tmp_path, data_dir, server, "batch_executed", 2, text=True)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "the batches go on at the provider" in stderr and "Traceback" not in stderr
    log = str(next((tmp_path / "state").rglob("items/*.jsonl")))
    res = evalkit("batches", log, "--base-url", server.url)
    assert res.returncode == 0 and "in_progress" in res.stdout and "results not yet recorded" in res.stdout
    res = evalkit("batches", log, "--base-url", server.url, "--cancel", "--json")
    row = json.loads(res.stdout)
    assert row["cancelled_now"] and row["status"] == "cancelling"
    msg = one_line_error(evalkit(*args, "--fresh"))                 # would forget what was paid for
    assert "--fresh:" in msg and "1 batch(es) whose results are not recorded yet" in msg
    assert f"evalkit batches {log} --base-url {server.url} --cancel" in msg     # a command that is not refused
    msg = one_line_error(evalkit(*[a for a in args if a not in ("--batch", "--batch-poll", "0.05")]))
    assert "rerun with --batch to collect them" in msg and f"--base-url {server.url} --cancel" in msg
    s, _ = batch_run(evalkit, spec, server, code=1)
    ran = server.stats()["batch_executed"]
    assert s["scored"] == ran < 30 and s["errors"] == 30 - ran and s["batches"]["reattached"]
    cancelled = [r for r in log_lines(s, "sample") if r.get("error")]
    assert all(r["error"] == "batch request cancelled before it ran" for r in cancelled)
    res = evalkit("batches", log, "--base-url", server.url)
    assert "cancelled" in res.stdout and "results recorded" in res.stdout
    assert one_line_error(evalkit("batches", str(tmp_path / "items.jsonl")), 2)   # not a run log


def test_results_the_provider_deleted_are_errors_not_a_dead_end(evalkit, start_server, tmp_path, data_dir):
    import openai

    spec, key = items_eval(tmp_path, 12)
    server = start_server(key, batch_rate=3, **FAST)
    args = ["run", str(spec), "--model", "openai/m", "--base-url", server.url, "--batch", "--batch-poll", "0.05"]
    proc = started(args, tmp_path, data_dir, server, "batch_executed", 1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    client = openai.OpenAI(api_key="no-key", base_url=server.url)
    batch_id = client.batches.list().data[0].id
    deadline = time.monotonic() + 60
    while (b := client.batches.retrieve(batch_id)).status != "completed" and time.monotonic() < deadline:
        time.sleep(0.1)
    client.files.delete(b.output_file_id)          # as the provider does with old result files
    s, _ = batch_run(evalkit, spec, server, code=1)
    errors = {r["error"] for r in log_lines(s, "sample")}
    assert s["errors"] == 12 and len(errors) == 1 and f"the results of batch {batch_id} are gone" in errors.pop()
    s, _ = batch_run(evalkit, spec, server)       # sent again: the only way to have them
    assert s["scored"] == 12 and server.stats()["batch_lines"] == 24


# ----------------------------------------------------------------------------- grader, prices, providers

PROMPTS = [json.loads(line) for line in (ROOT / "registry" / "evals" / "refusals.jsonl").read_text().splitlines()]


def test_model_graded_eval_batches_the_grader_as_a_second_phase(evalkit, start_server, tmp_path):
    key = []
    for i, p in enumerate(PROMPTS):
        key.append({"model": "cand", "match": p["prompt"], "reply": f"REPLY-{p['id']} here"})
        key.append({"model": "judge", "match": f"REPLY-{p['id']} ", "reply": f"{'ABCD'[i % 4]}\nbecause."})
    server = start_server(key, default_reply="???", **FAST)
    res = evalkit("run", "refusals", "--model", "openai/cand", "--grader-model", "openai/judge", "--base-url",
                  server.url, "--batch", "--batch-poll", "0.05", "--json", "--log-dir", str(tmp_path / "logs"))
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    n = len(PROMPTS)
    assert s["scored"] == n and s["metrics"]["choice/A"]["value"] == pytest.approx(sum(i % 4 == 0 for i in range(n)) / n)
    assert len(s["batches"]["created"]) == 1 and len(s["batches"]["grader"]["created"]) == 1
    stats = server.stats()
    assert stats["batches_created"] == 2 and stats["batch_lines"] == 2 * n and not posts(server, "/chat/completions")
    phases = [(r["event"], r["phase"]) for r in log_lines(s, "batch") if r["event"] != "settled"]
    assert phases == [("file", "model"), ("created", "model"), ("file", "grader"), ("created", "grader")]
    graded = log_lines(s, "sample")[0]
    assert graded["grader"]["reply"].endswith("because.") and "REPLY-" in graded["grader"]["messages"][-1]["content"]


def test_killed_while_grading_reattaches_both_phases(evalkit, start_server, tmp_path, data_dir):
    key = [{"model": "cand", "match": p["prompt"], "reply": f"REPLY-{p['id']} here"} for p in PROMPTS]
    key += [{"model": "judge", "match": f"REPLY-{p['id']} ", "reply": "A\nbecause."} for p in PROMPTS]
    server = start_server(key, default_reply="???", batch_rate=20, **FAST)
    args = ["run", "refusals", "--model", "openai/cand", "--grader-model", "openai/judge", "--base-url", server.url,
            "--batch", "--batch-poll", "0.05", "--log-dir", str(tmp_path / "logs")]
    proc = started(args, tmp_path, data_dir, server, "batches_created", 2)
    proc.send_signal(signal.SIGKILL)               # the grader's batch exists; no sample is recorded yet
    proc.wait()
    log = next((tmp_path / "logs").rglob("*.jsonl"))
    assert not [r for r in read_jsonl(log) if r["type"] == "sample"]
    res = evalkit(*args, "--json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["scored"] == len(PROMPTS) and s["metrics"]["choice/A"]["value"] == 1.0
    assert len(s["batches"]["reattached"]) == 1 and len(s["batches"]["grader"]["reattached"]) == 1
    stats = server.stats()
    assert stats["batches_created"] == 2 and stats["batch_lines"] == stats["batch_executed"] == 2 * len(PROMPTS)


def test_costs_and_max_cost_use_batch_prices(evalkit, start_server, tmp_path):
    spec, key = items_eval(tmp_path, 40)
    server = start_server(key, **FAST)
    model = ["--model", "openai/gpt-4o-mini", "--base-url", server.url, "--max-tokens", "50"]
    plan = json.loads(evalkit("run", str(spec), *model, "--batch", "--dry-run", "--json").stdout)
    standard = json.loads(evalkit("run", str(spec), *model, "--dry-run", "--json").stdout)
    assert plan["prices"]["tier"] == "batch" and plan["prices"]["recorded"]
    assert plan["prices"]["input_per_million"] == standard["prices"]["input_per_million"] / 2
    assert plan["estimated_cost_usd"]["worst_case"] == pytest.approx(standard["estimated_cost_usd"]["worst_case"] / 2)
    res = evalkit("run", str(spec), *model, "--batch", "--batch-poll", "0.05", "--json", "--max-cost",
                  f"{plan['estimated_cost_usd']['worst_case'] / 2:.10f}")
    assert res.returncode == 1 and "--max-cost" in res.stderr
    s = json.loads(res.stdout.splitlines()[0])
    assert s["status"] == "stopped: max_cost" and 15 <= s["batches"]["submitted"] <= 20
    assert server.stats()["batch_lines"] == s["batches"]["submitted"] == s["scored"]
    u = s["usage"]
    assert s["cost_usd"]["this_run"] == pytest.approx((u["prompt_tokens"] * 0.075 + u["completion_tokens"] * 0.30) / 1e6)


def test_batch_lines_are_spelled_the_way_the_preset_spells_requests(evalkit, start_server, tmp_path):
    """A batch line carries the same body a single request would: Mistral's seed field is renamed."""
    spec, key = items_eval(tmp_path, 3)
    server = start_server(key, **FAST)
    res = evalkit("run", str(spec), "--model", "mistral/m", "--base-url", server.url, "--batch", "--batch-poll",
                  "0.05", "--json", env={"MISTRAL_API_KEY": fake_key("")})
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout.splitlines()[0])["metrics"]["accuracy"]["value"] == 1.0
    [create] = posts(server, "/batches")
    with urllib.request.urlopen(f"{server.url}/files/{create['body']['input_file_id']}/content") as fh:
        bodies = [json.loads(line)["body"] for line in fh.read().splitlines()]
    assert len(bodies) == 3
    assert all(b["random_seed"] == 0 and "seed" not in b and b["model"] == "m" for b in bodies)


def test_providers_without_a_batch_api_say_so_in_one_line(evalkit, tmp_path):
    spec, _ = items_eval(tmp_path, 3)
    msg = one_line_error(evalkit("run", str(spec), "--model", "anthropic/claude-sonnet-4", "--batch"))
    assert "Message Batches are not supported" in msg and "OpenAI-compatible endpoint" in msg
    msg = one_line_error(evalkit("run", str(spec), "--model", "azure/dep", "--base-url", "http://127.0.0.1:9",
                                 "--batch", env={"AZURE_OPENAI_API_KEY": fake_key("")}))
    assert "--batch: azure/dep has no Batch API in evalkit" in msg
    msg = one_line_error(evalkit("run", str(spec), "--model", "openai/m", "--batch-size", "5"))
    assert "--batch-size applies to --batch runs only" in msg
    msg = one_line_error(evalkit("run", str(spec), "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1",
                                 "--batch"))
    assert "cannot reach the Batch API at http://127.0.0.1:9/v1" in msg and "check --base-url" in msg
