"""Convert pattern files between formats, keeping units, wavelength and metadata."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf.io._decode import COMPRESSED_SUFFIXES
from xrdpdf.io._files import check_output
from xrdpdf.io._write import write_pattern

__all__ = ["CONVERT_FORMATS", "convert_patterns"]

#: ``--format`` of ``xrdpdf convert`` → written suffix.
CONVERT_FORMATS = {
    "xye": ".xye",
    "xy": ".xy",
    "chi": ".chi",
    "h5": ".h5",
    "gr": ".gr",
    "iq": ".iq",
    "sq": ".sq",
    "fq": ".fq",
}


def _stem(path: Path) -> str:
    name = path.name
    for suf in COMPRESSED_SUFFIXES:
        if name.lower().endswith(suf):
            name = name[: -len(suf)]
    return Path(name).stem


def convert_patterns(
    inputs: list[str | os.PathLike],
    outdir: str | os.PathLike,
    fmt: str = "xye",
    *,
    xtype: str | None = None,
    wavelength_A: float | None = None,
    merge: bool = False,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Write every range of every input as ``OUTDIR/STEM[_rN].<fmt>``.

    Every input is read and every output name checked before the first file
    is written, so a mistake leaves nothing behind.

    Returns
    -------
    list of dict
        One per written file: ``path``, ``source``, ``x_unit`` (pyFAI name),
        ``wavelength_A``, ``anode``, ``n_points``.
    """
    from xrdpdf.io import read_patterns

    if fmt not in CONVERT_FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(CONVERT_FORMATS)}")
    suffix = CONVERT_FORMATS[fmt]
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: output folder is a file")
    jobs = []
    for src in map(Path, inputs):
        pats = read_patterns(src, xtype=xtype, wavelength_A=wavelength_A, merge=merge)
        for k, pat in enumerate(pats):
            if suffix == ".gr" and pat.unit != units.R_A:
                raise InputError(f"{src}: format 'gr' needs G(r) data (r in Å), got {pat.unit}")
            if suffix in (".iq", ".sq", ".fq") and pat.unit != units.Q_A:
                raise InputError(f"{src}: format '{fmt}' needs Q data, got {pat.unit}")
            name = _stem(src) + (f"_r{k + 1}" if len(pats) > 1 else "") + suffix
            jobs.append((src, pat, outdir / name))
    names = [j[2] for j in jobs]
    for n in {n for n in names if names.count(n) > 1}:
        raise InputError(f"{n}: two inputs would be written to the same file; rename one")
    for _, _, out in jobs:
        check_output(out, overwrite)
    written = []
    for src, pat, out in jobs:
        write_pattern(pat, out, overwrite=overwrite)
        written.append(
            {
                "path": str(out),
                "source": str(src),
                "x_unit": pat.unit,
                "wavelength_A": pat.wavelength_A,
                "anode": pat.metadata.get("anode"),
                "n_points": int(pat.x.size),
            }
        )
    return written
