"""NXazint1d files (NeXus azimuthal-integration results), written by pyFAI's own writer.

:func:`pyFAI.io.nexus.save_NXazint1d` writes the application definition
(``entry/definition = NXazint1d``, instrument, monochromator wavelength in Å,
the pyFAI process and configuration, ``entry/data`` with ``radial_axis``,
``I`` (frames × bins), ``I_errors`` and ``norm``).  xrdpdf adds, in the same
NXdata group, pyFAI's per-bin accumulators of every frame — ``sum_signal``,
``sum_normalization``, ``sum_variance`` and ``count`` — so that bins can be
merged exactly later (:func:`rebin_accumulators`).

The NXazint1d definition (NeXus definitions v2025.11) asks for a few things
pyFAI 2026.9's writer leaves out or names differently; they are completed
after pyFAI has written the file: the ``reduction`` NXprocess (program,
version, date, reference, ``input`` NXparameters holding the WorkerConfig),
the source type from the definition's list ("Synchrotron X-ray Source"), and
the ``long_name`` of ``norm`` and ``I_errors`` as the definition spells them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core.errors import InputError
from xrdpdf.io._files import atomic_path

__all__ = ["write_nxazint1d", "read_nxazint1d", "rebin_accumulators", "ACCUMULATORS"]

#: pyFAI ``Integrate1dResult`` attributes stored per frame (frames × bins).
ACCUMULATORS = ("sum_signal", "sum_normalization", "sum_variance", "count")


def write_nxazint1d(
    results: Any,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    sample: str = "sample",
    config: dict[str, Any] | None = None,
) -> Path:
    """Write pyFAI ``Integrate1dResult`` (one or a list: the frames) as NXazint1d, atomically.

    ``config`` (a WorkerConfig dict, :func:`xrdpdf.stages.integrate.worker_config`)
    is stored as ``entry/reduction/input/config`` so pyFAI can redo the run.

    Raises
    ------
    InputError
        A unit NXazint1d has no name for (only ``2th_deg`` and ``q_A^-1``).
    """
    import h5py
    from pyFAI.containers import Integrate1dResult
    from pyFAI.io.nexus import save_NXazint1d

    results = [results] if isinstance(results, Integrate1dResult) else list(results)
    unit = results[0].unit.name
    if unit not in ("2th_deg", "q_A^-1"):
        raise InputError(f"{path}: NXazint1d holds 2th_deg or q_A^-1 only, not {unit}")
    path = Path(path)
    with atomic_path(path, overwrite) as tmp:
        tmp.unlink()  # pyFAI's writer creates the file itself
        save_NXazint1d(str(tmp), results, sample=sample, source_type="Synchrotron X-ray Source")
        with h5py.File(tmp, "a") as h5:
            _complete(h5["entry"], config)
            data = h5["entry/data"]
            for name in ACCUMULATORS:
                values = [getattr(r, name, None) for r in results]
                if any(v is None for v in values):
                    continue
                arr = np.asarray(values, dtype=np.float64)
                if arr.ndim == 3:  # (frames, bins, 1) for a scalar normalization
                    arr = arr[..., 0]
                ds = data.create_dataset(name, data=arr)
                ds.attrs["doc"] = f"pyFAI Integrate1dResult.{name} per frame (frames × bins)"
    return path


def _complete(entry: Any, config: dict[str, Any] | None) -> None:
    """Add what the NXazint1d definition requires and pyFAI's writer leaves out."""
    import json

    import pyFAI

    if "reduction" not in entry:
        red = entry.create_group("reduction")
        red.attrs["NX_class"] = "NXprocess"
        red["program"] = "pyFAI"
        red["version"] = str(pyFAI.version)
        red["date"] = entry["pyFAI/date"][()] if "pyFAI/date" in entry else ""
        red["reference"] = (
            "Ashiotis et al., J. Appl. Cryst. 48 (2015) 510, doi:10.1107/S1600576715004306"
        )
        red["note"] = "written by xrdpdf through pyFAI.io.nexus.save_NXazint1d"
        inp = red.create_group("input")
        inp.attrs["NX_class"] = "NXparameters"
        if config is not None:
            inp["config"] = json.dumps(config)
            inp["config_format"] = "pyFAI WorkerConfig (text/json)"
    data = entry["data"]
    if "norm" in data:
        data["norm"].attrs["long_name"] = (
            "effective number of pixels contributing to the corresponding bin"
        )
    if "I_errors" in data:
        data["I_errors"].attrs["long_name"] = "estimated intensity error"


