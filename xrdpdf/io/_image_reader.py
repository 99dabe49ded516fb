"""One image file open for reading (fabio, tifffile, h5py, numpy): frames, shape, named errors."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xrdpdf._core.errors import InputError

__all__ = [
    "TIFF_SUFFIXES",
    "HDF5_SUFFIXES",
    "Frame",
    "BadInput",
    "split_dataset",
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


#: Leading bytes of TIFF (classic and BigTIFF, both byte orders) and JPEG files.
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_JPEG_MAGIC = b"\xff\xd8\xff"


def _content_kind(path: Path, kind: str) -> str:
    """``kind`` corrected from the file's first bytes for a file fabio would read.

    fabio chooses its reader from the content, and hands TIFF-based formats (MarCCD, a
    Pilatus TIFF under another suffix) and the EXIF block of a JPEG to PIL, which reports a
    damaged tag with ``warnings.warn`` — a file we refuse anyway would leave a warning
    behind, and silencing it would need ``warnings.catch_warnings``, which is process-wide
    and not thread-safe around reader threads.  TIFF content is therefore read with
    tifffile (as a ``.tif``; it logs, never warns), and JPEG is ``"jpeg"``, refused on open.
    """
    if kind != "fabio":
        return kind
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head in _TIFF_MAGIC:
        return "tiff"
    if head.startswith(_JPEG_MAGIC):
        return "jpeg"
    _check_cbf(path)
    return kind


#: Start of a CBF binary section (the CBF 1.5 specification, "MIME header" conventions).
_CBF_BINARY_MARK = b"\x0c\x1a\x04\xd5"


def _check_cbf(path: Path) -> None:
    """Refuse a binary CBF whose header or binary section is incomplete, before fabio.

    fabio reads the binary section from the MIME header's ``X-Binary-Size`` and the
    marker ``0C 1A 04 D5``; on a file cut inside that header it does not return (seen with
    fabio 2026.6 on a 303-byte file), which would stall a watcher or a series.  The
    header must name the size and both dimensions, the marker must follow, and the file
    must hold ``X-Binary-Size`` bytes after it.
    """
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if not head.startswith(b"###CBF") or b"BINARY" not in head.upper():
        return  # not a binary CBF: fabio's own checks apply
    mark = head.find(_CBF_BINARY_MARK)
    header = head if mark < 0 else head[:mark]
    keys = {}
    for line in header.splitlines():
        key, sep, value = line.partition(b":")
        if sep:
            keys[key.strip().lower()] = value.strip()
    need = (b"x-binary-size", b"x-binary-size-fastest-dimension", b"x-binary-size-second-dimension")
    missing = [k.decode() for k in need if not keys.get(k, b"").isdigit()]
    if mark < 0 or missing:
        what = f"no {', '.join(missing)}" if missing else "no binary section marker"
        raise InputError(f"{path}: CBF header is incomplete ({what}); the file is truncated")
    if path.stat().st_size < mark + 4 + int(keys[b"x-binary-size"]):
        raise InputError(f"{path}: file is truncated (CBF binary section incomplete)")


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return "tiff"
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    if suffix in _NPY_SUFFIXES:
        return "npy"
    return "fabio"


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
            self.kind = _content_kind(self.path, self.kind)
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

    def _open_jpeg(self) -> None:
        raise InputError(
            f"{self.path}: JPEG image; its lossy 8-bit compression does not keep detector "
            "counts (use TIFF, EDF, CBF, HDF5 or .npy)"
        )

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
