"""Figures 1 and 2 of the GPT-4 report for a fitted family: log-log axes, each model's point with its
95% interval, the fitted law, its 95% band, and the forecast with its interval; and the
self-contained HTML page `evalkit predict --html FILE` writes (images as data URIs)."""

from __future__ import annotations

import base64
import html

import numpy as np

from evalkit.analysis import scaling
from evalkit.analysis.predict import Fit


def figure_png(fit: Fit, law: scaling.LawResult) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p.x for p in fit.points] + ([fit.prediction.x] if fit.prediction else [])
    grid = np.geomspace(min(xs) / 1.5, max(xs) * 1.5, 200)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    band = scaling.interval(law.curve(grid, law.param_draws))
    ax.fill_between(grid, np.maximum(band[0], 1e-12), np.maximum(band[1], 1e-12), color="#9ab8d8", alpha=0.45,
                    linewidth=0, label="fit, 95% band")
    ax.plot(grid, np.maximum(law.curve(grid), 1e-12), color="#2b5d8f", linewidth=1.6, label=_formula(fit))
    _points(ax, fit)
    if fit.prediction is not None:
        p = fit.prediction
        ax.errorbar([p.x], [p.value], yerr=_yerr(p.value, p.ci95), fmt="*", color="#c0392b", markersize=12,
                    capsize=4, label=f"forecast {p.value:.4g} [{_g(p.ci95[0])}, {_g(p.ci95[1])}]")
        if p.observed is not None:
            o = p.observed
            ax.errorbar([o.x * 1.04], [o.value], yerr=_yerr(o.value, o.ci95), fmt="D", color="#27864a", capsize=3,
                        markersize=6, label=f"{o.model} observed {o.value:.4g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("x (compute, parameters or scale)")
    ax.set_ylabel(fit.metric if len(fit.metric) < 40 else "mean -log pass rate")
    ax.set_title(_title(fit), fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="best")
    from evalkit.analysis.report import figure_png

    return figure_png(fig)


def _points(ax, fit: Fit) -> None:
    xs = [p.x for p in fit.points]
    ys = [p.value for p in fit.points]
    err = np.array([_yerr(p.value, p.ci95)[:, 0] for p in fit.points]).T
    ax.errorbar(xs, ys, yerr=err, fmt="o", color="#1d2430", markersize=5, capsize=3, label="models (95% interval)")


def _yerr(value: float, ci) -> np.ndarray:
    lo = value if ci[0] is None else ci[0]
    hi = value if ci[1] is None else ci[1]
    return np.array([[max(value - lo, 0.0)], [max(hi - value, 0.0)]])


def _g(v) -> str:
    return "–" if v is None else f"{v:.4g}"


def _formula(fit: Fit) -> str:
    p = {k: v.value for k, v in fit.parameters.items()}
    if fit.method == "passrate":
        return f"{_g(p['alpha'])}·(x/x_ref)^-{_g(p['k'])}"
    return f"{_g(p['a'])}·(x/x_ref)^{_g(p['b'])} + {_g(p.get('c', 0.0))}"


def _title(fit: Fit) -> str:
    where = "".join(f" · {label} {v}" for label, v in (("group", fit.group), ("bucket", fit.bucket)) if v)
    return f"{fit.eval}{where}: {fit.method} law"


def page(fits: list[tuple[Fit, scaling.LawResult]], text: str) -> str:
    """The HTML page: the text report, then one figure per fit."""
    from evalkit.analysis.report import CSS

    e = html.escape
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>evalkit predict</title>",
             f"<style>{CSS}</style></head><body><h1>evalkit predict</h1><pre>{e(text)}</pre><h2>Figures</h2>"]
    for fit, law in fits:
        data = base64.b64encode(figure_png(fit, law)).decode()
        parts.append(f"<figure><img alt='{e(_title(fit))}' src='data:image/png;base64,{data}'>"
                     f"<figcaption class='muted'>{e(_title(fit))}</figcaption></figure>")
    parts.append("</body></html>")
    return "".join(parts)