def read_nxazint1d(path: Path, h5: Any) -> list[dict[str, Any]] | None:
    """Range dicts (one per frame) of an NXazint1d entry in the open file ``h5``, else None."""
    entry = None
    for grp in h5.values():
        definition = grp.get("definition") if hasattr(grp, "get") else None
        if definition is not None and b"NXazint1d" in np.asarray(definition[()]).tobytes():
            entry = grp
            break
    if entry is None:
        return None
    data = entry["data"]
    x = np.asarray(data["radial_axis"][()], dtype=float)
    units_attr = data["radial_axis"].attrs.get("units", "")
    units_attr = units_attr.decode() if isinstance(units_attr, bytes) else str(units_attr)
    unit = {"degrees": "tth", "degree": "tth", "deg": "tth", "1/angstrom": "q"}.get(units_attr)
    if unit is None:
        raise InputError(f"{path}: NXazint1d radial axis in {units_attr!r}")
    y = np.atleast_2d(np.asarray(data["I"][()], dtype=float))
    err = (
        np.atleast_2d(np.asarray(data["I_errors"][()], dtype=float)) if "I_errors" in data else None
    )
    count = np.atleast_2d(np.asarray(data["count"][()])) if "count" in data else None
    if count is None and "norm" in data:
        count = np.broadcast_to(np.asarray(data["norm"][()]), y.shape)
    wl = None
    mono = entry.get("instrument/monochromator/wavelength")
    if mono is not None:
        wl = float(np.asarray(mono[()]).ravel()[0])
        wl_units = mono.attrs.get("units", "angstrom")
        wl_units = wl_units.decode() if isinstance(wl_units, bytes) else str(wl_units)
        wl *= {"m": 1e10, "nm": 10.0}.get(wl_units, 1.0)
    infos = []
    for k in range(y.shape[0]):
        keep = np.isfinite(y[k]) if count is None else (np.asarray(count[k]) > 0)
        cols = [x[keep], y[k][keep]] + ([err[k][keep]] if err is not None else [])
        info = {
            "unit": unit,
            "format": "nxazint1d",
            "metadata": {"frame": k} if y.shape[0] > 1 else {},
            "data": np.column_stack(cols),
        }
        if wl is not None:
            info["wavelength_A"] = wl
        infos.append(info)
    return infos


def rebin_accumulators(
    radial: np.ndarray, acc: dict[str, np.ndarray], factor: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Merge ``factor`` adjacent bins from pyFAI's accumulators.

    Notes
    -----
    pyFAI's 1-D result (the "ng" integrators, pyFAI documentation "Error
    propagation"; Ashiotis et al., J. Appl. Cryst. 48 (2015) 510) is a ratio of
    sums over the pixel fractions of a bin:

    .. math::

        I = \frac{\sum s}{\sum n}, \qquad
        \sigma = \frac{\sqrt{\sum v}}{\sum n}

    with s the signal, n the normalization (solid angle × polarization × flat)
    and v the variance, each pixel entering a bin with its split fraction c
    (s, n with c; v with c²).  Merged bins add Σs and Σn exactly.  Σv adds
    exactly only without pixel splitting (``split="no"``): a pixel split over
    neighbouring bins enters the merged bin with (c₁+c₂)² but the sum of the
    fine variances holds c₁²+c₂², so with splitting the merged σ is a lower
    bound (the fine bins' covariance is not stored).  The merged radial
    position is the mean of the bin centres (equal-width bins).

    Returns
    -------
    radial, intensity, sigma : (N // factor,) ndarray
        Bins without any pixel (Σn = 0) are NaN.
    """
    n = (radial.size // factor) * factor

    def merge(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, float)[:n].reshape(-1, factor).sum(axis=1)

    signal, norm = merge(acc["sum_signal"]), merge(acc["sum_normalization"])
    var = merge(acc["sum_variance"])
    with np.errstate(invalid="ignore", divide="ignore"):
        intensity = np.where(norm > 0, signal / norm, np.nan)
        sigma = np.where(norm > 0, np.sqrt(var) / norm, np.nan)
    centres = np.asarray(radial, float)[:n].reshape(-1, factor).mean(axis=1)
    return centres, intensity, sigma
