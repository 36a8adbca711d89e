"""Confidence intervals that mean what they say: the macro interval against a simulation."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.results.metrics import summarize


def test_macro_interval_covers_the_true_macro_mean_about_95_percent():
    """38 groups of 1-9 samples each, as a 100-question MMLU run has: the macro interval must hold
    the true mean of the groups' accuracies in about 95% of simulated runs (a stratified bootstrap,
    where a one-sample group has no spread, covered it far less often)."""
    rng = np.random.default_rng(11)
    covered, runs = 0, 400
    for run in range(runs):
        sizes, truth = rng.integers(1, 10, 38), rng.uniform(0.1, 0.9, 38)
        records = [(f"g{g}", float(rng.random() < truth[g])) for g in range(38) for _ in range(sizes[g])]
        lo, hi = summarize(records, seed=run)["macro_accuracy"]["ci95"]
        covered += lo <= truth.mean() <= hi
    assert 0.92 <= covered / runs <= 0.985


def test_large_groups_keep_their_own_variance():
    """57 groups of 100-300 samples: the interval is about as wide as the groups' own sampling
    error gives (the pooled variance does not inflate it), and still covers about 95%."""
    rng = np.random.default_rng(5)
    covered, ratios = 0, []
    for run in range(150):
        sizes, truth = rng.integers(100, 300, 57), rng.uniform(0.5, 0.98, 57)
        records = [(f"g{g}", float(rng.random() < truth[g])) for g in range(57) for _ in range(sizes[g])]
        lo, hi = summarize(records, seed=run)["macro_accuracy"]["ci95"]
        covered += lo <= truth.mean() <= hi
        se = np.sqrt(np.sum(truth * (1 - truth) / sizes)) / 57      # the macro mean's true standard error
        ratios.append((hi - lo) / (2 * 1.96 * se))
    assert covered / 150 >= 0.9
    assert np.median(ratios) == pytest.approx(1.0, abs=0.15)


def test_one_sample_groups_are_not_certain():
    s = summarize([("a", 1.0), ("b", 0.0), ("c", 0.0)])
    lo, hi = s["macro_accuracy"]["ci95"]
    assert lo < 0.3333 < hi and hi - lo > 0.4                   # was 0.3333-0.3333
    assert all(g["ci95"][0] < g["ci95"][1] for g in s["groups"].values())
