"""Intervals for proportions: honest at any n, and at 0 and 1.

A share of right answers (accuracy, pass@1, a grader's class rate) is a binomial proportion, and
a percentile bootstrap around the observed share p-hat has no spread when p-hat is 0 or 1: 10/10
printed "1.0000-1.0000" and 0/50 "0.0000-0.0000". Two closed forms replace it:

- **One proportion: Clopper-Pearson** (1934), the interval of every p that a two-sided 2.5%
  binomial test at the observed count does not reject, from beta quantiles. Its coverage is at
  least 95% at every n and every p, which no approximation promises: Wilson's, narrower, dips to
  83% at n = 5 near p = 0.036 and to 84% at n = 20 near p = 0.0085, exactly where small evals and
  near-perfect models live. The price is width: it is conservative (10/10 gives 0.6915-1, Wilson
  0.7225-1). tests/test_honest.py simulates its coverage.
- **The mean of several groups' proportions (macro)**: the observed mean plus or minus
  z * sqrt(sum_g pt_g (1 - pt_g) / n_g) / G, where pt_g = (x_g + z^2/2) / (n_g + z^2) is each
  group's share pulled toward 1/2 by Wilson's adjustment (as Agresti and Caffo adjust a difference
  of proportions), clipped to [0, 1]. A group at 0/n or n/n keeps a spread, so five subjects all
  at 10/10 do not print 1-1, and a one-sample group counts nearly a full coin's variance. No exact
  interval exists for a mean of several binomials; simulated coverage is at least 93% from groups of
  one sample to groups of 300 (tests/unit/test_metrics_intervals.py, tests/test_honest.py).

Both take counts only; metrics.py decides when scores are proportions (every score is 0 or 1).
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054      # the standard normal's 97.5% quantile


def clopper_pearson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval for `successes` of `n` (n >= 1)."""
    from scipy.stats import beta

    lo = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    hi = 1.0 if successes == n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return lo, hi


def adjusted_share(successes: int, n: int, z: float = Z95) -> float:
    """The share pulled toward 1/2 by z^2/2 successes and z^2/2 failures (Wilson's centre)."""
    return (successes + z * z / 2) / (n + z * z)


def macro_interval(counts: list[tuple[int, int]], z: float = Z95) -> tuple[float, float]:
    """The interval of the mean of the groups' proportions, given (successes, n) per group."""
    g = len(counts)
    mean = sum(x / n for x, n in counts) / g
    var = sum(adjusted_share(x, n, z) * (1 - adjusted_share(x, n, z)) / n for x, n in counts)
    half = z * math.sqrt(var) / g
    return max(0.0, mean - half), min(1.0, mean + half)
