"""The local backend on the real Gemma 3 270M model (from PyPI), offline, through the CLI."""

from __future__ import annotations

import json

import pytest

import re

from conftest import ROOT, read_jsonl

pytestmark = pytest.mark.xdist_group("local-model")    # one worker converts the model once for all

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
SUBJECTS = ["mmlu.anatomy", "mmlu.astronomy"]      # real 5-shot MMLU items, two few-shot prefixes


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    """One cache folder for the module: the first run converts the GGUF, later runs reuse it."""
    return tmp_path_factory.mktemp("local-cache")


def run_all(evalkit, model_cache, *args, env=None) -> list[dict]:
    res = evalkit("run", *args, "--model", "local/gemma-3-270m", "--json",
                  env={**OFFLINE, "EVALKIT_CACHE_DIR": str(model_cache), **(env or {})})
    assert res.returncode == 0, res.stderr[-3000:]
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def run(evalkit, model_cache, *args, env=None) -> dict:
    return run_all(evalkit, model_cache, *args, env=env)[0]


def samples(summaries: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for s in summaries for r in read_jsonl(s["log"]) if r["type"] == "sample"}


def test_mmlu_by_logprob_is_a_distribution_and_deterministic(evalkit, model_cache, tmp_path):
    args = ["mmlu", "--limit", "6", "--shots", "1", "--answer-by", "logprob", "--no-cache"]
    converting = not any(model_cache.rglob("model.safetensors"))      # the module's first load
    res = evalkit("run", *args, "--log-dir", str(tmp_path / "a"), "--model", "local/gemma-3-270m", "--json",
                  env={**OFFLINE, "EVALKIT_CACHE_DIR": str(model_cache), "EVALKIT_PROGRESS_SECONDS": "2"})
    assert res.returncode == 0, res.stderr[-3000:]
    first = json.loads(res.stdout)
    if converting:     # what a new user's first run says while it converts (minutes on a busy machine)
        err = res.stderr.splitlines()
        assert err[0] == ("evalkit: mmlu: converting gemma-3-270m-q4_k_m.gguf to float32 (first use, cached for "
                          "next time; this can take minutes)"), err[:3]
        # timing-free: how many seconds a busy machine took is not the point (it printed 3s for 2s)
        assert re.fullmatch(r"evalkit: mmlu: local/gemma-3-270m: still getting ready, \d+s so far", err[1]), err[:3]
        assert any(" loaded in " in line for line in err)
    second = run(evalkit, model_cache, *args, "--log-dir", str(tmp_path / "b"))
    assert first["scored"] == 6 and first["unparsed"] == 0
    assert first["backend"]["prompt_format"].startswith("plain")
    assert "converted cache" in second["backend"]["loaded_from"]          # the second load skips the GGUF
    recs = [sorted((r for r in read_jsonl(s["log"]) if r["type"] == "sample"), key=lambda r: r["id"])
            for s in (first, second)]
    for r in recs[0]:
        assert set(r["option_probs"]) == {"A", "B", "C", "D"}
        assert sum(r["option_probs"].values()) == pytest.approx(1.0, abs=1e-4)
        assert 0 <= r["missing_mass"] < 0.5 and r["extracted"] == max(r["option_probs"], key=r["option_probs"].get)
    assert [(r["id"], r["extracted"], r["option_probs"]) for r in recs[0]] == \
           [(r["id"], r["extracted"], r["option_probs"]) for r in recs[1]]
    assert first["metrics"] == second["metrics"] and first["calibration"]["ece"] is not None


def test_prefix_reuse_keeps_option_probabilities(evalkit, model_cache, tmp_path):
    """5-shot MMLU by log-probability three ways on the same real items: every prompt whole, one at
    a time (reuse off, batch 1: the plain forward pass); with prefix reuse and batching (default);
    and with a prefix budget so small that states are evicted all the time."""
    args = [*SUBJECTS, "--limit", "4", "--answer-by", "logprob", "--no-cache"]
    plain = run_all(evalkit, model_cache, *args, "--concurrency", "1", "--log-dir", str(tmp_path / "plain"),
                    env={"EVALKIT_LOCAL_PREFIX_MB": "0"})
    reused = run_all(evalkit, model_cache, *args, "--log-dir", str(tmp_path / "reused"))
    tight = run_all(evalkit, model_cache, *args, "--log-dir", str(tmp_path / "tight"),
                    env={"EVALKIT_LOCAL_PREFIX_MB": "12"})
    base = samples(plain)
    assert len(base) == 8
    for other in (reused, tight):
        got = samples(other)
        assert got.keys() == base.keys()
        for sid, r in base.items():
            assert got[sid]["extracted"] == r["extracted"], sid
            for label, p in r["option_probs"].items():
                assert got[sid]["option_probs"][label] == pytest.approx(p, abs=1e-4), (sid, label)
    off = [s["backend"]["prefix_reuse"] for s in plain]
    on = [s["backend"]["prefix_reuse"] for s in reused]
    assert all(not o["on"] and o["reused_tokens"] == 0 and o["padding_tokens"] == 0 for o in off)
    for o, p in zip(on, off):     # per subject: the 5-shot prefix ran once, not four times
        assert o["on"] and o["reused_tokens"] > o["computed_tokens"]
        assert o["computed_tokens"] < p["computed_tokens"] / 2
    first, later = reused[0]["backend"], reused[1]["backend"]     # one load serves both evals of the run
    assert first["load_seconds"] > 0 and "loaded" not in first
    assert later["load_seconds"] == 0.0 and later["loaded"] == "for an earlier eval of this run"
    assert all(s["backend"]["prefix_reuse"]["evicted"] > 0 for s in tight)
    assert all(s["backend"]["prefix_reuse"]["kept_mb"] <= 12 for s in tight)


