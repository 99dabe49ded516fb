"""Cached geometry snapshots: what a run reads from pyFAI, so a cached run starts without it.

:func:`xrdpdf.stages.integrate.integrator_from_files` looks a snapshot up by a key
computed without pyFAI (:func:`snapshot_path`) and, when it is there and its
files are unchanged (:func:`load_snapshot`), builds the integrator on a
:class:`GeometrySnapshot` instead of the PONI; the first run of a geometry and
settings writes it (:func:`save_snapshot`) beside the fast engine's operator.

This is a private helper of :mod:`xrdpdf.stages.integrate`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf.stages import _opcache
from xrdpdf.stages._opcache import default_cache_dir

__all__ = ["GeometrySnapshot", "snapshot_path", "load_snapshot", "save_snapshot", "stamp"]


class GeometrySnapshot:
    """What xrdpdf reads from a pyFAI geometry, cached: a stand-in for its AzimuthalIntegrator.

    Written next to the fast engine's operator (:mod:`xrdpdf.stages._opcache`, file
    ``geom_<key>.op``) by the first run of a geometry and settings, and read by
    :func:`integrator_from_files` instead of the PONI when the key matches, so
    that a run whose operator is cached integrates its first frame without
    importing pyFAI (whose import costs seconds).  It holds the wavelength, the
    detector's shape, mask, ``dummy`` and ``delta_dummy``, the pyFAI version,
    the operator file and the run's WorkerConfig; any other attribute loads
    the real AzimuthalIntegrator (:func:`xrdpdf.stages.integrate.load_poni`)
    on first use and is taken from it.

    The key is a SHA-256 over the bytes and absolute path of the PONI (or
    WorkerConfig), the settings, the mask, dark and flat arguments as given, the
    working directory and the installed pyFAI's ``version.py`` (path, size,
    mtime); the snapshot also records size and mtime (ns) of every mask, dark
    and flat file it resolved, and is ignored when one of them changed.

    Attributes
    ----------
    wavelength : float
        Metres, as pyFAI.
    detector : types.SimpleNamespace
        ``shape``, ``max_shape``, ``mask`` (bool array or None), ``dummy``,
        ``delta_dummy`` of the pyFAI detector.
    pyfai_version : str
        ``pyFAI.version`` of the run that wrote the snapshot.
    """

    def __init__(self, source: Path, meta: Mapping[str, Any], detector_mask: Any) -> None:
        from types import SimpleNamespace

        self.__dict__["_ai"] = None
        self.__dict__["_source"] = Path(source)
        self.__dict__["_meta"] = dict(meta)
        det = meta["detector"]
        self.wavelength = float(meta["wavelength_m"])
        self.detector = SimpleNamespace(
            shape=None if det["shape"] is None else tuple(det["shape"]),
            max_shape=None if det["max_shape"] is None else tuple(det["max_shape"]),
            mask=detector_mask,
            dummy=det["dummy"],
            delta_dummy=det["delta_dummy"],
        )
        self.pyfai_version = str(meta["pyfai_version"])

    def load(self) -> Any:
        """The real pyFAI AzimuthalIntegrator of the PONI (imports pyFAI on first call)."""
        if self.__dict__["_ai"] is None:
            from xrdpdf.io._geometry import load_poni

            self.__dict__["_ai"] = load_poni(self._source)
        return self.__dict__["_ai"]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # incl. pickling probes: never load pyFAI for them
            raise AttributeError(name)
        return getattr(self.load(), name)


_SNAPSHOT_FORMAT = 1


def pyfai_install() -> list[Any]:
    """Path, size and mtime (ns) of the installed pyFAI's version.py, found without importing it."""
    spec = importlib.util.find_spec("pyFAI")
    if spec is None or spec.origin is None:
        return ["none"]
    version_py = Path(spec.origin).with_name("version.py")
    try:
        st = version_py.stat()
    except OSError:
        return [str(version_py)]
    return [str(version_py), st.st_size, st.st_mtime_ns]


def stamp(path: str | os.PathLike | None) -> list[Any] | None:
    if path is None:
        return None
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return [str(p)]
    return [str(p.resolve()), st.st_size, st.st_mtime_ns]


def snapshot_path(
    poni: str | os.PathLike,
    settings: Any,
    overrides: Mapping[str, Any] | None,
    files: Mapping[str, Any],
    cache_dir: str | os.PathLike | bool | None,
) -> Path | None:
    """The snapshot file of these inputs, or None when caching is off or the PONI unreadable."""
    if cache_dir is False:
        return None
    try:
        poni_bytes = Path(poni).read_bytes()
        poni_abs = str(Path(poni).resolve())
    except OSError:
        return None
    key = {
        "format": _SNAPSHOT_FORMAT,
        "poni": [poni_abs, hashlib.sha256(poni_bytes).hexdigest()],
        "settings": None if settings is None else settings.as_dict(),
        "overrides": None if overrides is None else dict(overrides),
        "files": {
            k: (None if v is None else [str(x) for x in v] if k == "darks" else str(v))
            for k, v in files.items()
        },
        "pyfai": pyfai_install(),
        # relative mask, dark and flat names (also a WorkerConfig's) mean other files elsewhere
        "cwd": os.getcwd(),
    }
    text = json.dumps(key, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    base = default_cache_dir() if cache_dir in (None, True) else Path(cache_dir)
    return base / f"geom_{digest}.op"


def load_snapshot(path: Path | None, poni: str | os.PathLike) -> GeometrySnapshot | None:
    """The snapshot at ``path`` if it is there and its mask, dark and flat files are unchanged."""
    if path is None:
        return None
    got = _opcache.load_with_meta(path)
    if got is None:
        return None
    arrays, meta = got
    try:
        stamps = meta["stamps"]
        if any(stamp(st[0]) != st for st in stamps):
            return None
        return GeometrySnapshot(Path(poni), meta, arrays.get("detector_mask"))
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def save_snapshot(
    path: Path,
    ai: Any,
    *,
    operator: Mapping[str, Any],
    settings: Mapping[str, Any],
    files: Mapping[str, Any],
    pyfai_version: str,
    worker_config: Mapping[str, Any],
) -> None:
    """Write the snapshot of geometry ``ai`` to ``path``, then trim the cache to its cap.

    ``operator`` is the fast engine's ``cache_info``; ``files`` the mask, darks
    and flat as resolved (their size and mtime are recorded).  A cache that
    cannot be written is no error: the snapshot only saves start-up time.
    """
    det = ai.detector
    names = [files.get("mask"), *(files.get("darks") or []), files.get("flat")]
    max_shape = getattr(det, "max_shape", None)
    meta = {
        "wavelength_m": float(ai.wavelength),
        "detector": {
            "shape": None if det.shape is None else [int(v) for v in det.shape],
            "max_shape": None if max_shape is None else [int(v) for v in max_shape],
            "dummy": None if det.dummy is None else float(det.dummy),
            "delta_dummy": None if det.delta_dummy is None else float(det.delta_dummy),
        },
        "pyfai_version": str(pyfai_version),
        "operator": dict(operator),
        "settings": dict(settings),
        "files": dict(files),
        "stamps": [stamp(n) for n in names if n is not None],
        "worker_config": dict(worker_config),
    }
    arrays = {}
    if det.mask is not None:
        arrays["detector_mask"] = np.asarray(det.mask, dtype=bool)
    try:
        _opcache.save(arrays, path, meta=meta)
        _opcache.evict(path.parent, keep=Path(operator["path"]))
    except OSError:
        pass
