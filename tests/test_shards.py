"""`run --shard I/N` and `evalkit merge`: shards partition the unsharded run, and the merged log
summarises exactly as the unsharded run does (MMLU with subject groups, TruthfulQA MC2 whose
fractional scores make the bootstrap order-sensitive, an exam's conversion), through the real CLI
against the real test server."""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
from pathlib import Path

import pytest

from conftest import one_line_error, read_jsonl
from test_mmlu_e2e import build_key

# Fields of a summary that describe how a run went (requests, time, where), not what it measured.
OPERATIONAL = {"requests", "duration_s", "log", "backend", "cost_usd"}


def expected_shard(sample_id: str, count: int) -> int:
    """The documented rule, computed here independently of evalkit."""
    return 1 + int.from_bytes(hashlib.sha256(sample_id.encode()).digest()[:8], "big") % count


def measured(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in OPERATIONAL}


def header(path: str | Path) -> dict:
    return read_jsonl(path)[0]


def samples(path: str | Path) -> dict[str, dict]:
    return {r["id"]: r for r in read_jsonl(path) if r["type"] == "sample"}


def run_json(evalkit, *args) -> dict:
    res = evalkit(*args, "--json", "--quiet")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def mmlu_key(data_dir):
    return build_key(data_dir)[2]


def run_shards(evalkit, tmp_path, base: list[str], count: int, *extra: str) -> list[dict]:
    return [run_json(evalkit, *base, "--shard", f"{i}/{count}", "--no-cache", "--log-dir",
                     str(tmp_path / f"shard{i}"), *extra) for i in range(1, count + 1)]


def test_merged_mmlu_equals_the_unsharded_run(evalkit, start_server, mmlu_key, tmp_path):
    server = start_server(mmlu_key)
    base = ["run", "mmlu", "--model", "openai/gpt-4o-mini", "--base-url", server.url, "--limit", "1200", "--seed", "7"]
    whole = run_json(evalkit, *base, "--log-dir", str(tmp_path / "whole"))
    assert whole["n"] == 1200 and len(whole["groups"]) > 50 and 0 < whole["metrics"]["accuracy"]["value"] < 1

    parts = run_shards(evalkit, tmp_path, base, 3)
    # a partition of the unsharded selection, by the documented hash of each id
    ids = [set(samples(p["log"])) for p in parts]
    assert sum(map(len, ids)) == 1200 and set().union(*ids) == set(samples(whole["log"]))
    for i, got in enumerate(ids, 1):
        assert got and all(expected_shard(sid, 3) == i for sid in got)
        h = header(parts[i - 1]["log"])["shard"]
        assert (h["index"], h["count"], h["selected"], h["unsharded_run_key"]) == (i, 3, 1200, header(whole["log"])["run_key"])
        assert any(f"shard {i}/3: {len(got)} of the 1200 samples" in n for n in parts[i - 1]["notes"])
    sent = server.stats()["completions"]

    res = evalkit("merge", *[p["log"] for p in parts], "--log-dir", str(tmp_path / "merged"), "--json")
    assert res.returncode == 0, res.stderr
    merged = json.loads(res.stdout)
    assert measured(merged) == measured(whole)
    assert merged["status"] == "complete" and merged["requests"]["sent"] == sum(p["requests"]["sent"] for p in parts)
    # priced as the run prices its samples: the model's price over the same token counts
    assert merged["cost_usd"]["all_samples"] == whole["cost_usd"]["all_samples"] > 0
    assert merged["cost_usd"]["this_run"] == pytest.approx(sum(p["cost_usd"]["this_run"] for p in parts))
    # the merged log sits where the unsharded command's log goes, with its run key and its samples
    assert Path(merged["log"]).relative_to(tmp_path / "merged") == Path(whole["log"]).relative_to(tmp_path / "whole")
    lines = read_jsonl(merged["log"])
    assert lines[0]["run_key"] == header(whole["log"])["run_key"] and "shard" not in lines[0]
    assert [m["shard"] for m in lines[0]["merged_from"]] == ["1/3", "2/3", "3/3"] and lines[0]["gaps"] == []
    keep = ("id", "group", "target", "completion", "extracted", "parsed", "score")
    full = samples(whole["log"])
    assert {k: {f: r.get(f) for f in keep} for k, r in samples(merged["log"]).items()} == \
        {k: {f: r.get(f) for f in keep} for k, r in full.items()}
    assert "merged mmlu: shards 1/3, 2/3, 3/3 of 3" in res.stderr

    # report and compare read the merged log like any other
    report = evalkit("report", merged["log"], str(whole["log"]))
    assert report.returncode == 0, report.stderr
    acc = whole["metrics"]["accuracy"]
    assert report.stdout.count(f"{acc['value']:.4f} [{acc['ci95'][0]:.4f}, {acc['ci95'][1]:.4f}]") == 2
    cmp = evalkit("compare", str(whole["log"]), merged["log"], "--json")
    assert cmp.returncode == 0, cmp.stderr
    gate = json.loads(cmp.stdout)
    assert gate["paired"] == 1200 and gate["overall"]["diff"] == 0 and gate["gate"]["passed"]
    # the unsharded command resumes the merged log: nothing is sent again, the same summary comes back
    again = run_json(evalkit, *base, "--log-dir", str(tmp_path / "merged"))
    assert measured(again) == measured(whole) and again["requests"]["sent"] == 0
    assert server.stats()["completions"] == sent


