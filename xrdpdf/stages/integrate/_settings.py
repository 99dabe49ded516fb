"""Integration settings, the PONI reader and the per-frame result of integrate."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf._core.results import Result
from xrdpdf.io._geometry import load_poni
from xrdpdf.stages._geomsnap import GeometrySnapshot

__all__ = [
    "METHODS",
    "SPLIT_METHODS",
    "load_poni",
    "poni_wavelength_A",
    "default_method",
    "IntegrationSettings",
    "FrameResult",
]


#: Engines: ``"pyfai"`` (plain ``integrate1d``) and ``"fast"`` (precomputed operator).
METHODS = ("pyfai", "fast")


#: pyFAI pixel-splitting schemes accepted in :attr:`IntegrationSettings.split`.
SPLIT_METHODS = ("no", "bbox", "pseudo", "full")


_UNIT_ALIASES = {
    "q": units.Q_A,
    units.Q_A: units.Q_A,
    "2th": units.TTH_DEG,
    "tth": units.TTH_DEG,
    units.TTH_DEG: units.TTH_DEG,
}


#: Most radial bins accepted: far more than the pixels along any detector radius
#: (a 2048² panel has ~1500), so a larger value is a typing mistake.
MAX_NPT = 100_000


#: The engine used when none is asked for (see :func:`default_method`).
DEFAULT_METHOD = "fast"


def _pyfai_version(ai: Any) -> str:
    """``pyFAI.version``, from the snapshot when ``ai`` is one (no pyFAI import then)."""
    if isinstance(ai, GeometrySnapshot):
        return ai.pyfai_version
    import pyFAI

    return str(pyFAI.version)


def poni_wavelength_A(ai) -> float:
    """The geometry's wavelength in Å (pyFAI stores metres)."""
    if ai.wavelength is None:
        raise InputError("the geometry has no wavelength")
    # m → Å; rounded to 12 significant digits so that 1.173e-11 m reads back as 0.1173 Å
    return float(f"{float(ai.wavelength) * 1e10:.12g}")


def default_method() -> str:
    """The engine used by default, :data:`DEFAULT_METHOD` (its C kernel comes with the package)."""
    return DEFAULT_METHOD


