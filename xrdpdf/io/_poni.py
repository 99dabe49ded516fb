"""Plausibility of a pyFAI geometry (PONI file) before it is used.

pyFAI reads a PONI file leniently: a missing ``Distance`` becomes its 1 m
default, a repeated key silently keeps the last value, and nothing stops a
wavelength written in Å (``Wavelength: 0.1173``, read as metres) or a distance
in mm.  Each of those integrates without complaint and gives wrong Q values, so
they are checked here, with the file and the key named.

PONI keys are SI (pyFAI ``geometry/core.py``): ``Distance``, ``Poni1``,
``Poni2`` and ``Wavelength`` in metres, ``Rot1..3`` in radians.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

from xrdpdf._core.errors import InputError, InputWarning

__all__ = ["check_poni_text", "check_geometry"]

#: Plausible ranges (SI): X-ray wavelengths of powder work (0.01–5 Å) and
#: sample–detector distances from 1 mm to 20 m.
WAVELENGTH_RANGE_M = (0.01e-10, 5e-10)
DISTANCE_RANGE_M = (1e-3, 20.0)
_REQUIRED = ("Distance", "Poni1", "Poni2")
_ROTATIONS = ("Rot1", "Rot2", "Rot3")


def check_poni_text(path: str | Path) -> dict[str, str]:
    """Check the key lines of a PONI text file; return them as strings.

    Parameters
    ----------
    path : str or Path
        PONI file (``Key: value`` lines, ``#`` comments).

    Returns
    -------
    dict
        Key → value text as written (last spelling of each key).

    Raises
    ------
    InputError
        A key given twice, a required key (Distance, Poni1, Poni2) missing,
        or a ``Detector_config`` that is not JSON.

    Warns
    -----
    InputWarning
        A rotation key missing (pyFAI takes 0).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: PONI file is not text ({exc.reason})") from exc
    seen: dict[str, int] = {}
    values: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = (part.strip() for part in line.split(":", 1))
        canon = key.lower()
        if canon in seen:
            raise InputError(
                f"{path}: key {key!r} appears twice (lines {seen[canon]} and {lineno}); keep one"
            )
        seen[canon] = lineno
        values[key] = value
    lower = {k.lower(): v for k, v in values.items()}
    for key in _REQUIRED:
        if key.lower() not in lower:
            raise InputError(
                f"{path}: PONI file has no {key!r} line (pyFAI would silently use its "
                "default); add it in metres"
            )
    missing = [k for k in _ROTATIONS if k.lower() not in lower]
    if missing:
        warnings.warn(
            f"{path}: no {', '.join(missing)} line(s); rotations taken as 0 rad",
            InputWarning,
            stacklevel=2,
        )
    config = lower.get("detector_config")
    if config is not None:
        try:
            json.loads(config)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}: Detector_config is not valid JSON ({exc.msg} at column "
                f"{exc.colno}): {config[:60]!r}"
            ) from exc
    return values


def check_geometry(ai: Any, source: str) -> None:
    """Check a loaded geometry's values against plausible ranges.

    Parameters
    ----------
    ai : pyFAI.geometry.Geometry
        The geometry (SI units).
    source : str
        Name of its file, for the messages.

    Raises
    ------
    InputError
        Wavelength outside 0.01–5 Å, distance outside 1 mm–20 m, a rotation
        beyond ±π/2 (degrees typed where radians are meant), or a beam
        centre more than ten detector sizes away from the detector.

    Warns
    -----
    InputWarning
        A beam centre outside the detector (usable, e.g. for a detector at
        high angle, but often a sign of swapped Poni1/Poni2).
    """
    wl = float(ai.wavelength)
    lo, hi = WAVELENGTH_RANGE_M
    if not lo <= wl <= hi:
        hint = " (it looks like Å; PONI wavelengths are metres)" if 0.01 <= wl <= 5 else ""
        raise InputError(
            f"{source}: Wavelength {wl:g} m = {wl * 1e10:g} Å is outside 0.01–5 Å{hint}"
        )
    dist = float(ai.dist)
    lo, hi = DISTANCE_RANGE_M
    if not lo <= dist <= hi:
        hint = " (it looks like mm; PONI distances are metres)" if dist > hi else ""
        raise InputError(f"{source}: Distance {dist:g} m is outside 1 mm–20 m{hint}")
    for name in ("rot1", "rot2", "rot3"):
        value = float(getattr(ai, name))
        if abs(value) > math.pi / 2:
            raise InputError(
                f"{source}: {name.capitalize()} = {value:g} rad is beyond ±π/2 "
                f"(±1.5708); PONI rotations are radians, not degrees"
            )
    _check_beam_centre(ai, source)


def _check_beam_centre(ai: Any, source: str) -> None:
    det = ai.detector
    shape = getattr(det, "shape", None) or getattr(det, "max_shape", None)
    if shape is None:
        return
    size1 = shape[0] * float(det.pixel1)
    size2 = shape[1] * float(det.pixel2)
    # The PONI is the foot of the perpendicular from the sample on the detector plane.
    p1, p2 = float(ai.poni1), float(ai.poni2)
    far = max(abs(p1 - size1 / 2) / size1, abs(p2 - size2 / 2) / size2)
    if far > 10:
        raise InputError(
            f"{source}: Poni1/Poni2 = {p1:g}/{p2:g} m lie more than ten detector sizes "
            f"({size1:.3g} × {size2:.3g} m) from the detector; PONI values are metres"
        )
    if not (0 <= p1 <= size1 and 0 <= p2 <= size2):
        warnings.warn(
            f"{source}: the PONI point ({p1:g}, {p2:g}) m lies outside the detector "
            f"({size1:.3g} × {size2:.3g} m); check Poni1/Poni2",
            InputWarning,
            stacklevel=2,
        )
