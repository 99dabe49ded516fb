"""The summary table of a series: its columns, derived quantities, CSV/HDF5 files, figures."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf.workflows.series.config import DerivedSpec, SeriesConfig

__all__ = [
    "RESULT_COLUMNS",
    "SUMMARY_COLUMNS",
    "derive",
    "read_summary",
    "summary_columns",
    "write_figures",
    "write_summary_csv",
    "write_summary_h5",
]

#: Columns every series has, before (``name``, ``group``) and after the labels.
_HEAD = ("name", "group")
RESULT_COLUMNS = (
    "phase",
    "a_A",
    "a_esd_A",
    "size_A",
    "size_esd_A",
    "rs_fraction",
    "rs_fraction_esd",
    "rwp",
    "xi_A",
    "xi_esd_A",
    "r_noise_A",
)
_TAIL = ("qmax_invA", "n_images", "input_hash", "note", "error")
_TEXT = ("name", "group", "phase", "input_hash", "note", "error")

#: Columns of a series without labels or derived quantities (labels follow ``group``,
#: derived quantities and their esds follow ``r_noise_A``).
SUMMARY_COLUMNS = (*_HEAD, *RESULT_COLUMNS, *_TAIL)

_NAN = float("nan")


#: Real-space fit columns (``[pdffit]``), of ``[pdffit] phase`` (default: the first).
PDFFIT_COLUMNS = (
    "pdffit_rw",
    "pdffit_a_A",
    "pdffit_a_esd_A",
    "pdffit_spdiameter_A",
    "pdffit_spdiameter_esd_A",
    "pdffit_fraction",
    "pdffit_fraction_esd",
)


def summary_columns(config: SeriesConfig) -> tuple[str, ...]:
    """The columns of ``config``'s summary: name, group, labels, results, derived, tail."""
    derived = tuple(c for d in config.derived for c in (d.name, d.esd_name))
    pdffit = PDFFIT_COLUMNS if any(s.pdffit_model for s in config.samples) else ()
    return (*_HEAD, *config.labels, *RESULT_COLUMNS, *pdffit, *derived, *_TAIL)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _or0(v: Any) -> float:
    return float(v) if _finite(v) else 0.0


def _num(v: Any) -> float:
    return float(v) if _finite(v) else _NAN


def _value(kind: str, x_to: float, e_to: float, x_from: float, e_from: float):
    """``(value, esd)`` of a derived quantity; first-order propagation, independent errors.

    ``difference``: x_to − x_from, esd √(σ_to² + σ_from²);
    ``ratio``: x_to/x_from, esd ratio·√((σ_to/x_to)² + (σ_from/x_from)²);
    ``relative_change_pct``: (x_to/x_from − 1)·100 %, esd 100·ratio·(same root);
    ``volume_change``: ((x_to/x_from)³ − 1)·100 % for a cubic cell edge, esd
    3·100·ratio³·(same root).
    """
    if kind == "difference":
        return x_to - x_from, math.hypot(e_to, e_from)
    ratio = x_to / x_from
    rel = math.hypot(e_to / x_to, e_from / x_from)
    if kind == "ratio":
        return ratio, ratio * rel
    if kind == "relative_change_pct":
        return (ratio - 1.0) * 100.0, 100.0 * ratio * rel
    return (ratio**3 - 1.0) * 100.0, 3.0 * 100.0 * ratio**3 * rel


def _esd_column(column: str) -> str:
    stem, _, unit = column.rpartition("_")
    return f"{stem}_esd_{unit}" if stem else f"{column}_esd"


def derive(rows: Sequence[dict[str, Any]], spec: DerivedSpec) -> None:
    """Add the derived quantity ``spec`` (and its esd) to ``rows``, in place.

    Within each group, the row whose ``spec.label`` is ``spec.from_value`` and
    the one whose label is ``spec.to_value`` give the value (formulas in
    :func:`_value`); both rows get it.  Groups without both rows, or without
    a finite ``spec.column`` in both, get nothing (the cell stays empty).
    The esd of ``column`` is read from its esd column (``a_A`` → ``a_esd_A``);
    a missing esd counts as 0.
    """
    by_group: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        lab = row.get(spec.label)
        if lab == spec.from_value or lab == spec.to_value:
            end = "from" if lab == spec.from_value else "to"
            by_group.setdefault(str(row.get("group", "")), {})[end] = row
    esd = _esd_column(spec.column)
    for pair in by_group.values():
        if len(pair) != 2:
            continue
        a, b = pair["to"], pair["from"]
        if not (_finite(a.get(spec.column)) and _finite(b.get(spec.column))):
            continue
        v, e = _value(spec.kind, a[spec.column], _or0(a.get(esd)), b[spec.column], _or0(b.get(esd)))
        for row in (a, b):
            row[spec.name] = v
            row[spec.esd_name] = e


# ------------------------------------------------------------------ summary files
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(v)
    return str(v)


