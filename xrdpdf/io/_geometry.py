"""A pyFAI geometry from a PONI file or a pyFAI integration config, checked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core.errors import InputError
from xrdpdf.io._poni import check_geometry, check_poni_text
from xrdpdf.io._worker import is_worker_config, read_worker_config

__all__ = ["load_poni"]


def load_poni(path: str | os.PathLike):
    """Load a pyFAI geometry (PONI file) as an ``AzimuthalIntegrator``.

    Parameters
    ----------
    path : str or path-like
        PONI file (pyFAI format, any version), or a pyFAI integration config
        (``WorkerConfig`` JSON from pyFAI-integrate or Dioptas): its geometry.

    Returns
    -------
    pyFAI.integrator.azimuthal.AzimuthalIntegrator

    Raises
    ------
    InputError
        Missing or unreadable file, or a geometry without a wavelength
        (integration to Q needs it).
    """
    import pyFAI

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: PONI file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: PONI file is empty (0 bytes)")
    if is_worker_config(path):
        source: Any = read_worker_config(path)["poni"]
    else:
        check_poni_text(path)
        source = str(path)
    try:
        ai = pyFAI.load(source)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise InputError(f"{path}: not a valid PONI file ({reason})") from exc
    if getattr(ai, "dist", None) is None or not np.isfinite(ai.dist) or ai.dist <= 0:
        raise InputError(f"{path}: PONI file has no valid Distance")
    wl = ai.wavelength
    if wl is None or not np.isfinite(wl) or wl <= 0:
        raise InputError(
            f"{path}: PONI file has no wavelength; add a 'Wavelength: <metres>' line "
            "(e.g. Wavelength: 1.173e-11 for 0.1173 Å)"
        )
    check_geometry(ai, str(path))
    return ai