def _capitals(tmp_path, stop: list[str]) -> str:
    """capitals.jsonl behind a long shared instruction (a prefix worth reusing), greedy, 24 tokens."""
    spec = tmp_path / f"capitals{len(stop)}.yaml"
    spec.write_text(json.dumps({"capitals-long": {
        "template": "match",
        "dataset": {"format": "jsonl", "path": str(ROOT / "data" / "examples" / "capitals.jsonl"), "split": "test",
                    "fields": {"id": "id", "question": "question", "answer": "answer"}},
        "prompt": {"system": "You are a geography tutor. Read the question, think about the country it names, "
                             "and reply with the name of its capital city only, nothing else.",
                   "template": "{question}"},
        "generation": {"temperature": 0, "max_tokens": 24, "stop": stop},
        "scoring": {"method": "includes"}}}), encoding="utf-8")
    return str(spec)


def test_generation_reuses_the_prefix_and_stops_at_a_stop_string(evalkit, model_cache, tmp_path):
    plain = run(evalkit, model_cache, _capitals(tmp_path, []), "--no-cache", "--concurrency", "1",
                "--log-dir", str(tmp_path / "plain"), env={"EVALKIT_LOCAL_PREFIX_MB": "0"})
    reused = run(evalkit, model_cache, _capitals(tmp_path, []), "--no-cache", "--log-dir", str(tmp_path / "reused"))
    stopped = run(evalkit, model_cache, _capitals(tmp_path, ["?"]), "--no-cache", "--log-dir", str(tmp_path / "stop"))
    base, same, cut = samples([plain]), samples([reused]), samples([stopped])
    assert len(base) == 5 and all(r["completion"].strip() for r in base.values())
    assert {k: r["completion"] for k, r in same.items()} == {k: r["completion"] for k, r in base.items()}
    assert reused["backend"]["prefix_reuse"]["reused_tokens"] > 0
    assert plain["backend"]["prefix_reuse"]["reused_tokens"] == 0
    early = 0
    for sid, r in base.items():
        assert r["usage"]["completion_tokens"] == 24 and r["finish_reason"] == "length"
        text, c = r["completion"], cut[sid]
        if "?" in text:                # generation ended at the stop string, not at max_tokens
            assert c["completion"] == text[: text.index("?")] and c["finish_reason"] == "stop"
            assert c["usage"]["completion_tokens"] < 24
            early += 1
        else:
            assert c["completion"] == text
    assert early >= 3                  # this model asks itself another question within 24 tokens


def test_a_prompt_past_the_context_is_that_samples_error(evalkit, model_cache, tmp_path):
    """A hostile dataset line longer than the model's context (32,768 tokens for Gemma 3 270M)
    fails alone, before it reaches the model; the other samples are answered."""
    rows = [{"question": "What is the capital of France?", "answer": "Paris"},
            {"question": "word " * 40_000 + "What is the capital of Italy?", "answer": "Rome"},
            {"question": "What is the capital of Spain?", "answer": "Madrid"}]
    (tmp_path / "long.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "long.yaml").write_text("long:\n  dataset: {format: jsonl, path: ./long.jsonl}\n"
                                        "  generation: {max_tokens: 4}\n  scoring: {method: includes}\n")
    res = evalkit("run", str(tmp_path / "long.yaml"), "--model", "local/gemma-3-270m", "--json", "--no-cache",
                  "--log-dir", str(tmp_path / "logs"), env={**OFFLINE, "EVALKIT_CACHE_DIR": str(model_cache)})
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    s = json.loads(res.stdout)
    assert s["n"] == 3 and s["scored"] == 2 and s["errors"] == 1 and s["incomplete"]
    recs = samples([s])
    assert recs["long/2"]["score"] is None and recs["long/2"]["error"] == (
        "the prompt is 40,008 tokens and 4 more may be generated; the model takes 32,768 in all (its context "
        "length) (local/gemma-3-270m)")
    assert all(recs[k]["completion"] and recs[k].get("error") is None for k in ("long/1", "long/3"))


