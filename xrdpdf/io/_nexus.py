"""Reading NeXus/HDF5 ``NXdata`` groups (signal, axis with ``units``, ``errors``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf.io._nxazint import read_nxazint1d
from xrdpdf.io._text import parse_ini_value


def read_nexus(path: Path, source: Any) -> list[dict[str, Any]]:
    """Read an NXazint1d entry (one range per frame), else the default (or first) 1-D NXdata."""
    import h5py

    try:
        h5 = h5py.File(source, "r")
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None
    with h5:
        azint = read_nxazint1d(path, h5)
        if azint is not None:
            return azint
        group = _find_nxdata(h5)
        if group is None:
            raise InputError(f"{path}: no NXdata group with a 1-D signal")
        signal = _attr_str(group.attrs.get("signal"))
        axes = group.attrs.get("axes")
        axis = _attr_str(axes[0] if isinstance(axes, np.ndarray | list) else axes)
        if signal not in group or axis not in group:
            raise InputError(f"{path}: NXdata group {group.name} lacks its signal or axis")
        y = np.asarray(group[signal][()], dtype=float)
        x = np.asarray(group[axis][()], dtype=float)
        if y.ndim != 1 or x.shape != y.shape:
            raise InputError(f"{path}: NXdata signal must be 1-D and match its axis")
        err = None
        for name in (f"{signal}_errors", "errors"):
            if name in group:
                err = np.asarray(group[name][()], dtype=float)
                break
        unit_attr = _attr_str(group[axis].attrs.get("units", "")).lower()
        own = _attr_str(group.attrs.get("xrdpdf_unit", ""))
        unit = {units.Q_A: "q", units.TTH_DEG: "tth", units.R_A: "r"}.get(own)
        if unit is None:
            unit = {
                "1/angstrom": "q",
                "angstrom^-1": "q",
                "1/a": "q",
                "a^-1": "q",
                "1/nm": "qnm",
                "nm^-1": "qnm",
                "degree": "tth",
                "degrees": "tth",
                "deg": "tth",
                "angstrom": "r",
            }.get(unit_attr)
        wl = None
        entry = group.parent
        if "wavelength" in entry:
            wl = float(np.asarray(entry["wavelength"][()]).ravel()[0])
            wl_units = _attr_str(entry["wavelength"].attrs.get("units", "angstrom")).lower()
            wl = wl * {"m": 1e10, "nm": 10.0}.get(wl_units, 1.0)
        meta = {}
        if "metadata" in entry:
            meta = {k: parse_ini_value(_attr_str(v)) for k, v in entry["metadata"].attrs.items()}
    cols = [x, y] + ([err] if err is not None else [])
    info: dict[str, Any] = {
        "unit": unit,
        "format": "nexus",
        "metadata": meta,
        "data": np.column_stack(cols),
    }
    if wl is not None:
        info["wavelength_A"] = wl
    return [info]


def _attr_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.size == 1:
        return _attr_str(value.ravel()[0])
    return "" if value is None else str(value)


def _find_nxdata(h5) -> Any:
    """The default NXdata group (``default`` attributes), else the first 1-D one."""
    node = h5
    for _ in range(3):
        default = _attr_str(node.attrs.get("default", ""))
        if default and default in node:
            node = node[default]
            if _attr_str(node.attrs.get("NX_class", "")) == "NXdata":
                return node
        else:
            break
    found = []

    def visit(name, obj):
        import h5py

        if isinstance(obj, h5py.Group) and _attr_str(obj.attrs.get("NX_class", "")) == "NXdata":
            found.append(obj)

    h5.visititems(visit)
    return found[0] if found else None
