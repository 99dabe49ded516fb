"""Figure of a Rietveld-lite refinement, laid out like GSAS-II.

Observed points, calculated curve, background, the difference curve offset
below, and one row of tick marks per phase.  Takes a
:class:`xrdpdf.stages.refinement.RefinementResult`; computes nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xrdpdf.plot import new_figure

__all__ = ["plot_refinement"]

_UNIT_LABEL = {"q_A^-1": "Q (Å$^{-1}$)", "2th_deg": "2θ (°)"}
_COLORS = ("tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive")


def plot_refinement(result: Any, title: str | None = None):
    """Observed / calculated / difference / ticks figure of a refinement.

    Parameters
    ----------
    result : RefinementResult
        From :func:`xrdpdf.stages.refinement.refine`.
    title : str, optional
        Figure title; default names the pattern and gives Rwp and GoF.

    Returns
    -------
    matplotlib.figure.Figure
    """
    x, yo, yc = result.x, result.y_obs, result.y_calc
    diff = yo - yc
    fig, ax = new_figure(figsize=(8.0, 5.0))
    span = float(np.max(yc) - np.min(np.minimum(yo, yc))) or 1.0
    ax.plot(x, yo, "+", ms=3, color="tab:blue", label="observed", rasterized=True)
    ax.plot(x, yc, "-", lw=1.0, color="tab:red", label="calculated")
    ax.plot(x, result.y_background, "-", lw=0.8, color="0.5", label="background")
    lo = float(np.min(np.minimum(yo, yc)))
    nph = len(result.phases)
    tick_h = 0.04 * span
    for i, ph in enumerate(result.phases):
        y0 = lo - (i + 1) * 1.3 * tick_h
        col = _COLORS[i % len(_COLORS)]
        ax.vlines(ph.ticks, y0 - tick_h / 2, y0 + tick_h / 2, color=col, lw=0.8, label=ph.name)
    doff = lo - (nph + 1) * 1.3 * tick_h - float(np.max(diff))
    ax.plot(x, diff + doff, "-", lw=0.8, color="tab:cyan", label="obs − calc")
    ax.axhline(doff, color="0.7", lw=0.5)
    ax.set_xlabel(_UNIT_LABEL.get(result.unit, result.unit))
    ax.set_ylabel("intensity")
    ax.set_xlim(float(x[0]), float(x[-1]))
    if title is None:
        src = result.pattern.source
        title = f"{src}: Rwp = {result.rwp:.4f}, GoF = {result.gof:.3g}"
        if not result.converged:
            title += " (NOT converged)"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper right", ncols=2)
    return fig