def test_local_model_says_what_it_does_and_logs_model_time_apart(evalkit, model_cache, tmp_path):
    """Loading (with a line every EVALKIT_PROGRESS_SECONDS while it lasts), then progress lines
    whose in-flight figure is the backend's own (one batch: 64); a sample's model time is the batch
    that answered it, and the wait behind earlier batches is queue time."""
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "EVALKIT_CACHE_DIR": str(model_cache)}
    run(evalkit, model_cache, "mmlu.anatomy", "--limit", "1", "--shots", "0", "--answer-by", "logprob",
        "--no-cache", "--log-dir", str(tmp_path / "warm"))     # the module's model is converted and cached
    res = evalkit("run", "mmlu", "--model", "local/gemma-3-270m", "--limit", "6", "--shots", "3",
                  "--answer-by", "logprob", "--no-cache", "--json", "--log-dir", str(tmp_path / "run"),
                  env={**env, "EVALKIT_PROGRESS_SECONDS": "0.05"})
    assert res.returncode == 0, res.stderr[-3000:]
    err = res.stderr.splitlines()
    assert err[0] == "evalkit: mmlu: loading local/gemma-3-270m"
    loaded = next(i for i, line in enumerate(err) if " loaded in " in line)
    assert err[loaded].startswith("evalkit: mmlu: local/gemma-3-270m loaded in ")
    assert all(line.startswith("evalkit: mmlu: local/gemma-3-270m: still getting ready, ") for line in err[1:loaded])
    progress = [re.match(r"^mmlu: (\d+)/6 .* in-flight (\d+)/(\d+)$", line) for line in err[loaded + 1:]]
    assert progress and all(progress), err
    assert {m.group(3) for m in progress} == {"64"} and progress[-1].group(1) == "6"
    summary = json.loads(res.stdout)
    samples = [r for r in read_jsonl(summary["log"]) if r["type"] == "sample"]
    assert len(samples) == 6 and all(r["model_s"] > 0 and r["queue_s"] >= 0 for r in samples)
    # Batches run one after another: their model times add up to no more than the run took, and
    # the samples answered by later batches waited behind the earlier ones.
    batches = {r["model_s"] for r in samples}
    assert len(batches) >= 2 and sum(batches) <= summary["duration_s"]
    assert max(r["queue_s"] for r in samples) >= min(batches)


def test_missing_model_is_a_clear_error(evalkit, tmp_path):
    res = evalkit("run", "mmlu", "--model", f"local/{tmp_path}/missing.gguf", "--limit", "1")
    assert res.returncode == 2 and "no such model file or folder" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("content", [b"not a model at all" * 1000, b"GGUF\x03\x00\x00\x00cut short"])
def test_a_malformed_gguf_is_one_line_naming_the_file(evalkit, tmp_path, content):
    model = tmp_path / "hostile.gguf"
    model.write_bytes(content)
    res = evalkit("run", "mmlu.anatomy", "--model", f"local/{model}", "--limit", "1", "--log-dir", str(tmp_path / "logs"),
                  env={**OFFLINE, "EVALKIT_CACHE_DIR": str(tmp_path / "cache")})
    assert res.returncode == 2 and "Traceback" not in res.stderr and "internal error" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"evalkit: error: mmlu.anatomy: local/{model}: cannot read {model} as a GGUF model ("), last
    assert not list((tmp_path / "cache").rglob("*.safetensors"))        # nothing half-converted is kept


@pytest.mark.parametrize("budget", ["lots", "-1", "nan", "inf", "1e400"])
def test_bad_prefix_budget_is_one_line(evalkit, budget):
    res = evalkit("run", "mmlu", "--model", "local/gemma-3-270m", "--limit", "1",
                  env={"EVALKIT_LOCAL_PREFIX_MB": budget})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f"evalkit: error: EVALKIT_LOCAL_PREFIX_MB={budget!r}: expected a number of megabytes (0 turns prefix reuse off)"]


def test_the_converted_folder_serves_the_prompts_local_builds(evalkit, model_cache, tmp_path):
    """The converted folder carries a chat template (Gemma 3 270M's GGUF has none: evalkit's plain
    format, marked as such), which turns each logged MMLU prompt into exactly the tokens `local/`
    ran; `local/` itself still says it uses the plain format. GSM8K generation ends at the derived
    stop `\\n\\nQuestion:` instead of running to max_tokens."""
    from transformers import AutoTokenizer

    s = run(evalkit, model_cache, "gsm8k", "--limit", "1", "--shots", "2", "--log-prompts", "--no-cache",
            "--log-dir", str(tmp_path / "logs"))
    assert s["backend"]["prompt_format"].startswith("plain")
    [folder] = [p.parent for p in model_cache.rglob("chat_template.jinja")]
    template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    assert template.startswith("{#- evalkit plain format: the model has no chat template of its own -#}")
    tok = AutoTokenizer.from_pretrained(folder)
    [r] = [r for r in read_jsonl(s["log"]) if r["type"] == "sample"]
    ids = tok.apply_chat_template(r["messages"], tokenize=True, add_generation_prompt=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    assert len(ids) == r["usage"]["prompt_tokens"] and ids[0] == tok.bos_token_id
    assert tok.decode(ids[1:]) == r["messages"][-1]["content"]
    assert r["finish_reason"] == "stop" and r["usage"]["completion_tokens"] < 512, r
    assert "\n\nQuestion:" not in r["completion"] and "raw_completion" not in r
