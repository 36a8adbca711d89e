"""Every bad input gets one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from conftest import one_line_error, read_jsonl


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unknown_eval_suggests_names(evalkit):
    msg = one_line_error(evalkit("run", "mmlu.anatomyy", "--model", "openai/m"))
    assert "unknown eval 'mmlu.anatomyy'" in msg and "mmlu.anatomy" in msg
    msg = one_line_error(evalkit("run", "mmmlu", "--model", "openai/m"))
    assert "did you mean mmlu" in msg


def test_bad_model_string(evalkit):
    assert "provider/name" in one_line_error(evalkit("run", "mmlu", "--model", "gpt-4"))
    assert "unknown provider" in one_line_error(evalkit("run", "mmlu", "--model", "nosuch/x"))


def test_no_api_key_for_openai(evalkit):
    msg = one_line_error(evalkit("run", "mmlu.anatomy", "--model", "openai/gpt-4o-mini"))
    assert "OPENAI_API_KEY is not set" in msg


def test_missing_data_dir(evalkit, tmp_path):
    (tmp_path / "empty").mkdir()
    msg = one_line_error(evalkit("run", "mmlu", "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1",
                                 env={"EVALKIT_DATA_DIR": str(tmp_path / "empty")}))
    assert "data not found" in msg and "EVALKIT_DATA_DIR" in msg


def test_server_unreachable(evalkit):
    msg = one_line_error(evalkit("run", "mmlu.anatomy", "--model", "openai/m",
                                 "--base-url", f"http://127.0.0.1:{free_port()}/v1"))
    assert "cannot connect" in msg and "is the server running" in msg


@pytest.mark.parametrize("status, words", [(401, "not authorised"), (403, "not authorised"), (404, "not found")])
def test_auth_and_not_found_stop_the_run(evalkit, start_server, status, words):
    server = start_server([], status=status)
    msg = one_line_error(evalkit("run", "mmlu.anatomy", "--model", "openai/m", "--base-url", server.url))
    assert f"HTTP {status}" in msg and words in msg
    assert server.stats()["requests"] <= 32   # not retried: at most the first wave of requests


def test_malformed_response(evalkit, start_server):
    server = start_server([], malformed=True)
    msg = one_line_error(evalkit("run", "mmlu.anatomy", "--model", "openai/m", "--base-url", server.url))
    assert "malformed response" in msg


def test_finished_samples_stay_in_the_log(evalkit, start_server, tmp_path):
    server = start_server([], default_reply="A", status=401, fail_after=7)
    res = evalkit("run", "mmlu.anatomy", "--model", "openai/m", "--base-url", server.url, "--concurrency", "1",
                  "--log-dir", str(tmp_path / "logs"))
    msg = one_line_error(res)
    assert "7 finished samples kept in" in msg
    log = next((tmp_path / "logs").rglob("*.jsonl"))
    lines = read_jsonl(log)
    assert [r["type"] for r in lines] == ["header"] + ["sample"] * 7 + ["summary"]
    assert lines[-1]["incomplete"] and lines[-1]["status"] == "failed" and lines[-1]["scored"] == 7


def _mini_mmlu(tmp_path: Path, data_dir: Path, test_csv: str) -> Path:
    root = tmp_path / "mirror"
    for split in ("dev", "test"):
        (root / "mmlu" / split).mkdir(parents=True)
    shutil.copy(data_dir / "mmlu" / "dev" / "anatomy_dev.csv", root / "mmlu" / "dev")
    (root / "mmlu" / "test" / "anatomy_test.csv").write_text(test_csv, encoding="utf-8")
    return root


def test_broken_data_row_names_file_and_line(evalkit, tmp_path, data_dir):
    root = _mini_mmlu(tmp_path, data_dir, 'Q1?,a,b,c,d,A\n"Q2\nspans lines",a,b,c,d,B\nQ3?,a,b,c,E\n')
    msg = one_line_error(evalkit("run", "mmlu.anatomy", "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1",
                                 env={"EVALKIT_DATA_DIR": str(root)}))
    assert f"{root}/mmlu/test/anatomy_test.csv:4: broken MMLU row 2" in msg


def test_broken_jsonl_row_and_missing_field(evalkit, tmp_path):
    spec = tmp_path / "e.yaml"
    spec.write_text("e:\n  template: match\n  dataset: {format: jsonl, path: ./e.jsonl}\n  scoring: {method: exact}\n")
    (tmp_path / "e.jsonl").write_text('{"question": "q", "answer": "a"}\n{"question": "q2", "answer": \n')
    msg = one_line_error(evalkit("run", str(spec), "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1"))
    assert f"{tmp_path}/e.jsonl:2: not valid JSON" in msg
    (tmp_path / "e.jsonl").write_text('{"question": "q", "answer": "a"}\n{"question": "q2"}\n')
    msg = one_line_error(evalkit("run", str(spec), "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1"))
    assert f"{tmp_path}/e.jsonl:2: record has no field 'answer'" in msg


def test_malformed_yaml_given_to_run(evalkit, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("e:\n  template: match\n  dataset: {format: jsonl path: x}\n")
    msg = one_line_error(evalkit("run", str(spec), "--model", "openai/m"))
    assert f"{spec}:3" in msg
