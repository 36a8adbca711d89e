"""`evalkit predict`: scaling laws fitted to a model family, as the GPT-4 report's Section 3 did.

- Synthetic families whose law is known, generated here: per-problem pass probabilities that
  follow -log p_i(x) = w_i * alpha * (x/x_ref)^-k, sampled n times per problem. The fit recovers
  k and alpha, and over many families (one vectorised call) the forecast's 95% interval holds
  the true value about 95% of the time.
- A published table (Pythia's LAMBADA accuracies, docs/pythia-lambada.csv): the fit on the seven
  smaller models brackets the 12B model's published value.
- The real CLI on logs made against the test server: four "models" whose answer keys differ per
  request seed, so `--samples 6` logs hold pass rates between 0 and 1; the points, the problems
  left out and the refusals are exact.
"""

from __future__ import annotations

import base64
import json
import math
import re

import numpy as np
import pytest

from conftest import ROOT, one_line_error, read_jsonl
from evalkit.analysis.scaling import interval, passrate_law

ALPHA, K, X = 0.3, 0.18, np.array([1e18, 1e19, 1e20, 1e21, 1e22])


def _true_y(x):
    return ALPHA * (np.asarray(x) / X.max()) ** -K


def _conditional_alpha(n: int, rng) -> float:
    """alpha times E[w | every model solved the problem at least once]: the law of the problems
    the fit keeps (the report's subset), by Monte Carlo over the same difficulty distribution."""
    w = rng.gamma(2.0, 0.5, size=400_000)
    solved_all = np.prod(1 - (1 - np.exp(-w[:, None] * _true_y(X)[None, :])) ** n, axis=1)
    return ALPHA * float((w * solved_all).sum() / solved_all.sum())


def test_synthetic_families_recover_the_law_and_the_interval_covers():
    rng = np.random.default_rng(7)
    families, problems, n = 500, 150, 100
    w = rng.gamma(2.0, 0.5, size=(families, 1, problems))            # each problem's difficulty, mean 1
    successes = rng.binomial(n, np.exp(-w * _true_y(X)[None, :, None]))
    law, used = passrate_law(successes, np.full_like(successes, n), X, draws=300, rng=rng)

    left_out = (~used).sum(axis=-1)
    assert 1 < left_out.mean() < 6                 # the "solved by every model" filter binds
    alpha_s = _conditional_alpha(n, rng)
    assert np.median(law.params[:, 1]) == pytest.approx(K, abs=0.004)
    assert np.median(np.exp(law.params[:, 0])) == pytest.approx(alpha_s, rel=0.03)

    at = np.array([1e23])                                              # 10x the largest model
    truth = alpha_s * (at[0] / X.max()) ** -K
    lo, hi = interval(law.curve(at, law.param_draws)[..., 0])
    coverage = float(((lo <= truth) & (truth <= hi)).mean())
    assert 0.925 <= coverage <= 0.975, coverage
    # k's interval covers a little less (92% here): -log(passes/n) overstates -log p most for the
    # smallest models (Jensen), which steepens the fitted slope by about 0.5% at n = 100.
    k_lo, k_hi = interval(law.param_draws[..., 1])
    assert 0.90 <= float(((k_lo <= K) & (K <= k_hi)).mean()) <= 0.97