@dataclass(frozen=True)
class IntegrationSettings:
    """Everything that defines an integration, apart from the geometry and images.

    Attributes
    ----------
    npt : int
        Number of radial bins.
    unit : str
        ``"q_A^-1"`` (Q in Å⁻¹, default) or ``"2th_deg"``; ``"q"``/``"2th"`` accepted.
    polarization_factor : float or None
        pyFAI polarisation factor in [-1, 1] (+1 horizontal; 0.99 is typical of
        a synchrotron); ``None`` switches the correction off.
    correct_solid_angle : bool
        Divide by each pixel's relative solid angle.
    split : str
        Pixel splitting: ``"bbox"`` (default), ``"no"``, ``"pseudo"``, ``"full"``.
        Sigma clipping always uses ``"no"`` (pyFAI's advice).
    algorithm : str
        pyFAI algorithm, ``"csr"`` (default), ``"lut"``, ``"histogram"``.
    error_model : str
        ``"poisson"`` (variance = raw counts) or ``"azimuthal"``.
    sigma_clip : bool
        Reject outliers per ring (hot pixels, single-crystal spots) with
        pyFAI's ``sigma_clip_ng``.
    clip_threshold : float
        Keep pixels with ``|I - <I>| < clip_threshold * σ``.
    clip_max_iter : int
        Sigma-clipping iterations.
    radial_range : (float, float) or None
        Limits in ``unit``; default the full detector.
    method : str or None
        Engine, ``"pyfai"`` or ``"fast"``; ``None`` means :func:`default_method`.
    """

    npt: int = 3000
    unit: str = units.Q_A
    polarization_factor: float | None = 0.99
    correct_solid_angle: bool = True
    split: str = "bbox"
    algorithm: str = "csr"
    error_model: str = "poisson"
    sigma_clip: bool = False
    clip_threshold: float = 5.0
    clip_max_iter: int = 5
    radial_range: tuple[float, float] | None = None
    method: str | None = None

    def __post_init__(self) -> None:
        unit = _UNIT_ALIASES.get(str(self.unit).strip())
        if unit is None:
            raise InputError(f"unit must be q (Å⁻¹) or 2th (degrees), got {self.unit!r}")
        object.__setattr__(self, "unit", unit)
        if int(self.npt) != self.npt or not 2 <= self.npt <= MAX_NPT:
            raise InputError(f"npt must be an integer in 2–{MAX_NPT}, got {self.npt!r}")
        object.__setattr__(self, "npt", int(self.npt))
        pf = self.polarization_factor
        if pf is not None and (not np.isfinite(pf) or not -1.0 <= pf <= 1.0):
            raise InputError(f"polarization factor must be in [-1, 1] or None, got {pf!r}")
        if self.split not in SPLIT_METHODS:
            raise InputError(f"split must be one of {SPLIT_METHODS}, got {self.split!r}")
        if self.algorithm not in ("csr", "lut", "histogram", "csc"):
            raise InputError(
                f"algorithm must be csr, lut, csc or histogram, got {self.algorithm!r}"
            )
        if self.error_model not in ("poisson", "azimuthal"):
            raise InputError(f"error model must be poisson or azimuthal, got {self.error_model!r}")
        if not self.clip_threshold > 0 or self.clip_max_iter < 1:
            raise InputError("sigma clipping needs a threshold > 0 and at least 1 iteration")
        if self.radial_range is not None:
            lo, hi = (float(v) for v in self.radial_range)
            if not lo < hi:
                raise InputError(f"radial range must be (min, max) with min < max, got {lo, hi}")
            object.__setattr__(self, "radial_range", (lo, hi))
        method = self.method
        if method is None:
            # the fast engine reproduces pyFAI's bbox/CSR/Poisson integration over the full
            # radial range; anything else is pyFAI's own job
            plain = (
                self.sigma_clip
                or self.radial_range is not None
                or self.error_model != "poisson"
                or (self.split, self.algorithm) != ("bbox", "csr")
            )
            method = "pyfai" if plain else default_method()
        if method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        object.__setattr__(self, "method", method)

    @property
    def pyfai_method(self) -> tuple[str, str, str]:
        """The pyFAI method triple, e.g. ``("bbox", "csr", "cython")``."""
        split = "no" if self.sigma_clip else self.split
        algo = "csr" if self.sigma_clip else self.algorithm
        return (split, algo, "cython")

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dict of the settings (for metadata and headers)."""
        d = asdict(self)
        d["pyfai_method"] = list(self.pyfai_method)
        if d["radial_range"] is not None:
            d["radial_range"] = list(d["radial_range"])
        return d


@dataclass(frozen=True, eq=False)
class FrameResult(Result):
    """One item of a batch: a frame's pattern, or why it failed.

    Attributes
    ----------
    source : Path
        Image file.
    index : int or None
        Frame number in a stack, ``None`` for single or summed images.
    nframes : int
        Frames in the file.
    pattern : Pattern or None
        The integrated pattern (``None`` on error).
    error : str or None
        One-line reason when the frame (or the whole file) failed.
    pyfai_result : pyFAI Integrate1dResult or None
        pyFAI's own result of the frame, with its per-bin accumulators
        (:meth:`Integrator.integrate_result`), when asked for
        (``integrate_frames(..., accumulators=True)``; NXazint1d output).
    """

    source: Path
    index: int | None
    nframes: int
    pattern: Pattern | None = None
    error: str | None = None
    pyfai_result: Any = None

    @property
    def ok(self) -> bool:
        """True when the frame was integrated."""
        return self.error is None
