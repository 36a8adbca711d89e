"""`evalkit predict`: fit a model family's scaling law from run logs (or a published table) and
forecast a larger model, as the GPT-4 report's Section 3 did. See docs/predict.md."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from evalkit.core.errors import EvalkitError


class Positive(click.ParamType):
    name = "X"

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number <= 0:
            self.fail(f"{value!r} is not a positive finite number", param, ctx)
        return number


@click.command("predict")
@click.argument("logs", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--x", "xs", multiple=True, metavar="MODEL=VALUE|FILE",
              help="Each model's scale (training compute, parameters, ...): MODEL=VALUE, or a YAML (model: x) or CSV "
                   "(model,x) file; repeatable. Default: the scale the log recorded (`run --scale`).")
@click.option("--at", type=Positive(), help="Forecast the metric at this x, with its 95% interval.")
@click.option("--hold-out", is_flag=True, help="Fit without the largest model and forecast it (at its x): "
                                               "the forecast's interval against its own value.")
@click.option("--method", type=click.Choice(["loss", "passrate"]), default="loss", show_default=True,
              help="loss: L = a*(x/x_ref)^b + c on a loss-like metric; passrate: -mean log pass rate = "
                   "alpha*(x/x_ref)^-k over the problems every model solved at least once (needs --samples N logs).")
@click.option("--metric", help="loss: the per-sample metric to fit (default the eval's main one; 'nll': "
                               "-log P(target) from logged option probabilities).")
@click.option("--lower-is-better", is_flag=True,
              help="The metric (or --points value) is already a loss; otherwise a score in [0, 1] becomes 1 - score.")
@click.option("--by-group", is_flag=True, help="A fit per group (e.g. MMLU subject) as well as the whole eval.")
@click.option("--buckets", type=click.IntRange(1, 100), metavar="K",
              help="passrate: also fit K difficulty buckets, defined on the small models' pass rates.")
@click.option("--points", "table", type=click.Path(dir_okay=False),
              help="Fit a published table instead of logs: CSV with model,x,value[,se][,eval].")
@click.option("--resamples", type=click.IntRange(50, 100_000), default=400, show_default=True,
              help="Bootstrap draws behind every interval.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True, help="Seeds the bootstrap.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (docs/predict.schema.json) on stdout.")
@click.option("--schema", is_flag=True, help="Print the JSON Schema of --json (docs/predict.schema.json) and exit.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write an HTML page with a Figure 1/2-style plot per fit.")
def predict_cmd(logs, xs, at, hold_out, method, metric, lower_is_better, by_group, buckets, table, resamples, seed,
                as_json, schema, html_out) -> None:
    """Fit a scaling law to a model family's logs of one eval and forecast a larger model."""
    from evalkit.analysis.family import read_families, read_table, scale_map
    from evalkit.analysis.predict import Options, PredictReport, predict

    if schema:
        click.echo(json.dumps(PredictReport.model_json_schema(), indent=1))
        return

    if bool(logs) == bool(table):
        raise EvalkitError("predict: give run logs of one eval from several models, or --points TABLE (not both)")
    if buckets and method != "passrate":
        raise EvalkitError("--buckets: difficulty buckets are for --method passrate")
    if table and (by_group or buckets or metric):
        raise EvalkitError("--points: a published table has no problems; --by-group, --buckets and --metric need logs")
    bounded = not lower_is_better and metric != "nll" and method == "loss"    # a score in [0, 1]: loss = 1 - score
    opts = Options(method=method, metric=metric or "score", bounded=bounded, at=at,
                   hold_out=hold_out, by_group=by_group, buckets=buckets, resamples=resamples, seed=seed)
    if table:
        families = read_table(table, higher_is_better=opts.bounded)
        opts.metric = "value"
    else:
        primary = _primary(logs[0])
        if metric == primary:
            metric = None                   # the eval's main metric is each sample's score
        families = read_families(list(logs), scale_map(xs), _reader(method, metric, opts.bounded))
        opts.metric = metric or primary
    fits = predict(families, opts)
    text = "\n\n".join(fit_text(f) for f, _ in fits)
    click.echo(PredictReport(fits=[f for f, _ in fits]).model_dump_json(indent=1) if as_json else text)
    for fit, _ in fits:
        for w in fit.warnings:
            click.echo(f"evalkit: warning: {_where(fit)}: {w}", err=True)
    if html_out is not None:
        from evalkit.analysis.predictplot import page

        try:
            shown = "\n\n".join(fit_text(f) + "".join(f"\n  warning  {w}" for w in f.warnings) for f, _ in fits)
            html_out.write_text(page(fits, shown), encoding="utf-8")
        except OSError as exc:
            raise EvalkitError(f"--html {html_out}: cannot write ({exc.strerror})") from None
        click.echo(f"wrote {html_out}", err=True)