def write_summary_csv(
    rows: Sequence[Mapping[str, Any]], path: Path, columns: Sequence[str] = SUMMARY_COLUMNS
) -> Path:
    """Write the summary table as CSV (empty cell = not determined), atomically."""
    import csv
    import io as _io

    from xrdpdf.io import write_text

    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_fmt(r.get(c, "")) for c in columns])
    return write_text(buf.getvalue(), path, overwrite=True)


def _column_kind(values: Sequence[Any]) -> str:
    present = [v for v in values if v is not None and v != ""]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int" if present and len(present) == len(values) else "float"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "float"
    return "text"


def write_summary_h5(
    rows: Sequence[Mapping[str, Any]], path: Path, columns: Sequence[str] = SUMMARY_COLUMNS
) -> Path:
    """Write the summary table to HDF5: group ``/summary``, one dataset per column."""
    import h5py

    from xrdpdf.io import atomic_path

    with atomic_path(path, overwrite=True) as tmp, h5py.File(tmp, "w") as h5:
        g = h5.create_group("summary")
        g.attrs["columns"] = ",".join(columns)
        for c in columns:
            vals = [r.get(c) for r in rows]
            kind = "text" if c in _TEXT else _column_kind(vals)
            if kind == "text":
                g.create_dataset(
                    c,
                    data=np.array([str(v) for v in vals], dtype=object),
                    dtype=h5py.string_dtype(),
                )
            elif kind == "int":
                g.create_dataset(c, data=np.array(vals, dtype=np.int64))
            else:
                g.create_dataset(c, data=np.array([_num(v) for v in vals], dtype=float))
    return path


def _parse(text: str) -> Any:
    if text == "":
        return _NAN
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_summary(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read ``summary.csv`` back into rows (numbers as int or float, empty as NaN)."""
    import csv

    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            rows.append({k: (v if k in _TEXT else _parse(v)) for k, v in r.items()})
    return rows


# ------------------------------------------------------------------ figures
def write_figures(
    config: SeriesConfig,
    rows: Sequence[Mapping[str, Any]],
    outdir: Path,
    patterns: Mapping[str, Any],
    grs: Mapping[str, Any],
    columns: Sequence[str],
) -> tuple[dict[str, Path], Path]:
    """Write the series figures (PNG) and ``report.html`` from the results in memory.

    Figures: I(Q) waterfall with its Cu Kα 2θ view (reflections of
    ``[figures] peaks`` marked), G(r) overlay, correlation length and lattice
    parameter against the ``[figures] x`` label (sample order when none), one
    marker per value of the ``[figures] by`` label.  Samples without a pattern
    or G(r) are left out of the respective figure.
    """
    from xrdpdf import io
    from xrdpdf import physics as phases
    from xrdpdf.plot import save_figure
    from xrdpdf.plot import series as sp

    labels = list(config.labels)
    with_iq = [r for r in rows if r["name"] in patterns]
    with_gr = [r for r in rows if r["name"] in grs]
    x, by = config.figures.get("x"), config.figures.get("by")
    figures: dict[str, Path] = {}
    if with_iq:
        peaks: Sequence[float] = ()
        name = config.figures.get("peaks")
        if name is not None:
            refl = phases.get_phase(name).reflections(8.5)
            peaks = np.unique(refl.q_invA.round(4))
        fig = sp.waterfall_figure(
            [patterns[r["name"]] for r in with_iq], with_iq, peaks_q=peaks, labels=labels
        )
        figures["I(Q) waterfall and Cu Kα 2θ view"] = save_figure(fig, outdir / "waterfall.png")
    if with_gr:
        fig = sp.gr_overlay_figure([grs[r["name"]] for r in with_gr], with_gr, labels=labels)
        figures["G(r) of every sample"] = save_figure(fig, outdir / "gr_overlay.png")
    figures[f"correlation length vs {x or 'sample'}"] = save_figure(
        sp.corrlen_figure(rows, x=x, by=by), outdir / "corrlen.png"
    )
    figures[f"lattice parameter vs {x or 'sample'}"] = save_figure(
        sp.lattice_figure(rows, x=x, by=by), outdir / "lattice.png"
    )
    notes = [
        "a_A: lattice parameter a of the first refined phase (Bragg positions of the refined "
        "cell, not single-peak maxima).",
        "size_A: whole-pattern Scherrer size of the first phase (spheres; K from [size] k, "
        "default 0.9: V^1/3 of the grains); a lower bound without [series] resolution.",
        "rs_fraction: crystalline fraction of [refine] fraction_phase "
        f"({config.refine.get('fraction_phase', 'none named')}), the share of the coherent "
        "scattering (in electrons) it carries against the amorphous reference.",
        "xi_A: sphere-envelope diameter fitted to G(r) (module xrdpdf.stages.corrlen); r_noise_A: "
        "largest r where |G| exceeds 3σ of the high-r noise.",
        *(
            f"{d.name}: {d.kind} of {d.column} from {d.label} = {d.from_value} to "
            f"{d.label} = {d.to_value} within each group."
            for d in config.derived
        ),
    ]
    page = sp.report_html(config.title, rows, columns, figures, notes)
    report = io.write_text(page, outdir / "report.html", overwrite=True)
    return figures, report
