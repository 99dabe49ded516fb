"""Series results in Jupyter: :class:`SeriesExplorer` reads the output folder of ``xrdpdf series``
(:func:`xrdpdf.workflows.series.run_series`); :func:`series_panel` is its panel.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xrdpdf._core.errors import InputError, XrdpdfError
from xrdpdf._core.pattern import Pattern
from xrdpdf.notebook._display import _html_table
from xrdpdf.notebook._widgets import figure_png, require_ipywidgets, status_html

__all__ = [
    "SeriesExplorer",
    "SeriesPanel",
    "series_panel",
]


_SERIES_HIDDEN = ("size_esd_A", "r_noise_A", "n_images", "input_hash")


class SeriesExplorer:
    """Browse the output folder of ``xrdpdf series`` (:func:`xrdpdf.workflows.series.run_series`).

    Parameters
    ----------
    outdir : path-like
        The folder with ``summary.csv`` and one sub-folder per sample
        (``<name>/<name>.xye``, ``<name>.gr``, ``<name>_refine.json``).

    Raises
    ------
    InputError
        If ``summary.csv`` is missing or unreadable.
    """

    def __init__(self, outdir: str | Path) -> None:
        from xrdpdf.workflows.series import read_summary

        self.outdir = Path(outdir)
        summary = self.outdir / "summary.csv"
        if not summary.is_file():
            raise InputError(f"{summary}: not found; run `xrdpdf series` (or run_series) first")
        try:
            self.rows = read_summary(summary)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{summary}: cannot read the summary ({exc})") from exc
        self.columns = tuple(self.rows[0]) if self.rows else ()

    @property
    def labels(self) -> tuple[str, ...]:
        """The series file's sample labels (the columns between ``group`` and ``phase``)."""
        cols = self.columns
        if "group" not in cols or "phase" not in cols:
            return ()
        return cols[cols.index("group") + 1 : cols.index("phase")]

    @property
    def default_columns(self) -> tuple[str, ...]:
        """The columns :meth:`table` shows by default (all but bookkeeping)."""
        return tuple(c for c in self.columns if c not in _SERIES_HIDDEN)

    @property
    def names(self) -> list[str]:
        """Sample names, in the order of the series file."""
        return [r["name"] for r in self.rows]

    def row(self, name: str) -> dict[str, Any]:
        """The summary row of a sample."""
        for r in self.rows:
            if r["name"] == name:
                return dict(r)
        raise InputError(f"no sample {name!r} in {self.outdir}; samples: {', '.join(self.names)}")

    def _file(self, name: str, suffix: str) -> Path:
        self.row(name)
        return self.outdir / name / f"{name}{suffix}"

    def pattern(self, name: str) -> Pattern:
        """The integrated I(Q) of a sample."""
        from xrdpdf.io import read_pattern

        f = self._file(name, ".xye")
        if not f.is_file():
            raise InputError(
                f"{f}: no integrated pattern for {name} (error: {self.row(name)['error']})"
            )
        return read_pattern(f)

    def gr(self, name: str) -> Pattern | None:
        """The G(r) of a sample, or None when the PDF step did not produce one."""
        from xrdpdf.io import read_pattern

        f = self._file(name, ".gr")
        return read_pattern(f) if f.is_file() else None

    def refinement(self, name: str) -> dict[str, Any] | None:
        """The refinement summary (``RefinementResult.to_dict()``) of a sample, or None."""
        f = self._file(name, "_refine.json")
        if not f.is_file():
            return None
        try:
            return json.loads(f.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(f"{f}: not valid JSON ({exc})") from exc

    def table(self, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The summary rows restricted to ``columns`` (default :attr:`default_columns`)."""
        columns = self.default_columns if columns is None else columns
        return [{c: r.get(c) for c in columns} for r in self.rows]

    def table_html(self, columns: Sequence[str] | None = None) -> str:
        """The summary as an HTML table."""
        return _html_table(self.rows, self.default_columns if columns is None else columns)

    def _repr_html_(self) -> str:
        return self.table_html()

    def figure(self, name: str):
        """I(Q) (top) and G(r) with ξ marked (bottom) of one sample."""
        from xrdpdf.plot import new_figure

        row = self.row(name)
        pat = self.pattern(name)
        gr = self.gr(name)
        fig, (ax_q, ax_r) = new_figure(2, 1, figsize=(7.0, 6.0))
        ax_q.plot(pat.x, pat.y, lw=0.7)
        ax_q.set(
            xlabel="Q (Å⁻¹)",
            ylabel="I (a.u.)",
            title=", ".join([name, *(f"{k} {row[k]}" for k in self.labels)]),
        )
        if gr is None:
            ax_r.text(0.5, 0.5, "no G(r)", ha="center", va="center", transform=ax_r.transAxes)
        else:
            ax_r.plot(gr.x, gr.y, lw=0.7)
            xi = row.get("xi_A")
            if isinstance(xi, float) and math.isfinite(xi):
                ax_r.axvline(xi, color="k", ls=":", label=f"ξ = {xi:.1f} Å")
                ax_r.legend(fontsize=8, loc="upper right")
        ax_r.set(xlabel="r (Å)", ylabel="G (Å⁻²)")
        return fig

    def trend_figures(self, x: str | None = None, by: str | None = None) -> dict[str, Any]:
        """Correlation length and lattice parameter against the label ``x``, per label ``by``."""
        from xrdpdf.plot import series as sp

        for lab in (x, by):
            if lab is not None and lab not in self.labels:
                known = ", ".join(self.labels) or "none"
                raise InputError(f"{lab!r} is not a label of this series ({known})")
        return {
            "xi": sp.corrlen_figure(self.rows, x=x, by=by),
            "lattice": sp.lattice_figure(self.rows, x=x, by=by),
        }


class SeriesPanel:
    """ipywidgets front end of a :class:`SeriesExplorer` (use :func:`series_panel`)."""

    def __init__(self, explorer: SeriesExplorer) -> None:
        w = require_ipywidgets()
        self.explorer = explorer
        if not explorer.names:
            raise InputError(f"{explorer.outdir}: the summary lists no samples")
        self.sample = w.Dropdown(
            options=explorer.names, value=explorer.names[0], description="sample"
        )
        self.plot = w.Image(format="png")
        self.details = w.HTML("")
        self.summary = w.HTML(explorer.table_html())
        self.sample.observe(self.on_select, names="value")
        self.widget = w.VBox([self.summary, self.sample, w.HBox([self.plot, self.details])])
        self.on_select()

    def on_select(self, _change: Any = None) -> dict[str, Any]:
        """Show the selected sample's I(Q), G(r) and refinement; the dropdown callback.

        Returns
        -------
        dict
            The sample's summary row.
        """
        name = self.sample.value
        row = self.explorer.row(name)
        try:
            self.plot.value = figure_png(self.explorer.figure(name))
        except XrdpdfError as exc:
            self.plot.value = b""
            self.details.value = status_html(str(exc), False)
            return row
        ref = self.explorer.refinement(name)
        items = [
            {"quantity": k, "value": row.get(k)}
            for k in self.explorer.default_columns
            if k not in ("name", "group", *self.explorer.labels)
        ]
        if ref is not None:
            items += [
                {"quantity": "refinement: " + k, "value": ref.get(k)}
                for k in ("converged", "gof", "n_points")
            ]
        self.details.value = _html_table(items, ("quantity", "value"))
        return row


def series_panel(explorer: SeriesExplorer | str | Path) -> SeriesPanel:
    """A sample chooser with each sample's I(Q), G(r) and numbers, under the summary table.

    Raises
    ------
    ImportError
        Without ipywidgets.
    """
    if not isinstance(explorer, SeriesExplorer):
        explorer = SeriesExplorer(explorer)
    return SeriesPanel(explorer)
