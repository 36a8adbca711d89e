"""The local backend on the real Gemma 3 270M model (from PyPI), offline, through the CLI."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, read_jsonl

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    """One cache folder for the module: the first run converts the GGUF, later runs reuse it."""
    return tmp_path_factory.mktemp("local-cache")


def run(evalkit, model_cache, *args):
    res = evalkit("run", *args, "--model", "local/gemma-3-270m", "--json",
                  env={**OFFLINE, "EVALKIT_CACHE_DIR": str(model_cache)})
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def test_mmlu_by_logprob_is_a_distribution_and_deterministic(evalkit, model_cache, tmp_path):
    args = ["mmlu", "--limit", "6", "--shots", "1", "--answer-by", "logprob", "--no-cache"]
    first = run(evalkit, model_cache, *args, "--log-dir", str(tmp_path / "a"))
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


def test_generation_returns_text(evalkit, model_cache):
    s = run(evalkit, model_cache, str(ROOT / "data" / "examples" / "capitals.yaml"), "--max-tokens", "6", "--no-cache")
    recs = [r for r in read_jsonl(s["log"]) if r["type"] == "sample"]
    assert len(recs) == 5 and all(isinstance(r["completion"], str) and r["completion"].strip() for r in recs)
    assert all(0 < r["usage"]["completion_tokens"] <= 6 for r in recs)


def test_missing_model_is_a_clear_error(evalkit, tmp_path):
    res = evalkit("run", "mmlu", "--model", f"local/{tmp_path}/missing.gguf", "--limit", "1")
    assert res.returncode == 2 and "no such model file or folder" in res.stderr and "Traceback" not in res.stderr