def test_fractional_scores_and_calibration_merge_exactly(evalkit, start_server, data_dir, tmp_path):
    """MC2 scores are fractions, so the bootstrap resamples indices: the interval is only the
    unsharded one if the merged samples come back in the unsharded order."""
    items = json.loads((data_dir / "truthfulqa" / "mc_task.json").read_text())
    answers = []
    for i, it in enumerate(items):
        p = [0.2 + 0.6 * ((i * 37) % 101) / 100, 0.1 + 0.2 * ((i * 11) % 7) / 6]
        answers.append({"match": "Q: " + it["question"] + "\n", "reply": "A",
                        "logprobs": {"A": math.log(p[0]), "B": math.log(p[1]), "C": math.log(max(1e-3, 1 - sum(p)))}})
    server = start_server(answers)
    base = ["run", "truthfulqa-mc2", "--model", "openai/m", "--base-url", server.url]
    whole = run_json(evalkit, *base, "--log-dir", str(tmp_path / "whole"))
    scores = {r["score"] for r in samples(whole["log"]).values()}
    assert whole["n"] == 817 and len(scores) > 50 and whole["calibration"]["ece"] is not None
    parts = run_shards(evalkit, tmp_path, base, 4)
    merged = run_json(evalkit, "merge", *[p["log"] for p in reversed(parts)], "--log-file", str(tmp_path / "m.jsonl"))
    assert measured(merged) == measured(whole)
    assert merged["metrics"]["mc2"]["ci95"] == whole["metrics"]["mc2"]["ci95"]


def exam_answers(data_dir: Path) -> list[dict]:
    """LSAT (AGIEval, the report's answer format) and MedQA items: two in three right."""
    answers = []
    for task in ("lsat-ar", "lsat-lr", "lsat-rc"):
        for i, line in enumerate((data_dir / "agieval" / "v1" / f"{task}.jsonl").read_text().splitlines()):
            row = json.loads(line)
            letter = row["label"] if i % 3 else "ABCDE"[("ABCDE".index(row["label"]) + 1) % len(row["options"])]
            answers.append({"match": row["question"], "reply": f"Thinking.\nThe answer is therefore [{letter}]"})
    for i, line in enumerate((data_dir / "medqa" / "phrases_no_exclude_test.jsonl").read_text().splitlines()):
        row = json.loads(line)
        answers.append({"match": row["question"], "reply": row["answer_idx"] if i % 3 else "no idea"})
    return answers


