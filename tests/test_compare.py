"""`evalkit compare`: paired differences, McNemar's exact test, and the exit codes of the CI gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def write_log(path: Path, scores: dict[str, float | None], eval_name: str = "quiz", model: str = "m") -> Path:
    lines = [{"type": "header", "run_key": "x", "eval": eval_name, "model": model, "spec": {"metrics": ["accuracy"]}}]
    for sid, sc in scores.items():
        rec = {"type": "sample", "id": sid, "group": "even" if int(sid[1:]) % 2 == 0 else "odd", "score": sc}
        if sc is None:
            rec["error"] = "gave up after 6 attempts: HTTP 500"
        lines.append(rec)
    lines.append({"type": "summary", "incomplete": False})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def pair(tmp_path, worse: int, better: int, n: int = 100):
    """Base right on the first n - better samples; new loses `worse` of them and gains `better`."""
    base = {f"s{i}": 1.0 if i < n - better else 0.0 for i in range(n)}
    new = dict(base)
    for i in range(worse):
        new[f"s{i}"] = 0.0
    for i in range(n - better, n):
        new[f"s{i}"] = 1.0
    return base, new


def test_significant_drop_fails_the_gate(evalkit, tmp_path):
    base, new = pair(tmp_path, worse=10, better=2)
    base.update({"s100": 1.0, "s101": 1.0})            # only in base
    new["s50"] = None                                   # an error in the new run: unpaired
    b = write_log(tmp_path / "base.jsonl", base)
    nw = write_log(tmp_path / "new.jsonl", new, model="m2")
    res = evalkit("compare", str(b), str(nw), "--max-drop", "0.05", "--json")
    assert res.returncode == 1, res.stderr
    r = json.loads(res.stdout)
    o = r["overall"]
    assert r["paired"] == 99 and r["unpaired"]["base_only"] == 3 and r["unpaired"]["errors"] == {"base": 0, "new": 1}
    # Discordant pairs: 10 right->wrong (s0..s9), 2 wrong->right (s98, s99): p = 2 * P(Bin(12, .5) <= 2)
    assert o["right_to_wrong"] == 10 and o["wrong_to_right"] == 2
    assert o["p_value"] == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert o["diff"] == pytest.approx(-8 / 99, abs=1e-6)
    assert o["ci95"][0] < o["diff"] < o["ci95"][1] < 0
    assert r["flipped"]["worse_count"] == 10 and "s0" in r["flipped"]["worse"]
    assert set(r["groups"]) == {"even", "odd"} and r["groups"]["even"]["right_to_wrong"] == 5
    human = evalkit("compare", str(b), str(nw), "--max-drop", "0.05")
    assert human.returncode == 1 and "REGRESSION" in human.stdout and "10 worse, 2 better" in human.stdout


def test_gate_passes_when_drop_is_small_or_not_significant(evalkit, tmp_path):
    base, new = pair(tmp_path, worse=10, better=2)
    b, nw = write_log(tmp_path / "b.jsonl", base), write_log(tmp_path / "n.jsonl", new)
    assert evalkit("compare", str(b), str(nw), "--max-drop", "0.1").returncode == 0          # drop 0.08 <= 0.1
    assert evalkit("compare", str(b), str(nw), "--max-drop", "0.05", "--alpha", "0.01").returncode == 0  # p = 0.039
    base, new = pair(tmp_path, worse=5, better=5)
    b, nw = write_log(tmp_path / "b2.jsonl", base), write_log(tmp_path / "n2.jsonl", new)
    res = evalkit("compare", str(b), str(nw), "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["overall"]["p_value"] == 1.0


def test_different_evals_or_nothing_shared_is_an_input_error(evalkit, tmp_path):
    b = write_log(tmp_path / "b.jsonl", {"s1": 1.0})
    other = write_log(tmp_path / "o.jsonl", {"s1": 1.0}, eval_name="other")
    disjoint = write_log(tmp_path / "d.jsonl", {"s2": 1.0})
    res = evalkit("compare", str(b), str(other))
    assert res.returncode == 2 and "differs from the base log" in res.stderr
    res = evalkit("compare", str(b), str(disjoint))
    assert res.returncode == 2 and "share no scored sample ids" in res.stderr
    res = evalkit("compare", str(b), str(tmp_path / "missing.jsonl"))
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_gate_on_real_runs(evalkit, start_server, data_dir, tmp_path):
    import csv

    with open(data_dir / "mmlu" / "test" / "high_school_psychology_test.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    good = start_server([{"match": r[0], "reply": r[5]} for r in rows])
    bad = start_server([{"match": r[0], "reply": r[5] if i % 4 else "ABCD"[("ABCD".index(r[5]) + 1) % 4]}
                        for i, r in enumerate(rows)])
    logs = []
    for server, model in ((good, "openai/base-model"), (bad, "openai/new-model")):
        res = evalkit("run", "mmlu.high_school_psychology", "--model", model, "--base-url", server.url, "--json",
                      "--log-dir", str(tmp_path / "logs"))
        logs.append(json.loads(res.stdout)["log"])
    res = evalkit("compare", *logs, "--max-drop", "0.02")
    assert res.returncode == 1 and "REGRESSION" in res.stdout
    assert evalkit("compare", logs[0], logs[0]).returncode == 0
