"""Issue 22, round two of a hostile server and a crafted file, through the real CLI and client
against the test server: keys that never follow a file, resume keyed on content, a report that
recomputes what a summary line claims, and streams within their bounds."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import fake_key, one_line_error, read_jsonl


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- keys that never follow a file

def crafted_batch_log(tmp_path: Path, endpoint: str) -> Path:
    """A run log (a CI artifact, a colleague's file) whose batch lines name `endpoint`."""
    return write_jsonl(tmp_path / "crafted.jsonl", [
        {"type": "header", "run_key": "0" * 64, "eval": "items", "model": "openai/m", "endpoint": endpoint},
        {"type": "batch", "event": "file", "phase": "model", "file_id": "file-1", "model": "openai/m",
         "endpoint": endpoint, "requests": 1, "custom_ids": ["m-1"]},
        {"type": "batch", "event": "created", "file_id": "file-1", "batch_id": "batch_000001", "phase": "model"}])


def test_batches_sends_no_key_to_the_endpoint_a_log_names(evalkit, start_server, tmp_path):
    server = start_server([])
    key = fake_key()
    log = crafted_batch_log(tmp_path, server.url)
    for extra in ([], ["--cancel"], ["--base-url", "https://api.openai.com/v1"]):
        msg = one_line_error(evalkit("batches", str(log), *extra, env={"OPENAI_API_KEY": key}), 1)
        assert f"the log's batches are at {server.url}" in msg and "nothing was sent" in msg
        assert key not in msg
    assert server.requests() == []                     # not one request, so no Authorization header either
    res = evalkit("batches", str(log), "--base-url", server.url, "--json", env={"OPENAI_API_KEY": key})
    assert res.returncode == 0, res.stderr             # the user named it: asked there, with the key
    assert json.loads(res.stdout)["status"].startswith("gone")
    (got,) = server.requests()
    assert got["path"] == "/v1/batches/batch_000001" and got["headers"]["authorization"] == f"Bearer {key}"



def test_a_resumed_batch_run_asks_its_own_endpoint_not_the_one_its_log_names(evalkit, start_server, tmp_path):
    from test_batch import FAST, batch_run, items_eval

    spec, key = items_eval(tmp_path, 6)
    server, elsewhere = start_server(key, **FAST), start_server([])
    first, _ = batch_run(evalkit, spec, server, "--no-cache")
    lines = read_jsonl(first["log"])            # the log now says its batch is elsewhere, and unrecorded
    kept = [r for r in lines if r["type"] == "header" or r.get("event") in ("file", "created")]
    for r in kept:
        if r.get("event") == "file":
            r["endpoint"] = elsewhere.url
    write_jsonl(Path(first["log"]), kept)
    key, before = fake_key(), len(server.requests())
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--batch", "--batch-poll", "0.05",
                  "--no-cache", "--json", env={"OPENAI_API_KEY": key})
    assert res.returncode == 0, res.stderr
    again = json.loads(res.stdout.splitlines()[0])
    assert again["scored"] == 6 and again["batches"]["reattached"] and not again["batches"]["created"]
    assert elsewhere.requests() == []                # reattached where the command line says, with the key
    assert {r["headers"]["authorization"] for r in server.requests()[before:]} == {f"Bearer {key}"}


# ----------------------------------------------------------------------------- resume keyed on content

def items(folder: Path, questions: list[str], answers: list[str], where: str = "./items.jsonl") -> None:
    """A small exact-match eval whose data is at `where` (./ beside the spec, else under the data root)."""
    data = folder / where.removeprefix("./") if where.startswith("./") else folder / "root" / where
    data.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(data, [{"id": f"q{i}", "question": q, "answer": a} for i, (q, a) in enumerate(zip(questions, answers))])


def run_items(evalkit, spec: Path, server, env=None, code=0) -> tuple[dict, str]:
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--no-cache", "--json", env=env)
    assert res.returncode == code, res.stderr
    return json.loads(res.stdout.splitlines()[0]), res.stderr


QS = [f"What is the capital of country {i}?" for i in range(6)]
KEY = [{"match": q, "reply": f"city{i}"} for i, q in enumerate(QS)]