def _primary(path: str) -> str:
    """The eval's main metric, as the first log's spec names it."""
    from evalkit.results.runlog import read_log

    spec = read_log(path).header.get("spec")
    metrics = spec.get("metrics") if isinstance(spec, dict) else None
    return str(metrics[0]) if isinstance(metrics, list) and metrics else "accuracy"


def _reader(method: str, metric: str | None, bounded: bool):
    """value(sample result) -> float | None: what one sample contributes."""
    if method == "passrate":
        if metric:
            raise EvalkitError("--metric: the passrate method counts passes (a score of 1); it takes no metric")
        return lambda r: r.score

    def read(r):
        if metric == "nll":
            return _nll(r)
        v = r.score if metric is None else (r.extras or {}).get(metric, r.score if metric == "score" else None)
        if v is None and metric is not None and r.score is not None:
            raise EvalkitError(f"--metric {metric}: sample {r.id} has no such metric (it has: "
                               f"{', '.join(['score', *sorted(r.extras or {})])})")
        if v is not None and bounded and not 0 <= v <= 1:
            raise EvalkitError(f"sample {r.id}: {metric or 'score'} {v} is outside [0, 1]; a score becomes the loss "
                               "1 - score (pass --lower-is-better if it is already a loss)")
        return None if v is None else (1 - v if bounded else v)
    return read


def _nll(r) -> float | None:
    if r.score is None:
        return None
    probs = r.option_probs or {}
    if not probs or r.target not in probs:
        raise EvalkitError(f"--metric nll: sample {r.id} has no option probabilities for its target; run the eval "
                           "with --logprobs (or --answer-by logprob)")
    return -math.log(max(float(probs[r.target]), 1e-12))


def _where(fit) -> str:
    return fit.eval + "".join(f" {k} {v}" for k, v in (("group", fit.group), ("bucket", fit.bucket)) if v)


def _ci(ci) -> str:
    return "[" + ", ".join("–" if v is None else f"{v:.4g}" for v in ci) + "]"


def fit_text(fit) -> str:
    """One fit for people: the law, the parameters, the fit's quality, the forecast, the points."""
    left = "; ".join(f"{n} left out: {why}" for why, n in fit.left_out.items())
    lines = [f"{_where(fit)}: {fit.method} law on {fit.metric}, {len(fit.points)} models, "
             f"{f'{fit.problems} problems' if fit.problems else 'a published table'}{f' ({left})' if left else ''}",
             f"  law      {fit.law}, x_ref = {fit.x_ref:.4g}"]
    lines += [f"  {name:<8} {p.value:.4g} {_ci(p.ci95)}" for name, p in fit.parameters.items()]
    g = fit.goodness
    lines.append(f"  fit      R^2 {'–' if g.r2 is None else f'{g.r2:.4f}'}, RMSE {g.rmse:.4g}, chi^2/dof "
                 f"{'–' if g.chi2_per_dof is None else f'{g.chi2_per_dof:.3g}'} (dof {g.dof}); "
                 f"{fit.resamples} resamples, {fit.failed_resamples} failed")
    lines += [f"  point    {p.model}: x={p.x:.4g}  {p.value:.4g} {_ci(p.ci95)}" for p in fit.points]
    t = fit.trend
    lines.append(f"  trend    {t.slope_per_decade:+.4g} per decade of x {_ci(t.ci95)}"
                 f"{'  INVERSE SCALING: worse with scale' if t.inverse_scaling else ''}")
    if fit.prediction is not None:
        p = fit.prediction
        extra = f" (pass rate {p.pass_rate[0]:.4g} {_ci(p.pass_rate[1:])})" if p.pass_rate else ""
        lines.append(f"  forecast x={p.x:.4g} ({p.ratio:.3g}x the largest): {p.value:.4g} {_ci(p.ci95)}{extra}")
        if p.observed is not None:
            o = p.observed
            lines.append(f"  held out {o.model}: {o.value:.4g} {_ci(o.ci95)}, "
                         f"{'inside' if p.observed_inside else 'OUTSIDE'} the forecast's interval")
    return "\n".join(lines)
