"""xrdpdf: synchrotron powder diffraction and PDF analysis.

Pipeline: image (fabio) → azimuthal integration (pyFAI) → I(Q) with σ →
Rietveld-lite refinement and Scherrer sizing; I(Q) → S(Q) → F(Q) → G(r)
(PDFgetX3 ad hoc method) → correlation length → per-cycle series summary.

The public API is re-exported here lazily so that ``import xrdpdf`` stays
fast; see ``__all__``.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    CalibrationError,
    ConvergenceError,
    InputError,
    InputWarning,
    NotDeterminedError,
    XrdpdfError,
    XrdpdfWarning,
)
from .pattern import Pattern

__version__ = "0.1.0"

# name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    # io
    "read_pattern": "io",
    "write_pattern": "io",
    # images
    "read_image": "images",
    "iter_frames": "images",
    "read_dark": "images",
    "read_flat": "images",
    "read_mask": "images",
    "write_image": "images",
    # phases
    "get_phase": "phases",
    "Phase": "phases",
    "powder_pattern": "phases",
    "Resolution": "phases",
    "load_resolution": "phases",
    # integrate
    "load_poni": "integrate",
    "Integrator": "integrate",
    "IntegrationSettings": "integrate",
    "integrate_image": "integrate",
    "integrate_frames": "integrate",
    # calibrate
    "auto_mask": "calibrate",
    "instrument_resolution": "calibrate",
    "CalibrationResult": "calibrate",
    "integrator_from_files": "integrate",
    # refine, size
    "RefinementResult": "refine",
    "RefinementWarning": "refine",
    "scherrer": "size",
    "SizeResult": "size",
    # pdf, corrlen, debye
    "PdfConfig": "pdf",
    "PdfResult": "pdf",
    "transform": "pdf",
    "parse_composition": "pdf",
    "correlation_length": "corrlen",
    "CorrLenResult": "corrlen",
    "sphere_cluster": "debye",
    "debye_iq": "debye",
    # simulate
    "simulate_image": "simulate",
    "simulate_pattern": "simulate",
    "Beamstop": "simulate",
    # series, watch
    "load_series": "series",
    "run_series": "series",
    "read_summary": "series",
    "Watcher": "watch",
    # notebook sessions (the callbacks behind the widgets)
    "RefinementSession": "notebook",
    "PdfSession": "notebook",
    "SeriesExplorer": "notebook",
    "PdfFitSession": "notebook",
}

# Pipeline-stage modules, importable as attributes (``xrdpdf.refine.refine(...)``).  A function
# of the same name as its module cannot be re-exported lazily: importing the submodule rebinds
# the package attribute to the module.
_SUBMODULES = (
    "calibrate",
    "corrlen",
    "debye",
    "images",
    "integrate",
    "io",
    "pdf",
    "pdffit",
    "phases",
    "refine",
    "series",
    "simulate",
    "size",
    "units",
    "watch",
)

__all__ = [
    "Pattern",
    "XrdpdfError",
    "InputError",
    "ConvergenceError",
    "NotDeterminedError",
    "InputWarning",
    "XrdpdfWarning",
    "CalibrationError",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'xrdpdf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