def _table(tmp_path, rows, name="t.csv"):
    path = tmp_path / name
    path.write_text("eval,model,x,value,se\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def test_a_synthetic_table_recovers_the_loss_law_and_warns_beyond_ten_times(evalkit, tmp_path):
    rng = np.random.default_rng(3)
    xs = np.geomspace(1e18, 1e25, 8)
    truth = 0.2 * (xs / 1e25) ** -0.2 + 0.15
    rows = [("lm", f"m{i}", f"{x:.6g}", round(float(v + rng.normal(0, 0.004)), 6), 0.004)
            for i, (x, v) in enumerate(zip(xs, truth))]
    res = evalkit("predict", "--points", str(_table(tmp_path, rows)), "--lower-is-better", "--at", "3e26", "--json")
    assert res.returncode == 0, res.stderr
    fit = json.loads(res.stdout)["fits"][0]
    for name, value in (("a", 0.2), ("b", -0.2), ("c", 0.15)):
        lo, hi = fit["parameters"][name]["ci95"]
        assert lo <= value <= hi, (name, fit["parameters"][name])
    p = fit["prediction"]
    assert p["ratio"] == pytest.approx(30.0)
    assert p["ci95"][0] <= 0.2 * 30 ** -0.2 + 0.15 <= p["ci95"][1]
    assert any("30x the largest x fitted, beyond 10x" in w for w in fit["warnings"])
    assert "30x the largest x fitted" in res.stderr and "Traceback" not in res.stderr


def test_pythia_lambada_12b_is_inside_the_interval_fitted_on_the_smaller_seven(evalkit):
    table = ROOT / "docs" / "pythia-lambada.csv"
    res = evalkit("predict", "--points", str(table), "--hold-out", "--json")
    assert res.returncode == 0, res.stderr
    fit = json.loads(res.stdout)["fits"][0]
    assert fit["eval"] == "lambada_openai"
    assert [p["model"] for p in fit["points"]][-1] == "pythia-6.9b" and len(fit["points"]) == 7
    p = fit["prediction"]
    assert p["x"] == 11846072320 and p["observed"]["model"] == "pythia-12b"
    assert p["observed"]["value"] == pytest.approx(1 - 0.7046380749078207)
    assert p["observed_inside"] is True
    assert p["value"] == pytest.approx(p["observed"]["value"], abs=0.01)
    assert fit["irreducible"] is True and fit["goodness"]["dof"] == 4

    res = evalkit("predict", "--points", str(ROOT / "docs" / "pythia-lambada-nll.csv"), "--hold-out",
                  "--lower-is-better", "--json")
    fit = json.loads(res.stdout)["fits"][0]
    assert fit["eval"] == "lambada_openai_nll" and fit["prediction"]["observed"]["model"] == "pythia-12b"
    assert fit["prediction"]["observed"]["value"] == pytest.approx(math.log(3.9236415916124625))
    assert fit["prediction"]["observed_inside"] is True


def test_worse_with_scale_is_flagged_as_inverse_scaling(evalkit, tmp_path):
    rows = [("neglect", f"m{i}", x, v, 0.01) for i, (x, v) in enumerate(
        [(1e20, 0.40), (1e21, 0.47), (1e22, 0.55), (1e23, 0.66)])]           # error rate rises with scale
    res = evalkit("predict", "--points", str(_table(tmp_path, rows)), "--lower-is-better", "--json",
                  "--resamples", "100")
    assert res.returncode == 0, res.stderr
    fit = json.loads(res.stdout)["fits"][0]
    assert fit["trend"]["inverse_scaling"] is True and fit["trend"]["ci95"][0] > 0
    assert fit["trend"]["slope_per_decade"] == pytest.approx(np.polyfit([20, 21, 22, 23], [.40, .47, .55, .66], 1)[0])
    assert "inverse scaling: the metric gets worse with scale" in res.stderr


def test_bad_tables_are_one_line(evalkit, tmp_path):
    bad = {"model,size\na,1\n": "expected a CSV header with model,x,value",
           "model,x,value\na,1e9,0.5\n": "eval t has one row",
           "model,x,value\na,0,0.5\nb,1,0.4\n": "row 2: x: '0' is not a positive number",
           "model,x,value\na,1,1.5\nb,2,0.4\n": "value 1.5 is outside [0, 1]",
           "model,x,value,se\na,1,0.5,x\nb,2,0.4,0.1\n": "row 2: se: 'x' is not a number"}
    for text, said in bad.items():
        (tmp_path / "t.csv").write_text(text)
        assert said in one_line_error(evalkit("predict", "--points", str(tmp_path / "t.csv"))), text
    assert "not both" in one_line_error(evalkit("predict", "x.jsonl", "--points", str(tmp_path / "t.csv")))
    assert "--buckets: difficulty buckets are for --method passrate" in one_line_error(
        evalkit("predict", "--points", str(tmp_path / "t.csv"), "--buckets", "2"))


def test_the_published_schema_is_the_report_model(evalkit):
    res = evalkit("predict", "--schema")
    assert res.returncode == 0
    published = json.loads((ROOT / "docs" / "predict.schema.json").read_text())
    assert json.loads(res.stdout) == published, "regenerate it: evalkit predict --schema > docs/predict.schema.json"


# --- the real CLI on logs made against the test server --------------------------------------------

MODELS = {"m1": 1e20, "m2": 1e21, "m3": 1e22, "m4": 1e23}
TOPICS = ("alpha", "beta")
PROBLEMS, SAMPLES = 24, 6


def _passes() -> dict[str, list[int]]:
    """Passes out of SAMPLES per model and problem, from the law with fixed difficulties; problem
    0 is never solved by the smallest model (the fit must leave it out and say so)."""
    rng = np.random.default_rng(11)
    out = {}
    for m, x in MODELS.items():
        p = np.exp(-np.linspace(0.4, 1.6, PROBLEMS) * 0.25 * (x / 1e23) ** -0.3)
        out[m] = [int(c) for c in rng.binomial(SAMPLES, p)]
        out[m] = [max(c, 1) for c in out[m]]
    out["m1"][0] = 0
    return out


def _family_eval(tmp_path, passes):
    import yaml

    items = [{"id": f"q{i:02d}", "question": f"Problem {i}: pick the letter for item number {i}.",
              "choices": ["one", "two", "three", "four"], "answer": "ABCD"[i % 4], "topic": TOPICS[i % 2]}
             for i in range(PROBLEMS)]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    spec = tmp_path / "family.yaml"
    spec.write_text(yaml.safe_dump({"family": {
        "template": "multiple_choice",
        "dataset": {"format": "jsonl", "path": "./items.jsonl", "split": "test",
                    "fields": {"id": "id", "question": "question", "choices": "choices", "answer": "answer"}},
        "prompt": {"template": "{question}\n{choices}\nAnswer:"}, "scoring": {"method": "letter", "labels": "ABCD"},
        "group_by": "topic"}}))
    key = []
    for m, counts in passes.items():
        for item, c in zip(items, counts):
            wrong = "ABCD"[("ABCD".index(item["answer"]) + 1) % 4]
            for s in range(SAMPLES):
                said = item["answer"] if s < c else wrong           # and P(said) = 0.7, each other letter 0.1
                key.append({"model": m, "seed": s, "match": item["question"], "reply": said,
                            "logprobs": {x: math.log(0.7 if x == said else 0.1) for x in "ABCD"}})
    return spec, key


@pytest.fixture
def family_logs(tmp_path, start_server, evalkit):
    passes = _passes()
    spec, key = _family_eval(tmp_path, passes)
    server = start_server(key)
    logs = {}
    for m, x in MODELS.items():
        scale = ["--scale", str(x)] if m in ("m1", "m2") else []
        res = evalkit("run", str(spec), "--model", f"openai/{m}", "--base-url", server.url, "--samples", str(SAMPLES),
                      "--temperature", "1", "--logprobs", "--log-dir", str(tmp_path / "logs"), "--quiet", "--json",
                      *scale)
        assert res.returncode == 0, res.stderr
        logs[m] = json.loads(res.stdout)["log"]
    (tmp_path / "x.yaml").write_text("openai/m3: 1.0e22\nopenai/m4: 1.0e23\n")
    return logs, passes, spec, server


def test_a_family_of_sampled_logs_through_the_cli(family_logs, evalkit, tmp_path):
    """One family of logs (made once: four models, --samples 6) read three ways."""
    _passrate_law(family_logs, evalkit, tmp_path)
    _loss_law_and_hold_out(family_logs, evalkit, tmp_path)
    _refusals(family_logs, evalkit, tmp_path)
    _seeds_pooled(family_logs, evalkit, tmp_path)


def _seeds_pooled(family_logs, evalkit, tmp_path):
    """A second run of the largest model with --seed 1 adds its samples to the same problems:
    its completion j asks seed 1 + j, which the key answers right while 1 + j < passes (seed 6
    has no entry: the default reply, wrong)."""
    logs, passes, spec, server = family_logs
    res = evalkit("run", str(spec), "--model", "openai/m4", "--base-url", server.url, "--samples", str(SAMPLES),
                  "--temperature", "1", "--logprobs", "--seed", "1", "--log-dir", str(tmp_path / "logs"), "--quiet",
                  "--json")
    res = evalkit("predict", *logs.values(), json.loads(res.stdout)["log"], "--x", str(tmp_path / "x.yaml"),
                  "--method", "passrate", "--json")
    fit = json.loads(res.stdout)["fits"][0]
    kept = range(1, PROBLEMS)
    pooled = np.mean([-math.log((c + max(c - 1, 0)) / (2 * SAMPLES)) for c in (passes["m4"][i] for i in kept)])
    assert fit["points"][-1]["value"] == pytest.approx(pooled, abs=1e-12) and len(fit["points"][-1]["logs"]) == 2


def _passrate_law(family_logs, evalkit, tmp_path):
    logs, passes, _, _ = family_logs
    assert read_jsonl(logs["m1"])[0]["scale"] == 1e20 and "scale" not in read_jsonl(logs["m3"])[0]
    html = tmp_path / "predict.html"
    res = evalkit("predict", *logs.values(), "--x", str(tmp_path / "x.yaml"), "--method", "passrate",
                  "--at", "1e24", "--json", "--html", str(html))
    assert res.returncode == 0, res.stderr
    fit = json.loads(res.stdout)["fits"][0]
    kept = [i for i in range(PROBLEMS) if all(passes[m][i] for m in MODELS)]
    assert kept == list(range(1, PROBLEMS))
    expected = [float(np.mean([-math.log(passes[m][i] / SAMPLES) for i in kept])) for m in MODELS]
    assert [p["value"] for p in fit["points"]] == pytest.approx(expected, abs=1e-12)
    assert [p["model"] for p in fit["points"]] == [f"openai/{m}" for m in MODELS]
    assert fit["problems"] == PROBLEMS - 1 and fit["left_out"] == {"not solved at least once by every model": 1}
    slope, intercept = np.polyfit(np.log(list(MODELS.values())) - math.log(1e23), np.log(expected), 1)
    assert fit["parameters"]["k"]["value"] == pytest.approx(-slope, rel=1e-9)
    assert fit["parameters"]["alpha"]["value"] == pytest.approx(math.exp(intercept), rel=1e-9)
    p = fit["prediction"]
    assert p["ratio"] == pytest.approx(10.0) and p["value"] == pytest.approx(math.exp(intercept + slope * math.log(10)))
    assert p["ci95"][0] < p["value"] < p["ci95"][1] and p["pass_rate"][0] == pytest.approx(math.exp(-p["value"]))
    assert "warning  the forecast at x=1e+24 is 10x" not in html.read_text()           # 10x is not beyond 10x
    assert "  forecast x=1e+24 (10x the largest): " in html.read_text()
    png = base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)", html.read_text()).group(1))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    (tmp_path / "figure.png").write_bytes(png)

    res = evalkit("predict", *logs.values(), "--x", str(tmp_path / "x.yaml"), "--method", "passrate",
                  "--buckets", "2", "--json")
    fits = json.loads(res.stdout)["fits"]
    assert [f["bucket"] for f in fits] == [None, "1/2", "2/2"] and [f["problems"] for f in fits] == [23, 12, 11]
    assert fits[1]["points"][0]["value"] < fits[2]["points"][0]["value"]        # bucket 1 is the easier


