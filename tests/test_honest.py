"""No quiet wrong numbers (issue 24): unread answers are loud, intervals are honest at 0 and 1,
exams accept the scorer's answer formats and keep every run's result, and the report tells runs
apart. Every case runs the real CLI against the real test server."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import read_jsonl
from evalkit.results.intervals import clopper_pearson, macro_interval

QUIZ = """\
quiz:
  template: multiple_choice
  dataset: {format: jsonl, path: ./quiz.jsonl, fields: {id: id, question: q, choices: options, answer: a}}
  prompt: {template: "{question}\\n{choices}\\nAnswer:"}
  scoring: {method: letter, labels: ABCD}
"""


def quiz(tmp_path, n: int) -> str:
    """quiz.yaml: n four-option questions whose answer is always A."""
    (tmp_path / "quiz.jsonl").write_text("".join(
        json.dumps({"id": f"q{i:03d}", "q": f"Question number {i}?", "options": ["w", "x", "y", "z"], "a": "A"}) + "\n"
        for i in range(n)))
    (tmp_path / "quiz.yaml").write_text(QUIZ)
    return str(tmp_path / "quiz.yaml")


def run_json(evalkit, *args) -> tuple[int, dict, str]:
    res = evalkit("run", *args, "--json", "--quiet")
    assert "Traceback" not in res.stderr
    return res.returncode, json.loads(res.stdout), res.stderr


# ----------------------------------------------------------------------------- honest intervals

@pytest.mark.parametrize("right, n, lo", [(10, 10, 0.691503), (5, 5, 0.478176), (0, 50, None)])
def test_a_perfect_or_null_score_is_not_certain(evalkit, start_server, tmp_path, right, n, lo):
    """10/10 and 5/5 printed 1.0000 (95% CI 1.0000-1.0000), 0/50 0.0000-0.0000: the bootstrap
    around p-hat has no spread there. Clopper-Pearson: 10/10 -> 0.6915-1, 0/50 -> 0-0.0711."""
    server = start_server([], default_reply="Answer: A" if right else "Answer: B")
    rc, s, _ = run_json(evalkit, quiz(tmp_path, n), "--model", "openai/m", "--base-url", server.url)
    assert rc == 0
    acc = s["metrics"]["accuracy"]
    assert acc["n"] == n and acc["value"] == right / n
    if right:
        assert acc["ci95"] == [lo, 1.0]
    else:
        assert acc["ci95"] == [0.0, 0.071122]
    text = evalkit("run", str(tmp_path / "quiz.yaml"), "--model", "openai/m", "--base-url", server.url, "--quiet")
    assert (f"accuracy {right / n:.4f} (95% CI {acc['ci95'][0]:.4f}-{acc['ci95'][1]:.4f})") in text.stdout
    assert "(95% CI 1.0000-1.0000)" not in text.stdout and "(95% CI 0.0000-0.0000)" not in text.stdout


def test_humaneval_size_all_right_interval():
    """164/164 (HumanEval's size, all passed): the lower end is (0.025)^(1/164), not 1."""
    lo, hi = clopper_pearson(164, 164)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 164), abs=1e-9)


@pytest.mark.parametrize("n", [5, 20, 200])
@pytest.mark.parametrize("p", [0.001, 0.01, 0.05, 0.3, 0.5, 0.7, 0.95, 0.99, 0.999])
def test_clopper_pearson_covers_at_least_95_percent(n, p):
    """Many binomial draws at each n and p (near 0, 0.5 and 1): the interval holds the true p in
    at least 95% of them (less a simulation margin of 3 standard errors). The interval of every
    possible count is computed once; each draw looks its interval up."""
    draws = 200_000
    table = np.array([clopper_pearson(k, n) for k in range(n + 1)])
    x = np.random.default_rng(n * 1000 + int(p * 1000)).binomial(n, p, draws)
    covered = np.mean((table[x, 0] <= p) & (p <= table[x, 1]))
    assert covered >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / draws)


@pytest.mark.parametrize("size, p_lo, p_hi", [(1, 0.4, 0.6), (5, 0.0, 0.03), (5, 0.97, 1.0), (20, 0.45, 0.55),
                                              (200, 0.98, 1.0)])
