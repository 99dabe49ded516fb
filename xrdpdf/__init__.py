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

from xrdpdf._core._version import __version__ as __version__
from xrdpdf._core.errors import (
    CalibrationError,
    ConvergenceError,
    InputError,
    InputWarning,
    NotDeterminedError,
    XrdpdfError,
    XrdpdfWarning,
)
from xrdpdf._core.pattern import Pattern

# name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    # io
    "read_pattern": "io",
    "write_pattern": "io",
    # images
    "read_image": "io.images",
    "iter_frames": "io.images",
    "read_dark": "io.images",
    "read_flat": "io.images",
    "read_mask": "io.images",
    "write_image": "io.images",
    # phases
    "get_phase": "physics",
    "Phase": "physics",
    "powder_pattern": "physics",
    "Resolution": "physics",
    "load_resolution": "physics",
    # integrate
    "load_poni": "stages.integrate",
    "Integrator": "stages.integrate",
    "IntegrationSettings": "stages.integrate",
    "integrate_image": "stages.integrate",
    "integrate_frames": "stages.integrate",
    # calibrate
    "auto_mask": "stages.calibrate",
    "instrument_resolution": "stages.calibrate",
    "CalibrationResult": "stages.calibrate",
    "integrator_from_files": "stages.integrate",
    # refine, size
    "RefinementResult": "stages.refinement",
    "RefinementWarning": "stages.refinement",
    "scherrer": "stages.size",
    "SizeResult": "stages.size",
    # pdf, corrlen, debye
    "PdfConfig": "stages.pdf",
    "PdfResult": "stages.pdf",
    "transform": "stages.pdf",
    "parse_composition": "stages.pdf",
    "correlation_length": "stages.corrlen",
    "CorrLenResult": "stages.corrlen",
    "sphere_cluster": "simulate.debye",
    "debye_iq": "simulate.debye",
    # simulate
    "simulate_image": "simulate.images",
    "simulate_pattern": "simulate.images",
    "Beamstop": "simulate.images",
    # series, watch
    "load_series": "workflows.series",
    "run_series": "workflows.series",
    "read_summary": "workflows.series",
    "Watcher": "workflows.watch",
    # notebook sessions (the callbacks behind the widgets)
    "RefinementSession": "notebook",
    "PdfSession": "notebook",
    "SeriesExplorer": "notebook",
    "PdfFitSession": "notebook",
}

# Layers and noun modules, reachable as attributes (``xrdpdf.refinement.refine(...)``,
# ``xrdpdf.pdf.transform(...)``); ``import xrdpdf.stages.pdf`` is the full path.
_SUBMODULES: dict[str, str] = {
    "io": "io",
    "physics": "physics",
    "stages": "stages",
    "simulate": "simulate",
    "workflows": "workflows",
    "plot": "plot",
    "notebook": "notebook",
    "units": "_core.units",
    "integrate": "stages.integrate",
    "calibrate": "stages.calibrate",
    "refinement": "stages.refinement",
    "size": "stages.size",
    "pdf": "stages.pdf",
    "corrlen": "stages.corrlen",
    "pdffit": "stages.pdffit",
    "reduce": "workflows.reduce",
    "series": "workflows.series",
    "watch": "workflows.watch",
}

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
        return importlib.import_module(f".{_SUBMODULES[name]}", __name__)
    raise AttributeError(f"module 'xrdpdf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
