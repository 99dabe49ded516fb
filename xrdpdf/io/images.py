"""Detector images: reading frames, darks, flats and masks.

One reading function for every format users have: TIFF (through tifffile, the
fastest well-kept TIFF reader), HDF5/NeXus stacks (through h5py), and
everything fabio knows (EDF, CBF, Fit2D masks, ...).  Every failure — a missing,
empty, truncated or corrupt file, a shape unlike the detector's — raises
:class:`~xrdpdf._core.errors.InputError` with the file name in the message.

Conventions
-----------
* A frame is a 2-D ``float64`` array ``(rows, columns)`` = pyFAI's
  ``(dim1, dim2)`` = (slow, fast) axes.
* A mask is a boolean array, ``True`` = bad pixel (pyFAI's convention: non-zero
  = masked).  Mask files follow the same rule: every non-zero pixel is masked.
* Pixels that are NaN or negative in a raw frame are invalid (detectors use
  them for gaps and dead modules) and are dropped from integration, never an
  error unless no valid pixel is left.
* An HDF5 dataset can be named explicitly as ``file.h5::/entry/data/data``;
  otherwise the NeXus default signal, else the largest 2-D/3-D numeric dataset
  is used.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from xrdpdf._core.errors import InputError
from xrdpdf.io._files import nx_entry
from xrdpdf.io._image_reader import (
    HDF5_SUFFIXES,
    TIFF_SUFFIXES,
    BadInput,
    Frame,
    _kind,
    _Reader,
    split_dataset,
)

__all__ = [
    "TIFF_SUFFIXES",
    "HDF5_SUFFIXES",
    "Frame",
    "BadInput",
    "split_dataset",
    "frame_count",
    "iter_frames",
    "iter_many",
    "read_image",
    "read_dark",
    "read_flat",
    "read_mask",
    "invalid_pixels",
    "combine_masks",
    "check_shape",
    "frame_stem",
    "write_image",
]


def frame_count(path: str | os.PathLike) -> int:
    """Number of frames in an image file (1 for single images).

    Raises
    ------
    InputError
        If the file is missing, empty, corrupt or not an image.
    """
    file, dset = split_dataset(path)
    with _Reader(file, dset, "image") as r:
        return r.nframes


def iter_frames(
    path: str | os.PathLike,
    *,
    sum_frames: bool = False,
    frames: Sequence[int] | None = None,
    keep_dtype: bool = False,
) -> Iterator[Frame]:
    """Yield the frames of one image file, lazily (one frame in memory).

    Parameters
    ----------
    path : str or path-like
        Image file; for HDF5 optionally ``file.h5::/dataset``.
    sum_frames : bool
        Yield one :class:`Frame`, the sum of all (selected) frames.
    frames : sequence of int, optional
        Only these frame numbers (0-based); default all.
    keep_dtype : bool
        Give each frame in the file's integer or float type instead of float64
        (no 8-byte copy; the fast integrator reads uint16 and float32 as they
        are).  A sum is always float64.

    Yields
    ------
    Frame
    """
    file, dset = split_dataset(path)
    with _Reader(file, dset, "image") as r:
        indices = list(range(r.nframes)) if frames is None else [int(i) for i in frames]
        if sum_frames:
            total = None
            for i in indices:
                data = r.read(i)
                total = data if total is None else total + data
            if total is None:
                raise InputError(f"{file}: no frame selected")
            yield Frame(total, file, None, 1, summed=len(indices))
            return
        for i in indices:
            yield Frame(r.read(i, keep_dtype), file, None if r.nframes == 1 else i, r.nframes)


def iter_many(
    paths: Iterable[str | os.PathLike], *, sum_frames: bool = False, keep_dtype: bool = False
) -> Iterator[Frame | BadInput]:
    """Frames of many files in order; an unreadable file yields a :class:`BadInput`.

    This is the batch reader: a bad file is reported where it occurs and the
    rest go on.  ``keep_dtype`` as for :func:`iter_frames`.
    """
    for p in paths:
        file, _ = split_dataset(p)
        index = None
        try:
            for frame in iter_frames(p, sum_frames=sum_frames, keep_dtype=keep_dtype):
                index = frame.index
                yield frame
        except InputError as exc:
            yield BadInput(file, str(exc), None if index is None else index + 1)


def read_image(
    path: str | os.PathLike, *, frame: int | None = None, sum_frames: bool = False
) -> np.ndarray:
    """Read one 2-D image as float64.

    Parameters
    ----------
    path : str or path-like
        Image file (TIFF, EDF, CBF, HDF5/NeXus, ``.npy`` or anything fabio reads).
    frame : int, optional
        Frame number of a multi-frame file.
    sum_frames : bool
        Return the sum of all frames.

    Raises
    ------
    InputError
        Missing/corrupt file, or a multi-frame file without ``frame`` or
        ``sum_frames``.
    """
    file, dset = split_dataset(path)
    if sum_frames:
        return next(iter_frames(path, sum_frames=True)).data
    with _Reader(file, dset, "image") as r:
        if frame is None:
            if r.nframes != 1:
                raise InputError(
                    f"{file}: has {r.nframes} frames; choose one or sum them "
                    "(frame=N or sum_frames=True)"
                )
            frame = 0
        return r.read(frame)


def read_dark(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> np.ndarray:
    """The average of every frame of one or several dark files.

    Returns
    -------
    (rows, columns) ndarray
        Mean dark in the raw unit of the frames.

    Raises
    ------
    InputError
        A missing/corrupt dark, or darks of different shapes.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if len(paths) == 0:
        raise InputError("no dark file given")
    total = None
    n = 0
    first = None
    for p in paths:
        file, dset = split_dataset(p)
        with _Reader(file, dset, "dark") as r:
            for i in range(r.nframes):
                data = r.read(i)
                if total is None:
                    total, first = data.copy(), file
                elif data.shape != total.shape:
                    raise InputError(
                        f"{file}: dark shape {data.shape} differs from {first} {total.shape}"
                    )
                else:
                    total += data
                n += 1
    return total / n


