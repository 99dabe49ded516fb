"""Figures of the PDF stage: S(Q)/F(Q)/G(r) panels and the correlation-length envelope."""

from __future__ import annotations

from typing import Any

import numpy as np

from xrdpdf.plot import new_figure

__all__ = ["plot_pdf", "plot_gr_comparison", "plot_corrlen"]


def plot_pdf(result: Any, title: str | None = None):
    """Three panels: I_c(Q) with σ, F(Q) with the Q_max cut, G(r).

    Parameters
    ----------
    result : PdfResult
        From :func:`xrdpdf.stages.pdf.transform`.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = new_figure(3, 1, figsize=(7.0, 8.5))
    iq, fq, gr = result.iq, result.fq, result.gr
    axes[0].plot(iq.x, iq.y, lw=0.8, label="I(Q) − s·I_bg")
    axes[0].set_xlabel("Q (Å⁻¹)")
    axes[0].set_ylabel("I (a.u.)")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[1].plot(fq.x, fq.y, lw=0.6, label="F(Q)")
    if fq.sigma is not None:
        axes[1].fill_between(fq.x, fq.y - fq.sigma, fq.y + fq.sigma, alpha=0.3, lw=0)
    axes[1].axvline(
        result.qmax_invA,
        color="k",
        ls="--",
        lw=0.8,
        label=f"Q_max = {result.qmax_invA:.2f} Å⁻¹" + (" (auto)" if result.qmax_auto else ""),
    )
    axes[1].set_xlabel("Q (Å⁻¹)")
    axes[1].set_ylabel("F (Å⁻¹)")
    axes[1].legend(loc="upper right", fontsize=8)
    axes[2].plot(gr.x, gr.y, lw=0.7, label="G(r)")
    if gr.sigma is not None:
        axes[2].fill_between(
            gr.x, gr.y - 3 * gr.sigma, gr.y + 3 * gr.sigma, alpha=0.3, lw=0, label="±3σ"
        )
    axes[2].set_xlabel("r (Å)")
    axes[2].set_ylabel("G (Å⁻²)")
    axes[2].legend(loc="upper right", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_gr_comparison(
    r, g, r_ref, g_ref, labels=("xrdpdf", "PDFgetX3"), title=None, rw: float | None = None
):
    """G(r) against a reference G(r), with the difference offset below."""
    fig, ax = new_figure(1, 1, figsize=(8.0, 4.5))
    g = np.asarray(g)
    g_ref = np.asarray(g_ref)
    ax.plot(r_ref, g_ref, lw=1.2, label=labels[1])
    ax.plot(r, g, lw=0.7, ls="--", label=labels[0])
    off = 1.2 * float(np.min(g_ref)) - 0.5 * float(np.ptp(g_ref)) * 0.1
    if np.allclose(r, r_ref):
        ax.plot(r, g - g_ref + off, lw=0.7, color="0.3", label="difference (offset)")
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("G (Å⁻²)")
    text = title or ""
    if rw is not None:
        text = f"{text}  Rw = {rw:.4f}".strip()
    if text:
        ax.set_title(text)
    ax.legend(loc="upper right", fontsize=8)
    return fig


def plot_corrlen(gr: Any, result: Any, title: str | None = None):
    """G(r) with the measured RMS envelope, the fitted sphere envelope and r_noise."""
    fig, ax = new_figure(1, 1, figsize=(8.0, 4.5))
    ax.plot(gr.x, gr.y, lw=0.6, label="G(r)")
    ax.plot(result.envelope_r_A, result.envelope, "o", ms=4, label="RMS envelope")
    ax.plot(
        result.envelope_r_A,
        result.envelope_model,
        "-",
        lw=1.5,
        label=f"sphere fit D = {result.xi_A:.1f} ± {result.xi_esd_A:.1f} Å",
    )
    if np.isfinite(result.r_noise_A):
        ax.axvline(
            result.r_noise_A, color="k", ls=":", lw=1, label=f"r_noise = {result.r_noise_A:.1f} Å"
        )
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("G (Å⁻²)")
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title)
    return fig
