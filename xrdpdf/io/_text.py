"""Text readers: xrdpdf, pyFAI, Fit2D/XPD ``.chi``, SrXgui, PDFgetX2/3, GSAS, MAUD, free format."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError, InputWarning

_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NUMERIC_ROW = re.compile(rf"^\s*{_FLOAT}(?:[\s,;]+{_FLOAT})+\s*$")


def _unit_from_label(label: str) -> str | None:
    """Guess a unit keyword from an axis label or column title.

    Covers the Fit2D ``.chi`` axis lines (``Q (Inverse Nanometres)``, ``Q
    (Inverse Angstroms)``, ``2-Theta Angle (Degrees)``, ``2-Theta Angle
    (Radians)``), pyFAI's unit names (``q_nm^-1``, ``q_A^-1``, ``2th_deg``) and
    free spellings such as ``Q (1/nm)``, ``Q [Å⁻¹]``, ``2theta (deg)``.  Returns
    ``"qnm"``, ``"q"``, ``"tth"``, ``"tth_rad"``, ``"r"``, ``"d"`` (d-spacing),
    ``"mm"`` (radial distance) or ``None``.
    """
    s = label.strip().lower()
    if not s:
        return None
    t = s.replace("⁻¹", "^-1").replace("−", "-")
    if "q_nm" in t or "nm-1" in t or "nm^-1" in t or "1/nm" in t or "q-space" in t:
        return "qnm"
    if re.search(r"inverse\s+nanomet", t) or re.search(r"\bnm\s*\^?\s*-\s*1", t):
        return "qnm"
    if re.search(r"inverse\s+(?:angstr|å)", t):
        return "q"
    if (
        "q_a" in t
        or "angstrom-1" in t
        or "angstrom^-1" in t
        or "a^-1" in t
        or "å^-1" in t
        or "1/a" in t
        or "1/å" in t
        or "å$^{-1}" in t
        or "(å-1)" in t
        or t.startswith("q")
        and "å" in t
    ):
        return "q"
    if re.match(r"^(?:2|two)[-_ ]?th(?:eta)?", t) or "twotheta" in t:
        return "tth_rad" if ("rad" in t and "deg" not in t) else "tth"
    if t.startswith("d-spacing") or t.startswith("d spacing") or t.startswith("d ("):
        return "d"
    if t.startswith("radial distance") or t.startswith("radius (mm"):
        return "mm"
    if t.startswith("r(") or t.startswith("r_a") or t.startswith("r (") or t == "r":
        return "r"
    return None


_DECIMAL_COMMA = re.compile(r"\d,\d")


def load_numeric(path: Path, lines: list[str], start: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Parse the numeric block ``lines[start:]`` into a table of x, y[, σ].

    Columns may be separated by blanks, tabs, commas or semicolons.  Decimal
    commas (``12,5  345,2`` or ``12,5;345,2``: a comma between digits, no dot
    anywhere, and at least two blank- or semicolon-separated fields a row) are
    read as such and reported in the returned notes.  Free-format files whose
    rows hold several (x, y) pairs, or all of them on one line, are read as
    pairs when the row length is even and every other value increases.

    Returns
    -------
    data : (N, M) ndarray
        M ≥ 2 columns: x, y, then σ if present.
    notes : dict
        ``decimal_comma`` and ``layout`` when they apply, for the metadata.
    """
    body = [s for s in (ln.strip() for ln in lines[start:]) if s and not s.startswith("#")]
    if not body:
        raise InputError(f"{path}: no numeric data")
    notes: dict[str, Any] = {}
    if not any("." in s for s in body) and any(_DECIMAL_COMMA.search(s) for s in body):
        split = [re.split(r"[\s;]+", s) for s in body]
        if all(len(r) >= 2 for r in split):
            notes["decimal_comma"] = True
            body = [s.replace(",", ".") for s in body]
    rows = []
    for s in body:
        fields = re.split(r"[\s,;]+", s)
        try:
            rows.append([float(v) for v in fields])
        except ValueError:
            raise InputError(f"{path}: non-numeric line in the data: {s[:60]!r}") from None
    if "decimal_comma" not in notes and not any("." in s for s in body) and "," in body[0]:
        x0 = [r[0] for r in rows]
        if len(set(x0)) < len(x0):
            raise InputError(
                f"{path}: the numbers look like decimal commas with commas also between "
                f"the columns ({body[0][:40]!r}: repeated first values); separate the "
                "columns with tabs, blanks or ';'"
            )
    lengths = {len(r) for r in rows}
    ncol = min(lengths)
    if len(lengths) == 1 and (ncol <= 3 or not _is_pairs(rows)):
        if ncol < 2:
            raise InputError(f"{path}: need at least two columns (x, y); found one")
        return np.asarray(rows, dtype=float), notes
    flat = [v for r in rows for v in r]
    if len(flat) % 2 == 0 and _is_pairs(rows):
        notes["layout"] = "pairs"
        return np.asarray(flat, dtype=float).reshape(-1, 2), notes
    raise InputError(f"{path}: rows have different numbers of columns ({sorted(lengths)})")


