"""Figures (matplotlib, imported lazily).  One module per stage.

Every function takes data (Patterns, results) and returns a matplotlib
``Figure``; :func:`save_figure` writes it atomically.  Nothing here computes
physics.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["new_figure", "save_figure"]


def _pyplot():
    try:
        import matplotlib

        if "MPLBACKEND" not in os.environ:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from exc
    return plt


def new_figure(nrows: int = 1, ncols: int = 1, **kwargs: Any):
    """``(fig, axes)`` from a non-interactive Figure (no pyplot state is kept)."""
    from matplotlib.figure import Figure

    kwargs.setdefault("figsize", (7.0, 4.5))
    kwargs.setdefault("layout", "constrained")
    fig = Figure(**kwargs)
    axes = fig.subplots(nrows, ncols)
    return fig, axes


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save ``fig`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
