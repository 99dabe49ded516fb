"""Display helpers shared by the notebook sessions: figures inline, HTML tables, number format."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xrdpdf.notebook._widgets import figure_png

__all__ = [
    "show_figure",
]


_UNSET: Any = object()


def show_figure(fig, dpi: int = 90) -> None:
    """Display a Figure as a PNG in a notebook, whatever the matplotlib backend."""
    try:
        from IPython.display import Image, display
    except ImportError as exc:
        raise ImportError("show_figure needs IPython: pip install ipython") from exc
    display(Image(data=figure_png(fig, dpi=dpi), format="png"))


def _fmt(v: Any, digits: int = 6) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float | np.floating):
        return "" if not math.isfinite(float(v)) else f"{float(v):.{digits}g}"
    return str(v)


def _html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


_UNIT_SHORT = {"q_A^-1": "Å⁻¹", "2th_deg": "°"}
