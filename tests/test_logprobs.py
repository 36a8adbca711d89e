"""Option probabilities from top log-probabilities: calibration (ECE) and TruthfulQA MC2."""

from __future__ import annotations

import json
import math
import re

import pytest

from conftest import read_jsonl

SPEC = """\
quiz:
  template: multiple_choice
  dataset: {format: jsonl, path: ./quiz.jsonl, fields: {id: id, question: q, choices: options, answer: a}}
  prompt: {template: "{question}\\n{choices}\\nAnswer:"}
  scoring: {method: letter, labels: ABCD}
"""


def test_calibration_matches_a_hand_computed_ece(evalkit, start_server, tmp_path):
    rows = [("q1", "First question?", "A"), ("q2", "Second question?", "B"),
            ("q3", "Third question?", "C"), ("q4", "Fourth question?", "D")]
    (tmp_path / "quiz.jsonl").write_text("".join(
        json.dumps({"id": i, "q": q, "options": ["w", "x", "y", "z"], "a": a}) + "\n" for i, q, a in rows))
    (tmp_path / "quiz.yaml").write_text(SPEC)
    ln = math.log
    answers = [
        {"match": "First question?", "reply": "A", "logprobs": {"A": ln(0.85), "B": ln(0.15)}},
        # 0.1 of the mass on a token that is no option: reported as missing, the rest renormalised
        {"match": "Second question?", "reply": "A", "logprobs": {"A": ln(0.5), "B": ln(0.4), "The": ln(0.1)}},
        {"match": "Third question?", "reply": "C", "logprobs": {"C": ln(0.75), " D": ln(0.25)}},
        {"match": "Fourth question?", "reply": "D", "logprobs": {"A": ln(0.35), "D": ln(0.65)}},
    ]
    server = start_server(answers)
    res = evalkit("run", str(tmp_path / "quiz.yaml"), "--model", "openai/m", "--base-url", server.url,
                  "--logprobs", "--json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["metrics"]["accuracy"]["value"] == 0.75
    cal = s["calibration"]
    # 16 (probability, right?) points, one per option. Eight options have p = 0 and are wrong:
    # bin [0, 0.1), error 0. The others sit alone in their bins, each contributing |y - p|:
    #   q1: A .85 right -> .15, B .15 wrong -> .15        q3: C .75 right -> .25, D .25 wrong -> .25
    #   q4: D .65 right -> .35, A .35 wrong -> .35        q2: A .5/.9 wrong, B .4/.9 right -> 5/9 each
    expected = (0.15 + 0.15 + 0.25 + 0.25 + 0.35 + 0.35 + 2 * (5 / 9)) / 16
    assert cal["ece"] == pytest.approx(expected, abs=1e-6)
    assert cal["points"] == 16 and cal["questions"] == 4
    assert cal["mean_missing_mass"] == pytest.approx(0.1 / 4, abs=1e-6)
    assert [b["count"] for b in cal["bins"]] == [8, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    recs = {r["id"]: r for r in read_jsonl(s["log"]) if r["type"] == "sample"}
    assert recs["q2"]["option_probs"] == pytest.approx({"A": 5 / 9, "B": 4 / 9, "C": 0.0, "D": 0.0}, abs=1e-6)
    assert recs["q2"]["missing_mass"] == pytest.approx(0.1, abs=1e-6)
    assert sum(recs["q1"]["option_probs"].values()) == pytest.approx(1.0)


def test_log_probabilities_survive_the_cache(evalkit, start_server, tmp_path):
    """A rerun answered from the response cache (another log folder, or --fresh) keeps the option
    probabilities: the cache stores the completion in the same serialisation as the log."""
    rows = [("q1", "First question?", "A"), ("q2", "Second question?", "B")]
    (tmp_path / "quiz.jsonl").write_text("".join(
        json.dumps({"id": i, "q": q, "options": ["w", "x", "y", "z"], "a": a}) + "\n" for i, q, a in rows))
    (tmp_path / "quiz.yaml").write_text(SPEC)
    ln = math.log
    server = start_server([{"match": "First question?", "reply": "A", "logprobs": {"A": ln(0.7), "B": ln(0.3)}},
                           {"match": "Second question?", "reply": "A", "logprobs": {"A": ln(0.4), "B": ln(0.6)}}])
    summaries = []
    for how in (["--log-dir", str(tmp_path / "a")], ["--log-dir", str(tmp_path / "b")],
                ["--log-dir", str(tmp_path / "b"), "--fresh"]):
        for mode in (["--answer-by", "logprob"], ["--logprobs"]):
            res = evalkit("run", str(tmp_path / "quiz.yaml"), "--model", "openai/m", "--base-url", server.url,
                          "--json", *mode, *how)
            assert res.returncode == 0, res.stderr
            summaries.append(json.loads(res.stdout))
    assert server.stats()["requests"] == 4                 # two modes x two questions; the rest from cache
    for first, again in ((summaries[0], summaries[2]), (summaries[0], summaries[4]),
                         (summaries[1], summaries[3]), (summaries[1], summaries[5])):
        assert again["requests"]["cached"] == 2 and again["requests"]["sent"] == 0
        assert again["metrics"] == first["metrics"] and again["calibration"] == first["calibration"]
        recs = [{r["id"]: r["option_probs"] for r in read_jsonl(s["log"]) if r["type"] == "sample"}
                for s in (first, again)]
        assert recs[0] == recs[1] and recs[0]["q2"] == pytest.approx({"A": 0.4, "B": 0.6, "C": 0, "D": 0})
    assert summaries[0]["metrics"]["accuracy"]["value"] == 1.0     # by probability: B wins q2
    assert summaries[1]["metrics"]["accuracy"]["value"] == 0.5     # by text: the reply says A


def test_truthfulqa_mc2_from_logprobs(evalkit, start_server, data_dir, tmp_path):
    items = json.loads((data_dir / "truthfulqa" / "mc_task.json").read_text())
    # First run: learn which letter each option got (the prompt shows them) while the server puts
    # all probability on "A"; MC2 is then 1 exactly where option A is a true one.
    server = start_server([], default_reply="A")
    base = ["run", "truthfulqa-mc2", "--model", "openai/m", "--base-url", server.url, "--json", "--log-prompts"]
    first = json.loads(evalkit(*base, "--log-dir", str(tmp_path / "a")).stdout)
    truth = {it["question"]: {t for t, v in it["mc2_targets"].items() if v == 1} for it in items}
    letters_of, expected_first = {}, 0.0
    for rec in (r for r in read_jsonl(first["log"]) if r["type"] == "sample"):
        prompt = rec["messages"][-1]["content"]
        question = prompt.split("Q: ", 1)[1].split("\n")[0]
        shown = dict(re.findall(r"^([A-X])\. (.*)$", prompt, re.M))
        assert len(shown) == len(items[int(rec["id"].split("/")[1])]["mc2_targets"])
        letters_of[question] = shown
        expected_first += shown["A"] in truth[question]
    assert first["n"] == 817
    assert first["primary_metric"] == "mc2"
    assert first["metrics"]["mc2"]["value"] == pytest.approx(expected_first / 817, abs=1e-6)
    # Second run: 0.6 on the first true letter, 0.3 on the first false one, 0.1 elsewhere:
    # MC2 = 0.6 / 0.9 for every question, whatever the shuffle.
    answers = []
    for q, shown in letters_of.items():
        true = next(letter for letter, text in shown.items() if text in truth[q])
        false = next(letter for letter, text in shown.items() if text not in truth[q])
        answers.append({"match": "Q: " + q + "\n", "reply": true,
                        "logprobs": {true: math.log(0.6), false: math.log(0.3), "The": math.log(0.1)}})
    server2 = start_server(answers)
    second = json.loads(evalkit("run", "truthfulqa-mc2", "--model", "openai/m", "--base-url", server2.url,
                                "--json").stdout)
    assert second["metrics"]["mc2"]["value"] == pytest.approx(0.6 / 0.9, abs=1e-5)
    assert second["calibration"]["mean_missing_mass"] == pytest.approx(0.1, abs=1e-5)


def test_mc2_without_logprobs_is_a_clear_error(evalkit, start_server):
    server = start_server([], default_reply="A", no_logprobs=True)
    res = evalkit("run", "truthfulqa-mc2", "--model", "openai/m", "--base-url", server.url, "--limit", "3")
    assert res.returncode == 2 and "MC2 needs log-probabilities" in res.stderr and "Traceback" not in res.stderr
