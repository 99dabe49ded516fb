r"""Azimuthal integration of detector frames to I(Q) or I(2θ) through pyFAI.

An :class:`Integrator` is built once per geometry (PONI), detector shape,
mask, dark, flat and settings, and reused for every frame: pyFAI keeps the
sparse (CSR) pixel-splitting matrix it builds on the first call, so later
frames cost one sparse product.  :func:`integrate_frames` is the batch loop
the CLI uses; it reads the next frame in a thread while the current one is
integrated.

Two engines give the same answer:

``"pyfai"``
    ``AzimuthalIntegrator.integrate1d`` (or ``sigma_clip_ng`` for outlier
    rejection) — the reference.
``"fast"``
    :class:`xrdpdf.stages._fastint.SparseIntegrator`: pyFAI's own CSR coefficients
    with the constant per-bin normalisation folded in once.

Notes
-----
Per radial bin :math:`k`, pyFAI returns the ratio of sums over the pixels
:math:`i` (with splitting fractions :math:`c_{ik}`)

.. math::

    I_k = \frac{\sum_i c_{ik}\,(r_i - d_i)}{\sum_i c_{ik}\, f_i\, \Omega_i\, P_i},
    \qquad
    \sigma_k = \frac{\sqrt{\sum_i c_{ik}^2\, v_i}}{\sum_i c_{ik}\, f_i\, \Omega_i\, P_i},

with raw counts :math:`r`, dark :math:`d`, flat :math:`f`, relative solid angle
:math:`\Omega` and polarisation factor
:math:`P = \tfrac12[1 + \cos^2 2\theta - p\cos 2\chi\,(1 - \cos^2 2\theta)]`
(:math:`p` = ``polarization_factor``, +1 horizontal); the Poisson model sets
:math:`v_i = r_i` (raw counts, before dark subtraction).  Pixels masked, NaN
or negative in the raw frame are left out.

References
----------
.. [1] Ashiotis et al., "The fast azimuthal integration Python library:
   pyFAI", J. Appl. Cryst. 48, 510 (2015). https://doi.org/10.1107/S1600576715004306
.. [2] Kieffer et al., "Application of signal separation to diffraction image
   compression and serial crystallography", J. Synchrotron Rad. 27, 558 (2020).
   https://doi.org/10.1107/S1600577520000776
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core._prefetch import prefetched
from xrdpdf._core.errors import InputError, InputWarning
from xrdpdf._core.pattern import Pattern
from xrdpdf._core.results import Result
from xrdpdf.io._poni import check_geometry, check_poni_text
from xrdpdf.io.images import BadInput, Frame, check_shape, combine_masks, invalid_pixels
from xrdpdf.stages import _geomsnap
from xrdpdf.stages._geomsnap import GeometrySnapshot

__all__ = [
    "default_method",
    "METHODS",
    "SPLIT_METHODS",
    "IntegrationSettings",
    "FrameResult",
    "Integrator",
    "load_poni",
    "poni_wavelength_A",
    "integrate_image",
    "integrate_frames",
    "integrator_from_files",
    "cached_integrator",
    "GeometrySnapshot",
    "settings_from_worker_config",
    "worker_config",
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


# ----------------------------------------------------------------- geometry
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
    from xrdpdf.io import is_worker_config, read_worker_config

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


def _fastint():
    """The fast-path module :mod:`xrdpdf.stages._fastint`.

    Imported on first use rather than at module import: it pulls in numba, which
    costs start-up time to commands that never integrate.  numba is a dependency,
    so a failed import is an installation error and propagates.
    """
    from xrdpdf.stages import _fastint

    return _fastint


def default_method() -> str:
    """The engine used by default, :data:`DEFAULT_METHOD` (numba is a dependency)."""
    return DEFAULT_METHOD


# ----------------------------------------------------------------- settings
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


# --------------------------------------------------------------- integrator
def _check_dark_level(data: np.ndarray, dark: np.ndarray, label: str) -> None:
    """Warn when the dark's median exceeds the frame's: the frame would be mostly below zero.

    A dark of another exposure time or gain, or frame and dark swapped, gives that; pyFAI then
    integrates mostly negative counts with σ from the raw counts, without complaint.
    """
    ok = np.isfinite(data) & np.isfinite(dark)
    if not ok.any():
        return
    d_med, f_med = float(np.median(dark[ok])), float(np.median(data[ok]))
    if d_med > f_med:
        warnings.warn(
            f"{label}: the dark's median ({d_med:.6g}) exceeds the frame's ({f_med:.6g}); "
            "is it the dark of this exposure?",
            InputWarning,
            stacklevel=4,
        )


@dataclass(eq=False)
class Integrator:
    """Integrate frames of one detector with fixed geometry, corrections and settings.

    Build it once and call :meth:`integrate` for every frame; the pixel
    splitting matrix (or the fast operator) is built on first use and reused.

    Parameters
    ----------
    ai : pyFAI AzimuthalIntegrator
        The geometry, e.g. from :func:`load_poni`; must have a wavelength.
    shape : (int, int), optional
        Frame shape; default the detector's.  Frames of any other shape are
        rejected.
    settings : IntegrationSettings
        Bins, unit, corrections, engine.
    mask : ndarray of bool, optional
        ``True`` = bad pixel; combined with the detector's own mask and the
        pixels a flat (≤ 0, NaN) or dark (NaN) makes invalid.
    dark : ndarray, optional
        Dark image subtracted from each frame (e.g. :func:`~xrdpdf.io.images.read_dark`).
    flat : ndarray, optional
        Flat field (relative pixel efficiency); intensities are divided by it.
    poni : str, optional
        Where the geometry came from (kept in the metadata).
    provenance : mapping, optional
        Extra metadata for every pattern (e.g. dark and mask file names).
    cache_dir : path or bool, optional
        Where the fast engine caches its operator: ``None`` the default
        (``$XRDPDF_CACHE`` or ``~/.cache/xrdpdf``), ``False`` no cache.
    """

    ai: Any
    shape: tuple[int, int] | None = None
    settings: IntegrationSettings = field(default_factory=IntegrationSettings)
    mask: np.ndarray | None = None
    dark: np.ndarray | None = None
    flat: np.ndarray | None = None
    poni: str | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    cache_dir: str | os.PathLike | bool | None = None

    def __post_init__(self) -> None:
        ai = self.ai
        if ai.wavelength is None:
            raise InputError(f"{self.poni or 'geometry'}: has no wavelength")
        self.wavelength_A = poni_wavelength_A(ai)
        det_shape = getattr(ai.detector, "shape", None) or getattr(ai.detector, "max_shape", None)
        det_shape = tuple(int(s) for s in det_shape) if det_shape is not None else None
        if self.shape is None:
            if det_shape is None:
                raise InputError(
                    f"{self.poni or 'geometry'}: the detector has no shape; give the frame shape"
                )
            self.shape = det_shape
        self.shape = (int(self.shape[0]), int(self.shape[1]))
        if det_shape is not None and self.shape != det_shape:
            raise InputError(
                f"frame shape {self.shape} does not match the detector shape {det_shape} "
                f"of {self.poni or 'the geometry'}"
            )
        for name in ("mask", "dark", "flat"):
            arr = getattr(self, name)
            if arr is not None:
                arr = np.asarray(arr, dtype=bool if name == "mask" else np.float64)
                check_shape(arr, self.shape, self.provenance.get(name, name), name)
                setattr(self, name, arr)
        det_mask = ai.detector.mask
        if det_mask is not None and tuple(det_mask.shape) != self.shape:
            det_mask = None  # a binned detector: its mask does not apply pixel by pixel
        self.static_mask = combine_masks(
            self.shape, det_mask, self.mask, flat=self.flat, dark=self.dark
        )
        if self.static_mask.all():
            where = self.provenance.get("mask", "mask")
            raise InputError(f"{where}: every pixel is masked; nothing to integrate")
        # pyFAI would divide by a flat of 0 or NaN: those pixels are masked, make them harmless
        self._flat = None
        if self.flat is not None:
            self._flat = np.where(self.static_mask, 1.0, self.flat)
        self._dark = None
        if self.dark is not None:
            self._dark = np.where(np.isfinite(self.dark), self.dark, 0.0)
        self._dark_checked = False
        self._fast = None
        self._lock = threading.Lock()
        #: set by integrator_from_files: where the geometry snapshot goes, and its file stamps
        self._snapshot_file: Path | None = None
        self._snapshot_files: dict[str, Any] = {}
        s = self.settings
        if s.method == "fast":
            if s.sigma_clip:
                raise InputError("sigma clipping needs the pyfai method (method='pyfai')")
            if self.settings.radial_range is not None:
                raise InputError("a radial range needs the pyfai method (method='pyfai')")
            if (s.split, s.algorithm, s.error_model) != ("bbox", "csr", "poisson"):
                raise InputError(
                    "the fast method does bbox splitting, CSR and Poisson errors only; "
                    "use method='pyfai'"
                )

    # ---------------------------------------------------------------- helpers
    def metadata(self) -> dict[str, Any]:
        """Provenance common to every pattern of this integrator (a fresh copy per call)."""
        import copy

        cached = self.__dict__.get("_metadata")
        if cached is None:  # once: counting the mask pixels costs ms per frame
            cached = self.__dict__["_metadata"] = self._make_metadata()
        return copy.deepcopy(cached)

    def _make_metadata(self) -> dict[str, Any]:
        md: dict[str, Any] = {"poni": self.poni, "integration": self.settings.as_dict()}
        md["pyfai_version"] = _pyfai_version(self.ai)
        md["corrections"] = {
            "dark": self.dark is not None,
            "flat": self.flat is not None,
            "mask_pixels": int(self.static_mask.sum()),
            "solid_angle": self.settings.correct_solid_angle,
            "polarization_factor": self.settings.polarization_factor,
        }
        md.update(dict(self.provenance))
        return md

    def _fast_engine(self):
        if self._fast is None:
            with self._lock:
                if self._fast is None:
                    self._fast = self._build_fast()
                    self._fast.empty = np.nan  # empty bins are dropped, as on the pyFAI path
        return self._fast

    def _build_fast(self):
        """The fast engine: from the snapshot's operator file, else built through pyFAI."""
        sparse = _fastint().SparseIntegrator
        snap = self.ai if isinstance(self.ai, GeometrySnapshot) else None
        if snap is not None:
            info = dict(snap._meta["operator"])
            path = info.pop("path")
            fast = sparse.from_cache_file(path, **info) if path else None
            if fast is not None:
                return fast
        s = self.settings
        fast = sparse.from_pyfai(
            self.ai if snap is None else snap.load(),
            self.shape,
            s.npt,
            s.unit,
            mask=self.static_mask,
            polarization_factor=s.polarization_factor,
            flat=self._flat,
            correct_solid_angle=s.correct_solid_angle,
            cache_dir=self.cache_dir,
        )
        if self._snapshot_file is not None and fast.cache_path is not None:
            self._save_snapshot(fast, self.ai if snap is None else snap.load())
        return fast

    def _save_snapshot(self, fast: Any, ai: Any) -> None:
        """Write the :class:`GeometrySnapshot` of this integrator (then trim the cache)."""
        settings = self.settings.as_dict()
        settings.pop("pyfai_method")
        _geomsnap.save_snapshot(
            self._snapshot_file,
            ai,
            operator=fast.cache_info,
            settings=settings,
            files=self._snapshot_files,
            pyfai_version=_pyfai_version(ai),
            worker_config=worker_config(self),
        )

    def integrate_result(self, frame: np.ndarray | Frame) -> Any:
        """pyFAI's own ``Integrate1dResult`` of one frame, with the settings of this integrator.

        Always pyFAI's engine (the fast engine keeps no per-bin accumulators):
        the result carries ``sum_signal``, ``sum_normalization``,
        ``sum_variance`` and ``count``, from which bins can be merged exactly
        (:func:`xrdpdf.io.rebin_accumulators`).  NaN and negative pixels are
        left out as in :meth:`integrate`.
        """
        data = frame.data if isinstance(frame, Frame) else frame
        data = np.asarray(data, dtype=np.float64)
        check_shape(data, self.shape, "image", "image")
        bad = invalid_pixels(data)
        if (bad | self.static_mask).all():
            raise InputError("no valid pixel (all NaN, negative or masked); nothing to integrate")
        summed = frame.summed if isinstance(frame, Frame) else 1
        dark = self._dark if self._dark is None or summed == 1 else self._dark * summed
        return self._pyfai_result(np.where(bad, np.nan, data), dark)

    def _pyfai_result(self, data: np.ndarray, dark: np.ndarray | None):
        s = self.settings
        kwargs: dict[str, Any] = dict(
            correctSolidAngle=s.correct_solid_angle,
            polarization_factor=s.polarization_factor,
            mask=self.static_mask,
            dark=dark,
            flat=self._flat,
            unit=s.unit,
            method=s.pyfai_method,
            error_model=s.error_model,
            radial_range=s.radial_range,
        )
        if s.sigma_clip:
            res = self.ai.sigma_clip_ng(
                data, s.npt, thres=s.clip_threshold, max_iter=s.clip_max_iter, **kwargs
            )
        else:
            res = self.ai.integrate1d(data, s.npt, **kwargs)
        return res

    def radial_axis(self) -> np.ndarray | None:
        """Every bin centre (settings' unit) of the fast engine; None for the pyfai engine.

        The patterns drop empty bins, so this is the axis that holds all of them
        (e.g. the columns of an HDF5 stack).  pyFAI's bins are known only once a
        frame is integrated, hence None there.
        """
        if self.settings.method != "fast":
            return None
        return np.asarray(self._fast_engine().radial, dtype=float)

    def _pyfai(self, data: np.ndarray, dark: np.ndarray | None):
        res = self._pyfai_result(data, dark)
        radial = np.asarray(res.radial, dtype=float)
        intensity = np.asarray(res.intensity, dtype=float)
        sigma = None if res.sigma is None else np.asarray(res.sigma, dtype=float)
        norm = getattr(res, "sum_normalization", None)
        if norm is not None:
            norm = np.asarray(norm, dtype=float)
            if norm.ndim > 1:
                norm = norm[..., 0]
            valid = norm > 0
        else:
            count = res.count
            valid = np.ones(radial.shape, bool) if count is None else np.asarray(count) > 0
        return radial, intensity, sigma, valid

    # ------------------------------------------------------------- integrate
    def integrate(
        self,
        frame: np.ndarray | Frame,
        *,
        source: str | os.PathLike | None = None,
        frame_index: int | None = None,
    ) -> Pattern:
        """Integrate one frame to a :class:`~xrdpdf._core.pattern.Pattern`.

        Parameters
        ----------
        frame : (rows, columns) ndarray or Frame
            Raw frame (no dark subtracted).  NaN and negative pixels are left out.
        source, frame_index : optional
            Provenance for the metadata (taken from a :class:`Frame`).

        Returns
        -------
        Pattern
            Radial axis in the settings' unit, intensity and Poisson σ; bins
            without any valid pixel are dropped.

        Raises
        ------
        InputError
            Wrong shape, or no valid pixel left (all masked, NaN or negative).
        """
        nframes = None
        summed = 1
        if isinstance(frame, Frame):
            source = frame.source if source is None else source
            frame_index = frame.index if frame_index is None else frame_index
            nframes, summed = frame.nframes, frame.summed
            frame = frame.data
        label = str(source) if source is not None else "image"
        if frame_index is not None:
            label = f"{label}[{frame_index}]"
        data = np.asarray(frame)
        if data.ndim != 2:
            raise InputError(f"{label}: expected a 2-D image, got shape {data.shape}")
        check_shape(data, self.shape, label, "image")
        s = self.settings
        engine = s.method
        nbad = None
        # a sum of N frames holds N darks; pyFAI subtracts the dark and takes σ from raw counts
        dark = self._dark if self._dark is None or summed == 1 else self._dark * summed
        if dark is not None and not self._dark_checked:
            self._dark_checked = True  # once per integrator: a median of the frame costs ~50 ms
            _check_dark_level(data, dark, label)
        if engine == "fast":
            # the kernel reads the frame in its own dtype and leaves NaN and negative pixels
            # out per frame, as pyFAI does with a dynamic mask: no float copy, no pixel map
            if data.dtype not in (np.uint16, np.float32, np.float64):
                data = data.astype(np.float64)  # exact for every integer count (< 2**53)
            radial, intensity, sigma = self._fast_engine().integrate(data, dark=dark)
            radial = np.asarray(radial, float)
            intensity = np.asarray(intensity, float)
            sigma = None if sigma is None else np.asarray(sigma, float)
            valid = np.isfinite(intensity)
            if not valid.any():
                raise InputError(
                    f"{label}: no valid pixel (all NaN, negative or masked); nothing to integrate"
                )
        else:
            data = np.asarray(data, dtype=np.float64)
            bad = invalid_pixels(data)
            nbad = int(bad.sum())
            if nbad:
                if (bad | self.static_mask).all():
                    raise InputError(
                        f"{label}: no valid pixel (all NaN, negative or masked); "
                        "nothing to integrate"
                    )
                data = np.where(bad, np.nan, data)  # pyFAI drops NaN pixels (dynamic mask)
            radial, intensity, sigma, valid = self._pyfai(data, dark)
        valid &= np.isfinite(intensity) & np.isfinite(radial)
        if sigma is not None:
            valid &= np.isfinite(sigma)
        if valid.sum() < 2:
            raise InputError(f"{label}: fewer than 2 radial bins hold valid pixels")
        md = self.metadata()
        md.update(
            source=None if source is None else str(source),
            frame=frame_index,
            nframes=nframes,
            frames_summed=summed if summed != 1 else None,
            engine=engine,
            invalid_pixels=nbad,
        )
        return Pattern(
            x=radial[valid],
            y=intensity[valid],
            unit=s.unit,
            wavelength_A=self.wavelength_A,
            sigma=None if sigma is None else sigma[valid],
            metadata={k: v for k, v in md.items() if v is not None},
        )


