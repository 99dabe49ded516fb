"""Figure of a real-space PDF fit: observed, calculated and difference G(r)."""

from __future__ import annotations

from typing import Any

from xrdpdf.plot import new_figure

__all__ = ["plot_pdffit"]


def plot_pdffit(result: Any, title: str | None = None):
    """Observed and fitted G(r) with the difference curve offset below.

    Parameters
    ----------
    result : xrdpdf.stages.pdffit.PdfFitResult
    title : str, optional
    """
    fig, ax = new_figure()
    r, gobs, gcalc = result.observed.x, result.observed.y, result.fit.y
    diff = gobs - gcalc
    offset = gobs.min() - diff.max() - 0.1 * (gobs.max() - gobs.min())
    ax.plot(r, gobs, "o", ms=2, mfc="none", color="C0", label="observed")
    ax.plot(r, gcalc, "-", color="C3", lw=1, label="calculated")
    ax.plot(r, diff + offset, "-", color="C2", lw=1, label="difference")
    ax.axhline(offset, color="0.6", lw=0.5)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("G(r) (Å⁻²)")
    ax.set_title(f"{title or ''}  Rw = {result.rw:.4f}".strip())
    ax.legend(loc="upper right", fontsize="small")
    return fig