def _is_pairs(rows: list[list[float]]) -> bool:
    """True when the values, read row after row, alternate x, y with x increasing."""
    flat = np.asarray([v for r in rows for v in r], dtype=float)
    if flat.size < 4 or flat.size % 2 or any(len(r) % 2 for r in rows):
        return False
    return bool(np.all(np.diff(flat[0::2]) > 0))


def parse_ini_value(value: str) -> Any:
    value = value.strip()
    try:
        return json.loads(value)
    except (ValueError, TypeError):
        return value


def _read_ini_style(path: Path, lines: list[str], start: int, suffix: str) -> dict[str, Any]:
    """PDFgetX3/xPDFsuite, PDFgetX2 and SrXgui files: settings, then ``#### start data``."""
    cfg: dict[str, Any] = {}
    for line in lines[:start]:
        s = line.strip()
        if not s or s.startswith(("#", "[")) or "=" not in s:
            continue
        key, _, value = s.partition("=")
        cfg[key.strip().lower()] = value.strip()
    unit: str | None = None
    column_line = next((ln for ln in lines[start:] if ln.startswith("#L")), "")
    labels = column_line[2:].split()
    if labels:
        unit = _unit_from_label(labels[0])
    if unit is None and suffix in (".iq", ".sq", ".fq"):
        unit = "q"
    if unit is None and suffix == ".gr":
        unit = "r"
    if unit is None:  # SrXgui: integrationspace = qspace | twothetaspace
        space = str(cfg.get("integrationspace", "")).lower()
        if space.startswith("q"):
            unit = "q"
        elif space.startswith("two") or space.startswith("tth"):
            unit = "tth"
    if unit is None and "dataformat" in cfg:
        unit = {"qa": "q", "qnm": "qnm", "twotheta": "tth"}.get(cfg["dataformat"].lower())
    if "[DEFAULT]" in lines:
        fmt = "pdfgetx3"
    elif lines[start].lstrip().startswith("#####"):
        fmt = "pdfgetx2"
    else:
        fmt = "srx"
    info: dict[str, Any] = {"unit": unit, "format": fmt}
    wl = cfg.get("wavelength_a") or cfg.get("wavelength")
    if wl is not None and unit != "r":
        try:
            wl_f = float(wl)
            if wl_f > 0:
                info["wavelength_A"] = wl_f
        except ValueError:
            pass
    info["metadata"] = {f"header.{k}": v for k, v in cfg.items()}
    data, notes = load_numeric(path, lines, start + 1)
    info["metadata"].update(notes)
    # PDFgetX2 writes r, G, dr, dG: the σ of G is the column labelled d<G>
    if len(labels) >= 4 and labels[3].lower().startswith("d") and data.shape[1] >= 4:
        data = data[:, [0, 1, 3]]
    info["data"] = data
    return info