# ------------------------------------------------------------------- batch


def integrate_frames(
    integrator: Integrator,
    frames: Iterable[Frame | BadInput | np.ndarray],
    *,
    prefetch: bool = True,
    accumulators: bool = False,
) -> Iterator[FrameResult]:
    """Integrate a stream of frames; a bad frame is reported, the rest go on.

    Parameters
    ----------
    integrator : Integrator
        Built once for the geometry and settings.
    frames : iterable of Frame, BadInput or ndarray
        E.g. :func:`xrdpdf.io.images.iter_many`; a :class:`~xrdpdf.io.images.BadInput`
        (an unreadable file) passes through as a failed result.
    prefetch : bool
        Read the next frame in a thread while integrating the current one.
    accumulators : bool
        Also give pyFAI's own result of each frame, with its per-bin
        accumulators (:attr:`FrameResult.pyfai_result`, for NXazint1d files);
        it costs one pyFAI integration per frame.

    Yields
    ------
    FrameResult
        In input order, one per frame (or per unreadable file).
    """
    stream = prefetched(frames) if prefetch else iter(frames)
    for i, item in enumerate(stream):
        if isinstance(item, BadInput):
            yield FrameResult(item.source, item.index, 0, error=item.message)
            continue
        if not isinstance(item, Frame):
            item = Frame(np.asarray(item, dtype=np.float64), Path(f"frame{i}"), i, 0)
        try:
            pattern = integrator.integrate(item)
            pyfai_result = integrator.integrate_result(item) if accumulators else None
        except InputError as exc:
            yield FrameResult(item.source, item.index, item.nframes, error=str(exc))
            continue
        yield FrameResult(
            item.source, item.index, item.nframes, pattern=pattern, pyfai_result=pyfai_result
        )


