"""Figures of integrated patterns: stacked I(Q) curves, optionally over their models.

Takes :class:`~xrdpdf._core.pattern.Pattern` objects; computes nothing but the
display offsets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xrdpdf._core.pattern import Pattern
from xrdpdf.plot import new_figure

__all__ = ["plot_patterns", "plot_image"]

_UNIT_LABEL = {"q_A^-1": "Q (Å$^{-1}$)", "2th_deg": "2θ (°)", "r_A": "r (Å)"}


def plot_patterns(
    patterns: Sequence[Pattern],
    labels: Sequence[str] | None = None,
    *,
    models: Sequence[Pattern | None] | None = None,
    normalize: bool = True,
    offset: float = 1.1,
    title: str | None = None,
):
    """Stacked 1-D patterns (one curve each), with optional model curves.

    Parameters
    ----------
    patterns : sequence of Pattern
        All in the same unit.
    labels : sequence of str, optional
        Legend entries; default each pattern's source.
    models : sequence of Pattern or None, optional
        A model per pattern (e.g. the I(Q) an image was simulated from), drawn
        dashed at the same offset (normalized to its own maximum).
    normalize : bool
        Scale each pattern (and its model) so that its maximum is 1.
    offset : float
        Vertical step between curves (in normalized units if ``normalize``).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not patterns:
        raise ValueError("plot_patterns needs at least one pattern")
    unit = patterns[0].unit
    labels = list(labels) if labels is not None else [p.source for p in patterns]
    models = list(models) if models is not None else [None] * len(patterns)
    fig, ax = new_figure(figsize=(8.0, 2.0 + 1.6 * len(patterns)))
    for i, (pat, label, model) in enumerate(zip(patterns, labels, models, strict=True)):
        norm = float(np.max(pat.y)) if normalize and np.max(pat.y) > 0 else 1.0
        shift = i * offset * (1.0 if normalize else float(np.max(pat.y)))
        (line,) = ax.plot(pat.x, pat.y / norm + shift, lw=0.9, label=label)
        if model is not None:
            m = model if model.unit == unit else (model.to_q() if unit == "q_A^-1" else None)
            if m is not None:
                mnorm = float(np.max(m.y)) if normalize and np.max(m.y) > 0 else 1.0
                ax.plot(
                    m.x, m.y / mnorm + shift, "--", lw=0.7, color="0.3", label=f"{label} (model)"
                )
    ax.set_xlabel(_UNIT_LABEL.get(unit, unit))
    ax.set_ylabel("I (normalized, offset)" if normalize else "I")
    ax.set_xlim(min(float(p.x[0]) for p in patterns), max(float(p.x[-1]) for p in patterns))
    ax.legend(fontsize="small", loc="upper right")
    if title:
        ax.set_title(title)
    return fig


def plot_image(data: np.ndarray, *, title: str | None = None, log: bool = True):
    """A detector frame as an image (log scale by default; masked/NaN pixels grey)."""
    fig, ax = new_figure(figsize=(5.5, 5.0))
    arr = np.asarray(data, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        shown = np.log10(np.where(arr > 0, arr, np.nan)) if log else arr
    im = ax.imshow(shown, origin="lower", cmap="magma", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="log$_{10}$ counts" if log else "counts")
    ax.set_xlabel("column (pixel)")
    ax.set_ylabel("row (pixel)")
    if title:
        ax.set_title(title)
    return fig