def _read_hash_header(path: Path, lines: list[str]) -> dict[str, Any]:
    header = []
    start = 0
    for i, line in enumerate(lines):
        if line.strip().startswith("#") or not line.strip():
            header.append(line.strip().lstrip("#").strip())
            start = i + 1
        else:
            break
    info: dict[str, Any] = {"unit": None, "metadata": {}}
    own = bool(header) and header[0].startswith("xrdpdf")
    if own:
        info["format"] = "xrdpdf"
        for h in header[1:]:
            key, sep, value = h.partition(" = ")
            if not sep:
                continue
            key = key.strip()
            if key == "unit":
                info["unit"] = {units.Q_A: "q", units.TTH_DEG: "tth", units.R_A: "r"}.get(
                    value.strip()
                )
                if info["unit"] is None:
                    raise InputError(f"{path}: unknown unit {value.strip()!r} in header")
            elif key == "wavelength_A":
                info["wavelength_A"] = float(value)
            elif key != "columns":
                info["metadata"][key] = parse_ini_value(value)
    else:
        info["format"] = (
            "pyfai" if any('"poni_version"' in h or "pyFAI" in h for h in header) else "commented"
        )
        # pyFAI: JSON PONI with "wavelength" in metres; last line names the columns
        m = next(
            (
                re.search(r'"wavelength"\s*:\s*(' + _FLOAT + ")", h)
                for h in header
                if '"wavelength"' in h
            ),
            None,
        )
        if m:
            info["wavelength_A"] = float(m.group(1)) * 1e10
        for h in reversed(header):
            if h:
                unit = _unit_from_label(h.split()[0]) if h.split() else None
                if unit == "tth_rad":
                    raise InputError(f"{path}: 2θ in radians is not supported; convert to degrees")
                info["unit"] = unit
                break
    info["data"], notes = load_numeric(path, lines, start)
    info["metadata"].update(notes)
    return info


# --------------------------------------------------------------------------- dispatch
_START_DATA = re.compile(r"^#{4,5}\s*start data", re.IGNORECASE)
_NPTS = re.compile(r"number of data points[^0-9]*(\d+)", re.IGNORECASE)


def read_text(path: Path, text: str, suffix: str) -> list[dict[str, Any]]:
    """Parse decoded ``text``; return one range dict (or several GSAS banks).

    ``suffix`` is the file's suffix under any compression suffix; it only
    decides between formats the content leaves open (``.gr`` → r in Å).
    """
    from xrdpdf.io._gsas import find_bank, read_gsas
    from xrdpdf.io._vendor import RAS_MARK, read_ras_text

    lines = text.splitlines()
    if not any(ln.strip() for ln in lines):
        raise InputError(f"{path}: empty file")
    if text.lstrip().startswith(RAS_MARK):
        return read_ras_text(path, text)
    for i, line in enumerate(lines):
        if _START_DATA.match(line.strip()):
            return [_read_ini_style(path, lines, i, suffix)]
    if find_bank(lines) is not None:
        return read_gsas(path, lines)
    first = lines[0].strip()
    if first.startswith("#"):
        return [_read_hash_header(path, lines)]
    venezia = _read_maud_venezia(path, lines)
    if venezia is not None:
        return [venezia]
    # Fit2D / pyFAI .chi: title, axis label, "Intensity", npts
    if len(lines) > 4 and not _is_number_row(first) and re.match(r"^\s*\d+\s*$", lines[3]):
        unit = _unit_from_label(lines[1]) or _unit_from_label(lines[0])
        if unit == "tth_rad":
            raise InputError(f"{path}: 2θ in radians is not supported; convert to degrees")
        if unit in ("d", "mm"):
            raise InputError(
                f"{path}: x axis {lines[1].strip()!r} is not Q or 2θ; integrate in Q or 2θ"
            )
        meta: dict[str, Any] = {"title": first}
        m = re.search(r"wavelength_A\s*=\s*(" + _FLOAT + ")", first)
        info: dict[str, Any] = {"unit": unit, "format": "chi", "metadata": meta}
        if m:
            info["wavelength_A"] = float(m.group(1))
        info["data"], notes = load_numeric(path, lines, 4)
        meta.update(notes)
        return [info]
    return [_read_free(path, lines)]