def test_macro_interval_covers_at_least_93_percent(size, p_lo, p_hi):
    """The macro mean of 8 groups of `size` samples with true shares drawn in [p_lo, p_hi]: the
    Wilson-adjusted interval holds the true mean in at least 93% of 4,000 simulated runs (its
    stated level, docs/results.md), groups of one sample and all-right groups included."""
    rng = np.random.default_rng(size)
    runs, groups = 4000, 8
    truth = rng.uniform(p_lo, p_hi, (runs, groups))
    x = rng.binomial(size, truth)
    covered = sum(lo <= t.mean() <= hi for t, row in zip(truth, x)
                  for lo, hi in [macro_interval([(int(k), size) for k in row])])
    assert covered / runs >= 0.93


def test_per_group_and_macro_intervals_at_one(evalkit, start_server, tmp_path):
    """Two subjects all right: each group and the macro average keep an interval below 1."""
    (tmp_path / "quiz.jsonl").write_text("".join(
        json.dumps({"id": f"q{i}", "q": f"Question number {i}?", "options": ["w", "x"], "a": "A",
                    "topic": "even" if i % 2 == 0 else "odd"}) + "\n" for i in range(20)))
    (tmp_path / "quiz.yaml").write_text(QUIZ.replace("answer: a}", "answer: a, group: topic}"))
    server = start_server([], default_reply="A")
    rc, s, _ = run_json(evalkit, str(tmp_path / "quiz.yaml"), "--model", "openai/m", "--base-url", server.url)
    assert rc == 0
    assert s["groups"]["even"]["ci95"] == s["groups"]["odd"]["ci95"] == [0.691503, 1.0]
    lo, hi = s["metrics"]["macro_accuracy"]["ci95"]
    assert hi == 1.0 and 0.8 < lo < 0.9


# ----------------------------------------------------------------------------- unread answers

GRADED = """\
graded:
  template: model_graded
  dataset: {format: jsonl, path: ./graded.jsonl, split: test, fields: {id: id, question: prompt, answer: expected}}
  prompt: {template: "{question}"}
  generation: {temperature: 0, max_tokens: 64}
  scoring: {method: graded, grader: refusal, criteria: "Allowed: everything asked here."}
  metrics: [score]
"""