@pytest.mark.parametrize("exam, limit", [("lsat", "1000"), ("medqa-exam", "500")])
def test_exam_from_merged_shards_converts_identically(evalkit, start_server, data_dir, tmp_path, exam, limit):
    """LSAT: three sections, a conversion table and a percentile. MedQA as percent correct: a
    score fine-grained enough that its interval moves with the order items are bootstrapped in."""
    server = start_server(exam_answers(data_dir), default_reply="no idea", tail_after="Problem 4. " if exam == "lsat" else "")
    base = ["run", exam, "--model", "openai/m", "--base-url", server.url, "--limit", limit]
    whole = run_json(evalkit, *base, "--log-dir", str(tmp_path / "whole"))
    shards = []
    for i in (1, 2, 3):
        res = evalkit(*base, "--shard", f"{i}/3", "--no-cache", "--log-dir", str(tmp_path / f"s{i}"), "--quiet")
        assert res.returncode == 0, res.stderr
        assert f"{exam}  openai/m  shard {i}/3: no conversion on a shard" in res.stdout
        shards += sorted(str(p) for p in (tmp_path / f"s{i}").glob("*/*.jsonl"))
    assert len(shards) == 3 * len(whole["sections"]) and not (tmp_path / "s1" / "exams").exists()
    res = evalkit("merge", *shards, "--log-dir", str(tmp_path / "merged"))
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("merged ") == len(whole["sections"])
    sent = server.stats()["completions"]
    converted = run_json(evalkit, *base, "--log-dir", str(tmp_path / "merged"))
    assert server.stats()["completions"] == sent          # converted from the merged logs alone
    same = ("composite", "scaled", "scaled_ci95", "percentile", "percentile_ci95", "incomplete", "notes")
    assert [{k: v for k, v in s.items() if k != "log"} for s in converted["sections"]] == \
        [{k: v for k, v in s.items() if k != "log"} for s in whole["sections"]]
    assert {k: converted[k] for k in same} == {k: whole[k] for k in same}


def test_shards_partition_limit_first_and_stay_put(evalkit, start_server, tmp_path):
    server = start_server([], default_reply="A")
    base = ["run", "mmlu", "--model", "openai/m", "--base-url", server.url]
    small = [set(samples(run_json(evalkit, *base, "--limit", "60", "--shard", f"{i}/2", "--log-dir",
                                  str(tmp_path / "a"))["log"])) for i in (1, 2)]
    big = [set(samples(run_json(evalkit, *base, "--limit", "120", "--shard", f"{i}/2", "--log-dir",
                                str(tmp_path / "b"))["log"])) for i in (1, 2)]
    whole = set(samples(run_json(evalkit, *base, "--limit", "60", "--log-dir", str(tmp_path / "c"))["log"]))
    assert small[0] | small[1] == whole and not small[0] & small[1]
    assert small[0] <= big[0] and small[1] <= big[1]      # a sample's shard does not depend on --limit
    dry = evalkit(*base, "--limit", "60", "--shard", "1/2", "--dry-run", "--json")
    assert json.loads(dry.stdout)["samples"] == len(small[0])


def test_gaps_are_reported_and_the_unsharded_command_finishes_them(evalkit, start_server, tmp_path):
    server = start_server([], default_reply="B")
    base = ["run", "mmlu", "--model", "openai/m", "--base-url", server.url, "--limit", "90"]
    whole = run_json(evalkit, *base, "--log-dir", str(tmp_path / "whole"))
    parts = run_shards(evalkit, tmp_path, base, 3)
    # shard 2 was killed after a few samples: drop the rest of its lines and its summary
    log2 = Path(parts[1]["log"])
    lines = log2.read_text().splitlines(keepends=True)
    log2.write_text("".join(lines[:4]))
    res = evalkit("merge", parts[0]["log"], str(log2), "--log-dir", str(tmp_path / "merged"), "--json")
    assert res.returncode == 1
    assert f"shard(s) 3 of 3 not given ({parts[2]['n']} of the 90 samples)" in res.stderr
    assert f"shard 2/3 ({log2}): {parts[1]['n'] - 3} of its {parts[1]['n']} samples have no line" in res.stderr
    assert "2 gap(s); the merged log is incomplete" in res.stderr and "Traceback" not in res.stderr
    merged = json.loads(res.stdout)
    assert merged["status"] == "gaps" and merged["incomplete"] and merged["n"] == 90
    assert merged["scored"] == parts[0]["n"] + 3
    assert read_jsonl(merged["log"])[-1]["incomplete"] is True
    again = evalkit("merge", parts[0]["log"], str(log2), "--log-dir", str(tmp_path / "merged"), "--allow-gaps")
    assert again.returncode == 0, again.stderr
    # the unsharded command resumes the merged log and sends only what no shard logged
    before = server.stats()["completions"]
    done = run_json(evalkit, *base, "--log-dir", str(tmp_path / "merged"), "--no-cache")
    assert server.stats()["completions"] - before == 90 - merged["scored"] == done["requests"]["sent"]
    assert measured(done) | {"notes": []} == measured(whole) | {"notes": []}


