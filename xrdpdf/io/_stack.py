"""HDF5 stack of 1-D patterns: all frames of a long run in one NXdata file, written as they come."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf.io._files import NX_AXIS, check_output, commit, nx_entry, temp_beside


class PatternStackWriter:
    """Append patterns of one radial axis to ``/entry/data`` of one HDF5 (NeXus) file.

    The file is written under a temporary name beside ``path`` and renamed onto it
    by :meth:`close` (or on leaving a ``with`` block without an exception), so no
    half-written stack is ever left under ``path``.  ``I`` and ``I_errors`` are
    (frames, bins) datasets, chunked one frame per chunk and grown per frame;
    ``source`` and ``frame`` say where each row came from.  A bin missing from a
    pattern (empty bins are dropped by the integration) is NaN in its row.

    Parameters
    ----------
    path : path-like
        Output ``.h5``/``.nxs`` file.
    x : (npt,) array_like
        The full radial axis (e.g. the integrator's bin centres), in `unit`.
    unit : str
        ``"q_A^-1"`` or ``"2th_deg"``.
    wavelength_A : float, optional
        Written as ``/entry/wavelength`` (Å).
    overwrite : bool
        Replace an existing file (otherwise :class:`~xrdpdf._core.errors.InputError`).
    metadata : mapping, optional
        Attributes of ``/entry/metadata`` (provenance common to all frames).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        x: Any,
        unit: str,
        *,
        wavelength_A: float | None = None,
        overwrite: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        import h5py

        if unit not in (units.Q_A, units.TTH_DEG):
            raise InputError(f"{path}: a pattern stack needs unit q_A^-1 or 2th_deg, got {unit}")
        self.path = check_output(path, overwrite)
        self.x = np.asarray(x, dtype=float)
        self.unit = unit
        self.count = 0
        self._capacity = 0
        self._tmp = temp_beside(self.path)
        try:
            self._h5 = h5py.File(self._tmp, "w")
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        h5 = self._h5
        name, axis_units = NX_AXIS[unit]
        data = nx_entry(
            h5,
            "I",
            [".", name],
            wavelength_A=wavelength_A,
            metadata=dict(metadata or {}),
            xrdpdf_unit=unit,
        )
        data.create_dataset(name, data=self.x).attrs["units"] = axis_units
        npt = self.x.size
        for ds in ("I", "I_errors"):
            data.create_dataset(
                ds, shape=(0, npt), maxshape=(None, npt), chunks=(1, npt), dtype="f8"
            )
        text = h5py.string_dtype()
        data.create_dataset("source", shape=(0,), maxshape=(None,), dtype=text, chunks=(256,))
        data.create_dataset("frame", shape=(0,), maxshape=(None,), dtype="i8", chunks=(256,))
        self._data = data

    def append(self, pattern: Pattern, source: str = "", frame: int = -1) -> None:
        """Add one pattern as the next row.

        Raises
        ------
        InputError
            A unit other than the stack's, or radial values not on its axis.
        """
        if pattern.unit != self.unit:
            raise InputError(f"{self.path}: pattern in {pattern.unit}, stack in {self.unit}")
        idx = np.searchsorted(self.x, pattern.x)
        idx = np.clip(idx, 0, self.x.size - 1)
        if not np.array_equal(self.x[idx], pattern.x):
            what = source or "pattern"
            raise InputError(f"{self.path}: {what}: radial axis differs from the stack's")
        row_i = np.full(self.x.size, np.nan)
        row_s = np.full(self.x.size, np.nan)
        row_i[idx] = pattern.y
        if pattern.sigma is not None:
            row_s[idx] = pattern.sigma
        n = self.count
        d = self._data
        if n == self._capacity:  # grow by doubling: a resize per row costs more than the row
            self._capacity = max(16, 2 * n)
            for name in ("I", "I_errors", "source", "frame"):
                d[name].resize(self._capacity, axis=0)
        d["I"][n] = row_i
        d["I_errors"][n] = row_s
        d["source"][n] = str(source)
        d["frame"][n] = -1 if frame is None else int(frame)
        self.count = n + 1

    def close(self) -> Path:
        """Finish the file and rename it onto ``path``."""
        for name in ("I", "I_errors", "source", "frame"):
            self._data[name].resize(self.count, axis=0)
        self._h5.close()
        return commit(self._tmp, self.path)

    def abort(self) -> None:
        """Remove the temporary file; ``path`` stays untouched."""
        self._h5.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> PatternStackWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
