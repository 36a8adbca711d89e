"""The macro interval of a real MMLU run through the CLI (the simulations are in tests/unit/test_metrics_intervals.py)."""

from __future__ import annotations

import json


def test_a_small_mmlu_run_prints_an_honest_macro_interval(evalkit, start_server):
    server = start_server([], default_reply="B")
    res = evalkit("run", "mmlu", "--model", "openai/m", "--base-url", server.url, "--limit", "100", "--json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    micro, macro = s["metrics"]["accuracy"]["ci95"], s["metrics"]["macro_accuracy"]["ci95"]
    assert s["metrics"]["macro_accuracy"]["groups"] > 30
    assert macro[1] - macro[0] >= micro[1] - micro[0]        # fewer samples per group: not narrower
