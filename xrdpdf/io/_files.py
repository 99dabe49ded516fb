"""Text and JSON writers on top of the atomic writes of :mod:`xrdpdf._core._files`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core._files import (
    atomic_path,
    check_folder,
    check_output,
    check_outputs,
    commit,
    remove_stale,
    temp_beside,
)

__all__ = [
    "atomic_path",
    "check_folder",
    "check_output",
    "check_outputs",
    "commit",
    "remove_stale",
    "temp_beside",
    "write_text",
    "write_json",
]


def write_text(text: str, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically.

    A file name that is not valid UTF-8 (its bytes decoded by :func:`os.fsdecode`
    to lone surrogates) is written as ``\\udcXX`` escapes, so that a header or
    table naming such a file stays valid UTF-8.
    """
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8", errors="backslashreplace")
    return Path(path)


def json_default(obj: Any) -> Any:
    """``json.dumps`` default: numpy scalars and arrays, paths and mappings as JSON."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(obj: Any, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return write_text(json.dumps(obj, indent=2, default=json_default) + "\n", path, overwrite)


def _header_value(value: Any) -> str:
    if isinstance(value, str):
        return value.replace("\n", " ")
    return json.dumps(value, default=json_default)


#: NeXus name and ``units`` attribute of each radial axis xrdpdf writes.
NX_AXIS: dict[str, tuple[str, str]] = {
    units.Q_A: ("q", "1/angstrom"),
    units.TTH_DEG: ("two_theta", "degree"),
    units.R_A: ("r", "angstrom"),
}


def nx_entry(
    h5: Any,
    signal: str,
    axes: str | list[str] | None = None,
    *,
    wavelength_A: float | None = None,
    metadata: Mapping[str, Any] | None = None,
    **data_attrs: Any,
) -> Any:
    """Write the NeXus skeleton shared by xrdpdf's HDF5 outputs into an open ``h5py.File``.

    ``/@default=entry`` → ``entry`` (NXentry, ``@default=data``) → ``data`` (NXdata with
    ``@signal``, ``@axes`` and ``data_attrs``); ``entry/wavelength`` in Å and
    ``entry/metadata`` (NXcollection, one attribute per key) when given (also empty).
    Readers that follow the ``@default`` chain (silx, pyFAI, :func:`xrdpdf.io.read_pattern`)
    find the signal.

    Returns
    -------
    h5py.Group
        The empty NXdata group, for the caller's datasets.
    """
    h5.attrs["default"] = "entry"
    h5.attrs["creator"] = "xrdpdf"
    entry = h5.create_group("entry")
    entry.attrs["NX_class"] = "NXentry"
    entry.attrs["default"] = "data"
    data = entry.create_group("data")
    data.attrs["NX_class"] = "NXdata"
    data.attrs["signal"] = signal
    if axes is not None:
        data.attrs["axes"] = axes
    data.attrs.update(data_attrs)
    if wavelength_A is not None:
        entry.create_dataset("wavelength", data=float(wavelength_A)).attrs["units"] = "angstrom"
    if metadata is not None:
        md = entry.create_group("metadata")
        md.attrs["NX_class"] = "NXcollection"
        for key, value in metadata.items():
            md.attrs[str(key)] = _header_value(value)
    return data
