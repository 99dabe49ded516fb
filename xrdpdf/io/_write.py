"""Writers of 1-D patterns: xrdpdf text, Fit2D ``.chi``, PDFgetX3-like files, NXdata."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf.io._files import NX_AXIS, _header_value, atomic_path, nx_entry, write_text

PDF_SUFFIXES = {
    ".iq": ("Q(Å$^{-1}$)", "I(a.u.)"),
    ".sq": ("Q(Å$^{-1}$)", "S"),
    ".fq": ("Q(Å$^{-1}$)", "F(Å$^{-1}$)"),
    ".gr": ("r(Å)", "G(Å$^{-2}$)"),
}
HDF5_SUFFIXES = (".h5", ".hdf5", ".nxs", ".nx5")


def _text_table(pattern: Pattern, with_sigma: bool) -> np.ndarray:
    cols = [pattern.x, pattern.y]
    if with_sigma:
        cols.append(pattern.sigma)
    return np.column_stack(cols)


def format_table(table: np.ndarray, spec: str = " .10e") -> str:
    """Text of a 2-D float table, one row per line, values joined by one space.

    Equal to ``"\n".join(" ".join(format(v, spec) for v in row) for row in table)``,
    but formatted in one ``%`` operation over all values (a few times faster than a
    Python loop per value, which dominated the writing of a 3000-bin pattern).

    Parameters
    ----------
    table : (nrows, ncols) ndarray
        Values (converted to float).
    spec : str
        A format spec valid for both ``format`` and ``%`` (``" .10e"``, ``".11g"``).

    Returns
    -------
    str
        Without a trailing newline.
    """
    table = np.asarray(table, dtype=float)
    if table.ndim != 2 or table.size == 0:
        return "\n".join(" ".join(format(v, spec) for v in row) for row in table)
    row = " ".join(["%" + spec] * table.shape[1])
    return "\n".join([row] * table.shape[0]) % tuple(table.ravel().tolist())


def write_pattern(
    pattern: Pattern,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    header: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``pattern`` to ``path``; the format follows the suffix.

    Parameters
    ----------
    pattern : Pattern
        What to write.
    path : path-like
        ``.xye`` (x, y, σ), ``.xy``/``.dat`` (x, y), ``.chi`` (Fit2D layout),
        ``.h5``/``.nxs`` (NXdata), or ``.iq``/``.sq``/``.fq``/``.gr``
        (PDFgetX3-like: ``[DEFAULT]`` header of ``key = value`` lines, then
        ``#### start data``).
    overwrite : bool
        Replace an existing file (otherwise :class:`InputError`).
    header : mapping, optional
        Extra ``key = value`` lines (e.g. every PDF setting).

    Returns
    -------
    Path
        The written path.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    meta: dict[str, Any] = {}
    meta.update({k: v for k, v in pattern.metadata.items() if v is not None})
    if header:
        meta.update(header)
    if suffix in HDF5_SUFFIXES:
        return _write_nexus(pattern, path, overwrite, meta)
    if suffix in PDF_SUFFIXES:
        text = _pdfgetx_text(pattern, suffix, meta)
    elif suffix == ".chi":
        text = _chi_text(pattern, meta)
    elif suffix in (".xye", ".xy", ".dat", ".txt"):
        # a pattern without σ gets no σ column: zeros would read back as exact intensities
        text = _xye_text(pattern, meta, with_sigma=suffix == ".xye" and pattern.sigma is not None)
    else:
        raise InputError(
            f"{path}: unknown output format {suffix!r}; "
            "use one of .xye .xy .chi .h5 .iq .sq .fq .gr"
        )
    return write_text(text, path, overwrite)


def _own_header_lines(pattern: Pattern, meta: Mapping[str, Any]) -> list[str]:
    from xrdpdf._core._version import __version__

    lines = [f"xrdpdf {__version__}", f"unit = {pattern.unit}"]
    if pattern.wavelength_A is not None:
        lines.append(f"wavelength_A = {pattern.wavelength_A!r}")
    for key, value in meta.items():
        if key in ("unit", "wavelength_A"):
            continue
        lines.append(f"{key} = {_header_value(value)}")
    return lines


def _xye_text(pattern: Pattern, meta: Mapping[str, Any], with_sigma: bool) -> str:
    lines = ["# " + line for line in _own_header_lines(pattern, meta)]
    cols = [pattern.unit, "I"] + (["sigma"] if with_sigma else [])
    lines.append("# columns = " + " ".join(cols))
    body = format_table(_text_table(pattern, with_sigma))
    return "\n".join(lines) + "\n" + body + "\n"


def _chi_text(pattern: Pattern, meta: Mapping[str, Any]) -> str:
    label = {
        units.Q_A: "Q (Angstrom-1)",
        units.TTH_DEG: "2-Theta Angle (Degrees)",
        units.R_A: "r (Angstrom)",
    }[pattern.unit]
    title = "; ".join(_own_header_lines(pattern, meta))
    table = _text_table(pattern, pattern.sigma is not None)
    body = format_table(table)
    return f"{title}\n{label}\nIntensity\n{pattern.x.size:>14d}\n{body}\n"


def _pdfgetx_text(pattern: Pattern, suffix: str, meta: Mapping[str, Any]) -> str:
    from xrdpdf._core._version import __version__

    lines = ["[DEFAULT]", "", f"version = xrdpdf-{__version__}", ""]
    for key, value in meta.items():
        lines.append(f"{key} = {_header_value(value)}")
    if pattern.wavelength_A is not None and "wavelength" not in meta:
        lines.append(f"wavelength = {pattern.wavelength_A!r}")
    lines += ["", "# End of config " + "-" * 62, "", "#### start data", "#S 1"]
    xl, yl = PDF_SUFFIXES[suffix]
    with_sigma = pattern.sigma is not None
    lines.append(f"#L {xl}  {yl}" + (f"  d{yl}" if with_sigma else ""))
    table = _text_table(pattern, with_sigma)
    body = format_table(table, ".11g")
    return "\n".join(lines) + "\n" + body + "\n"


def _write_nexus(pattern: Pattern, path: Path, overwrite: bool, meta: Mapping[str, Any]) -> Path:
    import h5py

    axis_name, axis_units = NX_AXIS[pattern.unit]
    with atomic_path(path, overwrite) as tmp, h5py.File(tmp, "w") as h5:
        data = nx_entry(
            h5,
            "I",
            axis_name,
            wavelength_A=pattern.wavelength_A,
            metadata=dict(meta),
            xrdpdf_unit=pattern.unit,
        )
        data.create_dataset(axis_name, data=np.asarray(pattern.x)).attrs["units"] = axis_units
        data.create_dataset("I", data=np.asarray(pattern.y))
        if pattern.sigma is not None:
            data.create_dataset("I_errors", data=np.asarray(pattern.sigma))
    return path