def test_completions_of_an_item_stay_in_one_shard(evalkit, start_server, mmlu_key, tmp_path):
    server = start_server(mmlu_key)
    base = ["run", "mmlu", "--model", "openai/m", "--base-url", server.url, "--limit", "80", "--samples", "3",
            "--temperature", "0.7"]
    whole = run_json(evalkit, *base, "--log-dir", str(tmp_path / "whole"))
    assert whole["n"] == 240
    text = evalkit(*base, "--shard", "1/2", "--log-dir", str(tmp_path / "s1"))
    assert text.returncode == 0 and "note: shard 1/2: " in text.stdout and " of the 80 samples" in text.stdout
    parts = [run_json(evalkit, *base, "--shard", f"{i}/2", "--log-dir", str(tmp_path / f"s{i}")) for i in (1, 2)]
    for i, p in enumerate(parts, 1):
        lines = samples(p["log"]).values()
        assert len(lines) == p["n"] and p["n"] % 3 == 0
        assert all(expected_shard(r["sample_id"], 2) == i and r["id"].startswith(r["sample_id"] + "#") for r in lines)
    merged = run_json(evalkit, "merge", *[p["log"] for p in parts], "--log-file", str(tmp_path / "m.jsonl"))
    assert measured(merged) == measured(whole)


def test_errored_samples_count_as_errors_not_gaps(evalkit, start_server, tmp_path):
    server = start_server([], default_reply="A", fault="500=0.3")
    base = ["run", "mmlu", "--model", "openai/m", "--base-url", server.url, "--limit", "60", "--max-retries", "0",
            "--json", "--quiet"]
    parts = []
    for i in (1, 2):
        res = evalkit(*base, "--shard", f"{i}/2", "--log-dir", str(tmp_path / f"s{i}"))
        parts.append(json.loads(res.stdout))
        assert res.returncode == 1 and parts[-1]["errors"] > 0     # HTTP 500 without retries: recorded errors
    errors = sum(p["errors"] for p in parts)
    logs = [p["log"] for p in parts]
    res = evalkit("merge", *logs, "--log-file", str(tmp_path / "m.jsonl"), "--json")
    merged = json.loads(res.stdout)
    assert res.returncode == 1 and merged["status"] == "errors" and merged["errors"] == errors
    assert merged["scored"] == 60 - errors and "gap" not in res.stderr
    assert f"mmlu: {errors} of 60 samples ended in errors, more than --fail-on-error 0" in res.stderr
    assert evalkit("merge", *logs, "--log-file", str(tmp_path / "m.jsonl"), "--fail-on-error", "0.9").returncode == 0


def _four_logs(evalkit, server, tmp_path) -> dict[str, str]:
    base = ["run", "mmlu", "--model", "openai/m", "--base-url", server.url, "--limit", "40"]
    logs = {f"s{i}": run_json(evalkit, *base, "--shard", f"{i}/2", "--log-dir", str(tmp_path / f"s{i}"))["log"]
            for i in (1, 2)}
    logs["hot"] = run_json(evalkit, *base, "--shard", "2/2", "--temperature", "0.5", "--log-dir",
                           str(tmp_path / "hot"))["log"]
    logs["other_n"] = run_json(evalkit, *base, "--shard", "2/3", "--log-dir", str(tmp_path / "n3"))["log"]
    logs["other_model"] = run_json(evalkit, *base[:3], "openai/m2", *base[4:], "--shard", "2/2", "--log-dir",
                                   str(tmp_path / "m2"))["log"]
    logs["whole"] = run_json(evalkit, *base, "--log-dir", str(tmp_path / "whole"))["log"]
    return logs


