"""Reading and writing 1-D patterns, atomically.

Readers understand the files users actually have, and find the format from
the content (magic bytes, XML root, header keywords), the suffix only breaking
ties:

* our own ``.xy``/``.xye``/``.dat`` (``# key = value`` header with ``unit`` and
  ``wavelength_A``), so that a later step never guesses;
* pyFAI's text output (JSON PONI in the comment header, wavelength in m, the
  unit in the column-title line);
* Fit2D / pyFAI ``.chi`` (four header lines: title, axis label, ``Intensity``,
  number of points) — a ``Q-Space`` or ``nm`` axis label means Q in nm⁻¹ —
  and the NSLS-II XPD pipeline's ``.chi`` (free-text header, ``#`` rulers);
* SrXgui/SrXplanar ``.chi`` (an ini header up to ``#### start data``);
* PDFgetX3/xPDFsuite ``.iq``, ``.sq``, ``.fq``, ``.gr`` and PDFgetX2 ``.gr``
  (``##### start data``);
* GSAS powder files (``BANK`` line; STD, ESD and FXYE, CONST and RALF);
* MAUD/free-format ``.dat``/``.prn``: title lines, then numbers, possibly all
  (2θ, I) pairs on one line; decimal commas are recognised and named;
* Bruker RAW v1–v4 and BRML, PANalytical XRDML, Rigaku RAS and RASX
  (:mod:`._vendor`), which carry the anode and its wavelengths;
* NeXus/HDF5 ``NXdata`` groups (signal, axis with ``units``, ``errors``);
* any of the text formats compressed with gzip, bzip2 or xz.

A bare two- or three-column file needs ``xtype`` (``"q"`` Å⁻¹, ``"qnm"`` nm⁻¹ or
``"tth"`` degrees, the last with a wavelength).  Q in nm⁻¹ is converted to Å⁻¹
on reading; every :class:`~xrdpdf._core.pattern.Pattern` carries Å⁻¹ or degrees.

Writers go through :func:`atomic_path`: a temporary file in the target's
directory, renamed onto the target only when complete.
"""

from __future__ import annotations

import io as _stdio
import os
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf.io._convert import CONVERT_FORMATS, convert_patterns
from xrdpdf.io._decode import COMPRESSED_SUFFIXES, decode_text, logical_suffix, read_bytes
from xrdpdf.io._files import (
    atomic_path,
    check_folder,
    check_output,
    check_outputs,
    commit,
    json_default,
    remove_stale,
    temp_beside,
    write_json,
    write_text,
)
from xrdpdf.io._nexus import read_nexus
from xrdpdf.io._nxazint import rebin_accumulators, write_nxazint1d
from xrdpdf.io._stack import PatternStackWriter
from xrdpdf.io._text import read_text
from xrdpdf.io._vendor import read_binary
from xrdpdf.io._worker import is_worker_config, read_worker_config, worker_config_dict
from xrdpdf.io._write import HDF5_SUFFIXES, PDF_SUFFIXES, format_table, write_pattern

__all__ = [
    "XTYPES",
    "read_pattern",
    "read_patterns",
    "convert_patterns",
    "CONVERT_FORMATS",
    "is_worker_config",
    "write_nxazint1d",
    "rebin_accumulators",
    "read_worker_config",
    "worker_config_dict",
    "write_pattern",
    "PatternStackWriter",
    "format_table",
    "atomic_path",
    "write_json",
    "json_default",
    "write_text",
    "check_folder",
    "check_output",
    "check_outputs",
    "temp_beside",
    "commit",
    "remove_stale",
    "PATTERN_SUFFIXES",
    "COMPRESSED_SUFFIXES",
    "WRITABLE_SUFFIXES",
]

#: ``xtype`` keywords (PDFgetX3 ``dataformat`` QA / Qnm / twotheta).
XTYPES = ("q", "qnm", "tth")
PATTERN_SUFFIXES = (
    ".xy",
    ".xye",
    ".dat",
    ".chi",
    ".txt",
    ".prn",
    ".iq",
    ".sq",
    ".fq",
    ".gr",
    ".gsa",
    ".gsas",
    ".fxye",
    ".esd",
    ".std",
    ".raw",
    ".brml",
    ".xrdml",
    ".ras",
    ".rasx",
    ".h5",
    ".hdf5",
    ".nxs",
)
#: Suffixes :func:`write_pattern` writes.
WRITABLE_SUFFIXES = (".xye", ".xy", ".dat", ".chi", ".h5", ".nxs", *PDF_SUFFIXES)


