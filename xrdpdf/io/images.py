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

import contextlib
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xrdpdf._core.errors import InputError
from xrdpdf.io._files import nx_entry

__all__ = [
    "Frame",
    "BadInput",
    "TIFF_SUFFIXES",
    "HDF5_SUFFIXES",
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

TIFF_SUFFIXES = (".tif", ".tiff")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".nx", ".nx5")
_NPY_SUFFIXES = (".npy",)

@dataclass(frozen=True, eq=False)
class Frame:
    """One 2-D detector frame and where it came from.

    Attributes
    ----------
    data : (rows, columns) ndarray
        Intensities as float64 (raw counts/ADU; no correction applied), or in
        the file's own integer or float type when read with ``keep_dtype``.
    source : Path
        The file it was read from.
    index : int or None
        Frame number in a multi-frame file (0-based); ``None`` for a file with
        one frame or for the sum of all frames.
    nframes : int
        Number of frames in the file (after ``sum_frames``: 1).
    summed : int
        How many frames were added to make ``data`` (1 unless summed).
    """

    data: np.ndarray
    source: Path
    index: int | None
    nframes: int
    summed: int = 1

    @property
    def label(self) -> str:
        """``file`` or ``file[frame]`` for messages."""
        return str(self.source) if self.index is None else f"{self.source}[{self.index}]"


@dataclass(frozen=True, eq=False)
class BadInput:
    """A file (or frame) that could not be read; carried through a batch."""

    source: Path
    message: str
    index: int | None = None


# ----------------------------------------------------------------- helpers
@contextlib.contextmanager
def _quiet(catch_warnings: bool = False) -> Iterator[None]:
    """Silence the warnings a third-party reader emits about a file we refuse anyway.

    PIL (under fabio) warns about the very corruptions that we turn into one clear
    :class:`InputError`.  Their loggers are left alone: the CLI quiets those for its
    one-line error contract (:func:`xrdpdf.cli.quiet_reader_logs`), a library user keeps
    their own logging configuration.
    """
    if catch_warnings:  # only around fabio; catch_warnings is not thread-safe
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    else:
        yield


def split_dataset(path: str | os.PathLike) -> tuple[Path, str | None]:
    """Split ``file.h5::/entry/data`` into the file and the HDF5 dataset path."""
    text = os.fspath(path)
    if "::" in text:
        file, _, dset = text.partition("::")
        return Path(file), (dset or None)
    return Path(text), None


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{path}: {what} file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a {what} file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} file ({exc.strerror})") from exc
    if size == 0:
        raise InputError(f"{path}: {what} file is empty (0 bytes)")


def _as_frame_array(arr: np.ndarray, path: Path, keep_dtype: bool = False) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{path}: image data are not numeric (dtype {arr.dtype})")
    if arr.ndim != 2 or arr.size == 0:
        raise InputError(f"{path}: expected a 2-D image, got shape {arr.shape}")
    if keep_dtype and arr.dtype.kind in "iuf":
        return arr
    return np.asarray(arr, dtype=np.float64)


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return "tiff"
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    if suffix in _NPY_SUFFIXES:
        return "npy"
    return "fabio"