def _loss_law_and_hold_out(family_logs, evalkit, tmp_path):
    logs, passes, _, _ = family_logs
    res = evalkit("predict", *logs.values(), "--x", str(tmp_path / "x.yaml"), "--hold-out", "--resamples", "200")
    assert res.returncode == 0, res.stderr
    assert "family: loss law on 1 - accuracy, 3 models, 24 problems" in res.stdout
    assert "c is fixed at 0, a pure power law" in res.stderr              # three points cannot identify c
    res = evalkit("predict", *logs.values(), "--x", str(tmp_path / "x.yaml"), "--hold-out", "--json",
                  "--resamples", "200", "--metric", "accuracy")              # the main metric by its name
    fit = json.loads(res.stdout)["fits"][0]
    expected = [1 - sum(passes[m]) / (PROBLEMS * SAMPLES) for m in MODELS]
    assert [p["value"] for p in fit["points"]] == pytest.approx(expected[:3], abs=1e-12)
    assert fit["prediction"]["observed"]["value"] == pytest.approx(expected[3], abs=1e-12)
    assert fit["prediction"]["x"] == 1e23 and "c" not in fit["parameters"]

    res = evalkit("predict", *logs.values(), "--x", str(tmp_path / "x.yaml"), "--metric", "nll", "--by-group",
                  "--resamples", "100", "--json")
    fits = json.loads(res.stdout)["fits"]
    assert [(f["group"], f["problems"], f["metric"]) for f in fits] == [(None, 24, "nll"), ("alpha", 12, "nll"),
                                                                        ("beta", 12, "nll")]
    for fit, start in zip(fits, (slice(None), slice(0, None, 2), slice(1, None, 2))):
        nll = [np.mean([(c * -math.log(0.7) + (SAMPLES - c) * -math.log(0.1)) / SAMPLES for c in passes[m][start]])
               for m in MODELS]
        assert [p["value"] for p in fit["points"]] == pytest.approx(nll, abs=1e-5)   # probabilities logged to 6 digits