def read_pattern(
    path: str | os.PathLike,
    *,
    xtype: str | None = None,
    wavelength_A: float | None = None,
    merge: bool = False,
) -> Pattern:
    """Read a 1-D pattern from ``path``.

    Parameters
    ----------
    path : path-like
        Any format listed in the module docstring, compressed or not.
    xtype : {"q", "qnm", "tth"}, optional
        Radial unit of a file whose header does not state one: Q in Å⁻¹, Q in
        nm⁻¹ (converted to Å⁻¹) or 2θ in degrees.  Ignored when the header
        states the unit, except that a conflicting value is an error.
    wavelength_A : float, optional
        Wavelength in Å; overrides one found in the header (needed for 2θ
        data without one).
    merge : bool
        For a file of several ranges (Bruker RAW/BRML, RAS/RASX, XRDML, GSAS
        banks): merge them into one pattern (see :func:`read_patterns`).
        Without it such a file is an error here; read its ranges with
        :func:`read_patterns`.

    Returns
    -------
    Pattern
        With Q in Å⁻¹, 2θ in degrees, or r in Å.

    Raises
    ------
    InputError
        Missing or unreadable file, no numeric data, unknown unit, several
        ranges without ``merge``.
    """
    patterns = read_patterns(path, xtype=xtype, wavelength_A=wavelength_A, merge=merge)
    if len(patterns) > 1:
        raise InputError(
            f"{path}: holds {len(patterns)} ranges; read them with read_patterns "
            "(xrdpdf convert writes one file each) or merge them (merge=True)"
        )
    return patterns[0]


def read_patterns(
    path: str | os.PathLike,
    *,
    xtype: str | None = None,
    wavelength_A: float | None = None,
    merge: bool = False,
) -> list[Pattern]:
    """Read every range (scan, bank) of ``path``, one :class:`Pattern` each.

    Parameters
    ----------
    path, xtype, wavelength_A
        As for :func:`read_pattern`.
    merge : bool
        Return one pattern holding all ranges.  Ranges of different counting
        times are put on one scale by dividing counts by the step time
        (``metadata["y_unit"] = "counts/s"``); points at equal x are averaged.

    Returns
    -------
    list of Pattern
        In file order; ``metadata["range"]`` numbers them from 1 when there
        are several.
    """
    path = Path(path)
    if xtype is not None and xtype not in XTYPES:
        raise InputError(f"{path}: xtype must be one of {', '.join(XTYPES)}, got {xtype!r}")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a pattern file")
    infos = _read_infos(path)
    if merge and len(infos) > 1:
        infos = [_merge_infos(path, infos)]
    patterns = [_finish(path, info, xtype, wavelength_A) for info in infos]
    if len(patterns) > 1:
        patterns = [
            p.replace(metadata={**p.metadata, "range": k + 1}) for k, p in enumerate(patterns)
        ]
    return patterns


def _read_infos(path: Path) -> list[dict[str, Any]]:
    """Detect the format from the content and parse the file into range dicts."""
    raw, compression = read_bytes(path)
    suffix = logical_suffix(path)
    if raw.startswith(b"\x89HDF\r\n\x1a\n"):
        infos = read_nexus(path, _stdio.BytesIO(raw) if compression else path)
    elif suffix in HDF5_SUFFIXES:
        raise InputError(f"{path}: not a readable HDF5 file (no HDF5 signature)")
    else:
        infos = read_binary(path, raw)
        if infos is None:
            text, encoding = decode_text(path, raw)
            infos = read_text(path, text, suffix)
            for info in infos:
                if encoding not in ("utf-8", "latin-1"):
                    info.setdefault("metadata", {})["encoding"] = encoding
    if compression:
        for info in infos:
            info.setdefault("metadata", {})["compression"] = compression
    return infos


