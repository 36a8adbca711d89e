"""`evalkit report`: Markdown and self-contained HTML, checked in a real headless Chromium."""

from __future__ import annotations

import json
import math
import shutil
import subprocess


from test_logprobs import SPEC

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def two_models(evalkit, start_server, tmp_path) -> list[str]:
    rows = [(f"q{i}", f"Question number {i}?", "ABCD"[i % 4]) for i in range(12)]
    (tmp_path / "quiz.jsonl").write_text("".join(
        json.dumps({"id": i, "q": q, "options": ["w", "x", "y", "z"], "a": a, "parity": ("even", "odd")[int(i[1:]) % 2]})
        + "\n" for i, q, a in rows))
    (tmp_path / "quiz.yaml").write_text(SPEC + "  group_by: parity\n")
    logs = []
    for k, model in enumerate(("openai/alpha", "openai/beta")):
        answers = [{"match": q, "reply": a if (i + k) % 3 else "ABCD"[(i + 1) % 4],
                    "logprobs": {a: math.log(0.7), "ABCD"[(i + 1) % 4]: math.log(0.3)}} for i, (_, q, a) in enumerate(rows)]
        server = start_server(answers)
        res = evalkit("run", str(tmp_path / "quiz.yaml"), "--model", model, "--base-url", server.url, "--logprobs",
                      "--json", "--log-dir", str(tmp_path / "logs"))
        assert res.returncode == 0, res.stderr
        logs.append(json.loads(res.stdout)["log"])
    return logs


def test_markdown_report_side_by_side(evalkit, start_server, tmp_path, data_dir):
    logs = two_models(evalkit, start_server, tmp_path)
    server = start_server([], default_reply="A")
    mmlu = json.loads(evalkit("run", "mmlu", "--model", "openai/alpha", "--base-url", server.url, "--limit", "300",
                              "--json").stdout)["log"]
    out = tmp_path / "report.md"
    res = evalkit("report", *logs, mmlu, "--out", str(out))
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    assert "## quiz" in text and "## mmlu" in text
    assert "| openai/alpha | 0.6667 [" in text and "| openai/beta | 0.6667 [" in text
    quiz_groups = text.split("## quiz")[1].split("## mmlu")[0]           # group_by: parity, any record field
    assert "| group | openai/alpha | openai/beta |" in quiz_groups
    group_rows = quiz_groups.split("| group | openai/alpha | openai/beta |")[1].splitlines()
    assert [line.split("|")[1].strip() for line in group_rows if line.startswith("| ")] == ["even", "odd"]
    group_table = text.split("## mmlu")[1].split("| group | openai/alpha |")[1]
    subjects = [line.split("|")[1].strip() for line in group_table.splitlines() if line.startswith("| ")]
    assert subjects == sorted(subjects) and len(subjects) > 40
    assert (tmp_path / "report_files" / "figure_0.png").stat().st_size > 5000
    # per question: the gold option at 0.7 (right), another at 0.3 (wrong), two at 0 (wrong):
    # ECE = (12 * |1 - .7| + 12 * |0 - .3|) / 48 = 0.15
    assert "ECE 0.1500" in text


def test_killed_run_is_reported_from_its_samples(evalkit, start_server, tmp_path):
    logs = two_models(evalkit, start_server, tmp_path)
    lines = open(logs[0]).read().splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:7]) + "\n")                      # header + 6 samples, no summary
    res = evalkit("report", str(cut))
    # n is what the run planned (12), not the 6 it logged (this said 6/6: issue 24), and it says killed
    assert res.returncode == 0 and "(killed)" in res.stdout and "| 6/12 |" in res.stdout


def test_html_report_renders_in_chromium(evalkit, start_server, tmp_path):
    assert CHROMIUM, "chromium is needed for this test (.ci/run installs Debian's chromium)"
    logs = two_models(evalkit, start_server, tmp_path)
    page = tmp_path / "report.html"
    res = evalkit("report", *logs, "--format", "html", "--out", str(page))
    assert res.returncode == 0, res.stderr
    body = page.read_text()
    assert "http://" not in body and "https://" not in body and "<script" not in body   # self-contained
    assert body.count("data:image/png;base64,") == 2
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1400", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<table class=\"summary\">" in dom.stdout and "openai/beta" in dom.stdout
    assert "Uncaught" not in dom.stderr and "ERR_FILE_NOT_FOUND" not in dom.stderr
    shot = tmp_path / "report.png"
    res = subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and shot.stat().st_size > 20_000, res.stderr[-2000:]
    shutil.copy(shot, "/tmp/evalkit-report-screenshot.png") if shot.exists() else None
