"""MMLU end to end over the full real test set (14,042 questions) through the CLI and a real server.

The answer key is built here from the raw CSVs with the csv module alone, independently of
evalkit's loader: most questions are answered right (in several formats a chat model uses), every
tenth wrong, and questions whose text is not unique across MMLU (so a server could not tell them
apart) get the server's default "I do not know." reply. The exact accuracy, per-subject counts and
log size a correct harness must report follow from that policy.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import ahocorasick
import pytest

from conftest import read_jsonl

LETTERS = "ABCD"


def read_split(data_dir: Path, split: str) -> dict[str, list[list[str]]]:
    out = {}
    for f in sorted((data_dir / "mmlu" / split).glob(f"*_{split}.csv")):
        with open(f, newline="", encoding="utf-8") as fh:
            out[f.name[: -len(f"_{split}.csv")]] = list(csv.reader(fh))
    return out


def reply_for(index: int, row: list[str]) -> tuple[str, bool]:
    """(reply text, whether it is the right answer) for a question the server can identify."""
    right = row[5]
    wrong = LETTERS[(LETTERS.index(right) + 1) % 4]
    kind = index % 10
    if kind == 0:
        return wrong, False
    forms = {1: f"The answer is {right}.", 2: f"({right.lower()})", 3: f"{right}. {row[1 + LETTERS.index(right)]}",
             4: f"Answer: {right}", 5: f"{right}"}
    return forms.get(kind, right), True


def build_key(data_dir: Path):
    test, dev = read_split(data_dir, "test"), read_split(data_dir, "dev")
    # Every text a prompt can contain; a question is identifiable if its text occurs in exactly one of them.
    texts = [f"about {s.replace('_', ' ')}." for s in test]
    for rows in list(test.values()) + list(dev.values()):
        for row in rows:
            texts.extend(row[:5])
    counts: Counter = Counter()
    auto = ahocorasick.Automaton()
    for rows in test.values():
        for row in rows:
            auto.add_word(row[0], row[0])
    auto.make_automaton()
    for t in texts:
        for found in {needle for _, needle in auto.iter(t)}:
            counts[found] += 1
    answers, expected = [], {}
    for subject, rows in test.items():
        for i, row in enumerate(rows):
            if counts[row[0]] == 1:
                reply, correct = reply_for(i, row)
                answers.append({"match": row[0], "reply": reply})
                expected[f"{subject}/{i}"] = (correct, True)
            else:
                expected[f"{subject}/{i}"] = (False, False)   # default reply: unparsed, wrong
    return test, dev, answers, expected


def test_full_mmlu_run_scores_exactly(data_dir, start_server, evalkit, tmp_path):
    test, dev, answers, expected = build_key(data_dir)
    assert sum(len(r) for r in test.values()) == 14042 and len(test) == 57
    server = start_server(answers)

    res = evalkit("run", "mmlu", "--model", "openai/test-model", "--base-url", server.url,
                  "--json", "--concurrency", "64", "--log-dir", str(tmp_path / "logs"))
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)

    n_right = sum(c for c, _ in expected.values())
    n_unparsed = sum(1 for _, known in expected.values() if not known)
    assert summary["n"] == summary["scored"] == 14042
    assert summary["errors"] == 0
    assert summary["unparsed"] == n_unparsed
    assert summary["metrics"]["accuracy"]["value"] == pytest.approx(n_right / 14042, abs=1e-6)
    lo, hi = summary["metrics"]["accuracy"]["ci95"]
    assert lo < n_right / 14042 < hi and hi - lo < 0.02

    per_subject = defaultdict(lambda: [0, 0])
    for sid, (correct, _) in expected.items():
        per_subject[sid.split("/")[0]][0] += correct
        per_subject[sid.split("/")[0]][1] += 1
    assert set(summary["groups"]) == set(test)
    for subject, (right, n) in per_subject.items():
        assert summary["groups"][subject]["n"] == n == len(test[subject])
        assert summary["groups"][subject]["value"] == pytest.approx(right / n, abs=1e-6)
    macro = sum(r / n for r, n in per_subject.values()) / 57
    assert summary["metrics"]["macro_accuracy"]["value"] == pytest.approx(macro, abs=1e-6)
    # MMLU repeats a few questions word for word: identical prompts are answered once, then from the cache.
    assert summary["requests"]["sent"] == server.stats()["completions"]
    assert summary["requests"]["sent"] + summary["requests"]["cached"] == 14042
    assert summary["requests"]["cached"] < 50

    lines = read_jsonl(summary["log"])
    assert len(lines) == 14042 + 2
    assert lines[0]["type"] == "header" and lines[-1]["type"] == "summary" and not lines[-1]["incomplete"]
    scored = {r["id"]: r for r in lines[1:-1]}
    assert len(scored) == 14042
    assert all(scored[sid]["score"] == float(correct) for sid, (correct, _) in expected.items())

    # Re-running the same command resumes from the finished log: no request is sent again.
    again = evalkit("run", "mmlu", "--model", "openai/test-model", "--base-url", server.url,
                    "--json", "--log-dir", str(tmp_path / "logs"))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["metrics"]["accuracy"] == summary["metrics"]["accuracy"]
    assert server.stats()["completions"] == summary["requests"]["sent"]
    assert json.loads(again.stdout)["requests"]["sent"] == 0


def test_five_shot_prompt_holds_the_subject_dev_examples_in_order(data_dir, start_server, evalkit, tmp_path):
    test, dev, answers, _ = build_key(data_dir)
    server = start_server(answers)
    res = evalkit("run", "mmlu.college_biology", "--model", "openai/m", "--base-url", server.url,
                  "--limit", "3", "--log-prompts", "--json", "--log-dir", str(tmp_path / "logs"))
    assert res.returncode == 0, res.stderr
    samples = [r for r in read_jsonl(json.loads(res.stdout)["log"]) if r["type"] == "sample"]
    assert len(samples) == 3
    for rec in samples:
        row = test["college_biology"][int(rec["id"].split("/")[1])]
        prompt = rec["messages"][-1]["content"]
        assert prompt.startswith("The following are multiple choice questions (with answers) about college biology.\n\n")
        blocks = [f"{d[0]}\nA. {d[1]}\nB. {d[2]}\nC. {d[3]}\nD. {d[4]}\nAnswer: {d[5]}" for d in dev["college_biology"]]
        positions = [prompt.index(b) for b in blocks]
        assert positions == sorted(positions) and len(blocks) == 5
        assert prompt.endswith(f"{row[0]}\nA. {row[1]}\nB. {row[2]}\nC. {row[3]}\nD. {row[4]}\nAnswer:")
