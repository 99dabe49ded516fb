"""The :class:`Integrator`: one detector, fixed geometry and corrections, frames → I(Q) with σ."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core.errors import InputError, InputWarning
from xrdpdf._core.pattern import Pattern
from xrdpdf.io.images import Frame, check_shape, combine_masks, invalid_pixels
from xrdpdf.stages import _geomsnap
from xrdpdf.stages._geomsnap import GeometrySnapshot
from xrdpdf.stages.integrate._settings import (
    IntegrationSettings,
    _pyfai_version,
    poni_wavelength_A,
)

__all__ = [
    "Integrator",
    "worker_config",
]


def _fastint():
    """The fast-path module :mod:`xrdpdf.stages._fastint`.

    Imported on first use rather than at module import, so commands that never
    integrate do not load it.  Its C kernel is built when xrdpdf is installed, so a
    failed import is an installation error and propagates.
    """
    from xrdpdf.stages import _fastint

    return _fastint


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
        self._fast_darks: dict[int, Any] = {}  # the dark (× frames summed) in kernel order
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

    def _fast_dark(self, summed: int):
        """The fast engine's prepared dark for a sum of `summed` frames (made once)."""
        if self._dark is None:
            return None
        engine = self._fast_engine()  # takes the lock itself
        with self._lock:
            prepared = self._fast_darks.get(summed)
            if prepared is None:
                dark = self._dark if summed == 1 else self._dark * summed
                prepared = engine.prepare_dark(dark)
                while len(self._fast_darks) >= 4:  # ~20 MB each on a 2048² frame
                    self._fast_darks.pop(next(iter(self._fast_darks)))
                self._fast_darks[summed] = prepared
        return prepared

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
        if self._dark is not None and not self._dark_checked:
            self._dark_checked = True  # once per integrator: a median of the frame costs ~50 ms
            _check_dark_level(data, self._dark * summed, label)
        if engine == "fast":
            # the kernel reads the frame in its own dtype and leaves NaN and negative pixels
            # out per frame, as pyFAI does with a dynamic mask: no float copy, no pixel map
            if data.dtype not in (np.uint16, np.float32, np.float64):
                data = data.astype(np.float64)  # exact for every integer count (< 2**53)
            engine_dark = self._fast_dark(summed)
            radial, intensity, sigma = self._fast_engine().integrate(data, dark=engine_dark)
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
            dark = self._dark if self._dark is None or summed == 1 else self._dark * summed
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