def read_flat(path: str | os.PathLike) -> np.ndarray:
    """Read a flat-field image (all frames averaged), as float64.

    The flat multiplies the expected signal of each pixel (pyFAI's ``flat``):
    integration divides by it.  Pixels where it is not finite or ≤ 0 are
    invalid; :func:`combine_masks` masks them.
    """
    file, dset = split_dataset(path)
    with _Reader(file, dset, "flat") as r:
        flat = sum(r.read(i) for i in range(r.nframes)) / r.nframes
    good = np.isfinite(flat) & (flat > 0)
    if not good.any():
        raise InputError(f"{file}: flat field has no positive finite pixel")
    return flat


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a mask file: non-zero (or NaN) pixels are masked.

    Returns
    -------
    (rows, columns) ndarray of bool
        ``True`` = masked.

    Raises
    ------
    InputError
        Missing, empty or unreadable file, or a multi-frame file.
    """
    file, dset = split_dataset(path)
    with _Reader(file, dset, "mask") as r:
        if r.nframes != 1:
            raise InputError(f"{file}: mask file has {r.nframes} frames, expected one")
        data = r.read(0)
    return ~np.isfinite(data) | (data != 0)


def invalid_pixels(frame: np.ndarray) -> np.ndarray:
    """Boolean map of pixels a detector marks as invalid: NaN, ±inf or < 0."""
    frame = np.asarray(frame)
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(frame) | (frame < 0)


def combine_masks(
    shape: tuple[int, int],
    *masks: np.ndarray | None,
    flat: np.ndarray | None = None,
    dark: np.ndarray | None = None,
) -> np.ndarray:
    """Union of masks (``True`` = bad), plus pixels a flat or dark makes invalid.

    Parameters
    ----------
    shape : (int, int)
        Detector shape; every mask must have it.
    *masks : ndarray or None
        Boolean-like arrays (non-zero = masked); ``None`` entries are skipped.
    flat, dark : ndarray, optional
        Pixels where ``flat`` is not finite or ≤ 0, or ``dark`` is not finite,
        are masked too.
    """
    out = np.zeros(shape, dtype=bool)
    for m in masks:
        if m is None:
            continue
        m = np.asarray(m)
        if m.shape != tuple(shape):
            raise InputError(f"mask shape {m.shape} differs from the detector shape {shape}")
        out |= m.astype(bool)
    if flat is not None:
        with np.errstate(invalid="ignore"):
            out |= ~np.isfinite(flat) | (flat <= 0)
    if dark is not None:
        out |= ~np.isfinite(dark)
    return out


def check_shape(
    array: np.ndarray, shape: tuple[int, int] | None, source: object, what: str = "image"
) -> None:
    """Raise :class:`InputError` naming ``source`` if ``array.shape != shape``."""
    if shape is None:
        return
    if tuple(array.shape) != tuple(shape):
        raise InputError(
            f"{source}: {what} shape {tuple(array.shape)} does not match the detector "
            f"shape {tuple(shape)} of the geometry"
        )


def frame_stem(frame: Frame | BadInput) -> str:
    """Output stem: ``STEM`` for a single or summed image, ``STEM_fNNNN`` for a stack frame."""
    stem = frame.source.stem
    if frame.index is None:
        return stem
    return f"{stem}_f{frame.index:04d}"


def write_image(
    data: np.ndarray,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    dtype: str | np.dtype | None = None,
) -> Path:
    """Write a frame (2-D) or a stack (3-D, frames first) atomically.

    The format follows the suffix: ``.tif``/``.tiff`` (tifffile, one page per
    frame), ``.edf`` (fabio), ``.cbf`` (fabio, 32-bit integers, one frame),
    ``.h5``/``.nxs`` (NeXus ``/entry/data/data``), ``.npy``.

    Parameters
    ----------
    data : ndarray
        ``(rows, cols)`` or ``(frames, rows, cols)``.
    path : path-like
        Output file; refused if it exists and not ``overwrite``.
    dtype : dtype, optional
        Stored type; default float32 (int32 for CBF).

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    data = np.asarray(data)
    if data.ndim not in (2, 3):
        raise InputError(f"{path}: an image must be 2-D or 3-D, got shape {data.shape}")
    if path.exists() and not overwrite:
        raise InputError(f"{path}: output exists; pass overwrite=True to replace it")
    kind = _kind(path)
    suffix = path.suffix.lower()
    if kind == "fabio" and suffix not in (".edf", ".cbf"):
        raise InputError(f"{path}: unknown image format {suffix!r}; use .tif .edf .cbf .h5 .npy")
    if suffix == ".cbf" and data.ndim == 3:
        raise InputError(f"{path}: CBF holds one frame; use .tif, .edf or .h5 for a stack")
    if dtype is None:
        dtype = np.int32 if suffix == ".cbf" else np.float32
    if np.dtype(dtype).kind in "iu":
        data = np.rint(np.nan_to_num(data, nan=-1.0))
    data = data.astype(dtype)
    from xrdpdf._core._files import atomic_path

    with atomic_path(path, overwrite) as tmp:
        if kind == "tiff":
            import tifffile

            tifffile.imwrite(tmp, data, photometric="minisblack")
        elif kind == "hdf5":
            import h5py

            with h5py.File(tmp, "w") as f:
                grp = nx_entry(f, "data")
                grp.create_dataset(
                    "data", data=data, chunks=(1, *data.shape[-2:]) if data.ndim == 3 else None
                )
        elif kind == "npy":
            with open(tmp, "wb") as fh:
                np.save(fh, data)
        else:
            import fabio.cbfimage
            import fabio.edfimage

            if suffix == ".cbf":
                fabio.cbfimage.CbfImage(data=data).write(str(tmp))
            else:
                frames = data if data.ndim == 3 else data[None]
                img = fabio.edfimage.EdfImage(data=frames[0])
                for extra in frames[1:]:
                    img.append_frame(data=extra)
                img.write(str(tmp))
    return path
