"""GSAS powder data files: a title line, then ``BANK`` records (GSAS manual, ch. "Data files").

``BANK n npts nrec bintyp bcoef1 bcoef2 bcoef3 bcoef4 type`` opens each
histogram.  Constant-wavelength data give 2θ in centidegrees: ``CONST`` with
``bcoef1`` = start and ``bcoef2`` = step, or explicit values in ``FXYE``.
Record types, after GSAS-II's ``G2pwd_fxye`` reader:

* ``STD``: 10 fields of 8 characters a line, each ``I2`` number of counters
  n (blank → 1) and ``F6.0`` counts y; σ² = y/n;
* ``ESD``: 5 (y, σ) pairs of ``F8.0`` a line;
* ``FXYE``: free-format x, y, σ a line.

λ is taken from an APS 11-BM header comment (``# Calibrated wavelength = …``).

``RALF`` and ``TIME_MAP`` bins are time of flight (µs): xrdpdf patterns carry Q,
2θ or r, so those banks are refused with that reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core.errors import InputError

__all__ = ["find_bank", "read_gsas"]

#: Header comment stating λ in Å, as APS 11-BM writes it ("# Calibrated wavelength =
#: 0.413259", "# Mean wavelength is:     0.589183").
_WAVELENGTH = re.compile(
    r"^#\s*(?:calibrated|mean) wavelength(?: is)?\s*[=:]\s*([0-9.]+)\s*$", re.I
)


def find_bank(lines: list[str]) -> int | None:
    """Index of the first ``BANK`` line among the first 10 lines that are not ``#``
    comments (APS 11-BM FXYE files put ~60 ``#`` lines before it), or None."""
    seen = 0
    for i, line in enumerate(lines):
        if i > 0 and line.startswith("#"):
            continue
        if line.startswith("BANK ") and i > 0:
            return i
        seen += 1
        if seen >= 10:
            break
    return None


def read_gsas(path: Path, lines: list[str]) -> list[dict[str, Any]]:
    """One range dict per ``BANK``; x in 2θ degrees."""
    title = lines[0].strip()
    meta: dict[str, Any] = {"title": title}
    for line in lines[1:]:
        if line.startswith("BANK"):
            break
        if line.lower().startswith("instrument parameter"):
            meta["instrument_parameter_file"] = line.split(None, 3)[-1].strip()
        wl = _WAVELENGTH.match(line.strip())
        if wl and "wavelength_A" not in meta:
            meta["wavelength_A"] = float(wl[1])
    banks = [i for i, line in enumerate(lines) if line.startswith("BANK")]
    infos = []
    for k, i in enumerate(banks):
        end = banks[k + 1] if k + 1 < len(banks) else len(lines)
        infos.append(_read_bank(path, lines[i], lines[i + 1 : end], meta))
    return infos


def _read_bank(path: Path, head: str, body: list[str], meta: dict[str, Any]) -> dict[str, Any]:
    f = head.split()
    try:
        bank, npts = int(f[1]), int(f[2])
        bintyp = f[4].upper()
        coef = [float(v) for v in f[5:9] if _isfloat(v)]
    except (IndexError, ValueError):
        raise InputError(f"{path}: malformed BANK line {head.strip()[:60]!r}") from None
    rtype = f[-1].upper() if not _isfloat(f[-1]) else "STD"
    if bintyp in ("RALF", "TIME_MAP", "SLOG"):
        raise InputError(
            f"{path}: bank {bank} is time-of-flight ({bintyp}); xrdpdf reads "
            "constant-wavelength banks (Q, 2θ or r) only"
        )
    body = [ln for ln in body if ln.strip() and not ln.startswith("#")]
    if rtype == "FXYE":
        table = np.asarray([ln.split()[:3] for ln in body], dtype=float)
        x_cdeg, y, sig = table[:, 0], table[:, 1], table[:, 2]
    else:
        if bintyp != "CONST":
            raise InputError(f"{path}: bank {bank}: bin type {bintyp!r} is not supported")
        y, sig = (_std_records if rtype == "STD" else _esd_records)(path, body, npts)
        x_cdeg = coef[0] + coef[1] * np.arange(npts)
    if y.size != npts:
        raise InputError(f"{path}: bank {bank} says {npts} points but holds {y.size}")
    data = np.column_stack([x_cdeg / 100.0, y, sig])
    header = {k: v for k, v in meta.items() if k != "wavelength_A"}
    bank_meta = {**header, "gsas_bank": bank, "gsas_record": rtype, "gsas_bintyp": bintyp}
    info = {"unit": "tth", "format": "gsas", "metadata": bank_meta, "data": data}
    if "wavelength_A" in meta:
        info["wavelength_A"] = meta["wavelength_A"]
    return info


def _std_records(path: Path, body: list[str], npts: int) -> tuple[np.ndarray, np.ndarray]:
    y, var = [], []
    for line in body:
        for j in range(0, 80, 8):
            field = line[j : j + 8]
            if not field.strip():
                continue
            n = int(field[:2]) if field[:2].strip() else 1
            yi = float(field[2:8])
            y.append(yi)
            var.append(max(yi, 0.0) / max(n, 1))
            if len(y) == npts:
                break
    return np.asarray(y), np.sqrt(var)


def _esd_records(path: Path, body: list[str], npts: int) -> tuple[np.ndarray, np.ndarray]:
    vals = []
    for line in body:
        for j in range(0, 80, 8):
            field = line[j : j + 8]
            if field.strip():
                vals.append(float(field))
    arr = np.asarray(vals[: 2 * npts])
    if arr.size % 2:
        raise InputError(f"{path}: ESD records hold an odd number of values")
    return arr[0::2], arr[1::2]


def _isfloat(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
