"""Scaling laws of a model family, fitted as the GPT-4 report's Section 3 did, with bootstrap intervals.

Two laws, x being training compute, parameters or any positive scale (written against
x_ref, the largest x fitted, so the numbers stay well conditioned for x ~ 1e24 FLOPs):

- **loss**: L(x) = a * (x / x_ref)^b + c, b <= 0, c >= 0 the irreducible term (Figure 1), for a
  loss-like metric. Fitted by `scipy.optimize.least_squares` (bounded trust region), each point
  weighted by its standard error; with fewer than 4 points c is not identified and is fixed at 0.
- **passrate**: -mean_P log pass_rate(x) = alpha * (x / x_ref)^(-k) (Figure 2): a straight line in
  log-log space, fitted by ordinary least squares there. That has a closed form, so it is
  computed for every bootstrap draw at once (and, in the tests, for thousands of synthetic
  families at once).

Uncertainty comes from draws of the points, each fitted again: a bootstrap over problems (the
same resampled problems for every model, so the family stays paired; a problem carries all its
samples and seeds, which is the cluster bootstrap of a two-stage design), or Normal(value, se)
for a published table. Intervals are the 2.5 and 97.5 percentiles of the draws. Arrays may carry
leading batch dimensions (`...`); the model axis M and the problem axis P come last.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

RESAMPLES = 400                 # bootstrap draws (--resamples)
EXTRAPOLATION_RATIO = 10.0      # a prediction beyond this multiple of the largest x is warned about
MIN_POINTS_IRREDUCIBLE = 4      # the loss law's three parameters need one point more to be identified
B_MIN = -5.0                    # the loss exponent's lower bound (a steeper law is not a scaling law)


@dataclass
class LawResult:
    """One fitted law: the points, their draws, the parameters and their draws."""

    law: str                        # "loss" | "passrate"
    x: np.ndarray                   # (M,) the scale of each model
    ref: float                      # x_ref: the law is written in x / x_ref
    points: np.ndarray              # (..., M) the metric of each model
    point_draws: np.ndarray         # (B, ..., M) the points' own draws (before any widening for lack of fit)
    params: np.ndarray              # (..., p): loss (a, b, c); passrate (log alpha, k)
    param_draws: np.ndarray         # (B, ..., p), NaN where a draw could not be fitted
    irreducible: bool = True        # loss: whether c was fitted (else fixed at 0)

    def curve(self, xs: np.ndarray, params: np.ndarray | None = None) -> np.ndarray:
        """The law at `xs` (G,) for `params` (..., p) (default the estimate): (..., G)."""
        p = self.params if params is None else params
        logu = np.log(np.asarray(xs, float) / self.ref)
        if self.law == "loss":
            return p[..., :1] * np.exp(p[..., 1:2] * logu) + p[..., 2:3]
        return np.exp(p[..., :1] - p[..., 1:2] * logu)

    def names(self) -> tuple[str, ...]:
        return ("a", "b", "c") if self.law == "loss" else ("alpha", "k")

    def shown_params(self, params: np.ndarray) -> np.ndarray:
        """Parameters as printed: alpha rather than its logarithm."""
        if self.law == "loss":
            return params
        return np.concatenate([np.exp(params[..., :1]), params[..., 1:]], axis=-1)


def interval(draws: np.ndarray, axis: int = 0) -> np.ndarray:
    """The 95% percentile interval of `draws` along `axis`, ignoring failed (NaN) draws: (2, ...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # an all-NaN slice gives NaN, said by the caller
        return np.nanpercentile(draws, [2.5, 97.5], axis=axis)


def problem_draws(values: np.ndarray, include: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means over problems: `values` (..., M, P), `include` (..., P) the problems in play.
    Each draw resamples the included problems with replacement, the same ones for every model:
    (draws, ..., M)."""
    include = np.broadcast_to(include, values.shape[:-2] + values.shape[-1:])
    n = include.sum(-1)
    pvals = include / np.maximum(n, 1)[..., None]
    weights = rng.multinomial(n, pvals, size=(draws,) + n.shape).astype(float)        # (B, ..., P)
    kept = np.where(include[..., None, :], values, 0.0)
    sums = np.matmul(weights[..., None, :], np.swapaxes(kept, -1, -2))[..., 0, :]
    return sums / np.maximum(n, 1)[..., None]


def masked_mean(values: np.ndarray, include: np.ndarray) -> np.ndarray:
    """The mean over the included problems: (..., M)."""
    n = np.maximum(include.sum(-1), 1)[..., None]
    return np.where(include[..., None, :], values, 0.0).sum(-1) / n


# --- the pass-rate law: a line in log-log space ------------------------------------------------

def fit_passrate(logu: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(log alpha, k) of y = alpha * u^-k by least squares of log y on log u; y (..., M) -> (..., 2).
    A point at or below 0 (every problem always solved) has no logarithm: NaN parameters."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.where(y > 0, np.log(np.where(y > 0, y, 1.0)), np.nan)
    mean_x = logu.mean()
    dx = logu - mean_x
    slope = (ly * dx).sum(-1) / (dx @ dx)
    return np.stack([ly.mean(-1) - slope * mean_x, -slope], axis=-1)


def neg_log_pass(successes: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """-log of each problem's pass rate, estimated as successes / trials (the unbiased pass@1);
    inf where a model never solved it."""
    with np.errstate(divide="ignore"):
        return -np.log(successes / np.maximum(trials, 1))


def passrate_law(successes: np.ndarray, trials: np.ndarray, x: np.ndarray, include: np.ndarray | None = None,
                 draws: int = RESAMPLES, rng: np.random.Generator | None = None) -> tuple[LawResult, np.ndarray]:
    """Fit -mean log pass rate = alpha * (x/x_ref)^-k over the problems every model solved at least
    once (and, if given, in `include`): successes and trials (..., M, P). Returns the law and the
    problems it used (..., P)."""
    rng = rng or np.random.default_rng(0)
    used = np.asarray((successes > 0).all(axis=-2))
    if include is not None:
        used = used & include
    values = neg_log_pass(successes, trials)
    points = masked_mean(values, used)
    law = passrate_fit(np.asarray(x, float), points, problem_draws(values, used, draws, rng))
    return law, used


def passrate_fit(x: np.ndarray, points: np.ndarray, point_draws: np.ndarray) -> LawResult:
    """The pass-rate law of `points` (..., M) and of each of `point_draws` (B, ..., M), after
    widening the draws for lack of fit (in log space, where the law is fitted)."""
    ref = float(x.max())
    logu = np.log(x / ref)
    params = fit_passrate(logu, points)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs, log_draws = np.log(points), np.log(point_draws)
        fitted = params[..., :1] - params[..., 1:2] * logu
        widened = np.exp(widen(logs, log_draws, fitted, len(x) - 2))
    return LawResult("passrate", x, ref, points, point_draws, params, fit_passrate(logu, widened))


def widen(points: np.ndarray, point_draws: np.ndarray, fitted: np.ndarray, dof: int) -> np.ndarray:
    """The draws' spread around the points scaled by sqrt(chi^2/dof) where the law misses the
    points by more than their noise (as curve_fit scales its covariance unless absolute_sigma):
    a law that does not fit gets a wider interval, never a narrower one."""
    if dof <= 0:
        return point_draws
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        se = point_errors(point_draws)
        chi2 = np.nansum(((points - fitted) / se) ** 2, axis=-1) / dof
    factor = np.sqrt(np.maximum(np.nan_to_num(chi2, nan=1.0), 1.0))[..., None]
    return points + (point_draws - points) * factor


# --- the loss law: a power law with an irreducible term -----------------------------------------

def _start(logu: np.ndarray, y: np.ndarray, c: float) -> np.ndarray:
    """A starting point (a, b, c): the log-log line of y - c."""
    rest = np.maximum(y - c, 1e-12)
    slope, intercept = np.polyfit(logu, np.log(rest), 1) if len(y) > 1 else (0.0, np.log(rest[0]))
    return np.array([np.exp(intercept), float(np.clip(slope, B_MIN + 0.01, -1e-6)), c])


def _least_squares(logu, y, weight, start, irreducible, c_max):
    from scipy.optimize import least_squares

    def residuals(p):
        c = p[2] if irreducible else 0.0
        return (p[0] * np.exp(p[1] * logu) + c - y) * weight

    lo, hi = [0.0, B_MIN], [np.inf, 0.0]
    if irreducible:
        lo, hi = lo + [0.0], hi + [c_max]
    p0 = np.clip(start[: len(lo)], np.array(lo) + 1e-12, np.minimum(hi, 1e300) - 1e-12)
    res = least_squares(residuals, p0, bounds=(lo, hi), method="trf", x_scale="jac", max_nfev=300)
    p = res.x if irreducible else np.append(res.x, 0.0)
    p[2] = 0.0 if p[2] < 1e-12 else p[2]          # on its bound: the solver stops a hair inside it
    return p, float(res.cost), bool(res.success)


def fit_loss(logu: np.ndarray, y: np.ndarray, se: np.ndarray, irreducible: bool, c_max: float = np.inf,
             start: np.ndarray | None = None) -> np.ndarray:
    """(a, b, c) of y = a * u^b + c by weighted least squares; NaN if the optimiser fails. Without
    `start`, the best of a few starting values of c."""
    weight = 1.0 / se
    if start is not None:
        p, _, ok = _least_squares(logu, y, weight, start, irreducible, c_max)
        return p if ok else np.full(3, np.nan)
    best, best_cost = np.full(3, np.nan), np.inf
    for share in ((0.0, 0.5, 0.9) if irreducible else (0.0,)):
        c0 = min(share * float(y.min()), c_max * 0.999)
        p, cost, ok = _least_squares(logu, y, weight, _start(logu, y, c0), irreducible, c_max)
        if ok and cost < best_cost:
            best, best_cost = p, cost
    return best


def point_errors(point_draws: np.ndarray, given: np.ndarray | None = None) -> np.ndarray:
    """Standard errors of the points (given, or the draws' spread, ignoring failed draws), floored
    at a tenth of the median so that a point whose draws never vary (a model right on every
    problem) does not get an infinite weight."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        se = np.asarray(given, float) if given is not None else np.nanstd(point_draws, axis=0, ddof=1)
        floor = 0.1 * np.nanmedian(np.where(se > 0, se, np.nan), axis=-1, keepdims=True)
    return np.maximum(se, np.nan_to_num(floor, nan=1.0))


def loss_law(x: np.ndarray, points: np.ndarray, point_draws: np.ndarray, se: np.ndarray | None = None,
             c_max: float = np.inf) -> LawResult:
    """Fit L = a * (x/x_ref)^b + c to `points` (M,) and again to each of `point_draws` (B, M)."""
    x = np.asarray(x, float)
    ref = float(x.max())
    logu = np.log(x / ref)
    irreducible = len(x) >= MIN_POINTS_IRREDUCIBLE
    errors = point_errors(point_draws, se)
    params = fit_loss(logu, points, errors, irreducible, c_max)
    start = params if np.isfinite(params).all() else None
    widened = point_draws
    if start is not None:
        fitted = params[0] * np.exp(params[1] * logu) + params[2]
        widened = widen(points, point_draws, fitted, len(x) - (3 if irreducible else 2))
    draws = np.array([fit_loss(logu, d, errors, irreducible, c_max, start) for d in widened])
    return LawResult("loss", x, ref, points, point_draws, params, draws.reshape(len(point_draws), 3), irreducible)


def normal_draws(points: np.ndarray, se: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Draws of a published table's points from Normal(value, se): (draws, M)."""
    return rng.normal(points, se, size=(draws, len(points)))


# --- what is said about a fit -----------------------------------------------------------------

def goodness(law: LawResult) -> dict:
    """R^2 and RMSE of the fit at the points, and chi^2 per degree of freedom against the points'
    standard errors (None without a degree of freedom)."""
    fitted = law.curve(law.x)
    resid = law.points - fitted
    total = float(((law.points - law.points.mean()) ** 2).sum())
    dof = len(law.x) - (2 if law.law == "passrate" or not law.irreducible else 3)
    se = point_errors(law.point_draws)
    chi2 = float(((resid / se) ** 2).sum())
    return {"r2": 1 - float((resid ** 2).sum()) / total if total > 0 else None,
            "rmse": float(np.sqrt((resid ** 2).mean())), "dof": dof, "chi2_per_dof": chi2 / dof if dof > 0 else None}


def trend(law: LawResult) -> tuple[float, np.ndarray]:
    """The metric's least-squares slope per decade of x, and its draws. For a loss-like metric a
    slope above 0 is worse with scale (inverse scaling)."""
    logx = np.log10(law.x)
    dx = logx - logx.mean()
    slope = lambda y: ((y - y.mean(-1, keepdims=True)) * dx).sum(-1) / (dx @ dx)   # noqa: E731
    return float(slope(law.points)), slope(law.point_draws)


def difficulty_buckets(successes: np.ndarray, trials: np.ndarray, x: np.ndarray, used: np.ndarray,
                       k: int) -> list[np.ndarray]:
    """K buckets of the used problems by difficulty, easiest first, as the report defined them: on
    the pass rates of the small models (those at or below the median x), in near-equal sizes."""
    small = x <= np.median(x)
    rate = (successes[small] / np.maximum(trials[small], 1)).mean(axis=0)
    order = [int(i) for i in np.argsort(-rate, kind="stable") if used[i]]
    out = []
    for part in np.array_split(np.array(order, dtype=int), k):
        mask = np.zeros(len(used), bool)
        mask[part] = True
        out.append(mask)
    return out