def _refusals(family_logs, evalkit, tmp_path):
    """Logs that are not one curve, a bad x, a changed --scale: one line each."""
    logs, _, spec, server = family_logs
    line = one_line_error(evalkit("predict", logs["m1"]))
    assert "eval family has logs of one model only (openai/m1)" in line
    line = one_line_error(evalkit("predict", logs["m1"], logs["m3"]))
    assert "no x for model openai/m3" in line and "--scale VALUE" in line
    hot = evalkit("run", str(spec), "--model", "openai/m4", "--base-url", server.url, "--samples", str(SAMPLES),
                  "--temperature", "0.5", "--logprobs", "--log-dir", str(tmp_path / "other"), "--quiet", "--json")
    line = one_line_error(evalkit("predict", logs["m1"], logs["m2"], json.loads(hot.stdout)["log"]))
    assert "with different settings (sampling.temperature)" in line
    line = one_line_error(evalkit("predict", logs["m1"], logs["m2"], "--x", "openai/m2=-3"))
    assert "--x openai/m2=-3: '-3' is not a positive number" in line
    again = evalkit("run", str(spec), "--model", "openai/m1", "--base-url", server.url, "--samples", str(SAMPLES),
                    "--temperature", "1", "--logprobs", "--log-dir", str(tmp_path / "logs"), "--quiet",
                    "--scale", "5e20")
    assert "this log recorded --scale 1e+20" in one_line_error(again)
    assert "the same samples twice" in one_line_error(evalkit("predict", logs["m1"], logs["m2"], logs["m1"]))
    (tmp_path / "list.yaml").write_text("- openai/m1\n- 3\n")
    assert "--x " + str(tmp_path / "list.yaml") + ":1: expected a mapping of model: x" in one_line_error(
        evalkit("predict", logs["m1"], logs["m2"], "--x", str(tmp_path / "list.yaml")))
    assert "cannot read it" in one_line_error(evalkit("predict", logs["m1"], logs["m2"], "--x", "sizes.csv"))
    lines = open(logs["m2"], encoding="utf-8").read().splitlines()
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join([lines[0], lines[1].replace('"score":1.0', '"score":"high"').replace(
        '"score":0.0', '"score":"high"'), *lines[2:]]) + "\n")
    line = one_line_error(evalkit("predict", logs["m1"], str(tampered)))
    assert f"{tampered}: sample " in line and "score 'high' is not a number" in line
