"""pyFAI calibrants and detectors by name, with the wavelength checked (SI inside, Å outside)."""

from __future__ import annotations

import logging
import os

import numpy as np

from xrdpdf._core.errors import InputError

__all__ = [
    "get_calibrant",
    "make_detector",
]


_log = logging.getLogger(__name__)


def get_calibrant(name: str, wavelength_A: float):
    """Return a pyFAI calibrant with its wavelength set.

    Parameters
    ----------
    name : str
        A pyFAI calibrant name (``"CeO2"``, ``"LaB6"``, ``"Ni"``, ``"Si"``, ...) or the path of a
        ``.D`` d-spacing file.
    wavelength_A : float
        X-ray wavelength in Å (converted to m for pyFAI).

    Returns
    -------
    pyFAI.crystallography.calibrant.Calibrant
    """
    from pyFAI.calibrant import CALIBRANT_FACTORY, Calibrant

    _check_wavelength(wavelength_A)
    if name in CALIBRANT_FACTORY:
        cal = CALIBRANT_FACTORY(name)
    elif os.path.isfile(name):
        if name.lower().endswith(".cif"):
            raise InputError(
                f"{name}: a CIF is not a calibrant; give a pyFAI name (CeO2, LaB6, ...) or a "
                "d-spacing (.D) file, e.g. from pyFAI-calib2's calibrant tools"
            )
        cal = Calibrant(filename=name)
        try:
            # pyFAI reads the file lazily: read it here (property name of pyFAI ≥ 2025.07 first)
            d_spacing = cal.dspacing if hasattr(cal, "dspacing") else cal.dSpacing
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{name}: not a d-spacing (.D) calibrant file ({exc})") from None
        if len(d_spacing) == 0:
            raise InputError(f"{name}: the calibrant file holds no d-spacings")
    else:
        known = ", ".join(sorted(CALIBRANT_FACTORY.keys()))
        raise InputError(f"unknown calibrant {name!r}; known: {known}")
    cal.wavelength = wavelength_A * 1e-10
    return cal


def make_detector(
    *,
    name: str | None = None,
    pixel_size_m: float | tuple[float, float] | None = None,
    shape: tuple[int, int] | None = None,
):
    """Build a pyFAI detector from a name or from a pixel size and a shape.

    Parameters
    ----------
    name : str, optional
        pyFAI detector name (``"Perkin"``, ``"Pilatus2M"``, ...).  Wins over the other arguments.
    pixel_size_m : float or (float, float), optional
        Pixel size in m (slow, fast).  Default 200e-6 (a PerkinElmer flat panel).
    shape : (int, int), optional
        (rows, columns) of the detector.

    Returns
    -------
    pyFAI.detectors.Detector
    """
    import pyFAI
    from pyFAI.detectors import Detector

    if name is not None:
        try:
            det = pyFAI.detector_factory(name)
        except Exception as exc:  # pyFAI raises RuntimeError / KeyError for unknown names
            raise InputError(f"unknown detector {name!r}: {exc}") from exc
        return det
    if pixel_size_m is None:
        pixel_size_m = 200e-6
    p1, p2 = (
        (float(pixel_size_m), float(pixel_size_m))
        if np.isscalar(pixel_size_m)
        else tuple(float(p) for p in pixel_size_m)  # type: ignore[union-attr]
    )
    if not (1e-6 <= p1 <= 5e-3 and 1e-6 <= p2 <= 5e-3):
        raise InputError(f"pixel size {pixel_size_m!r} m out of range [1e-6, 5e-3] m")
    return Detector(pixel1=p1, pixel2=p2, max_shape=tuple(shape) if shape else None)


def _check_wavelength(wavelength_A: float) -> None:
    if not (np.isfinite(wavelength_A) and 0.01 <= wavelength_A <= 20.0):
        raise InputError(f"wavelength {wavelength_A!r} Å out of range [0.01, 20] Å")


def _unique_tth(calibrant) -> np.ndarray:
    """Sorted distinct calibrant 2θ (rad) at its wavelength; reflections beyond 180° dropped."""
    tth = np.array([t for t in calibrant.get_2th() if t is not None], dtype=float)
    return tth
