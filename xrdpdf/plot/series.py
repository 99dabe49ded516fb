"""Figures of an ex situ series, like the paper's, and the HTML report that embeds them."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core.pattern import Pattern
from xrdpdf._core.units import q_to_tth
from xrdpdf.physics.scattering import CU_KA1_A
from xrdpdf.plot import new_figure

__all__ = [
    "waterfall_figure",
    "gr_overlay_figure",
    "corrlen_figure",
    "lattice_figure",
    "report_html",
]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _label(row: Mapping[str, Any], labels: Sequence[str] = ()) -> str:
    values = ", ".join(f"{k} {row[k]}" for k in labels if k in row and row[k] != "")
    return f"{row['name']} ({values})" if values else str(row["name"])


def waterfall_figure(
    patterns: Sequence[Pattern],
    rows: Sequence[Mapping[str, Any]],
    peaks_q: Sequence[float] = (),
    labels: Sequence[str] = (),
):
    """I(Q) waterfall (left) and the same data on a Cu Kα1 2θ axis (right).

    Parameters
    ----------
    patterns : sequence of Pattern
        I(Q) per sample, Q in Å⁻¹.
    rows : sequence of mapping
        Summary rows (for labels), same order.
    peaks_q : sequence of float
        Reflection positions (Å⁻¹) of one phase, marked on both panels.
    labels : sequence of str
        Row keys shown in the legend beside the name.

    Notes
    -----
    2θ = 2 asin(Qλ/4π) with λ = Cu Kα1 (:data:`~xrdpdf.physics.scattering.CU_KA1_A`); only
    Q < 4π/λ is shown.  The
    intensities are the synchrotron ones (no lab Lorentz-polarization factor).
    """
    fig, (ax_q, ax_t) = new_figure(1, 2, figsize=(11, 5.5))
    qmax_cu = 4 * np.pi / CU_KA1_A * 0.999
    offset = 0.0
    for p, row in zip(patterns, rows, strict=True):
        y = p.y / max(np.max(p.y), 1e-300)
        ax_q.plot(p.x, y + offset, lw=0.8, label=_label(row, labels))
        keep = p.x < qmax_cu
        if keep.sum() > 1:
            ax_t.plot(q_to_tth(p.x[keep], CU_KA1_A), y[keep] + offset, lw=0.8)
        offset += 0.6
    for q in peaks_q:
        ax_q.axvline(q, color="0.7", lw=0.6, ls=":")
        if q < qmax_cu:
            ax_t.axvline(float(q_to_tth(q, CU_KA1_A)), color="0.7", lw=0.6, ls=":")
    ax_q.set(xlabel="Q (Å⁻¹)", ylabel="I / I_max + offset", title="I(Q), λ-independent")
    ax_q.set_xlim(left=0.5, right=min(12.0, max(p.x[-1] for p in patterns)))
    ax_t.set(xlabel="2θ (°, Cu Kα1)", title="as lab Cu Kα 2θ (reflections dotted)")
    ax_t.set_xlim(10, 80)
    ax_q.legend(fontsize=7, loc="upper right")
    return fig


def gr_overlay_figure(
    grs: Sequence[Pattern],
    rows: Sequence[Mapping[str, Any]],
    rmax_A: float = 40.0,
    labels: Sequence[str] = (),
):
    """G(r) of every sample, offset vertically, with the correlation length marked."""
    fig, ax = new_figure(figsize=(7, 6))
    offset = 0.0
    for g, row in zip(grs, rows, strict=True):
        keep = g.x <= rmax_A
        amp = max(np.max(np.abs(g.y[keep])), 1e-300)
        ax.plot(g.x[keep], g.y[keep] / amp + offset, lw=0.8, label=_label(row, labels))
        xi = row.get("xi_A")
        if isinstance(xi, float) and math.isfinite(xi) and xi <= rmax_A:
            ax.plot([xi], [offset], "|", ms=14, color="k")
        offset += 1.5
    ax.set(
        xlabel="r (Å)",
        ylabel="G(r) / max|G| + offset",
        title="G(r) (| = correlation length ξ)",
    )
    ax.legend(fontsize=7, loc="upper right")
    return fig


def _by_label_figure(
    rows, key: str, esd_key: str, ylabel: str, title: str, x: str | None, by: str | None
):
    """``key`` (± ``esd_key``) against the label ``x`` (sample order when None).

    One marker style per value of the label ``by`` (all rows alike when None).
    """
    fig, ax = new_figure(figsize=(6, 4.5))
    order = {r["name"]: i for i, r in enumerate(rows)}
    groups: dict[Any, list] = {}
    for r in rows:
        if _ok(r.get(key)) and (x is None or _ok(r.get(x))):
            groups.setdefault(r.get(by) if by else None, []).append(r)
    for i, (value, sel) in enumerate(groups.items()):
        ax.errorbar(
            [r[x] if x else order[r["name"]] for r in sel],
            [r[key] for r in sel],
            yerr=[_or0(r.get(esd_key)) for r in sel],
            fmt=_MARKERS[i % len(_MARKERS)],
            color=f"C{i}",
            capsize=3,
            label=None if by is None else f"{by} {value}",
        )
    if x is None:
        ax.set_xticks(range(len(rows)), [r["name"] for r in rows], rotation=45, ha="right")
    ax.set(xlabel=x or "sample", ylabel=ylabel, title=title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig


def corrlen_figure(rows: Sequence[Mapping[str, Any]], x: str | None = None, by: str | None = None):
    """Correlation length ξ (Å) against the label ``x``, with esd error bars, per ``by``."""
    return _by_label_figure(
        rows, "xi_A", "xi_esd_A", "correlation length ξ (Å)", "PDF correlation length", x, by
    )


def lattice_figure(rows: Sequence[Mapping[str, Any]], x: str | None = None, by: str | None = None):
    """Refined a (Å) of the first phase against the label ``x``, per ``by`` (refined rows only)."""
    return _by_label_figure(rows, "a_A", "a_esd_A", "a (Å)", "lattice parameter", x, by)


def _ok(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def _or0(v: Any) -> float:
    return float(v) if _ok(v) else 0.0


def _cell(v: Any) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return ""
        return f"{v:.5g}"
    return html.escape(str(v))


def report_html(
    title: str,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    figures: Mapping[str, Path],
    notes: Sequence[str] = (),
) -> str:
    """A self-contained HTML page: the summary table and the PNG figures (embedded)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{_cell(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows
    )
    imgs = []
    for caption, path in figures.items():
        data = base64.b64encode(Path(path).read_bytes()).decode()
        imgs.append(
            f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(caption)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}} figure{{display:inline-block;
margin:1em}} img{{max-width:720px}}</style></head>
<body><h1>{html.escape(title)}</h1>
<h2>Summary</h2><table><tr>{head}</tr>
{body}
</table>
<ul>{note_html}</ul>
<h2>Figures</h2>
{"".join(imgs)}
</body></html>
"""
