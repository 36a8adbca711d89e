"""A model family's points -> fitted scaling laws, forecasts and warnings (`evalkit predict`).

The typed results (`PredictReport`, one `Fit` per eval, group or difficulty bucket) are the
`--json` contract; their JSON Schema is published as docs/predict.schema.json. The math is in
`evalkit.analysis.scaling`, reading logs in `evalkit.analysis.family`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evalkit.core.errors import EvalkitError
from evalkit.analysis import scaling
from evalkit.analysis.family import Family, Member

LAWS = {"loss": "L(x) = a * (x / x_ref)^b + c", "passrate": "-mean log pass_rate(x) = alpha * (x / x_ref)^(-k)"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Interval(_Model):
    value: float | None
    ci95: list[float | None] = Field(min_length=2, max_length=2)


class Point(_Model):
    model: str
    x: float
    value: float = Field(description="the fitted metric: a loss-like value, lower is better")
    ci95: list[float | None] = Field(min_length=2, max_length=2)
    logs: list[str] = Field(default_factory=list)


class Goodness(_Model):
    r2: float | None
    rmse: float
    dof: int = Field(description="points minus fitted parameters")
    chi2_per_dof: float | None = Field(description="against the points' standard errors; about 1 for a good fit")


class Forecast(_Model):
    x: float
    ratio: float = Field(description="x over the largest x fitted")
    value: float
    ci95: list[float | None] = Field(min_length=2, max_length=2)
    pass_rate: list[float | None] | None = Field(None, description="passrate law: exp(-value) and its interval, "
                                                                    "the geometric mean pass rate it implies")
    observed: Point | None = Field(None, description="--hold-out: the left-out model's own value")
    observed_inside: bool | None = Field(None, description="whether the observed value lies in ci95")


class Trend(_Model):
    slope_per_decade: float = Field(description="least-squares slope of the metric per tenfold x")
    ci95: list[float | None] = Field(min_length=2, max_length=2)
    inverse_scaling: bool = Field(description="the metric gets worse with scale beyond its interval")


class Fit(_Model):
    eval: str
    group: str | None = None
    bucket: str | None = Field(None, description="--buckets K: 'i/K', 1 the easiest")
    method: str = Field(description="loss | passrate")
    metric: str
    law: str
    x_ref: float
    irreducible: bool = Field(description="loss law: whether c was fitted (else fixed at 0)")
    parameters: dict[str, Interval]
    goodness: Goodness
    points: list[Point]
    prediction: Forecast | None = None
    trend: Trend
    problems: int = Field(description="problems behind each point (0 for a published table)")
    left_out: dict[str, int] = Field(default_factory=dict)
    resamples: int
    failed_resamples: int
    warnings: list[str] = Field(default_factory=list)


class PredictReport(_Model):
    kind: str = "predict"
    fits: list[Fit]


@dataclass
class Options:
    method: str = "loss"                 # loss | passrate
    metric: str = "accuracy"             # what the points are (for the text)
    bounded: bool = True                 # loss = 1 - score: c is at most 1
    at: float | None = None
    hold_out: bool = False
    by_group: bool = False
    buckets: int | None = None
    resamples: int = scaling.RESAMPLES
    seed: int = 0


def predict(families: list[Family], opts: Options) -> list[tuple[Fit, scaling.LawResult]]:
    out = []
    for whole in families:
        fam, held = _hold_out(whole) if opts.hold_out else (whole, None)
        for group, bucket, law, used, left in _laws(fam, opts, whole):
            observed = _observed(whole, law, used, opts) if held else None
            out.append((_fit(fam, group, bucket, law, used, left, observed, opts), law))
    return out


def _hold_out(fam: Family) -> tuple[Family, Member]:
    """The family without its largest model, and that model."""
    if len(fam.members) < 3:
        raise EvalkitError(f"--hold-out: eval {fam.eval} has {len(fam.members)} models; holding one out leaves "
                           "too few to fit")
    rest = Family(fam.eval, fam.members[:-1], fam.problems, fam.left_out,
                  None if fam.se is None else fam.se[:-1], None if fam.points is None else fam.points[:-1])
    return rest, fam.members[-1]


def _counts(fam: Family) -> tuple[np.ndarray, np.ndarray]:
    """Passes (a score of 1) and scored samples of every model and problem: (M, P) each."""
    return fam.matrix(lambda v: sum(1 for s in v if s == 1.0)), fam.matrix(len)


def _laws(fam: Family, opts: Options, whole: Family):
    """(group, bucket, law, problems used, left out) for each fit the options ask of one family.
    With --hold-out, `whole` still holds the left-out model: the problems are those it shares."""
    rng = np.random.default_rng(opts.seed)
    if fam.points is not None:
        yield None, None, _table_law(fam, fam.points, opts, rng), None, {}
        return
    subsets: list[tuple[str | None, np.ndarray]] = [(None, np.ones(len(fam.problems), bool))]
    if opts.by_group:
        first = fam.members[0].groups
        subsets += [(g, np.array([first.get(p) == g for p in fam.problems])) for g in fam.groups()]
    values = fam.matrix(np.mean) if opts.method == "loss" else None
    for group, include in subsets:
        if values is None:
            yield from _passrate_laws(fam, group, include, opts, rng, whole)
            continue
        draws = scaling.problem_draws(values, include, opts.resamples, rng)
        law = scaling.loss_law(fam.x, scaling.masked_mean(values, include), draws,
                               c_max=1.0 if opts.bounded else np.inf)
        yield group, None, law, include, dict(fam.left_out)


def _passrate_laws(fam: Family, group, include, opts: Options, rng, whole: Family):
    succ, trials = _counts(fam)
    solved = (_counts(whole)[0] > 0).all(axis=0)
    law, used = scaling.passrate_law(succ, trials, fam.x, include & solved, opts.resamples, rng)
    left = dict(fam.left_out)
    unsolved = int(include.sum() - used.sum())
    if unsolved:
        left["not solved at least once by every model"] = unsolved
    if not used.any():
        raise EvalkitError(f"predict: eval {fam.eval}{f' group {group}' if group else ''}: no problem was solved at "
                           "least once by every model, so no pass rate has a logarithm; use --method loss")
    perfect = [m.model for m, v in zip(fam.members, law.points) if v <= 0]
    if perfect:
        raise EvalkitError(f"predict: eval {fam.eval}{f' group {group}' if group else ''}: {perfect[0]} passed every "
                           "sample of every kept problem, so its mean -log pass rate is 0 and has no place on a "
                           "log-log line; use --method loss, or more or harder problems")
    yield group, None, law, used, left
    if not opts.buckets:
        return
    for i, mask in enumerate(scaling.difficulty_buckets(succ, trials, fam.x, used, opts.buckets), 1):
        if not mask.any():
            raise EvalkitError(f"--buckets {opts.buckets}: eval {fam.eval} has only {int(used.sum())} problems that "
                               "every model solved at least once; ask for fewer buckets")
        part, _ = scaling.passrate_law(succ, trials, fam.x, mask, opts.resamples, rng)
        yield group, f"{i}/{opts.buckets}", part, mask, left


def _table_law(fam: Family, points: np.ndarray, opts: Options, rng) -> scaling.LawResult:
    """A published table: the points' draws from Normal(value, se); without se, the spread of a
    first fit's residuals stands in for every point's (in log space for the passrate law)."""
    x, c_max = fam.x, 1.0 if opts.bounded else np.inf
    if opts.method == "passrate":
        if (points <= 0).any():
            raise EvalkitError(f"--points: eval {fam.eval}: a mean -log pass rate must be above 0 for the passrate law")
        if fam.se is None:
            first = scaling.passrate_fit(x, points, points[None])
            spread = _spread(np.log(points) - np.log(first.curve(x)), len(x) - 2)
            return scaling.passrate_fit(x, points, points * np.exp(rng.normal(0, spread, (opts.resamples, len(x)))))
        return scaling.passrate_fit(x, points, scaling.normal_draws(points, fam.se, opts.resamples, rng))
    se = fam.se
    if se is None:
        first = scaling.loss_law(x, points, np.tile(points, (2, 1)), c_max=c_max)
        se = np.full(len(x), _spread(points - first.curve(x), len(x) - (3 if first.irreducible else 2)))
    return scaling.loss_law(x, points, scaling.normal_draws(points, se, opts.resamples, rng), se, c_max=c_max)


def _spread(residuals: np.ndarray, dof: int) -> float:
    return max(math.sqrt(float((residuals ** 2).sum()) / max(dof, 1)), 1e-12)


def _ci(draws) -> list[float | None]:
    lo, hi = scaling.interval(np.asarray(draws, float))
    return [_num(lo), _num(hi)]


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _fit(fam: Family, group, bucket, law: scaling.LawResult, used, left: dict, observed: Point | None,
         opts: Options) -> Fit:
    if not np.isfinite(law.params).all():
        where = "".join(f" {k} {v}" for k, v in (("group", group), ("bucket", bucket)) if v)
        raise EvalkitError(f"predict: eval {fam.eval}{where}: the {law.law} law could not be fitted to these points")
    shown, shown_draws = law.shown_params(law.params), law.shown_params(law.param_draws)
    params = {n: Interval(value=_num(shown[i]), ci95=_ci(shown_draws[:, i])) for i, n in enumerate(law.names())}
    if not law.irreducible:
        params.pop("c")
    failed = int((~np.isfinite(law.param_draws).all(axis=1)).sum())
    slope, slopes = scaling.trend(law)
    trend = Trend(slope_per_decade=slope, ci95=_ci(slopes), inverse_scaling=bool(scaling.interval(slopes)[0] > 0))
    at = opts.at if opts.at is not None else (observed.x if observed else None)
    fit = Fit(eval=fam.eval, group=group, bucket=bucket, method=law.law, metric=_metric(law, opts), law=LAWS[law.law],
              x_ref=law.ref, irreducible=law.irreducible, parameters=params, goodness=Goodness(**scaling.goodness(law)),
              points=_points(fam, law), trend=trend, problems=0 if used is None else int(used.sum()), left_out=left,
              resamples=len(law.point_draws), failed_resamples=failed)
    if at is not None:
        fit.prediction = _forecast(law, at, observed if opts.at is None else None)
    fit.warnings = _warnings(fit, law)
    return fit


def _metric(law: scaling.LawResult, opts: Options) -> str:
    if law.law == "passrate":
        return "mean -log pass rate (pass rate = passes / samples per problem)"
    return f"1 - {opts.metric}" if opts.bounded else opts.metric


def _points(fam: Family, law: scaling.LawResult) -> list[Point]:
    lo, hi = scaling.interval(law.point_draws)
    return [Point(model=m.model, x=m.x, value=float(law.points[i]), ci95=[_num(lo[i]), _num(hi[i])], logs=m.logs)
            for i, m in enumerate(fam.members)]


def _forecast(law: scaling.LawResult, at: float, observed: Point | None) -> Forecast:
    value = float(law.curve(np.array([at]))[0])
    ci = _ci(law.curve(np.array([at]), law.param_draws)[:, 0])
    out = Forecast(x=at, ratio=at / float(law.x.max()), value=value, ci95=ci)
    if law.law == "passrate":
        out.pass_rate = [math.exp(-value), *(None if c is None else math.exp(-c) for c in reversed(ci))]
    if observed is not None:
        out.observed = observed
        # ci[1] None with ci[0] set would raise here; kept as it is (a change of behaviour, reported)
        out.observed_inside = ci[0] is not None and ci[0] <= observed.value <= ci[1]  # type: ignore[operator]
    return out


def _observed(whole: Family, law: scaling.LawResult, used: np.ndarray | None, opts: Options) -> Point:
    """The held-out model's own value, measured as the fitted points were (on the same problems)."""
    member = whole.members[-1]
    if whole.points is not None:
        value = float(whole.points[-1])
        se = None if whole.se is None else float(whole.se[-1])
        return Point(model=member.model, x=member.x, value=value,
                     ci95=[value - 1.96 * se, value + 1.96 * se] if se is not None else [None, None])
    if law.law == "loss":
        values = whole.matrix(np.mean)
    else:
        succ, trials = _counts(whole)
        values = scaling.neg_log_pass(succ, trials)
    assert used is not None         # only a table's law (returned above) has no problems
    point = float(scaling.masked_mean(values, used)[-1])
    draws = scaling.problem_draws(values, used, opts.resamples, np.random.default_rng(opts.seed))[:, -1]
    lo, hi = scaling.interval(draws)
    return Point(model=member.model, x=member.x, value=point, ci95=[_num(lo), _num(hi)], logs=member.logs)


