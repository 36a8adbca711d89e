"""Stops: a base model that writes past its answer is scored on the answer to the question asked.

The test server answers like a base model with no stop sequence (it ignores `stop`): the reply to
each question is its answer, then a next shot the model invented, whose own answer is another one.
Replies and expected scores are built here from the raw data files with json and csv alone.
"""

from __future__ import annotations

import csv
import json

import pytest

from conftest import one_line_error, read_jsonl

LETTERS = "ABCD"


def sent_bodies(server) -> list[dict]:
    return [r["body"] for r in server.requests() if r["path"].endswith("/chat/completions")]


def records(summary: dict) -> list[dict]:
    return [r for r in read_jsonl(summary["log"]) if r["type"] == "sample"]


def run_json(evalkit, *args) -> list[dict]:
    res = evalkit("run", *args, "--model", "openai/m", "--json", "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    return [json.loads(line) for line in res.stdout.splitlines()]


def mmlu_key(data_dir) -> list[dict]:
    """Every anatomy test question: the right letter, then an invented next question answered wrong."""
    with open(data_dir / "mmlu" / "test" / "anatomy_test.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return [{"match": f"{r[0]}\nA. {r[1]}", "reply": f"{r[5]}\n\nWhich bone is the longest?\nA. femur\nB. tibia\n"
                                                     f"C. ulna\nD. radius\nAnswer: {LETTERS[(LETTERS.index(r[5]) + 1) % 4]}"}
            for r in rows]