def test_malformed_and_mismatched_inputs_are_one_line(evalkit, start_server, tmp_path):
    server = start_server([], default_reply="C")
    logs = _four_logs(evalkit, server, tmp_path)

    def merge_error(*paths: str, code: int = 2) -> str:
        return one_line_error(evalkit("merge", *paths, "--log-dir", str(tmp_path / "out")), code)

    assert f"{logs['whole']}: not a shard's log" in merge_error(logs["s1"], logs["whole"])
    line = merge_error(logs["s1"], logs["hot"])
    assert line.startswith(f"evalkit: error: {logs['hot']}: its eval spec")
    assert "at generation.temperature: 0.5 vs 0" in line and "share the spec, model" in line
    assert "its model \"openai/m2\" differs" in merge_error(logs["s1"], logs["other_model"])
    assert "all shards of a run split it into the same N" in merge_error(logs["s1"], logs["other_n"])
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(Path(logs["s2"]).read_bytes())
    assert "shard 2/2 is given twice" in merge_error(logs["s1"], logs["s2"], str(copy))
    # a tampered slice: a sample of shard 1 claimed by shard 2's header
    lines = read_jsonl(logs["s2"])
    stolen = read_jsonl(logs["s1"])[0]["shard"]["ids"][0]
    lines[0]["shard"]["ids"][0] = stolen
    copy.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert f"sample {stolen!r} does not belong to shard 2/2" in merge_error(logs["s1"], str(copy))
    # a line that is not one of the shard's samples
    lines = read_jsonl(logs["s2"])
    lines.insert(2, {**lines[1], "id": stolen})
    copy.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert f"{copy}: sample {stolen!r} is not one of shard 2/2's samples" in merge_error(logs["s1"], str(copy))
    lines = read_jsonl(logs["s2"])
    lines[0]["shard"]["positions"] = "many"
    copy.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert f"{copy}:1: malformed shard header" in merge_error(str(copy))
    lines = read_jsonl(logs["s2"])
    lines[1]["score"] = "high"
    copy.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert "a malformed line" in merge_error(logs["s1"], str(copy))
    with open(logs["s2"], "rb") as held:             # as a running shard holds its log
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert f"{logs['s2']}: is being written by a running evalkit run" in merge_error(logs["s1"], logs["s2"])
    copy.write_text("garbage\n")
    assert f"{copy}:1: not a run-log line" in merge_error(str(copy))
    assert "cannot read log" in merge_error(str(tmp_path / "nope.jsonl"))
    # the output: never over a shard, never over a log that is not an earlier merge of these shards
    assert "is one of the shard logs" in one_line_error(evalkit("merge", logs["s1"], logs["s2"], "--log-file", logs["s1"]))
    assert "is not an earlier merge" in one_line_error(evalkit("merge", logs["s1"], logs["s2"], "--log-file", logs["whole"]))
    ok = evalkit("merge", logs["s1"], logs["s2"], "--log-file", str(tmp_path / "m.jsonl"))
    assert ok.returncode == 0 and evalkit("merge", logs["s1"], logs["s2"], "--log-file", str(tmp_path / "m.jsonl")).returncode == 0


@pytest.mark.parametrize("value", ["0/3", "4/3", "3", "a/b", "1/0", "-1/2", ""])
def test_bad_shard_flag_is_one_line(evalkit, value):
    line = one_line_error(evalkit("run", "mmlu", "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1",
                                  "--shard", value))
    assert "--shard" in line and "I/N" in line


def test_shard_does_not_apply_to_versus(evalkit):
    line = one_line_error(evalkit("run", "refusals", "--model", "openai/a", "--versus", "openai/b", "--base-url",
                                  "http://127.0.0.1:9/v1", "--shard", "1/2"))
    assert "--shard" in line and "--versus" in line
