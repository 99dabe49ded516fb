"""The output folder of a series: checked before any work, claimed by one series file.

``OUTDIR/series.json`` names the series file whose results the folder holds;
a second series is refused unless it is allowed to take the folder over
(``--overwrite``).  Nothing is ever written outside OUTDIR: a symbolic link
standing at ``OUTDIR/<sample>`` is refused rather than followed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from xrdpdf._core.errors import InputError
from xrdpdf.workflows.series.config import OUTDIR_FILES, SeriesConfig

__all__ = ["OWNER_FILE", "RESULT_FILE", "check_outdir", "claim_outdir"]

#: The file in OUTDIR naming the series whose results it holds.
OWNER_FILE = "series.json"
#: Each sample's row, input hash and list of outputs, in ``OUTDIR/<sample>/``.
RESULT_FILE = "result.json"


def _owner(outdir: Path) -> str | None:
    """The series file named in ``OUTDIR/series.json`` ("" when unreadable, None when absent)."""
    marker = outdir / OWNER_FILE
    if not (marker.exists() or marker.is_symlink()):
        return None
    try:
        return str(json.loads(marker.read_text(encoding="utf-8"))["series_file"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def check_outdir(config: SeriesConfig, outdir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Check, before any work, that a series may write its results into ``outdir``.

    Raises
    ------
    InputError
        ``outdir`` (or a parent) is a file or cannot be written; it holds
        another series' results (``series.json`` names another series file, or
        summary files or sample folders without one) and ``overwrite`` is
        false; ``OUTDIR/<sample>`` is a symbolic link (results would land
        where it points) or not a folder, or cannot be written.
    """
    from xrdpdf import io

    outdir = io.check_folder(outdir)
    owner = _owner(outdir)
    if owner is None and outdir.is_dir():
        ours = [outdir / n for n in OUTDIR_FILES]
        ours += [outdir / s.name / RESULT_FILE for s in config.samples]
        if any(p.exists() for p in ours):
            owner = ""
    if owner is not None and owner != str(config.path) and not overwrite:
        whose = f"the series {owner}" if owner else "another or an earlier series"
        raise InputError(
            f"{outdir}: holds the results of {whose}; use --overwrite (overwrite=True) "
            "to replace them, or choose another output folder"
        )
    for s in config.samples:
        sdir = outdir / s.name
        if sdir.is_symlink():
            raise InputError(
                f"{sdir}: is a symbolic link (to {os.readlink(sdir)}); a series writes only "
                f"inside {outdir}: remove the link"
            )
        if sdir.exists():
            io.check_folder(sdir)
    return outdir


def claim_outdir(config: SeriesConfig, outdir: Path) -> None:
    """Create ``outdir`` and name this series in ``OUTDIR/series.json``."""
    from xrdpdf import io

    outdir.mkdir(parents=True, exist_ok=True)
    if _owner(outdir) != str(config.path):
        io.write_json(
            {"schema_version": 1, "series_file": str(config.path), "title": config.title},
            outdir / OWNER_FILE,
            overwrite=True,
        )
