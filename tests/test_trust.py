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