def gsm8k_key(data_dir) -> list[dict]:
    """Every GSM8K test question: a worked answer, then an invented question answered 99."""
    rows = [json.loads(line) for line in (data_dir / "gsm8k" / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    return [{"match": f"Question: {r['question']}\nAnswer:",
             "reply": f" Working it out. The answer is {r['answer'].split('####')[-1].strip()}.\n\nQuestion: How many "
                      "legs do 33 birds have?\nAnswer: Each has 3. The answer is 99."} for r in rows]


def test_mmlu_and_gsm8k_are_scored_on_the_first_answer(evalkit, start_server, data_dir, tmp_path):
    server = start_server(mmlu_key(data_dir) + gsm8k_key(data_dir), tail_after="\n\n")
    mmlu, gsm = run_json(evalkit, "mmlu.anatomy", "gsm8k", "--limit", "5", "--base-url", server.url,
                         "--log-dir", str(tmp_path / "logs"))
    assert (mmlu["scored"], mmlu["metrics"]["accuracy"]["value"]) == (5, 1.0)
    assert (gsm["scored"], gsm["metrics"]["accuracy"]["value"]) == (5, 1.0)
    for r in records(mmlu):
        assert r["completion"] == r["target"] and r["extracted"] == r["target"]
        assert r["raw_completion"].startswith(r["target"] + "\n\nWhich bone") and r["raw_completion"].endswith(
            "Answer: " + LETTERS[(LETTERS.index(r["target"]) + 1) % 4])
    for r in records(gsm):
        assert r["completion"] == f" Working it out. The answer is {r['target']}."
        assert r["raw_completion"] == r["completion"] + ("\n\nQuestion: How many legs do 33 birds have?\nAnswer: "
                                                         "Each has 3. The answer is 99.")
        assert r["extracted"] == r["target"]
    bodies = sent_bodies(server)
    assert len(bodies) == 10
    assert [b["stop"] for b in bodies if "Question: " not in b["messages"][-1]["content"]] == [["\n\n"]] * 5
    assert [b["stop"] for b in bodies if "Question: " in b["messages"][-1]["content"]] == [["\n\nQuestion:"]] * 5
    header = read_jsonl(gsm["log"])[0]
    assert header["sampling"]["stop"] == ["\n\nQuestion:"] and header["spec"]["generation"]["stop"] == ["\n\nQuestion:"]


def capitals(tmp_path, method: str, **generation) -> str:
    """A few-shot 'Q: ... A:' eval over three capitals, scored by `method`."""
    rows = [{"id": "fr", "q": "What is the capital of France?", "a": "Paris"},
            {"id": "it", "q": "What is the capital of Italy?", "a": "Rome"},
            {"id": "es", "q": "What is the capital of Spain?", "a": "Madrid"}]
    (tmp_path / "caps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = tmp_path / f"caps-{method}.yaml"
    spec.write_text(json.dumps({f"caps-{method}": {
        "template": "match",
        "dataset": {"format": "jsonl", "path": "./caps.jsonl", "fields": {"id": "id", "question": "q", "answer": "a"}},
        "prompt": {"template": "Q: {question}\nA:"},
        "generation": {"temperature": 0, "max_tokens": 64, **generation},
        "scoring": {"method": method}}}), encoding="utf-8")
    return str(spec)


# France first answered wrong, then right in an invented next shot; Italy right, then a wrong one.
CAPITALS = [{"match": "capital of France?", "reply": " Lyon\n\nQ: What is the capital of France?\nA: Paris"},
            {"match": "capital of Italy?", "reply": " Rome\n\nQ: What is the capital of Spain?\nA: Madrid"},
            {"match": "capital of Spain?", "reply": " Madrid"}]


@pytest.mark.parametrize("method", ["exact", "includes"])
def test_match_and_includes_read_only_the_first_answer(evalkit, start_server, tmp_path, method):
    server = start_server(CAPITALS)
    [s] = run_json(evalkit, capitals(tmp_path, method), "--base-url", server.url, "--log-dir", str(tmp_path / "a"))
    got = {r["id"]: r for r in records(s)}
    assert {k: r["score"] for k, r in got.items()} == {"fr": 0.0, "it": 1.0, "es": 1.0}
    assert got["fr"]["completion"] == " Lyon"
    assert got["fr"]["raw_completion"] == CAPITALS[0]["reply"]
    assert "raw_completion" not in got["es"]            # nothing was cut
    assert [b["stop"] for b in sent_bodies(server)] == [["\n\nQ:"]] * 3
    # --no-stop: nothing sent, nothing cut, and the invented shot is read (France's "Paris" counts)
    [raw] = run_json(evalkit, capitals(tmp_path, method), "--no-stop", "--base-url", server.url,
                     "--log-dir", str(tmp_path / "b"))
    assert raw["log"] != s["log"]                                       # the stops are part of the run's identity
    assert all("stop" not in b for b in sent_bodies(server)[3:])
    assert all("raw_completion" not in r for r in records(raw))
    if method == "includes":
        assert {r["id"]: r["score"] for r in records(raw)}["fr"] == 1.0


def test_stop_from_the_command_line_and_the_spec(evalkit, start_server, tmp_path):
    server = start_server(CAPITALS)
    [s] = run_json(evalkit, capitals(tmp_path, "exact", stop=["\nQ:"]), "--stop", "\\nA:", "--stop", "zz",
                   "--base-url", server.url, "--log-dir", str(tmp_path / "a"))
    assert [b["stop"] for b in sent_bodies(server)] == [["\nA:", "zz"]] * 3
    assert {r["id"]: r["completion"] for r in records(s)}["fr"] == " Lyon\n\nQ: What is the capital of France?"
    [own] = run_json(evalkit, capitals(tmp_path, "exact", stop=["\nQ:"]), "--base-url", server.url,
                     "--log-dir", str(tmp_path / "b"))
    assert [b["stop"] for b in sent_bodies(server)[3:]] == [["\nQ:"]] * 3
    assert own["metrics"]["accuracy"]["value"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("args, message", [
    (["--stop", ""], "--stop: an empty stop string would stop every reply before it starts"),
    (["--stop", "\\q"], "--stop '\\\\q': unknown escape \\q (use \\n, \\t, \\r or \\\\)"),
    (["--stop", "a", "--no-stop"], "--stop and --no-stop: give one of them"),
    (["--stop", "a", "--stop", "b", "--stop", "c", "--stop", "d", "--stop", "e"],
     "--stop: 5 stop strings; endpoints take at most 4"),
])
def test_a_bad_stop_is_one_line(evalkit, tmp_path, args, message):
    res = evalkit("run", capitals(tmp_path, "exact"), "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1",
                  *args)
    assert one_line_error(res) == f"evalkit: error: {message}"


def test_a_spec_with_an_empty_stop_fails_validation(evalkit, tmp_path):
    res = evalkit("validate", capitals(tmp_path, "exact", stop=["A:", ""]))
    assert res.returncode != 0 and "generation.stop: an empty stop string" in res.stderr + res.stdout, res.stderr


def test_exam_items_are_scored_on_their_first_conclusion(evalkit, start_server, data_dir, tmp_path):
    """SAT Math (the GPT-4 report's exam prompt): each item answered right, then a Problem 5 the
    model made up, concluded with a wrong letter; the stop `\\n\\nProblem` keeps the first."""
    from conftest import identifiable

    rows = [json.loads(line) for line in (data_dir / "agieval" / "v1" / "sat-math.jsonl").read_text().splitlines()]
    ok = identifiable([r["question"] for r in rows], [x for r in rows for x in [r["question"], *r["options"]]])
    key = [{"match": r["question"], "reply": f" Working.\nThe answer is therefore [{r['label']}]\n\nProblem 5. What "
                                             "is 2 + 2?\nChoose from the following options: [A] 3 [B] 5\nExplanation "
                                             "for Problem 5: Adding. The answer is therefore [B]"}
           for r in rows if r["question"] in ok]
    assert len(key) == 220
    server = start_server(key, default_reply="no idea", tail_after="Problem 4. ")
    res = evalkit("run", "sat-math", "--model", "openai/m", "--base-url", server.url, "--json", "--quiet",
                  "--log-dir", str(tmp_path / "logs"))
    assert res.returncode == 0, res.stderr[-2000:]
    sec = json.loads(res.stdout)["sections"][0]
    assert (sec["n"], sec["correct"]) == (220, 220)
    recs = [r for r in read_jsonl(sec["log"]) if r["type"] == "sample"]
    assert all(r["completion"].endswith(f"[{r['target']}]") and r["raw_completion"].endswith("therefore [B]")
               for r in recs)
    assert {json.dumps(b["stop"]) for b in sent_bodies(server)} == {json.dumps(["\n\nProblem"])}


def test_openai_evals_includes_with_a_stop_from_the_command_line(evalkit, start_server, tmp_path):
    """An OpenAI Evals registry eval (chat prompts: no format to derive a stop from) with `--stop`:
    the invented turn after the blank line is not read."""
    reg = tmp_path / "registry"
    (reg / "evals").mkdir(parents=True)
    (reg / "data" / "caps").mkdir(parents=True)
    (reg / "evals" / "caps.yaml").write_text(
        "caps:\n  id: caps.v0\n  metrics: [accuracy]\ncaps.v0:\n  class: evals.elsuite.basic.includes:Includes\n"
        "  args:\n    samples_jsonl: caps/samples.jsonl\n", encoding="utf-8")
    lines = [{"input": [{"role": "user", "content": f"Capital of {c}?"}], "ideal": a}
             for c, a in (("France", "Paris"), ("Italy", "Rome"))]
    (reg / "data" / "caps" / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    server = start_server([{"match": "Capital of France?", "reply": "Lyon\n\nUser: Capital of France?\nParis"},
                           {"match": "Capital of Italy?", "reply": "Rome\n\nUser: Capital of Spain?\nMadrid"}])
    common = ["--registry", str(reg), "caps", "--base-url", server.url]
    [plain] = run_json(evalkit, *common, "--log-dir", str(tmp_path / "a"))
    [cut] = run_json(evalkit, *common, "--stop", "\\n\\n", "--log-dir", str(tmp_path / "b"))
    assert plain["metrics"]["accuracy"]["value"] == 1.0                 # France's invented turn counted
    assert cut["metrics"]["accuracy"]["value"] == 0.5
    assert [b.get("stop") for b in sent_bodies(server)] == [None, None, ["\n\n"], ["\n\n"]]


def test_a_log_from_before_stops_still_reports_and_compares(evalkit, start_server, tmp_path):
    """A log written before stops existed (no raw_completion, no generation.stop in its header)."""
    server = start_server(CAPITALS)
    [s] = run_json(evalkit, capitals(tmp_path, "includes"), "--base-url", server.url, "--log-dir", str(tmp_path / "a"))
    old = tmp_path / "old.jsonl"
    lines = read_jsonl(s["log"])
    lines[0]["spec"]["generation"].pop("stop")
    lines[0]["sampling"].pop("stop")
    for r in lines[1:]:
        if r["type"] == "sample" and "raw_completion" in r:
            r["completion"] = r.pop("raw_completion")
    old.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    rep = evalkit("report", str(old), str(s["log"]))
    assert rep.returncode == 0 and "caps-includes" in rep.stdout, rep.stderr
    cmp = evalkit("compare", str(old), str(s["log"]), "--json")
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr         # the same scores: no regression
