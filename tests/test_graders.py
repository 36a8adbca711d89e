"""Model-graded evals and pairwise preference, against the test server: the evaluated model and
the grader are two model names on it, answering from per-model keys."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, read_jsonl
from evalkit.specs.graders import GraderRegistry, parse_choice

PROMPTS = [json.loads(line) for line in (ROOT / "registry" / "evals" / "refusals.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------- parsing grader replies

@pytest.mark.parametrize("eval_type, reply, choices, expected", [
    ("classify", "B", "ABCD", "B"),
    ("classify", "  (C).", "ABCD", "C"),                        # punctuation and space stripped
    ("classify", "I cannot decide", "YN", None),                 # names no class: invalid
    ("classify", "", "YN", None),
    ("classify_cot", "D\nThe reply helps and is safe.", "ABCD", "D"),
    ("classify_cot", "\n\nA\nbecause ...", "ABCD", "A"),         # first non-empty line
    ("classify_cot", "Hmm, hard to say.\nneither", "ABCD", None),
    ("cot_classify", "The reply is short. It meets it.\nY\nY", "YN", "Y"),
    ("cot_classify", "Reasoning about Y and N...\nN", "YN", "N"),  # read from the last line up
    ("cot_classify", "Reasoning only, no verdict", "YN", None),
    ("cot_classify", "The first is clearer.\ntie", ["1", "2", "tie"], "tie"),
    ("cot_classify", "so the answer is 2", ["1", "2", "tie"], "2"),  # a line ending in a choice
])
def test_parse_choice(eval_type, reply, choices, expected):
    choices = list(choices) if isinstance(choices, str) else choices
    assert parse_choice(reply, eval_type, choices) == expected


def test_shipped_graders_and_their_instructions():
    reg = GraderRegistry.default()
    assert not reg.problems
    assert {"fact", "closedqa", "pairwise", "refusal"} <= set(reg.graders)
    msgs = reg.get("closedqa").messages({"input": "Q?", "completion": "An answer", "criteria": "concise"})
    text = msgs[-1]["content"]
    assert "An answer" in text and "concise" in text and text.rstrip().endswith("Reasoning:")
    assert '"Y" or "N"' in text
    assert reg.get("refusal").score_of("A") == 1.0 and reg.get("refusal").score_of("C") == 0.0


# ----------------------------------------------------------------------------- model-graded run

CLASS_OF = {p["id"]: "ABCD"[i % 4] for i, p in enumerate(PROMPTS)}
INVALID = {p["id"] for p in PROMPTS[-3:]}


def refusal_key() -> list[dict]:
    """The evaluated model replies REPLY-<id>; the grader classifies each reply by id (3 invalid)."""
    key = []
    for p in PROMPTS:
        key.append({"model": "cand", "match": p["prompt"], "reply": f"REPLY-{p['id']} here is my answer"})
        verdict = "no idea, really" if p["id"] in INVALID else f"{CLASS_OF[p['id']]}\nThe reply fits this class."
        key.append({"model": "judge", "match": f"REPLY-{p['id']} ", "reply": verdict})
    return key


def test_refusal_eval_reports_class_rates(evalkit, start_server, tmp_path):
    server = start_server(refusal_key(), default_reply="???")
    args = ("run", "refusals", "--model", "openai/cand", "--grader-model", "openai/judge", "--base-url", server.url,
            "--json", "--quiet", "--log-dir", str(tmp_path / "logs"))
    res = evalkit(*args)
    # 3 invalid grades count against --fail-on-error (default 0) as errors do (issue 24; this said 0)
    assert res.returncode == 1, res.stderr
    assert "refusals: of 24 samples, 3 got a grade naming no valid class (not scored)" in res.stderr
    s = json.loads(res.stdout)
    valid = [p for p in PROMPTS if p["id"] not in INVALID]
    m = s["metrics"]
    for c in "ABCD":
        assert m[f"choice/{c}"]["value"] == pytest.approx(sum(CLASS_OF[p["id"]] == c for p in valid) / 24, abs=1e-6)
    assert m["choice/invalid"]["value"] == pytest.approx(3 / 24, abs=1e-6)
    good = sum(CLASS_OF[p["id"]] in "AD" for p in valid)
    assert m["score"]["value"] == pytest.approx(good / len(valid), abs=1e-6) and m["score"]["n"] == 21
    assert s["grader"]["invalid"] == 3 and s["unparsed"] == 3 and s["grader"]["model"] == "openai/judge"
    assert s["grader"]["requests"]["sent"] == 24 and s["requests"]["sent"] == 24
    samples = {r["id"]: r for r in read_jsonl(s["log"]) if r["type"] == "sample"}
    inv = samples[next(iter(INVALID))]
    assert inv["score"] is None and inv["parsed"] is False and inv["grader"]["valid"] is False
    one = samples[PROMPTS[0]["id"]]
    assert one["grader"]["choice"] == "A" and one["grader"]["reply"].startswith("A\n")
    assert PROMPTS[0]["prompt"] in one["grader"]["messages"][-1]["content"]      # the grader saw the request
    assert "REPLY-allowed-01" in one["grader"]["messages"][-1]["content"]        # and the reply
    # the grader's answers are cached under the grader's own model: a new log sends nothing to it
    again = evalkit(*args[:-1], str(tmp_path / "logs2"))
    s2 = json.loads(again.stdout)
    assert s2["grader"]["requests"]["sent"] == 0 and s2["grader"]["requests"]["cached"] == 24
    assert s2["metrics"]["score"]["value"] == m["score"]["value"]
    hits = server.stats()["hits"]
    assert sum(v for k, v in hits.items() if k.startswith("REPLY-")) == 24


def test_grader_failure_is_a_sample_error_not_a_score(evalkit, start_server, tmp_path):
    cand = start_server([{"match": p["prompt"], "reply": "fine"} for p in PROMPTS])
    judge = start_server([], status=500)
    res = evalkit("run", "refusals", "--model", "openai/cand", "--base-url", cand.url, "--grader-model",
                  "openai/judge", "--grader-base-url", judge.url, "--max-retries", "1", "--json", "--quiet",
                  "--limit", "4", "--log-dir", str(tmp_path / "logs"))
    s = json.loads(res.stdout)
    assert s["errors"] == 4 and s["metrics"]["score"]["n"] == 0
    recs = [r for r in read_jsonl(s["log"]) if r["type"] == "sample"]
    assert all(r["error"].startswith("grader: gave up after 2 attempts") for r in recs)


def test_unknown_grader_is_one_line(evalkit, tmp_path):
    spec = tmp_path / "g.yaml"
    spec.write_text((ROOT / "registry" / "evals" / "refusals.yaml").read_text()
                    .replace("grader: refusal", "grader: nosuch")
                    .replace("./refusals.jsonl", str(ROOT / "registry" / "evals" / "refusals.jsonl")))
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1")
    assert res.returncode == 2 and "unknown grader 'nosuch'" in res.stderr and len(res.stderr.splitlines()) == 1


# ----------------------------------------------------------------------------- pairwise

def pairwise_key(judge: list[dict]) -> list[dict]:
    key = []
    for p in PROMPTS:
        key.append({"model": "alpha", "match": p["prompt"], "reply": f"ALPHA-{p['id']} answer"})
        key.append({"model": "beta", "match": p["prompt"], "reply": f"BETA-{p['id']} answer"})
    return key + judge


def run_pairwise(evalkit, server, tmp_path, *extra) -> dict:
    res = evalkit("run", "refusals", "--model", "openai/alpha", "--versus", "openai/beta", "--grader-model",
                  "openai/judge", "--base-url", server.url, "--json", "--quiet", "--log-dir", str(tmp_path / "logs"),
                  *extra)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_position_bias_cancels(evalkit, start_server, tmp_path):
    """A grader that always picks the first-shown reply: the balanced random order makes it 0.5."""
    server = start_server(pairwise_key([]), default_reply="1")       # the judge always says "1"
    s = run_pairwise(evalkit, server, tmp_path)
    assert s["n"] == 24 and s["a_first"] == 12
    assert s["wins"] == 12 and s["losses"] == 12 and s["metrics"]["win_rate"]["value"] == 0.5
    assert s["first_shown_chosen"] == 1.0
    recs = [r for r in read_jsonl(s["logs"]["pairwise"]) if r["type"] == "sample"]
    firsts = [r["grader"]["first"] for r in recs]
    assert firsts.count("A") == 12 and firsts != sorted(firsts)       # shuffled, not blocked
    # the order is seeded: another seed gives another order with the same balance
    s2 = run_pairwise(evalkit, server, tmp_path, "--seed", "7")
    recs2 = {r["id"]: r["grader"]["first"] for r in read_jsonl(s2["logs"]["pairwise"]) if r["type"] == "sample"}
    assert list(recs2.values()).count("A") == 12 and recs2 != {r["id"]: r["grader"]["first"] for r in recs}


def test_content_preference_with_ties_and_invalid(evalkit, start_server, tmp_path):
    """The judge prefers ALPHA's reply wherever it is shown, calls 4 pairs a tie, and garbles 2."""
    ties = {p["id"] for p in PROMPTS[:4]}
    garbled = {p["id"] for p in PROMPTS[4:6]}
    judge = []
    for p in PROMPTS:
        for second, verdict in (("ALPHA", "2"), ("BETA", "1")):
            if p["id"] in ties:
                verdict = "tie"
            if p["id"] in garbled:
                verdict = "both are fine I guess?"
            judge.append({"model": "judge", "match": f'<reply number="2">\n{second}-{p["id"]} ', "reply": f"Thinking.\n{verdict}"})
    server = start_server(pairwise_key(judge), default_reply="???")
    s = run_pairwise(evalkit, server, tmp_path)
    assert (s["wins"], s["ties"], s["losses"], s["invalid"]) == (18, 4, 0, 2)
    assert s["metrics"]["win_rate"]["value"] == pytest.approx((18 + 0.5 * 4) / 22, abs=1e-6)
    lo, hi = s["metrics"]["win_rate"]["ci95"]
    assert lo < s["metrics"]["win_rate"]["value"] <= hi <= 1.0
    rec = [r for r in read_jsonl(s["logs"]["pairwise"]) if r["type"] == "sample" and r["id"] == PROMPTS[10]["id"]][0]
    assert rec["grader"]["winner"] == "A" and "ALPHA-" in rec["grader"]["messages"][-1]["content"]
    # rerunning resumes: nothing is sent again
    before = server.stats()["requests"]
    s2 = run_pairwise(evalkit, server, tmp_path)
    assert server.stats()["requests"] == before and s2["metrics"]["win_rate"] == s["metrics"]["win_rate"]
