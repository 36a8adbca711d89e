"""Reasoning models through the real CLI and a real server that behaves as their providers document.

The test server's strict mode refuses what OpenAI's reasoning models refuse (max_tokens, a
temperature, stop, top_p, logprobs) with OpenAI's error bodies, thinks for a number of tokens that
grows with the effort asked for, and puts the thinking in `reasoning`, `reasoning_content` or
inline `<think>` blocks. The thinking always holds a wrong answer in every format the scorers read
("Answer: A", "The answer is 123456789", "[A]"), so a harness that scored it would be caught.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import identifiable, one_line_error, read_jsonl
from test_providers import CAPITALS, EXPECTED, clean_env
from conftest import fake_key

THINK = "Hmm. Answer: A. The answer is 123456789. The answer is therefore [A]. Let me check that again."


def mmlu_key(data_dir: Path, subject: str = "anatomy"):
    """Replies for one subject's test questions (every third wrong) and the expected score by id."""
    with open(data_dir / "mmlu" / "test" / f"{subject}_test.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    with open(data_dir / "mmlu" / "dev" / f"{subject}_dev.csv", newline="", encoding="utf-8") as fh:
        dev = list(csv.reader(fh))
    ok = identifiable([r[0] for r in rows], [x for r in rows + dev for x in r[:5]])
    answers, expected = [], {}
    for i, r in enumerate(rows):
        if r[0] not in ok:
            continue
        right = i % 3 != 0
        letter = r[5] if right else "ABCD"[("ABCD".index(r[5]) + 1) % 4]
        answers.append({"match": r[0], "reply": f"{letter}" if i % 2 else f"The answer is {letter}."})
        expected[f"{subject}/{i}"] = 1.0 if right else 0.0
    return answers, expected


def scored(log: list[dict]) -> dict[str, float]:
    return {r["id"]: r["score"] for r in log if r.get("type") == "sample"}


def bodies(server) -> list[dict]:
    return [r["body"] for r in server.requests() if r["path"].endswith("/chat/completions")]


def run_mmlu(evalkit, server, tmp_path, model: str, *flags: str, limit: str = "24"):
    res = evalkit("run", "mmlu.anatomy", "--model", model, "--base-url", server.url, "--limit", limit, "--json",
                  "--quiet", "--log-dir", str(tmp_path / "logs"), *flags)
    return res, (json.loads(res.stdout) if res.stdout.strip() else None)


@pytest.mark.parametrize("model,stream", [("openai/gpt-5-mini", True), ("openai/o4-mini", False)])
def test_reasoning_models_are_asked_as_they_require_and_scored_on_the_answer(
        evalkit, start_server, data_dir, tmp_path, model, stream):
    answers, expected = mmlu_key(data_dir)
    server = start_server(answers, reasoning_strict=True, think_tokens=30, think_text=THINK,
                          default_reply="I do not know.")
    res, s = run_mmlu(evalkit, server, tmp_path, model, *([] if stream else ["--no-stream"]))
    assert res.returncode == 0, res.stderr
    log = read_jsonl(s["log"])
    got = scored(log)
    assert len(got) == 24 and s["errors"] == 0 and s["truncated"] == 0
    assert got == {k: expected.get(k, 0.0) for k in got}            # exactly the key's answers
    assert s["metrics"]["accuracy"]["value"] == pytest.approx(sum(got.values()) / 24)
    assert server.stats().get("refused", 0) == 0
    for body in bodies(server):
        assert body["max_completion_tokens"] == 32 + 16384
        assert not {"max_tokens", "temperature", "top_p", "stop", "logprobs", "top_logprobs"} & set(body)
        assert body.get("stream", False) is stream
    assert s["usage"]["reasoning_tokens"] == 24 * 30
    assert set(s["backend"]["not_sent"]) == {"temperature", "top_p", "stop", "logprobs", "top_logprobs"}
    samples = [r for r in log if r.get("type") == "sample"]
    assert all(r["reasoning_chars"] > 0 and "reasoning" not in r for r in samples)   # length kept, text not
    assert log[0]["wire"]["model_rule"]["token_limit"] == "max_completion_tokens"


# preset, model, effort, what the body must hold, and the limit sent for the 16-token answer
EFFORTS = [
    ("openai", "gpt-5-mini", "high", {"reasoning_effort": "high"}, ("max_completion_tokens", 16 + 32768)),
    ("anthropic", "claude-sonnet-4-5", "low", {"thinking": {"type": "enabled", "budget_tokens": 4096}},
     ("max_tokens", 16 + 4096)),
    ("gemini", "gemini-2.5-flash", "minimal", {"reasoning_effort": "minimal"}, ("max_tokens", 16 + 2048)),
    ("openrouter", "deepseek/deepseek-r1", "medium", {"reasoning": {"effort": "medium"}}, ("max_tokens", 16 + 16384)),
    ("deepseek", "deepseek-v4-flash", "max", {"thinking": {"type": "enabled"}, "reasoning_effort": "max"},
     ("max_tokens", 16 + 65536)),
    ("vllm", "Qwen/Qwen3-8B", "none", {"chat_template_kwargs": {"enable_thinking": False}}, ("max_tokens", 16)),
    ("vllm", "openai/gpt-oss-20b", "low", {"chat_template_kwargs": {"enable_thinking": True},
                                           "reasoning_effort": "low"}, ("max_tokens", 16 + 4096)),
    ("ollama", "qwen3:8b", "high", {"reasoning_effort": "high"}, ("max_tokens", 16 + 32768)),
    ("llamacpp", "qwen3", "high", {"chat_template_kwargs": {"enable_thinking": True}}, ("max_tokens", 16 + 32768)),
    ("groq", "openai/gpt-oss-120b", "medium", {"reasoning_effort": "medium"}, ("max_tokens", 16 + 16384)),
]


@pytest.mark.parametrize("provider,name,effort,fragment,limit", EFFORTS, ids=[f"{e[0]}-{e[2]}" for e in EFFORTS])
def test_each_preset_spells_effort_its_own_way(evalkit, start_server, provider, name, effort, fragment, limit):
    server = start_server([{"match": "capital of France", "reply": "Paris"}])
    key_var = EXPECTED[provider][0]
    env = clean_env(**({key_var: fake_key(f"test-{provider}-")} if key_var else {}))
    res = evalkit("run", str(CAPITALS), "--model", f"{provider}/{name}", "--base-url", server.url,
                  "--reasoning-effort", effort, "--json", "--quiet", env=env)
    assert res.returncode == 0, res.stderr
    sent = bodies(server)
    assert len(sent) == 5
    for body in sent:
        assert {k: body[k] for k in fragment} == fragment
        assert body[limit[0]] == limit[1]
    refused = provider == "openai" or (provider in ("anthropic", "deepseek") and effort != "none")
    assert all(("temperature" in b) == (not refused) for b in sent)   # refused always, or while thinking
    assert json.loads(res.stdout)["metrics"]["accuracy"]["value"] == 0.2


def test_effort_and_fields_a_model_cannot_take_are_refused_before_sending(evalkit, start_server):
    server = start_server([{"match": "capital of France", "reply": "Paris"}])
    base = ["run", str(CAPITALS), "--base-url", server.url]
    env = clean_env(TOGETHER_API_KEY=fake_key("test-together-"))
    line = one_line_error(evalkit(*base, "--model", "together/m", "--reasoning-effort", "high", env=env))
    assert "--reasoning-effort high" in line and "no such control" in line
    line = one_line_error(evalkit(*base, "--model", "openai/gpt-5-mini", "--reasoning-effort", "max"))
    assert "it takes none, minimal, low, medium, high, xhigh" in line
    line = one_line_error(evalkit(*base, "--model", "openai/o3", "--temperature", "0.5"))
    assert "--temperature" in line and "refuses" in line
    line = one_line_error(evalkit("run", "mmlu.anatomy", "--model", "openai/gpt-5-mini", "--base-url", server.url,
                                  "--answer-by", "logprob"))
    assert "log-probabilities" in line
    line = one_line_error(evalkit("run", "mmlu.anatomy", "--model", "openai/o4-mini", "--base-url", server.url,
                                  "--logprobs"))
    assert "log-probabilities" in line
    assert bodies(server) == []


@pytest.mark.parametrize("think_in", ["inline", "reasoning", "reasoning_content"])
def test_thinking_is_never_scored_mmlu(evalkit, start_server, data_dir, tmp_path, think_in):
    answers, expected = mmlu_key(data_dir)
    server = start_server(answers, think_tokens=40, think_in=think_in, think_text=THINK)
    res, s = run_mmlu(evalkit, server, tmp_path, "openai/qwen3", "--max-tokens", "64", "--log-reasoning")
    assert res.returncode == 0, res.stderr
    log = read_jsonl(s["log"])
    got = scored(log)
    assert got == {k: expected.get(k, 0.0) for k in got} and len(got) == 24
    samples = [r for r in log if r.get("type") == "sample"]
    assert all("Answer: A" in r["reasoning"] and "Answer: A" not in r["completion"] for r in samples)
    assert all(("raw_completion" in r) == (think_in == "inline") for r in samples)


@pytest.mark.parametrize("think_in", ["inline", "reasoning_content"])
def test_thinking_is_never_scored_gsm8k(evalkit, start_server, data_dir, tmp_path, think_in):
    rows = [json.loads(x) for x in (data_dir / "gsm8k" / "test.jsonl").read_text().splitlines()]
    train = [json.loads(x) for x in (data_dir / "gsm8k" / "train.jsonl").read_text().splitlines()]
    ok = identifiable([r["question"] for r in rows], [r["question"] for r in rows + train])
    gold = {r["question"]: r["answer"].rsplit("####", 1)[1].strip().replace(",", "") for r in rows}
    answers = [{"match": q, "reply": f"Step by step.\nThe answer is {gold[q] if i % 2 else int(gold[q]) + 1}."}
               for i, q in enumerate(sorted(ok))]
    right = {q for i, q in enumerate(sorted(ok)) if i % 2}
    server = start_server(answers, think_tokens=40, think_in=think_in, think_text=THINK, tail_after="Question:")
    res = evalkit("run", "gsm8k", "--model", "openai/m", "--base-url", server.url, "--limit", "16", "--json",
                  "--quiet", "--log-dir", str(tmp_path / "logs"), "--log-prompts")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    samples = [r for r in read_jsonl(s["log"]) if r.get("type") == "sample"]
    asked = [r["messages"][-1]["content"].rsplit("Question: ", 1)[1].rsplit("\nAnswer:", 1)[0] for r in samples]
    want = [1.0 if q in right else 0.0 for q in asked]
    assert [r["score"] for r in samples] == want and s["errors"] == 0
    assert all("123456789" not in r["completion"] for r in samples)


def test_thinking_is_never_scored_exam(evalkit, start_server, data_dir, tmp_path):
    from test_exams import _key

    rows = [json.loads(line) for line in (data_dir / "agieval" / "v1" / "sat-math.jsonl").read_text().splitlines()]
    answers, right, _ = _key(rows, lambda i: i % 4 != 0)
    server = start_server(answers, default_reply="no idea", tail_after="Problem 4. ", think_tokens=20,
                          think_in="inline", think_text="The answer is therefore [A].")
    res = evalkit("run", "sat-math", "--model", "openai/m", "--base-url", server.url, "--json", "--quiet",
                  "--log-dir", str(tmp_path / "logs"))
    assert res.returncode == 0, res.stderr
    sec = json.loads(res.stdout)["sections"][0]
    assert (sec["n"], sec["correct"]) == (220, right) == (220, 165)


def test_cut_off_replies_are_truncated_not_answers_and_resume_on_request(evalkit, start_server, data_dir, tmp_path):
    answers, expected = mmlu_key(data_dir)
    server = start_server(answers, reasoning_strict=True, think_tokens=100, think_text=THINK)
    res, s = run_mmlu(evalkit, server, tmp_path, "openai/gpt-5-mini", "--max-reasoning-tokens", "50", limit="6")
    assert res.returncode == 1
    assert (s["errors"], s["truncated"], s["scored"]) == (0, 6, 6) and s["metrics"]["accuracy"]["value"] == 0.0
    assert "6 were truncated by the token limit (scored 0: no answer)" in res.stderr
    assert sorted(s["truncated_ids"]) == sorted(r["id"] for r in read_jsonl(s["log"]) if r.get("type") == "sample")
    log = read_jsonl(s["log"])
    samples = [r for r in log if r.get("type") == "sample"]
    assert all(r["score"] == 0.0 and "error" not in r and "extracted" not in r and
               r["truncated"].startswith("truncated: the limit cut the reply, used all 82 tokens, "
                                                        "82 of them reasoning; raise --max-reasoning-tokens") for r in samples)
    # a rerun keeps them truncated (nothing sent) ...
    before = len(bodies(server))
    res, s = run_mmlu(evalkit, server, tmp_path, "openai/gpt-5-mini", "--max-reasoning-tokens", "50", limit="6")
    assert res.returncode == 1 and len(bodies(server)) == before and s["truncated"] == 6
    # ... and a larger budget with --retry-truncated answers them, in the same log
    res, s2 = run_mmlu(evalkit, server, tmp_path, "openai/gpt-5-mini", "--max-reasoning-tokens", "200",
                       "--retry-truncated", limit="6")
    assert res.returncode == 0, res.stderr
    assert s2["log"] == s["log"] and (s2["truncated"], s2["errors"], s2["scored"]) == (0, 0, 6)
    assert s2["requests"]["resumed_samples"] == 0
    assert len(bodies(server)) == before + 6
    assert scored(read_jsonl(s2["log"])) == {k: expected.get(k, 0.0) for k in scored(read_jsonl(s2["log"]))}


def test_an_unclosed_think_block_is_truncated(evalkit, start_server, data_dir, tmp_path):
    answers, _ = mmlu_key(data_dir)
    server = start_server(answers, think_tokens=100, think_in="inline", think_text=THINK)
    res, s = run_mmlu(evalkit, server, tmp_path, "openai/qwen3", "--max-tokens", "60", "--fail-on-error", "10",
                      limit="4")
    assert res.returncode == 0 and (s["truncated"], s["scored"], s["errors"]) == (4, 4, 0)   # allowed: 10
    assert s["metrics"]["accuracy"]["value"] == 0.0
    samples = [r for r in read_jsonl(s["log"]) if r.get("type") == "sample"]
    assert all(r["truncated"].startswith("truncated: the thinking never closed (<think> without its closing tag)")
               for r in samples)
    assert all("raw_completion" not in r and r["completion"] == "" and r["reasoning_chars"] > 0 for r in samples)


def test_usage_cost_and_dry_run_match_hand_computation(evalkit, start_server, data_dir, tmp_path):
    answers, _ = mmlu_key(data_dir)
    server = start_server(answers, reasoning_strict=True, think_tokens=30, think_text=THINK, cached_tokens=100)
    res, s = run_mmlu(evalkit, server, tmp_path, "openai/gpt-5-mini", "--reasoning-effort", "high", limit="8")
    assert res.returncode == 0, res.stderr
    samples = [r for r in read_jsonl(s["log"]) if r.get("type") == "sample"]
    usage = [r["usage"] for r in samples]
    assert all(u["reasoning_tokens"] == 60 and u["cached_tokens"] == min(100, u["prompt_tokens"]) for u in usage)
    assert s["usage"]["reasoning_tokens"] == 8 * 60
    assert s["usage"]["cached_tokens"] == sum(u["cached_tokens"] for u in usage)
    prompt, cached, out = (sum(u[k] for u in usage) for k in ("prompt_tokens", "cached_tokens", "completion_tokens"))
    cost = ((prompt - cached) * 0.25 + cached * 0.025 + out * 2.00) / 1e6     # gpt-5-mini: input, cached, output
    assert s["cost_usd"]["all_samples"] == pytest.approx(cost, rel=1e-9)
    assert sum(r["cost_usd"] for r in samples) == pytest.approx(cost, rel=1e-9)
    dry = evalkit("run", "mmlu.anatomy", "--model", "openai/gpt-5-mini", "--limit", "8", "--reasoning-effort",
                  "high", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    d = json.loads(dry.stdout)
    assert d["reasoning_budget_per_sample"] == 32768 and d["max_completion_tokens"] == 8 * (32 + 32768)
    p = d["prompt_tokens"]
    assert d["estimated_cost_usd"]["no_reasoning"] == pytest.approx((p * 0.25 + 8 * 32 * 2.0) / 1e6)
    assert d["estimated_cost_usd"]["worst_case"] == pytest.approx((p * 0.25 + 8 * (32 + 32768) * 2.0) / 1e6)
    assert any("reasoning" in u for u in d["unknown"])
    text = evalkit("run", "mmlu.anatomy", "--model", "openai/gpt-5-mini", "--limit", "8", "--reasoning-effort",
                   "high", "--dry-run")
    assert "of which reasoning at most 32,768 per sample" in text.stdout


def test_extra_body_reaches_the_body_and_the_run_identity(evalkit, start_server, tmp_path):
    server = start_server([{"match": "capital of France", "reply": "Paris"}])
    base = ["run", str(CAPITALS), "--model", "openai/m", "--base-url", server.url, "--json", "--quiet",
            "--log-dir", str(tmp_path / "logs")]
    plain = json.loads(evalkit(*base).stdout)
    extra = '{"top_k": 5, "chat_template_kwargs": {"enable_thinking": false}}'
    res = evalkit(*base, "--extra-body", extra)
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["log"] != plain["log"] and s["requests"]["cached"] == 0 and s["requests"]["sent"] == 5
    sent = bodies(server)[5:]
    assert all(b["top_k"] == 5 and b["chat_template_kwargs"] == {"enable_thinking": False} for b in sent)
    again = json.loads(evalkit(*base, "--extra-body", extra).stdout)
    assert again["requests"]["sent"] == 0 and again["requests"]["resumed_samples"] == 5
    for bad, says in [("{nope", "not JSON"), ("[1, 2]", "must be a JSON object"), ('{"model": "x"}', "model: evalkit"),
                      ('"x"', "must be a JSON object")]:
        line = one_line_error(evalkit(*base, "--extra-body", bad))
        assert says in line, line


def test_the_batch_api_gets_the_same_bodies(evalkit, start_server, data_dir, tmp_path):
    answers, expected = mmlu_key(data_dir)
    server = start_server(answers, reasoning_strict=True, think_tokens=30, think_text=THINK)
    res, s = run_mmlu(evalkit, server, tmp_path, "openai/gpt-5-mini", "--batch", "--batch-poll", "0.05",
                      "--reasoning-effort", "low", limit="8")
    assert res.returncode == 0, res.stderr
    got = scored(read_jsonl(s["log"]))
    assert got == {k: expected.get(k, 0.0) for k in got} and len(got) == 8
    assert s["usage"]["reasoning_tokens"] == 8 * 15 and server.stats().get("refused", 0) == 0
    uploads = [r for r in server.requests() if r["path"].endswith("/files")]
    assert uploads     # the request lines went up as a file; their bodies are checked by the server's refusals
    report = evalkit("report", s["log"])
    assert report.returncode == 0 and "reasoning" in report.stdout


def test_a_log_from_before_reasoning_fields_still_reads(evalkit, tmp_path):
    header = {"type": "header", "run_key": "0" * 64, "eval": "capitals", "model": "openai/m", "endpoint": "x",
              "sampling": {"temperature": 0.0, "max_tokens": 16, "top_p": None, "stop": [], "seed": 0,
                           "top_logprobs": 0}, "options": None, "seed": 0, "limit": None, "spec": {},
              "versions": {"evalkit": "0.1.0"}}
    samples = [{"type": "sample", "id": str(i), "completion": "Paris", "finish_reason": "stop",
                "usage": {"prompt_tokens": 10, "completion_tokens": 2}, "score": float(i % 2), "attempts": 1}
               for i in range(6)]
    log = tmp_path / "old.jsonl"
    log.write_text("".join(json.dumps(x) + "\n" for x in [header, *samples]))
    res = evalkit("report", str(log))
    assert res.returncode == 0, res.stderr
    res = evalkit("compare", str(log), str(log), "--json")
    assert res.returncode == 0, res.stderr


def test_a_users_providers_file_adds_model_rules(evalkit, start_server, tmp_path):
    reg = tmp_path / "reg"
    reg.mkdir()
    (reg / "providers.yaml").write_text(
        "openai:\n  models:\n    - match: [my-reasoner*]\n      reasoning: true\n"
        "      token_limit: max_completion_tokens\n      refuses: [temperature]\n"
        "      effort: {high: {reasoning_effort: high}}\n"
        "      source: {url: https://example.org/ours, checked: 2026-12-07}\n")
    env = {"EVALKIT_REGISTRY": str(reg)}
    rows = [json.loads(x) for x in evalkit("providers", "--json", env=env).stdout.splitlines()]
    openai = next(r for r in rows if r["name"] == "openai")
    assert [m["match"] for m in openai["models"]] == [["my-reasoner*"], ["gpt-5*", "o1*", "o3*", "o4*"]]
    server = start_server([{"match": "capital of France", "reply": "Paris"}], reasoning_strict=True)
    res = evalkit("run", str(CAPITALS), "--model", "openai/my-reasoner-1", "--base-url", server.url,
                  "--reasoning-effort", "high", "--max-reasoning-tokens", "100", "--json", "--quiet", env=env)
    assert res.returncode == 0, res.stderr
    assert all(b["max_completion_tokens"] == 116 and "temperature" not in b and b["reasoning_effort"] == "high"
               for b in bodies(server))
    (reg / "providers.yaml").write_text("nosuch:\n  models:\n    - match: ['*']\n"
                                        "      source: {url: https://example.org/x, checked: 2026-12-07}\n")
    line = one_line_error(evalkit("providers", env=env), code=2)
    assert "nosuch" in line and "no provider 'nosuch'" in line


def test_truncated_replies_survive_shards_merge_and_report(evalkit, start_server, data_dir, tmp_path):
    answers, _ = mmlu_key(data_dir)
    server = start_server(answers, think_tokens=100, think_in="reasoning", think_text=THINK)
    logs = []
    for shard in ("1/2", "2/2"):
        res, s = run_mmlu(evalkit, server, tmp_path, "openai/qwen3", "--max-tokens", "20", "--shard", shard,
                          "--max-reasoning-tokens", "10", limit="8")
        assert res.returncode == 1 and s["truncated"] == s["n"] > 0 and s["errors"] == 0
        logs.append(s["log"])
    res = evalkit("merge", *logs, "--log-dir", str(tmp_path / "merged"), "--json")
    merged = json.loads(res.stdout)
    assert (merged["truncated"], merged["errors"], merged["n"]) == (8, 0, 8), res.stderr
    assert res.returncode == 1 and "8 were truncated by the token limit" in res.stderr
    report = evalkit("report", *logs)
    assert report.returncode == 0 and "replies truncated by the token limit" in report.stdout
    text = evalkit("run", "mmlu.anatomy", "--model", "openai/qwen3", "--base-url", server.url, "--limit", "8",
                   "--max-tokens", "20", "--max-reasoning-tokens", "10", "--log-dir", str(tmp_path / "logs"))
    assert "errors=0  truncated=8" in text.stdout and "(240 reasoning)" in text.stdout


def test_a_spec_sets_extra_body_and_the_flag_wins(evalkit, start_server, tmp_path):
    import shutil

    shutil.copy(CAPITALS.parent / "capitals.jsonl", tmp_path / "capitals.jsonl")
    text = CAPITALS.read_text().replace("generation: {temperature: 0, max_tokens: 16}",
                                        "generation: {temperature: 0, max_tokens: 16, extra_body: {top_k: 3, "
                                        "chat_template_kwargs: {enable_thinking: true}}}")
    spec = tmp_path / "capitals.yaml"
    spec.write_text(text)
    server = start_server([{"match": "capital of France", "reply": "Paris"}])
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--quiet",
                  "--extra-body", '{"chat_template_kwargs": {"enable_thinking": false}}')
    assert res.returncode == 0, res.stderr
    assert all(b["top_k"] == 3 and b["chat_template_kwargs"] == {"enable_thinking": False} for b in bodies(server))
    spec.write_text(text.replace("extra_body: {top_k: 3,", "extra_body: {messages: [], top_k: 3,"))
    res = evalkit("validate", str(spec))
    assert res.returncode == 1 and f"{spec}:" in res.stdout + res.stderr and "messages: evalkit sets these itself" \
        in res.stdout + res.stderr


def test_a_thinking_grader_is_judged_by_its_verdict(evalkit, start_server, tmp_path):
    from test_graders import CLASS_OF, INVALID, PROMPTS, refusal_key

    server = start_server(refusal_key(), default_reply="???", think_tokens=12, think_in="inline",
                          think_text="C is the class, surely C.")
    # its 3 invalid grades count against --fail-on-error (issue 24), so the test allows them
    res = evalkit("run", "refusals", "--model", "openai/cand", "--grader-model", "openai/judge", "--base-url",
                  server.url, "--json", "--quiet", "--log-dir", str(tmp_path / "logs"), "--fail-on-error", "3")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    valid = [p for p in PROMPTS if p["id"] not in INVALID]
    for c in "ABCD":
        want = sum(CLASS_OF[p["id"]] == c for p in valid) / 24
        assert s["metrics"][f"choice/{c}"]["value"] == pytest.approx(want, abs=1e-6)
    assert s["grader"]["invalid"] == 3


@pytest.mark.parametrize("wrap", ["<think>The tag <think> opens it.</think> Answer: A.</think>\n{r}",
                                  "<thinking>a <think>b</thinking> Answer: A.</think>\n{r}",
                                  "<THINK>Answer: A</Think>\n{r}", "Answer: A.</think>\n\n{r}"])
def test_nested_interleaved_and_capitalised_tags_never_leak(evalkit, start_server, data_dir, tmp_path, wrap):
    answers, expected = mmlu_key(data_dir)
    server = start_server([{**a, "reply": wrap.format(r=a["reply"])} for a in answers])
    res, s = run_mmlu(evalkit, server, tmp_path, "openai/qwen3", limit="12")
    assert res.returncode == 0, res.stderr
    got = scored(read_jsonl(s["log"]))
    assert got == {k: expected.get(k, 0.0) for k in got} and len(got) == 12


def test_thinking_stays_out_of_the_log_without_log_reasoning(evalkit, start_server, data_dir, tmp_path):
    answers, _ = mmlu_key(data_dir)
    server = start_server(answers, think_tokens=40, think_in="inline", think_text="SECRETTHOUGHT")
    res, s = run_mmlu(evalkit, server, tmp_path, "openai/qwen3", "--max-tokens", "64", limit="4")
    assert res.returncode == 0, res.stderr
    assert "SECRETTHOUGHT" not in Path(s["log"]).read_text()
    samples = [r for r in read_jsonl(s["log"]) if r.get("type") == "sample"]
    assert all(r["reasoning_chars"] > 0 and "reasoning" not in r for r in samples)


def test_usage_parts_larger_than_their_whole_are_not_believed(evalkit, start_server, data_dir, tmp_path):
    answers, _ = mmlu_key(data_dir)
    server = start_server(answers, usage_lies=True)
    res, s = run_mmlu(evalkit, server, tmp_path, "openai/gpt-4o-mini", limit="4")
    assert res.returncode == 0, res.stderr
    u = s["usage"]
    assert (u["reasoning_tokens"], u["cached_tokens"], u["invalid"]) == (0, 0, 4)
    samples = [r for r in read_jsonl(s["log"]) if r.get("type") == "sample"]
    cost = sum((r["usage"]["prompt_tokens"] * 0.15 + r["usage"]["completion_tokens"] * 0.60) / 1e6 for r in samples)
    assert s["cost_usd"]["all_samples"] == pytest.approx(cost, rel=1e-9)


def test_extra_body_without_a_json_spelling_is_one_line(evalkit, tmp_path):
    for bad, says in [('{"a": NaN}', "NaN or an infinite number"), ('{"a": 1e999}', "NaN or an infinite number"),
                      ('{"a": "\\ud800"}', "lone surrogate")]:
        line = one_line_error(evalkit("run", str(CAPITALS), "--model", "openai/m", "--extra-body", bad, "--dry-run"))
        assert says in line, line


def test_a_smaller_reasoning_budget_is_another_run(evalkit, start_server, data_dir, tmp_path):
    answers, _ = mmlu_key(data_dir)
    server = start_server(answers, reasoning_strict=True, think_tokens=100, think_text=THINK)
    res, s = run_mmlu(evalkit, server, tmp_path, "openai/gpt-5-mini", "--max-reasoning-tokens", "1000", limit="4")
    assert res.returncode == 0 and s["metrics"]["accuracy"]["value"] is not None, res.stderr
    sent = len(bodies(server))
    res, _ = run_mmlu(evalkit, server, tmp_path, "openai/gpt-5-mini", "--max-reasoning-tokens", "50", limit="4")
    line = one_line_error(res)
    assert "reasoning budget of 1,000 tokens and this command allows 50" in line
    assert len(bodies(server)) == sent


def test_a_changed_model_rule_is_not_answered_from_the_cache_or_the_log(evalkit, start_server, data_dir, tmp_path):
    answers, expected = mmlu_key(data_dir)
    server = start_server(answers, think_tokens=100, think_text=THINK)
    res, s = run_mmlu(evalkit, server, tmp_path, "openai/my-reasoner", limit="4")
    assert s["truncated"] == 4                       # no rule: no reasoning budget, all cut off
    reg = tmp_path / "reg"
    reg.mkdir()
    (reg / "providers.yaml").write_text("openai:\n  models:\n    - match: [my-reasoner]\n      reasoning: true\n"
                                        "      source: {url: https://example.org/ours, checked: 2026-12-07}\n")
    res = evalkit("run", "mmlu.anatomy", "--model", "openai/my-reasoner", "--base-url", server.url, "--limit", "4",
                  "--json", "--quiet", "--log-dir", str(tmp_path / "logs"), env={"EVALKIT_REGISTRY": str(reg)})
    s2 = json.loads(res.stdout)
    assert res.returncode == 0, res.stderr
    assert (s2["requests"]["sent"], s2["requests"]["cached"], s2["truncated"]) == (4, 0, 0)
    assert s2["log"] != s["log"]


def test_temperature_while_thinking_is_refused_and_kept_when_thinking_is_off(evalkit, start_server):
    server = start_server([{"match": "capital of France", "reply": "Paris"}])
    env = clean_env(ANTHROPIC_API_KEY=fake_key("test-anthropic-"), DEEPSEEK_API_KEY=fake_key("test-deepseek-"))
    base = ["run", str(CAPITALS), "--base-url", server.url, "--quiet"]
    line = one_line_error(evalkit(*base, "--model", "anthropic/claude-x", "--reasoning-effort", "high",
                                  "--temperature", "0.3", env=env))
    assert "takes no temperature while it thinks" in line
    res = evalkit(*base, "--model", "deepseek/deepseek-chat", "--reasoning-effort", "none", "--temperature", "0.3",
                  env=env)
    assert res.returncode == 0, res.stderr
    assert all(b["temperature"] == 0.3 and b["max_tokens"] == 16 and b["thinking"] == {"type": "disabled"}
               for b in bodies(server))


def test_a_truncated_reply_loses_its_pair_without_a_judge(evalkit, start_server, tmp_path):
    from test_graders import PROMPTS

    key = []
    for p in PROMPTS:
        key.append({"model": "alpha", "match": p["prompt"], "reply": f"A thorough answer <think>but wait {p['id']}"})
        key.append({"model": "beta", "match": p["prompt"], "reply": f"BETA-{p['id']} answer"})
    server = start_server(key, default_reply="1")          # the judge would pick the first shown
    res = evalkit("run", "refusals", "--model", "openai/alpha", "--versus", "openai/beta", "--grader-model",
                  "openai/judge", "--base-url", server.url, "--json", "--quiet", "--log-dir", str(tmp_path / "logs"),
                  "--fail-on-error", "100")
    s = json.loads(res.stdout.strip().splitlines()[-1])
    assert (s["wins"], s["losses"], s["truncated"]) == (0, 24, 24) and s["metrics"]["win_rate"]["value"] == 0.0
    judged = [r for r in read_jsonl(s["logs"]["pairwise"]) if r["type"] == "sample"]
    assert len(judged) == 24 and all(r["grader"] == {"winner": "B", "truncated": "A", "judged": False} for r in judged)
