"""Small helpers shared by the notebook panels: ipywidgets import, PNG bytes, status text."""

from __future__ import annotations

import html
import io
from typing import Any

__all__ = ["figure_png", "require_ipywidgets", "status_html"]


def require_ipywidgets() -> Any:
    """Import and return :mod:`ipywidgets`, or raise ImportError saying how to install it."""
    try:
        import ipywidgets
    except ImportError as exc:
        raise ImportError(
            "the interactive panels of xrdpdf.notebook need ipywidgets: "
            "pip install ipywidgets (or pip install 'xrdpdf[dev]'); the session classes "
            "(RefinementSession, PdfSession, PdfFitSession, SeriesExplorer) work without it"
        ) from exc
    return ipywidgets


def figure_png(fig: Any, dpi: int = 90) -> bytes:
    """PNG bytes of a matplotlib Figure (for an ``ipywidgets.Image`` or ``IPython.display``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def status_html(text: str, ok: bool) -> str:
    """A one-line status message, green when ``ok``, red otherwise (HTML-escaped)."""
    color = "green" if ok else "#b00"
    return f"<span style='color:{color}'>{html.escape(text)}</span>"