def _merge_infos(path: Path, infos: list[dict[str, Any]]) -> dict[str, Any]:
    """One range dict from several: counts per second when step times differ."""
    keys = {(i.get("unit"), i.get("wavelength_A")) for i in infos}
    if len(keys) > 1:
        raise InputError(f"{path}: ranges differ in unit or wavelength and cannot be merged")
    times = [i.get("metadata", {}).get("step_time_s") for i in infos]
    per_second = len(set(times)) > 1 and all(t for t in times)
    blocks = []
    for info, t in zip(infos, times, strict=True):
        d = np.array(info["data"][:, :3] if info["data"].shape[1] >= 3 else info["data"])
        if d.shape[1] == 2:
            d = np.column_stack([d, np.full(len(d), np.nan)])
        if per_second:
            d[:, 1:] /= t
        blocks.append(d)
    d = np.concatenate(blocks)
    xs, inv = np.unique(d[:, 0], return_inverse=True)
    n = np.bincount(inv)
    y = np.bincount(inv, d[:, 1]) / n
    # σ of a mean of n equal-weight points: sqrt(Σσ²)/n
    s = np.sqrt(np.bincount(inv, d[:, 2] ** 2)) / n
    cols = [xs, y] if np.all(np.isnan(s)) else [xs, y, s]
    meta = dict(infos[0].get("metadata", {}))
    meta["merged_ranges"] = len(infos)
    if per_second:
        meta["y_unit"] = "counts/s"
        meta.pop("step_time_s", None)
    return {**infos[0], "data": np.column_stack(cols), "metadata": meta}


def _finish(
    path: Path, info: dict[str, Any], xtype: str | None, wavelength_A: float | None
) -> Pattern:
    data = info["data"]
    file_unit = info.get("unit")  # one of q, qnm, tth, r or None (d, mm: refused)
    if file_unit in ("d", "mm"):
        what = "d-spacing" if file_unit == "d" else "radial distance (mm)"
        raise InputError(f"{path}: the x axis is {what}, not Q or 2θ; integrate in Q or 2θ")
    unit_key = file_unit
    if xtype is not None:
        if file_unit is not None and file_unit != xtype and file_unit != "r":
            raise InputError(
                f"{path}: header says the x axis is {file_unit!r} but xtype={xtype!r} was given"
            )
        unit_key = unit_key or xtype
    if unit_key is None:
        raise InputError(
            f"{path}: the file does not say whether x is Q or 2θ; give xtype='q'|'qnm'|'tth' "
            "(and wavelength_A for tth)"
        )
    wl = wavelength_A if wavelength_A is not None else info.get("wavelength_A")
    x = data[:, 0]
    y = data[:, 1]
    sigma = data[:, 2] if data.shape[1] >= 3 else None
    if sigma is not None and (np.any(sigma < 0) or not np.all(np.isfinite(sigma))):
        raise InputError(f"{path}: the third column (σ) has negative or non-finite values")
    if unit_key == "qnm":
        x = x / 10.0
        unit = units.Q_A
    elif unit_key == "q":
        unit = units.Q_A
    elif unit_key == "tth":
        unit = units.TTH_DEG
        if wl is None:
            raise InputError(f"{path}: 2θ data need the wavelength; give wavelength_A")
    elif unit_key == "r":
        unit = units.R_A
    else:  # pragma: no cover - guarded above
        raise InputError(f"{path}: unknown unit {unit_key!r}")
    if not np.all(np.isfinite(y)):
        raise InputError(f"{path}: {int(np.sum(~np.isfinite(y)))} intensities are NaN or inf")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    sigma = None if sigma is None else sigma[order]
    if np.any(np.diff(x) <= 0):
        raise InputError(f"{path}: repeated x values")
    meta = dict(info.get("metadata", {}))
    meta["source"] = str(path)
    meta.setdefault("format", info.get("format", "text"))
    try:
        return Pattern(x=x, y=y, unit=unit, wavelength_A=wl, sigma=sigma, metadata=meta)
    except InputError as exc:
        msg = str(exc)
        raise InputError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