def test_edited_questions_and_targets_are_sent_again_not_resumed(evalkit, start_server, tmp_path):
    server = start_server(KEY)
    spec = tmp_path / "items.yaml"
    spec.write_text("items:\n  dataset: {format: jsonl, path: ./items.jsonl}\n  scoring: {method: exact}\n")
    items(tmp_path, QS, [f"city{i}" for i in range(6)])
    first, _ = run_items(evalkit, spec, server)
    assert first["metrics"]["accuracy"]["value"] == 1.0
    items(tmp_path, [q.replace("capital", "largest river") for q in QS], [f"river{i}" for i in range(6)])
    again, _ = run_items(evalkit, spec, server)
    assert again["requests"]["resumed_samples"] == 0 and again["requests"]["sent"] == 6
    assert again["metrics"]["accuracy"]["value"] == 0.0 and again["log"] != first["log"]
    fresh, _ = run_items(evalkit, spec, server)                 # and that run resumes as before
    assert fresh["requests"]["resumed_samples"] == 6 and fresh["requests"]["sent"] == 0


def test_another_data_dir_is_another_run(evalkit, start_server, tmp_path):
    server = start_server(KEY)
    spec = tmp_path / "items.yaml"
    spec.write_text("items:\n  dataset: {format: jsonl, path: mine/items.jsonl}\n  scoring: {method: exact}\n")
    items(tmp_path / "v1", QS, [f"city{i}" for i in range(6)], "mine/items.jsonl")
    items(tmp_path / "v2", QS, [f"town{i}" for i in range(6)], "mine/items.jsonl")    # the targets changed
    first, _ = run_items(evalkit, spec, server, env={"EVALKIT_DATA_DIR": str(tmp_path / "v1" / "root")})
    second, _ = run_items(evalkit, spec, server, env={"EVALKIT_DATA_DIR": str(tmp_path / "v2" / "root")}, code=0)
    assert first["metrics"]["accuracy"]["value"] == 1.0
    assert second["metrics"]["accuracy"]["value"] == 0.0 and second["requests"]["resumed_samples"] == 0


def test_a_logged_sample_whose_prompt_or_target_differs_is_sent_again(evalkit, start_server, tmp_path):
    server = start_server(KEY)
    spec = tmp_path / "items.yaml"
    spec.write_text("items:\n  dataset: {format: jsonl, path: ./items.jsonl}\n  scoring: {method: exact}\n")
    items(tmp_path, QS, [f"city{i}" for i in range(6)])
    first, _ = run_items(evalkit, spec, server)
    lines = read_jsonl(first["log"])
    logged = [r for r in lines if r["type"] == "sample"]     # lines made for other prompts and targets
    logged[0]["messages_sha256"] = logged[1]["messages_sha256"] = "0" * 16
    logged[2]["target"] = "somewhere else"
    write_jsonl(Path(first["log"]), [r for r in lines if r["type"] != "summary"])
    again, err = run_items(evalkit, spec, server)
    assert again["requests"]["rerun_changed"] == 3 and again["requests"]["resumed_samples"] == 3
    assert again["requests"]["sent"] == 3 and again["metrics"]["accuracy"]["value"] == 1.0
    assert "3 logged sample(s) sent again: their prompt or target is not the one this run would send" in err


# ----------------------------------------------------------------------------- a report that checks its summary

def test_report_recomputes_a_tampered_summary_line_from_the_samples(evalkit, start_server, tmp_path):
    server = start_server([])                        # every answer wrong: accuracy 0.0
    spec = tmp_path / "items.yaml"
    spec.write_text("items:\n  dataset: {format: jsonl, path: ./items.jsonl}\n  scoring: {method: exact}\n")
    items(tmp_path, QS, [f"city{i}" for i in range(6)])
    s, _ = run_items(evalkit, spec, server)
    assert s["metrics"]["accuracy"]["value"] == 0.0
    lines = read_jsonl(s["log"])
    lines[-1]["metrics"]["accuracy"] = {"value": 1.0, "ci95": [1.0, 1.0], "n": 6}
    write_jsonl(Path(s["log"]), lines)
    res = evalkit("report", s["log"])
    assert res.returncode == 0, res.stderr
    row = next(line for line in res.stdout.splitlines() if line.startswith("| openai/m"))
    assert "0.0000 [" in row and "1.0000" not in row
    assert "the summary line disagrees with the log's sample lines (accuracy 1.0000 against 0.0000)" in res.stdout
    assert res.stderr.count("disagrees") == 1 and "Traceback" not in res.stderr
    write_jsonl(Path(s["log"]), lines[:-1])         # the line dropped: the same command writes a true one
    clean = evalkit("report", run_items(evalkit, spec, server)[0]["log"])
    assert "disagrees" not in clean.stdout + clean.stderr


# ----------------------------------------------------------------------------- streams within their bounds

def quiz_run(evalkit, server, tmp_path, *extra, code=0) -> tuple[dict, dict]:
    """The 4-question quiz of test_robustness through a stream; (summary, the log's samples by id)."""
    res = evalkit("run", str(tmp_path / "quiz.yaml"), "--model", "openai/m", "--base-url", server.url, "--no-cache",
                  "--fresh", "--json", *extra)
    assert res.returncode == code, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    s = json.loads(res.stdout.splitlines()[0])
    return s, {r["id"]: r for r in read_jsonl(s["log"]) if r["type"] == "sample"}