def integrator_from_files(
    poni: str | os.PathLike | Any,
    settings: IntegrationSettings | None = None,
    *,
    mask: str | os.PathLike | None = None,
    darks: Sequence[str | os.PathLike] | None = None,
    flat: str | os.PathLike | None = None,
    first_image: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Integrator:
    """Build the :class:`Integrator` of a PONI and the mask, dark and flat files.

    The one constructor behind ``xrdpdf integrate``, ``xrdpdf watch`` and
    ``xrdpdf series``, so that all three reduce an image identically.

    Parameters
    ----------
    poni : path or AzimuthalIntegrator
        Geometry (with wavelength).
    settings : IntegrationSettings, optional
        Defaults if omitted.
    mask, flat : path, optional
        Mask (non-zero = bad) and flat-field images.
    darks : sequence of path, optional
        Dark files, averaged over all their frames.
    first_image : path, optional
        Gives the frame shape when the PONI's detector has none (and no mask,
        dark or flat does).
    cache_dir : path, optional
        Where the fast engine caches its operator.
    overrides : mapping, optional
        With a WorkerConfig ``poni`` and no ``settings``: the settings the
        user gave explicitly (``npt=``, ``unit=``, ...), which win over the
        config's.

    Notes
    -----
    ``poni`` may be a pyFAI integration config (``WorkerConfig`` JSON): the
    geometry, mask, darks and flat come from it unless given here, and so do
    ``npt``, ``unit``, ``polarization_factor``, ``correct_solid_angle``,
    ``error_model`` and ``radial_range`` unless ``settings`` is given.

    Raises
    ------
    InputError
        Unreadable geometry, mask, dark or flat; no way to know the frame shape.
    """
    from xrdpdf.io import images, is_worker_config, read_worker_config

    ai = poni
    poni_name = None
    snap_file = snap = None
    if isinstance(poni, str | os.PathLike):
        poni_name = str(poni)
        given = {"mask": mask, "darks": darks, "flat": flat}
        snap_file = _geomsnap.snapshot_path(poni, settings, overrides, given, cache_dir)
        snap = _geomsnap.load_snapshot(snap_file, poni)
    if snap is not None:  # a run of these inputs wrote it: no PONI parsing, no pyFAI
        ai = snap
        files = snap._meta["files"]
        mask, darks, flat = files["mask"], files["darks"], files["flat"]
        settings = IntegrationSettings(**snap._meta["settings"])
    elif isinstance(poni, str | os.PathLike):
        if is_worker_config(poni):
            cfg = read_worker_config(poni)
            mask = mask if mask is not None else _config_path(poni, cfg["mask"])
            darks = darks or [_config_path(poni, d) for d in cfg["darks"] or []]
            flat = flat if flat is not None else _config_path(poni, cfg["flat"])
            if settings is None:
                settings = settings_from_worker_config(cfg, overrides)
        ai = load_poni(poni)
    provenance: dict[str, Any] = {}
    mask_arr = dark_arr = flat_arr = None
    if mask is not None:
        mask_arr = images.read_mask(mask)
        provenance["mask"] = str(mask)
    if darks:
        darks = list(darks)
        dark_arr = images.read_dark(darks)
        provenance["dark"] = [str(d) for d in darks] if len(darks) > 1 else str(darks[0])
    if flat is not None:
        flat_arr = images.read_flat(flat)
        provenance["flat"] = str(flat)
    shape = None
    if ai.detector.shape is None:  # a generic detector: take the shape of an input
        for arr in (mask_arr, dark_arr, flat_arr):
            if arr is not None:
                shape = tuple(arr.shape)
                break
        if shape is None and first_image is not None:
            first = next(iter(images.iter_frames(first_image, frames=[0])), None)
            shape = None if first is None else tuple(first.data.shape)
        if shape is None:
            raise InputError(f"{poni_name or 'geometry'}: the detector has no shape; give an image")
    integ = Integrator(
        ai,
        None if shape is None else (int(shape[0]), int(shape[1])),
        settings if settings is not None else IntegrationSettings(),
        mask=mask_arr,
        dark=dark_arr,
        flat=flat_arr,
        poni=poni_name,
        provenance=provenance,
        cache_dir=cache_dir,
    )
    # a snapshot only where the inputs fix the frame shape (not the first image alone)
    shape_known = ai.detector.shape is not None or any(
        a is not None for a in (mask_arr, dark_arr, flat_arr)
    )
    if snap_file is not None and integ.settings.method == "fast" and shape_known:
        integ._snapshot_file = snap_file
        integ._snapshot_files = {
            "mask": None if mask is None else str(mask),
            "darks": [str(d) for d in darks] if darks else None,
            "flat": None if flat is None else str(flat),
        }
    return integ


def cached_integrator(
    poni: str | os.PathLike,
    settings: IntegrationSettings | None = None,
    *,
    mask: str | os.PathLike | None = None,
    darks: Sequence[str | os.PathLike] | None = None,
    flat: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Integrator | None:
    """:func:`integrator_from_files` from a cached :class:`GeometrySnapshot`, else None.

    Nothing is built when no snapshot of these inputs exists (the caller then
    goes the usual way); with one, pyFAI is not imported.

    Raises
    ------
    InputError
        Unreadable mask, dark or flat file named by the snapshot.
    """
    given = {"mask": mask, "darks": darks, "flat": flat}
    path = _geomsnap.snapshot_path(poni, settings, overrides, given, cache_dir)
    if _geomsnap.load_snapshot(path, poni) is None:
        return None
    return integrator_from_files(
        poni, settings, mask=mask, darks=darks, flat=flat, cache_dir=cache_dir, overrides=overrides
    )


def _config_path(config: str | os.PathLike, name: str | None) -> str | None:
    """A file named in a config: as written, else relative to the config's folder."""
    if not name:
        return None
    p = Path(name)
    if not p.is_absolute() and not p.exists() and (Path(config).parent / p).exists():
        return str(Path(config).parent / p)
    return str(p)


def settings_from_worker_config(
    cfg: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> IntegrationSettings:
    """IntegrationSettings from :func:`xrdpdf.io.read_worker_config`'s dict, then ``overrides``.

    A config without an error model ("no" in pyFAI) still gets Poisson σ:
    every xrdpdf pattern carries σ.
    """
    base: dict[str, Any] = {}
    if cfg.get("npt"):
        base["npt"] = int(cfg["npt"])
    if cfg.get("unit"):
        base["unit"] = cfg["unit"]
    base["polarization_factor"] = cfg.get("polarization_factor")
    base["correct_solid_angle"] = bool(cfg.get("correct_solid_angle", True))
    if cfg.get("error_model"):
        base["error_model"] = cfg["error_model"]
    if cfg.get("radial_range"):
        base["radial_range"] = tuple(cfg["radial_range"])
    base.update(overrides or {})
    return IntegrationSettings(**base)


def worker_config(integrator: Integrator) -> dict[str, Any]:
    """The pyFAI ``WorkerConfig`` (as a JSON-ready dict) that redoes ``integrator``'s reduction.

    Geometry, bins, unit, corrections, error model, radial range, pyFAI method
    and the mask, dark and flat file names; pyFAI-integrate and
    ``pyFAI.worker.Worker`` read it.  Sigma clipping has no WorkerConfig field
    and is not recorded.
    """
    snap = integrator.ai
    if isinstance(snap, GeometrySnapshot) and "worker_config" in snap._meta:
        import copy

        return copy.deepcopy(snap._meta["worker_config"])
    from xrdpdf.io import worker_config_dict

    s = integrator.settings
    prov = integrator.provenance
    darks = prov.get("dark")
    return worker_config_dict(
        integrator.ai.get_config(),
        npt=s.npt,
        unit=s.unit,
        polarization_factor=s.polarization_factor,
        correct_solid_angle=s.correct_solid_angle,
        error_model=s.error_model,
        mask=prov.get("mask"),
        darks=[darks] if isinstance(darks, str) else darks,
        flat=prov.get("flat"),
        radial_range=s.radial_range,
        method=s.pyfai_method,
    )


def integrate_image(
    image: np.ndarray,
    ai,
    settings: IntegrationSettings | None = None,
    *,
    mask: np.ndarray | None = None,
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
    **setting_overrides: Any,
) -> Pattern:
    """One-shot integration of a single image (builds a throw-away :class:`Integrator`).

    Parameters
    ----------
    image : (rows, columns) ndarray
        Raw frame.
    ai : AzimuthalIntegrator or path
        Geometry, or a PONI path loaded with :func:`load_poni`.
    settings : IntegrationSettings, optional
        Defaults if omitted; keyword arguments (``npt=``, ``unit=``, ...)
        override single fields.
    mask, dark, flat : ndarray, optional
        As for :class:`Integrator`.

    Returns
    -------
    Pattern
    """
    poni = None
    if isinstance(ai, str | os.PathLike):
        poni = str(ai)
        ai = load_poni(ai)
    if settings is None:
        settings = IntegrationSettings(**setting_overrides)
    elif setting_overrides:
        settings = replace(settings, **setting_overrides)
    image = np.asarray(image)
    integ = Integrator(ai, tuple(image.shape), settings, mask=mask, dark=dark, flat=flat, poni=poni)
    return integ.integrate(image)
