"""What a new user sees on a first run: progress in a CI log, where a sample's time went, a help
text and a synopsis that tell the whole story, and a headline that has not scrolled away."""

from __future__ import annotations

import json
import re

from conftest import ROOT, read_jsonl

PROGRESS = re.compile(r"^mmlu\.anatomy: (\d+)/12 [\d.,]+/(?:s|min) eta \S+ errors 0 retries 0 cached 0 in-flight (\d+)/(\d+)$")


def test_progress_lines_in_a_log_and_time_apart(evalkit, start_server):
    """stderr is not a terminal here (a CI log): a full line every EVALKIT_PROGRESS_SECONDS, the
    in-flight figure out of the limit actually used, and the last line at the end."""
    server = start_server([], default_reply="B", latency=0.1)
    res = evalkit("run", "mmlu.anatomy", "--model", "openai/m", "--base-url", server.url, "--limit", "12",
                  "--concurrency", "2", "--json", env={"EVALKIT_PROGRESS_SECONDS": "0.15"})
    assert res.returncode == 0, res.stderr
    lines = [m.groups() for m in map(PROGRESS.match, res.stderr.splitlines()) if m]
    assert len(lines) >= 2, res.stderr
    assert all(int(flying) <= 2 and limit == "2" for _, flying, limit in lines)
    assert lines[-1] == ("12", "0", "2")
    samples = [r for r in read_jsonl(json.loads(res.stdout)["log"]) if r["type"] == "sample"]
    assert len(samples) == 12
    for r in samples:
        assert "latency" not in r and r["queue_s"] >= 0
        assert 0.1 <= r["model_s"] < 30          # the server took 0.1 s; the wait is not in it


def test_a_short_run_in_a_log_prints_no_progress_and_a_bad_interval_is_one_line(evalkit, start_server):
    server = start_server([], default_reply="B")
    res = evalkit("run", "mmlu.anatomy", "--model", "openai/m", "--base-url", server.url, "--limit", "3")
    assert res.returncode == 0 and not PROGRESS.match(res.stderr.strip() or "-"), res.stderr
    res = evalkit("run", "mmlu.anatomy", "--model", "openai/m", "--base-url", server.url, "--limit", "3", "--fresh",
                  env={"EVALKIT_PROGRESS_SECONDS": "often"})
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        "evalkit: error: EVALKIT_PROGRESS_SECONDS='often': expected a number of seconds above 0"]


def test_run_help_names_models_data_key_and_log_folder(evalkit):
    text = " ".join(evalkit("run", "--help").stdout.split())
    for needed in ("local/<folder|file.gguf|gemma-3-270m>", "OPENAI_API_KEY", "EVALKIT_DATA_DIR",
                   "~/.local/state/evalkit/runs", "--answer-by"):
        assert needed in text, needed


def test_commands_page_synopsis_lists_every_run_option(evalkit):
    """The `evalkit run` synopsis of docs/commands.md (the README links it) names every option --help has."""
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", evalkit("run", "--help").stdout)) - {"--help"}
    page = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    synopsis = page[page.index("evalkit run NAME|FILE ... --model MODEL"):page.index("evalkit compare BASE_LOG")]
    assert "--answer-by" in flags
    assert sorted(f for f in flags if f not in synopsis) == []


def test_many_subjects_print_the_headline_last_too(evalkit, start_server):
    server = start_server([], default_reply="C")
    res = evalkit("run", "mmlu", "--model", "openai/m", "--base-url", server.url, "--limit", "400")
    assert res.returncode == 0, res.stderr
    out = res.stdout.strip().splitlines()
    assert len(out) > 50 and out[0].startswith("mmlu  openai/m  accuracy ") and out[-1] == out[0]