def streamed(server) -> bool:
    return all(r["body"].get("stream") for r in server.requests() if r["path"].endswith("/chat/completions"))


def test_keepalive_comments_do_not_hold_off_the_idle_timeout(evalkit, start_server, tmp_path):
    from test_robustness import quiz

    _, key = quiz(tmp_path, 2)
    server = start_server(key, fault="keepalive=1.0", stall_seconds=40)
    s, got = quiz_run(evalkit, server, tmp_path, "--idle-timeout", "1.5", "--max-retries", "0", code=1)
    assert streamed(server) and s["errors"] == 2
    assert all(r["error"] == "gave up after 1 attempts: no reply for --idle-timeout 1.5s" for r in got.values())
    assert all(r["model_s"] < 10 for r in got.values())      # not the 40 s the comments went on for


def test_one_event_over_many_data_lines_is_within_max_reply_bytes(evalkit, start_server, tmp_path):
    from test_robustness import quiz

    _, key = quiz(tmp_path, 2)
    server = start_server(key, fault="bigevent=1.0", huge_bytes=3_000_000)
    s, got = quiz_run(evalkit, server, tmp_path, code=1)
    assert streamed(server) and s["errors"] == 2
    assert all(r["error"] == "one event of the stream is larger than --max-reply-bytes 2,097,152" for r in got.values())
    small = start_server(key, fault="bigevent=1.0", huge_bytes=100_000)     # within the cap: read as any event
    s, _ = quiz_run(evalkit, small, tmp_path)
    assert s["metrics"]["accuracy"]["value"] == 1.0


def test_events_without_content_are_counted_and_capped(evalkit, start_server, tmp_path):
    from test_robustness import quiz

    _, key = quiz(tmp_path, 2)
    server = start_server(key, fault="emptyevents=1.0", huge_bytes=60_000_000)
    s, got = quiz_run(evalkit, server, tmp_path, "--max-retries", "0", code=1)
    assert streamed(server) and s["errors"] == 2
    assert all(r["error"] == "the stream sent more than --max-reply-bytes 2,097,152 bytes without content "
               "(comments, keep-alives, empty events)" for r in got.values()), got
    assert all(r["model_s"] < 10 for r in got.values())
    few = start_server(key, fault="emptyevents=1.0", huge_bytes=200_000)     # a few: skipped, the reply read
    s, _ = quiz_run(evalkit, few, tmp_path)
    assert s["metrics"]["accuracy"]["value"] == 1.0


def test_a_whole_reply_without_done_is_kept(evalkit, start_server, tmp_path):
    from test_robustness import quiz

    _, key = quiz(tmp_path, 3)
    server = start_server(key, fault="nodone=1.0", stall_seconds=60)
    s, got = quiz_run(evalkit, server, tmp_path, "--idle-timeout", "20", "--max-retries", "0")
    assert streamed(server) and s["scored"] == 3 and s["metrics"]["accuracy"]["value"] == 1.0
    assert all(r["model_s"] < 10 for r in got.values())      # left DONE_GRACE after the usage, not at the timeout


def test_two_choices_with_index_0_score_alike_streamed_and_whole(evalkit, start_server, tmp_path):
    from test_robustness import quiz

    _, key = quiz(tmp_path, 4)
    server = start_server(key, fault="twochoices=1.0")
    whole, _ = quiz_run(evalkit, server, tmp_path, "--no-stream")
    stream, got = quiz_run(evalkit, server, tmp_path)
    assert whole["metrics"]["accuracy"]["value"] == 1.0
    assert stream["metrics"]["accuracy"]["value"] == 1.0 and all("not" not in r["completion"] for r in got.values())


def test_junk_batch_output_lines_are_counted_not_kept_and_capped(evalkit, start_server, tmp_path):
    from test_batch import FAST, batch_run, items_eval

    spec, key = items_eval(tmp_path, 10)
    server = start_server(key, batch_junk=12_000_000, **FAST)        # 12 MB of junk after the 10 results
    s, err = batch_run(evalkit, spec, server)
    assert s["scored"] == 10 and s["metrics"]["accuracy"]["value"] == 1.0    # what came first is kept
    skipped = s["batches"]["skipped_result_lines"]
    assert 0 < skipped <= 2 * 2**20 // 26 + 1                         # read up to --max-reply-bytes of junk, no more
    assert "bytes of lines that are not results; stopped reading them" in err
    assert f"skipped {skipped} result line(s) (first: a result line that is not a batch result)" in err