def _warnings(fit: Fit, law: scaling.LawResult) -> list[str]:
    out = []
    n = len(fit.points)
    if law.law == "loss" and not law.irreducible:
        out.append(f"{n} points cannot identify the irreducible term c (3 parameters need at least "
                   f"{scaling.MIN_POINTS_IRREDUCIBLE} points): c is fixed at 0, a pure power law")
    c = fit.parameters.get("c")
    smallest = min(p.value for p in fit.points)
    # as in _forecast: ci95[1] None with ci95[0] set would raise (kept; reported)
    if c is not None and c.ci95[0] is not None and c.ci95[0] <= 1e-6 and c.ci95[1] >= 0.9 * smallest:  # type: ignore[operator]
        out.append(f"the irreducible term c is not identified by these points (its interval spans "
                   f"{c.ci95[0]:.3g} to {c.ci95[1]:.3g}, up to the smallest loss); the forecast leans on it")
    if fit.goodness.dof <= 0:
        out.append(f"{n} points for {n - fit.goodness.dof} parameters: the law passes through them, so there is "
                   "no goodness of fit and the interval comes from the points' noise alone")
    if fit.prediction is not None and fit.prediction.ratio > scaling.EXTRAPOLATION_RATIO:
        out.append(f"the forecast at x={fit.prediction.x:.3g} is {fit.prediction.ratio:,.0f}x the largest x fitted, "
                   f"beyond {scaling.EXTRAPOLATION_RATIO:g}x: its interval holds only if the law itself still holds")
    if fit.failed_resamples > 0.05 * fit.resamples:
        out.append(f"{fit.failed_resamples} of {fit.resamples} resamples could not be fitted; the intervals "
                   "come from the rest")
    if 0 < fit.problems < 20:
        out.append(f"only {fit.problems} problems behind each point")
    if fit.trend.inverse_scaling:
        out.append(f"inverse scaling: the metric gets worse with scale ({fit.trend.slope_per_decade:+.4g} per "
                   f"decade, 95% interval {fit.trend.ci95[0]:+.4g} to {fit.trend.ci95[1]:+.4g})")
    return out