def _read_maud_venezia(path: Path, lines: list[str]) -> dict[str, Any] | None:
    """MAUD's "Venezia" ``.dat`` (MAUD ``VeneziaDataFile.java``), or None if not one.

    A title line; ``npts step start λ ncols``; then ``npts`` intensities at
    2θ = start + i·step (degrees) when ncols is 1, or ``npts`` (2θ, I) pairs when
    ncols is 2, read as MAUD does: a stream of numbers, the first ``npts`` (pairs)
    taken.  MAUD takes λ from its instrument instead; the value the header gives
    (Å) is kept as the pattern's wavelength when positive.
    """
    if len(lines) < 3 or _is_number_row(lines[0].strip()):
        return None
    f = lines[1].split()
    if len(f) != 5 or not _is_number_row(lines[1]) or not f[0].isdigit() or f[4] not in "12":
        return None
    npts, ncols = int(f[0]), int(f[4])
    first = next((ln.split() for ln in lines[2:] if ln.strip()), [])
    if npts < 2 or len(first) != ncols:
        return None
    try:
        vals = np.asarray(" ".join(lines[2:]).replace(",", " ").split(), dtype=float)
    except ValueError:
        raise InputError(f"{path}: non-numeric value in the MAUD .dat data") from None
    if vals.size < npts * ncols:
        raise InputError(
            f"{path}: MAUD .dat header says {npts} points but the file holds "
            f"{vals.size // ncols} (truncated file?)"
        )
    if vals.size > npts * ncols:
        warnings.warn(
            f"{path}: MAUD .dat header says {npts} points, the file holds "
            f"{vals.size / ncols:g}; the first {npts} are read, as MAUD does",
            InputWarning,
            stacklevel=2,
        )
    table = vals[: npts * ncols].reshape(npts, ncols)
    step, start, wavelength = float(f[1]), float(f[2]), float(f[3])
    x = start + step * np.arange(npts) if ncols == 1 else table[:, 0]
    meta = {"title": lines[0].strip()[:200]}
    info: dict[str, Any] = {"unit": "tth", "format": "maud_dat", "metadata": meta}
    info["data"] = np.column_stack([x, table[:, -1]])
    if wavelength > 0:
        info["wavelength_A"] = wavelength
    return info


def _is_number_row(s: str) -> bool:
    return bool(re.match(rf"^\s*{_FLOAT}([\s,;]+{_FLOAT})*\s*$", s))


def _read_free(path: Path, lines: list[str]) -> dict[str, Any]:
    """Title lines (MAUD ``.dat``, XPD ``.chi`` free text, ``#`` rulers), then numbers.

    The NSLS-II XPD pipeline (xpdtools ``save_output``) writes the file name,
    "This file contains integrated powder x-ray diffraction intensities", a
    sentence naming the first column ("two theta values (degrees)" or "Q
    values"), "Number of data points in the file : N" and a ruler of ``#``.
    """
    start = 0
    while start < len(lines) and not _is_number_row(lines[start].strip()):
        start += 1
    if start == len(lines):
        raise InputError(f"{path}: no numeric data (not a pattern format xrdpdf knows)")
    header = [ln.strip() for ln in lines[:start] if ln.strip().strip("#").strip()]
    text = " ".join(header).lower()
    meta: dict[str, Any] = {}
    if header:
        meta["title"] = header[0][:200]
    unit = None
    if "two theta values (degrees)" in text or "2theta (degrees)" in text:
        unit = "tth"
    elif re.search(r"first column represents q values", text):
        unit = "q"
    fmt = "xpd_chi" if "integrated powder x-ray diffraction" in text else "free"
    data, notes = load_numeric(path, lines, start)
    meta.update(notes)
    m = _NPTS.search(text)
    if m and int(m.group(1)) != data.shape[0]:
        raise InputError(
            f"{path}: header says {m.group(1)} data points but {data.shape[0]} were read "
            "(truncated file?)"
        )
    return {"unit": unit, "format": fmt, "metadata": meta, "data": data}