# ------------------------------------------------------------------ readers
class _Reader:
    """Random access to the frames of one file; closes its handle on exit."""

    def __init__(self, path: Path, dataset: str | None, what: str) -> None:
        self.path = path
        self.dataset = dataset
        self.what = what
        self.kind = _kind(path)
        self._handle = None
        self._arr = None
        self.nframes = 0
        self.shape: tuple[int, int] = (0, 0)

    def __enter__(self) -> _Reader:
        _check_file(self.path, self.what)
        try:
            with _quiet(catch_warnings=self.kind == "fabio"):
                self._open()
        except InputError:
            self.close()
            raise
        except Exception as exc:  # every reader has its own exception zoo
            self.close()
            raise InputError(
                f"{self.path}: cannot read {self.what} ({_reason(exc)}); "
                "the file is corrupt, truncated or not an image"
            ) from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(Exception):
                self._handle.close()
            self._handle = None

    # -- opening
    def _open(self) -> None:
        getattr(self, f"_open_{self.kind}")()
        if self.nframes < 1:
            raise InputError(f"{self.path}: contains no image frame")

    def _open_tiff(self) -> None:
        import tifffile

        tf = tifffile.TiffFile(self.path)
        self._handle = tf
        if not tf.series:
            raise InputError(f"{self.path}: TIFF file holds no image")
        # every page is a frame: pages appended one write at a time (tifffile's
        # append=True, detector software) form one series each, all of one shape
        layout = [self._tiff_series_frames(series) for series in tf.series]
        shapes = {shape for shape, _ in layout}
        if len(shapes) > 1:
            raise InputError(
                f"{self.path}: TIFF holds {len(layout)} images of different shapes "
                f"({', '.join(sorted(str(s) for s in shapes))}); frames of one file must "
                "share one shape"
            )
        self.shape = layout[0][0]
        self._tiff_counts = [n for _, n in layout]
        self._tiff_frames = [(k, j) for k, (_, n) in enumerate(layout) for j in range(n)]
        self.nframes = len(self._tiff_frames)

    def _tiff_series_frames(self, series) -> tuple[tuple[int, int], int]:
        """(frame shape, number of frames) of one TIFF series; RGB and 4-D refused."""
        if "S" in series.axes:  # samples per pixel: RGB(A), contiguous or planar
            raise InputError(
                f"{self.path}: colour (RGB) TIFF with axes {series.axes!r}; "
                "detector frames are single-channel intensity images"
            )
        shape = tuple(series.shape)
        shape = tuple(s for s in shape if s != 1) or shape  # drop singleton axes
        if len(shape) == 2:
            return (int(shape[0]), int(shape[1])), 1
        if len(shape) == 3:
            return (int(shape[1]), int(shape[2])), int(shape[0])
        raise InputError(f"{self.path}: TIFF image has shape {shape}, expected 2-D or 3-D")

    def _open_hdf5(self) -> None:
        import h5py

        with contextlib.suppress(ImportError):
            import hdf5plugin  # noqa: F401  (registers compression filters)
        f = h5py.File(self.path, "r")
        self._handle = f
        dset = f[self.dataset] if self.dataset else _find_hdf5_images(f, self.path)
        if not isinstance(dset, h5py.Dataset):
            raise InputError(f"{self.path}: {self.dataset!r} is not an HDF5 dataset")
        shape = tuple(dset.shape)
        if dset.dtype.kind not in "biuf":
            raise InputError(f"{self.path}: dataset {dset.name} is not numeric")
        if dset.is_virtual:
            _check_virtual_sources(dset, self.path)
        if len(shape) == 2:
            self.nframes, self.shape = 1, shape
        elif len(shape) == 3:
            self.nframes, self.shape = shape[0], shape[1:]
        else:
            raise InputError(
                f"{self.path}: dataset {dset.name} has shape {shape}, expected 2-D or 3-D"
            )
        self._arr = dset

    def _open_npy(self) -> None:
        arr = np.load(self.path, mmap_mode="r", allow_pickle=False)
        if arr.ndim == 2:
            self.nframes, self.shape = 1, arr.shape
        elif arr.ndim == 3:
            self.nframes, self.shape = arr.shape[0], arr.shape[1:]
        else:
            raise InputError(f"{self.path}: array has shape {arr.shape}, expected 2-D or 3-D")
        self._arr = arr

    def _open_fabio(self) -> None:
        import fabio

        img = fabio.open(str(self.path))
        self._handle = img
        if img.data is None:
            raise InputError(f"{self.path}: fabio found no image data")
        if getattr(img, "incomplete_file", False):
            raise InputError(f"{self.path}: file is truncated (image data incomplete)")
        self.nframes = int(getattr(img, "nframes", 1) or 1)
        self.shape = tuple(int(s) for s in img.data.shape[-2:])

    # -- reading
    def read(self, index: int, keep_dtype: bool = False) -> np.ndarray:
        if not 0 <= index < self.nframes:
            raise InputError(f"{self.path}: frame {index} out of range 0…{self.nframes - 1}")
        try:
            with _quiet(catch_warnings=self.kind == "fabio"):
                arr = self._read(index)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(
                f"{self.path}: cannot read frame {index} ({_reason(exc)}); "
                "the file is corrupt or truncated"
            ) from exc
        if self.what != "mask" and np.asarray(arr).dtype.kind == "b":
            raise InputError(
                f"{self.path}: boolean {self.what} (a mask?); {self.what}s hold intensities"
            )
        return _as_frame_array(arr, self.path, keep_dtype)

    def _read(self, index: int) -> np.ndarray:
        if self.kind == "tiff":
            k, j = self._tiff_frames[index]
            series = self._handle.series[k]
            n = self._tiff_counts[k]
            if n == 1:
                return series.asarray().reshape(self.shape)
            if len(series.pages) == n:
                return series.pages[j].asarray().reshape(self.shape)
            return series.asarray()[j].reshape(self.shape)  # e.g. one-page 3-D
        if self.kind in ("hdf5", "npy"):
            return np.asarray(self._arr[index] if self._arr.ndim == 3 else self._arr)
        img = self._handle
        frame = img if index == 0 else img.getframe(index)
        if getattr(frame, "incomplete_data", False) or getattr(frame, "incomplete_file", False):
            raise InputError(f"{self.path}: frame {index} is truncated")
        data = frame.data
        if data is None:
            raise InputError(f"{self.path}: frame {index} holds no data")
        return data


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]


def _check_virtual_sources(dset, path: Path) -> None:
    """Refuse a virtual dataset whose source files are missing.

    h5py reads the unmapped parts of a virtual dataset as its fill value (zeros), so a missing
    source would be integrated as a blank frame.  Relative source names are looked up, as HDF5
    does, beside the virtual file and in the working directory.
    """
    missing = []
    for vs in dset.virtual_sources():
        name = vs.file_name
        if name == ".":  # mapped from the same file
            continue
        candidates = [Path(name)] if os.path.isabs(name) else [path.parent / name, Path(name)]
        if not any(c.is_file() for c in candidates):
            missing.append(name)
    if missing:
        shown = ", ".join(sorted(set(missing))[:3])
        raise InputError(
            f"{path}: virtual dataset {dset.name} maps {len(set(missing))} missing source "
            f"file(s): {shown}"
        )


def _find_hdf5_images(f, path: Path):
    """The NeXus default signal, else the largest 2-D/3-D numeric dataset."""
    import h5py

    node = f
    # follow NeXus @default attributes: root -> NXentry -> NXdata -> @signal
    for _ in range(3):
        default = node.attrs.get("default")
        if isinstance(default, bytes):
            default = default.decode()
        if default and default in node:
            node = node[default]
        else:
            break
    if isinstance(node, h5py.Group):
        signal = node.attrs.get("signal")
        if isinstance(signal, bytes):
            signal = signal.decode()
        if signal and signal in node and isinstance(node[signal], h5py.Dataset):
            return node[signal]
    best = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.ndim in (2, 3) and obj.dtype.kind in "biuf":
            best.append((obj.size, name))

    f.visititems(visit)
    if not best:
        raise InputError(f"{path}: no 2-D or 3-D image dataset found in the HDF5 file")
    best.sort(key=lambda t: (-t[0], t[1]))
    return f[best[0][1]]


# -------------------------------------------------------------- public API
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
