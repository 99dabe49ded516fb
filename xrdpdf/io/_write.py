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


#: 10**k as float64 for k = -130 .. 130 (index k + 130)
_POW10 = 10.0 ** np.arange(-130, 131)
#: digits after the point of the default spec " .10e"
_E_DIGITS = 10


def _format_e10(values: np.ndarray) -> str | None:
    """``" .10e"`` text of a 2-D table, vectorised; None where it does not apply.

    Each value ``a = |x|`` is scaled to ``s = a * 10**(10 - e)`` in [1e10, 1e11) and
    rounded to an integer, whose 11 digits are the mantissa.  The scaling rounds twice
    (``10**k`` and the product), so ``s`` is within 3 units in the last place, about
    3e-5 at 1e11: its rounding is certain unless its fraction lies within 1e-3 of one
    half, and those values (about 0.2 % of random ones) are formatted by Python, as is
    the whole table when a value is not finite or its exponent needs three digits.
    The result is then the correctly rounded text Python gives.
    """
    x = values.ravel()
    if not np.all(np.isfinite(x)):
        return None
    a = np.abs(x)
    nonzero = a != 0
    e = np.floor(np.log10(np.where(nonzero, a, 1.0))).astype(np.int64)
    if np.any((e < -99) | (e > 99)):
        return None
    s = a * _POW10[_E_DIGITS + 130 - e]
    # log10 may miss a power of ten by one
    e += np.where(s >= 10.0 ** (_E_DIGITS + 1), 1, 0) - np.where(
        nonzero & (s < 10.0**_E_DIGITS), 1, 0
    )
    s = a * _POW10[_E_DIGITS + 130 - e]
    unsure = np.flatnonzero(nonzero & (np.abs(s - np.floor(s) - 0.5) < 1e-3))
    n = np.rint(s).astype(np.int64)
    carry = n >= 10 ** (_E_DIGITS + 1)  # 9.99999999999...e+k rounded up to 1.0e+(k+1)
    n[carry] //= 10
    e[carry] += 1
    if np.any(np.abs(e) > 99):
        return None

    width = _E_DIGITS + 7  # sign, digit, point, digits, "e", sign, two digits
    chars = np.empty((x.size, width + 1), dtype=np.uint8)
    chars[:, 0] = np.where(np.signbit(x), ord("-"), ord(" "))
    for k in range(_E_DIGITS + 2, 2, -1):  # the digits after the point, last first
        chars[:, k] = n % 10 + ord("0")
        n //= 10
    chars[:, 1] = n + ord("0")
    chars[:, 2] = ord(".")
    chars[:, width - 4] = ord("e")
    chars[:, width - 3] = np.where(e < 0, ord("-"), ord("+"))
    chars[:, width - 2] = np.abs(e) // 10 + ord("0")
    chars[:, width - 1] = np.abs(e) % 10 + ord("0")
    chars[:, width] = ord(" ")
    for i in unsure:
        chars[i, :width] = np.frombuffer(format(float(x[i]), " .10e").encode(), np.uint8)
    rows = chars.reshape(values.shape[0], -1)
    rows[:, -1] = ord("\n")
    return rows.tobytes()[:-1].decode("ascii")


def format_table(table: np.ndarray, spec: str = " .10e") -> str:
    """Text of a 2-D float table, one row per line, values joined by one space.

    Equal to ``"\n".join(" ".join(format(v, spec) for v in row) for row in table)``.
    The default spec is formatted by numpy arithmetic on all values at once
    (:func:`_format_e10`, 4 times faster than Python's ``%`` on a 3000-bin pattern);
    other specs, and tables it does not apply to, in one ``%`` operation over all
    values (a few times faster than a Python loop per value).

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
    if spec == " .10e":
        text = _format_e10(table)
        if text is not None:
            return text
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