def graded_run(evalkit, start_server, tmp_path, verdicts: list[str], *flags):
    """A 3-item model-graded eval whose grader replies `verdicts` (one per item, in id order)."""
    rows = [{"id": f"g{i}", "prompt": f"Tell me fact number {i}.", "expected": "help"} for i in range(3)]
    (tmp_path / "graded.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "graded.yaml").write_text(GRADED)
    key = [{"model": "cand", "match": r["prompt"], "reply": f"REPLY-{r['id']} the fact"} for r in rows]
    key += [{"model": "judge", "match": f"REPLY-{r['id']} ", "reply": v} for r, v in zip(rows, verdicts)]
    server = start_server(key, default_reply="???")
    return run_json(evalkit, str(tmp_path / "graded.yaml"), "--model", "openai/cand", "--grader-model",
                    "openai/judge", "--base-url", server.url, *flags)


def test_a_grader_with_no_usable_verdict_scores_nothing_and_exits_1(evalkit, start_server, tmp_path):
    """Was: text `score n/a n=0/3`, but --json `status: complete, scored: 3` and exit 0."""
    rc, s, err = graded_run(evalkit, start_server, tmp_path, ["no idea", "cannot say", "hmm"])
    assert rc == 1
    assert (s["scored"], s["invalid_grades"], s["unparsed"], s["errors"]) == (0, 3, 3, 0)
    assert s["metrics"]["score"]["n"] == 0 and s["metrics"]["score"]["value"] is None
    assert "graded: no sample was scored (0 errors, 3 invalid grades;" in err
    assert "3 of 3 answered samples (100%) could not be read" in err and "for example 'no idea'" in err
    summary = [r for r in read_jsonl(s["log"]) if r["type"] == "summary"][-1]
    assert (summary["scored"], summary["invalid_grades"]) == (0, 3)


def test_two_invalid_grades_of_three_fail_and_show_n_1(evalkit, start_server, tmp_path):
    """Was: headline 1.0000 (95% CI 1.0000-1.0000) from one sample, exit 0. Invalid grades count
    against --fail-on-error like errors; the interval of 1/1 is 0.025-1."""
    rc, s, err = graded_run(evalkit, start_server, tmp_path, ["A\nfits", "no idea", "none of these"])
    assert rc == 1
    assert (s["scored"], s["invalid_grades"], s["unparsed"]) == (1, 2, 2)
    assert s["metrics"]["score"] == {"value": 1.0, "ci95": [0.025, 1.0], "n": 1, "groups": None, "weight": None}
    assert "graded: of 3 samples, 2 got a grade naming no valid class (not scored), more than --fail-on-error 0" in err
    res = evalkit("run", str(tmp_path / "graded.yaml"), "--model", "openai/cand", "--grader-model", "openai/judge",
                  "--base-url", s["endpoint"], "--quiet", "--fail-on-error", "2")
    assert res.returncode == 1        # within --fail-on-error 2, but 2 of 3 (67%) unread is more than half
    assert "score 1.0000 (95% CI 0.0250-1.0000)" in res.stdout
    assert "n=1/3  errors=0  unparsed=2 (invalid grades 2)" in res.stdout, res.stdout
    page = tmp_path / "graded.html"
    assert evalkit("report", s["log"], "--format", "html", "--out", str(page)).returncode == 0
    row = Tables(page.read_text()).tables["summary"][1]               # the HTML report said n 3/3
    assert row[1:5] == ["1.0000 [0.0250, 1.0000]", "1/3", "0", "2 (invalid grades 2)"]


def test_one_invalid_grade_within_fail_on_error_warns(evalkit, start_server, tmp_path):
    rc, s, err = graded_run(evalkit, start_server, tmp_path, ["A\nok", "D\nok", "no idea"], "--fail-on-error", "1")
    assert rc == 0 and (s["scored"], s["invalid_grades"]) == (2, 1)
    assert "graded: 1 of 3 samples got a grade naming no valid class (not scored)" in err
    assert "1 of 3 answered samples (33%) could not be read" in err     # more than 10%: the warning


def test_gsm8k_with_every_reply_unparsed_is_loud(evalkit, start_server):
    """Was: 0.0000 (CI 0.0000-0.0000), exit 0, no warning."""
    server = start_server([], default_reply="I would rather not say.")
    rc, s, err = run_json(evalkit, "gsm8k", "--limit", "50", "--model", "openai/m", "--base-url", server.url)
    assert rc == 1
    assert (s["scored"], s["unparsed"], s["blank"]) == (50, 50, 0)
    assert s["metrics"]["accuracy"]["value"] == 0.0 and s["metrics"]["accuracy"]["ci95"] == [0.0, 0.071122]
    note = next(n for n in s["notes"] if "could not be read" in n)
    assert note.startswith("MOST REPLIES WERE NOT READ, the score is not the model's: 50 of 50 answered samples (100%)")
    assert "expected a number (the last number in the reply counts); for example 'I would rather not say.'" in note
    assert f"evalkit: warning: gsm8k: {note}" in err
    assert "gsm8k: 50 of 50 answered samples could not be read (more than 50%: see docs/results.md)" in err


def test_blank_replies_are_counted_and_examples_are_cut(evalkit, start_server, tmp_path):
    long = "x" * 400
    key = [{"match": f"Question number {i}?", "reply": ""} for i in range(2)]
    key += [{"match": "Question number 2?", "reply": long}]
    server = start_server(key, default_reply="Answer: A")
    rc, s, err = run_json(evalkit, quiz(tmp_path, 10), "--model", "openai/m", "--base-url", server.url)
    assert rc == 0                                    # 3 of 10 unread: a warning, not a failure
    assert (s["unparsed"], s["blank"], s["invalid_grades"]) == (3, 2, 0)
    note = next(n for n in s["notes"] if "could not be read" in n)
    assert "3 of 10 answered samples (30%)" in note and "expected an option letter (ABCD), e.g. 'Answer: C'" in note
    example = note.split("for example ")[1]
    assert example in ("''", "'" + "x" * 155 + "...'")
    assert len(example) <= 160


# ----------------------------------------------------------------------------- exams

def test_lsat_reads_answer_colon_letter(evalkit, start_server, tmp_path):
    """A model writing "Answer: C" got 120 (0th percentile) on every item: only the literal
    "answer is therefore [X]" was read. The prompt is still the report's ANSWER KEY layout."""
    server = start_server([], default_reply="Let me think.\nAnswer: C", tail_after="Problem 4. ")
    rc, r, err = run_json(evalkit, "lsat", "--limit", "12", "--model", "openai/m", "--base-url", server.url,
                          "--log-dir", str(tmp_path / "logs"))
    assert rc == 0, err
    for sec in r["sections"]:
        recs = [x for x in read_jsonl(sec["log"]) if x["type"] == "sample"]
        assert len(recs) == sec["n"] == 12 and sec["blank"] == 0
        assert all(x["parsed"] is not False and x["extracted"] == "C" for x in recs)
        assert sec["correct"] == sum(x["target"] == "C" for x in recs)
        assert all(x["score"] == float(x["target"] == "C") for x in recs)
    prompt = server.requests()[-1]["body"]["messages"][-1]["content"]
    assert prompt.startswith("ANSWER KEY\n\n") and "The answer is therefore [" in prompt


def test_an_exam_nobody_could_read_exits_1(evalkit, start_server, tmp_path):
    server = start_server([], default_reply="I am not sure about this one.", tail_after="Problem 4. ")
    rc, r, err = run_json(evalkit, "sat-math", "--limit", "10", "--model", "openai/m", "--base-url", server.url,
                          "--log-dir", str(tmp_path / "logs"))
    assert rc == 1 and r["sections"][0]["blank"] == 10
    assert "sat-math: section math: 10 of 10 answers could not be read (more than 50%" in err


def test_exam_results_are_never_overwritten_and_partial_is_marked(evalkit, start_server, tmp_path):
    """A `--limit 30` run replaced the full run's runs/exams/<exam>/<model>.json."""
    server = start_server([], default_reply="The answer is therefore [A]", tail_after="Problem 4. ")
    logs = str(tmp_path / "logs")
    rc, full, _ = run_json(evalkit, "sat-math", "--model", "openai/m", "--base-url", server.url, "--log-dir", logs)
    assert rc == 0 and full["partial"] is None and full["sections"][0]["n"] == 220
    rc, part, _ = run_json(evalkit, "sat-math", "--limit", "30", "--model", "openai/m", "--base-url", server.url,
                           "--log-dir", logs)
    assert rc == 0 and part["partial"] == {"limit": 30} and part["sections"][0]["n"] == 30
    assert part["log"] != full["log"]
    assert json.loads(open(full["log"]).read())["sections"][0]["n"] == 220     # still the full run's
    assert json.loads(open(part["log"]).read())["partial"] == {"limit": 30}
    again = evalkit("run", "sat-math", "--limit", "30", "--model", "openai/m", "--base-url", server.url,
                    "--log-dir", logs, "--quiet")
    assert again.stdout.splitlines()[0].endswith("  [PARTIAL: --limit 30]")
    assert f"log: {part['log']}" in again.stdout                              # the same run: its own file
    results = sorted((tmp_path / "logs" / "exams" / "sat-math").glob("*.json"))
    assert [str(p) for p in results] == sorted([full["log"], part["log"]])


# ----------------------------------------------------------------------------- the report

class Tables(__import__("html.parser").parser.HTMLParser):
    """The HTML report's tables (by class: rows of cell texts), figure captions and paragraphs."""

    def __init__(self, page: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.captions: list[str] = []
        self.paragraphs: list[str] = []
        self._table, self._row, self._cell, self._text = None, None, None, None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(a.get("class", "?"), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""
        elif tag in ("figcaption", "p"):
            self._text = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "figcaption":
            self.captions.append(self._text)
            self._text = None
        elif tag == "p" and self._text is not None:
            self.paragraphs.append(self._text)
            self._text = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._text is not None:
            self._text += data


def test_html_report_tells_runs_apart(evalkit, start_server, tmp_path):
    spec = quiz(tmp_path, 10)
    answers = [{"match": f"Question number {i}?", "reply": "A" if i % 5 else "B",
                "logprobs": {"A": math.log(0.8), "B": math.log(0.2)}} for i in range(10)]
    server = start_server(answers)
    logs = tmp_path / "logs"
    base = ("--model", "openai/good", "--base-url", server.url, "--logprobs", "--log-dir", str(logs))
    _, full, _ = run_json(evalkit, spec, *base)
    _, part, _ = run_json(evalkit, spec, *base, "--limit", "5")
    bad = evalkit("run", spec, "--model", "openai/o3", "--base-url", server.url, "--temperature", "0.5",
                  "--log-dir", str(logs))
    assert bad.returncode == 2
    header_only = next((logs / "quiz").glob("openai_o3__*.jsonl"))
    assert len(header_only.read_text().splitlines()) == 1
    lines = open(full["log"]).read().splitlines()
    killed = tmp_path / "killed.jsonl"
    killed.write_text("\n".join(lines[:5]) + "\n")                     # header + 4 samples, no summary
    page = tmp_path / "report.html"
    res = evalkit("report", full["log"], part["log"], str(header_only), str(killed), "--format", "html",
                  "--out", str(page))
    assert res.returncode == 0, res.stderr
    assert f"{header_only}: no samples" in res.stderr
    t = Tables(page.read_text())
    rows = t.tables["summary"]
    assert rows[0] == ["model", "accuracy [95% CI]", "n", "errors", "unparsed", "cost"]
    acc = full["metrics"]["accuracy"]
    assert rows[1][1:] == [f"{acc['value']:.4f} [{acc['ci95'][0]:.4f}, {acc['ci95'][1]:.4f}]", "10/10", "0", "0", "–"]
    created = json.loads(lines[0])["created"][:16].replace("T", " ")
    # full and killed share options and header (one is cut from the other): told apart by date, then file
    assert [r[0] for r in rows[1:]] == [
        f"openai/good · limit=None · n=10 · {created} · {full['log'].rsplit('/', 1)[1]}",
        "openai/good · limit=5 · n=5 partial: --limit 5",
        f"openai/good · limit=None · n=10 · {created} · killed.jsonl killed"]
    assert rows[2][2] == "5/5" and rows[3][2] == "4/10"                 # the killed run planned 10
    assert all("o3" not in r[0] for r in rows)                         # the header-only log is left out ...
    assert any(p.startswith("Left out, no samples") and str(header_only) in p for p in t.paragraphs)   # ... and listed
    overview = t.tables["overview"]
    assert overview[0] == ["eval", "openai/good"] and overview[1][0] == "quiz"
    assert overview[1][1].count(";") == 2 and "(partial: --limit 5)" in overview[1][1] and "(killed)" in overview[1][1]
    bins = {b["lo"]: b["count"] for b in full["calibration"]["bins"]}
    cap = next(c for c in t.captions if c.startswith("quiz · " + rows[1][0]))
    assert f"0.8-0.9: {bins[0.8]}" in cap and f"0.2-0.3: {bins[0.2]}" in cap and bins[0.8] == 10


def test_report_marks_a_partial_exam_and_its_percentile_interval(evalkit, start_server, tmp_path):
    server = start_server([], default_reply="The answer is therefore [A]", tail_after="Problem 4. ")
    rc, r, _ = run_json(evalkit, "lsat", "--limit", "20", "--model", "openai/m", "--base-url", server.url,
                        "--log-dir", str(tmp_path / "logs"))
    assert rc == 0 and len(r["percentile_bounds_ci95"]) == 2
    page = tmp_path / "exams.html"
    assert evalkit("report", r["log"], "--format", "html", "--out", str(page)).returncode == 0
    t = Tables(page.read_text())
    head, row = t.tables["exams"]
    assert head == ["exam", "model", "score", "percentile", "score 95% CI", "percentile 95% CI"]
    assert row[0] == "LSAT partial: --limit 20" and row[1] == "openai/m"
    assert row[5] == " to ".join(r["percentile_ci95"])
    assert t.captions[0].startswith("Exam percentiles") and "95% interval" in t.captions[0]
