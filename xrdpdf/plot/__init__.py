"""Figures (matplotlib, imported lazily).  One module per stage.

Every function takes data (Patterns, results) and returns a matplotlib
``Figure``; :func:`save_figure` writes it atomically.  Nothing here computes
physics.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["new_figure", "save_figure", "check_figure"]


def new_figure(nrows: int = 1, ncols: int = 1, **kwargs: Any):
    """``(fig, axes)`` from a non-interactive Figure (no pyplot state is kept)."""
    from matplotlib.figure import Figure

    kwargs.setdefault("figsize", (7.0, 4.5))
    kwargs.setdefault("layout", "constrained")
    fig = Figure(**kwargs)
    axes = fig.subplots(nrows, ncols)
    return fig, axes


def check_figure(path: str | os.PathLike, overwrite: bool) -> Path:
    """Check a figure path before any work: a format matplotlib writes, a writable place.

    Raises
    ------
    InputError
        An unknown extension, or what :func:`xrdpdf.io.check_output` refuses.
    """
    from matplotlib.backend_bases import FigureCanvasBase

    from xrdpdf._core._files import check_output
    from xrdpdf._core.errors import InputError

    path = Path(path)
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix.lower().lstrip(".") not in formats:
        allowed = ", ".join(sorted(formats))
        raise InputError(f"{path}: a figure needs one of the extensions {allowed}")
    return check_output(path, overwrite)


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save ``fig`` to ``path`` atomically (temporary file, then rename)."""
    from xrdpdf.io import atomic_path

    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=dpi)
    return Path(path)
