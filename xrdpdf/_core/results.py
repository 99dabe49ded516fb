"""What every result object offers: ``to_dict()`` (plain values for JSON) and ``_repr_html_``.

Results are frozen dataclasses; :class:`Result` gives them a default :meth:`~Result.to_dict`
built from their scalar fields (numbers, strings, short tuples, mappings of those; arrays and
patterns are left to the attributes) and an HTML table of it for Jupyter.  A result that knows
better overrides ``to_dict``.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

__all__ = ["Result", "plain"]

_SKIP = object()
#: Longest sequence ``plain`` keeps (a per-bin array is not a summary value).
_MAX_ITEMS = 64


def plain(value: Any) -> Any:
    """``value`` as JSON-able Python (None, bool, int, float, str, list, dict), or ``_SKIP``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= _MAX_ITEMS and value.dtype.kind in "biuf" else _SKIP
    if isinstance(value, Mapping):
        out = {str(k): plain(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not _SKIP}
    if isinstance(value, list | tuple) and len(value) <= _MAX_ITEMS:
        items = [plain(v) for v in value]
        return _SKIP if any(v is _SKIP for v in items) else items
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return _SKIP


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.6g}"
    text = str(value)
    return html.escape(text if len(text) <= 120 else text[:117] + "…")


class Result:
    """Mixin of the result dataclasses: :meth:`to_dict` and a Jupyter table."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The result's plain values (its scalar dataclass fields), ready for ``json.dumps``."""
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = plain(getattr(self, f.name))
            if v is not _SKIP:
                out[f.name] = v
        return out

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{_cell(v)}</td></tr>"
            for k, v in self.to_dict().items()
        )
        return f"<table><caption>{type(self).__name__}</caption>{rows}</table>"
