"""Headless detector calibration, automatic masks and the instrument resolution.

:func:`calibrate` (:mod:`._calibrate`) turns a calibrant image into a pyFAI geometry, starting
from a geometry found in the image alone (:mod:`._start`); :func:`auto_mask` (:mod:`.masks`);
:func:`instrument_resolution` (:mod:`.resolution`) stores the calibrant's peak widths;
:func:`get_calibrant`, :func:`make_detector` (:mod:`.calibrants`).
"""

from xrdpdf.stages.calibrate._calibrate import CalibrationResult, calibrate
from xrdpdf.stages.calibrate.calibrants import get_calibrant, make_detector
from xrdpdf.stages.calibrate.masks import auto_mask
from xrdpdf.stages.calibrate.resolution import (
    RESOLUTION_SCHEMA,
    ResolutionFit,
    instrument_resolution,
)

__all__ = [
    "CalibrationResult",
    "ResolutionFit",
    "RESOLUTION_SCHEMA",
    "auto_mask",
    "calibrate",
    "get_calibrant",
    "instrument_resolution",
    "make_detector",
]
