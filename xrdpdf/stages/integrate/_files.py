"""Integrators from files (PONI or WorkerConfig, mask, dark, flat) and batches of frames."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from xrdpdf._core._prefetch import prefetched
from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf.io.images import BadInput, Frame
from xrdpdf.stages import _geomsnap
from xrdpdf.stages.integrate._integrator import Integrator
from xrdpdf.stages.integrate._settings import FrameResult, IntegrationSettings, load_poni

__all__ = [
    "integrate_frames",
    "integrator_from_files",
    "cached_integrator",
    "settings_from_worker_config",
    "integrate_image",
]


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
    src = _resolve_inputs(
        poni, settings, mask=mask, darks=darks, flat=flat, cache_dir=cache_dir, overrides=overrides
    )
    mask_arr, dark_arr, flat_arr, provenance = _read_corrections(src.mask, src.darks, src.flat)
    arrays = (mask_arr, dark_arr, flat_arr)
    integ = Integrator(
        src.ai,
        _frame_shape(src.ai, arrays, first_image, src.poni_name),
        src.settings if src.settings is not None else IntegrationSettings(),
        mask=mask_arr,
        dark=dark_arr,
        flat=flat_arr,
        poni=src.poni_name,
        provenance=provenance,
        cache_dir=cache_dir,
    )
    # a snapshot only where the inputs fix the frame shape (not the first image alone)
    shape_known = src.ai.detector.shape is not None or any(a is not None for a in arrays)
    if src.snap_file is not None and integ.settings.method == "fast" and shape_known:
        integ._snapshot_file = src.snap_file
        integ._snapshot_files = {
            "mask": None if src.mask is None else str(src.mask),
            "darks": [str(d) for d in src.darks] if src.darks else None,
            "flat": None if src.flat is None else str(src.flat),
        }
    return integ


class _Inputs(NamedTuple):
    """What :func:`integrator_from_files` builds from, once the PONI or config is read."""

    #: AzimuthalIntegrator, or the GeometrySnapshot that stands in for it
    ai: Any
    settings: IntegrationSettings | None
    mask: str | os.PathLike | None
    darks: list[str | os.PathLike] | None
    flat: str | os.PathLike | None
    #: the geometry file's name (None for an AzimuthalIntegrator given as such)
    poni_name: str | None
    #: where a geometry snapshot of these inputs goes (None without a geometry file)
    snap_file: Path | None


def _resolve_inputs(
    poni: str | os.PathLike | Any,
    settings: IntegrationSettings | None,
    *,
    mask: str | os.PathLike | None,
    darks: Sequence[str | os.PathLike] | None,
    flat: str | os.PathLike | None,
    cache_dir: str | os.PathLike | None,
    overrides: Mapping[str, Any] | None,
) -> _Inputs:
    """The geometry, settings and correction files, from a snapshot, a WorkerConfig or a PONI.

    A cached snapshot of these inputs stands in for the geometry (no PONI
    parsing, no pyFAI) and names the files and settings it was made with.  A
    WorkerConfig fills in the mask, darks and flat not given, and the settings
    when ``settings`` is None.  An AzimuthalIntegrator ``poni`` is used as it is.
    """
    from xrdpdf.io import is_worker_config, read_worker_config

    ai = poni
    poni_name = None
    snap_file = snap = None
    if isinstance(poni, str | os.PathLike):
        poni_name = str(poni)
        given = {"mask": mask, "darks": darks, "flat": flat}
        snap_file = _geomsnap.snapshot_path(poni, settings, overrides, given, cache_dir)
        snap = _geomsnap.load_snapshot(snap_file, poni)
    if snap is not None:
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
    darks = list(darks) if darks else darks
    return _Inputs(ai, settings, mask, darks, flat, poni_name, snap_file)


def _read_corrections(
    mask: str | os.PathLike | None,
    darks: list[str | os.PathLike] | None,
    flat: str | os.PathLike | None,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, dict[str, Any]]:
    """The mask, averaged dark and flat arrays (None where not given), and their file names."""
    from xrdpdf.io import images

    provenance: dict[str, Any] = {}
    mask_arr = dark_arr = flat_arr = None
    if mask is not None:
        mask_arr = images.read_mask(mask)
        provenance["mask"] = str(mask)
    if darks:
        dark_arr = images.read_dark(darks)
        provenance["dark"] = [str(d) for d in darks] if len(darks) > 1 else str(darks[0])
    if flat is not None:
        flat_arr = images.read_flat(flat)
        provenance["flat"] = str(flat)
    return mask_arr, dark_arr, flat_arr, provenance


def _frame_shape(
    ai, arrays: Iterable[np.ndarray | None], first_image: str | os.PathLike | None, name: str | None
) -> tuple[int, int] | None:
    """The frame shape of a detector without one: a correction array's, else the first image's.

    None when the detector has its own shape.

    Raises
    ------
    InputError
        No array and no ``first_image`` to take the shape from.
    """
    from xrdpdf.io import images

    if ai.detector.shape is not None:
        return None
    shape = next((tuple(a.shape) for a in arrays if a is not None), None)
    if shape is None and first_image is not None:
        first = next(iter(images.iter_frames(first_image, frames=[0])), None)
        shape = None if first is None else tuple(first.data.shape)
    if shape is None:
        raise InputError(f"{name or 'geometry'}: the detector has no shape; give an image")
    return int(shape[0]), int(shape[1])


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
