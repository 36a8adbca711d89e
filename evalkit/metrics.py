"""Scores -> metrics: accuracy overall (micro), per group and macro over groups, with 95% intervals.

Intervals are percentile bootstrap intervals (2,000 resamples, seeded, so a summary is
reproducible). For 0/1 scores the resampled mean of n draws is exactly Binomial(n, p)/n, so the
bootstrap is drawn that way: no n x B matrix, whatever the sample count. The macro interval
resamples each group independently (a stratified bootstrap) and averages the group means.
Samples that ended in an error carry no score and are counted apart, never as wrong answers.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

RESAMPLES = 2000


def _bootstrap_means(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(values)
    if n == 0:
        return np.full(RESAMPLES, np.nan)
    if np.all((values == 0) | (values == 1)):
        return rng.binomial(n, values.mean(), RESAMPLES) / n
    out = np.empty(RESAMPLES)
    step = max(1, 4_000_000 // n)
    for start in range(0, RESAMPLES, step):
        stop = min(RESAMPLES, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out


def _ci(draws: np.ndarray) -> list[float | None]:
    if np.isnan(draws).all():
        return [None, None]
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return [round(float(lo), 6), round(float(hi), 6)]


def _block(values: np.ndarray, rng: np.random.Generator) -> dict:
    return {"value": round(float(values.mean()), 6) if len(values) else None,
            "ci95": _ci(_bootstrap_means(values, rng)), "n": int(len(values))}


def summarize(records: list[tuple[str | None, float]], seed: int = 0, name: str = "accuracy",
              extras: dict[str, list[float]] | None = None) -> dict:
    """records: (group, score) per scored sample; extras: further per-sample values by metric name.

    Returns {name: {value, ci95, n}, <extra>: {...}, "groups": {g: {name, ci95, n}},
    f"macro_{name}": {value, ci95, groups}} (the last two only when samples have groups).
    """
    rng = np.random.default_rng(seed)
    values = np.array([v for _, v in records], dtype=float)
    out: dict = {name: _block(values, rng)}
    for key, vals in (extras or {}).items():
        out[key] = _block(np.array(vals, dtype=float), rng)
    by_group: dict[str | None, list[float]] = defaultdict(list)
    for g, v in records:
        by_group[g].append(v)
    groups = {g: np.array(v, dtype=float) for g, v in by_group.items() if g is not None}
    if groups:
        group_draws = {g: _bootstrap_means(v, rng) for g, v in sorted(groups.items())}
        out["groups"] = {
            g: {name: round(float(groups[g].mean()), 6), "ci95": _ci(d), "n": int(len(groups[g]))}
            for g, d in group_draws.items()
        }
        macro_draws = np.mean(np.vstack(list(group_draws.values())), axis=0)
        out[f"macro_{name}"] = {
            "value": round(float(np.mean([v.mean() for v in groups.values()])), 6),
            "ci95": _ci(macro_draws),
            "groups": len(groups),
        }
    return out


def calibration(points: list[tuple[dict[str, float], str]], bins: int = 10) -> dict:
    """Expected calibration error over every option of every question, as in the GPT-4 report's Figure 8.

    Each (option probability p, whether that option is right y) is a point; points fall into
    `bins` equal-width bins [0, 0.1), ..., [0.9, 1.0] (1.0 goes in the last);
    ECE = sum over bins of (points in bin / all points) * |mean y in bin - mean p in bin|.
    """
    ps, ys = [], []
    for probs, answer in points:
        for label, p in probs.items():
            ps.append(p)
            ys.append(1.0 if label in answer else 0.0)
    if not ps:
        return {"ece": None, "points": 0, "bins": []}
    p_arr, y_arr = np.array(ps), np.array(ys)
    idx = np.minimum((p_arr * bins).astype(int), bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        mask = idx == b
        count = int(mask.sum())
        conf = float(p_arr[mask].mean()) if count else None
        acc = float(y_arr[mask].mean()) if count else None
        if count:
            ece += count / len(p_arr) * abs(acc - conf)
        table.append({"lo": b / bins, "hi": (b + 1) / bins, "count": count,
                      "confidence": None if conf is None else round(conf, 6),
                      "accuracy": None if acc is None else round(acc, 6)})
    return {"ece": round(float(ece), 6), "points": len(ps), "questions": len(points), "bins": table}
