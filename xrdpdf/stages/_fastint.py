"""Fast 1-D azimuthal integration with a precomputed sparse operator.

pyFAI's ``integrate1d(method=("bbox", "csr", "cython"))`` spends most of its time per
frame on work that does not change between frames of a stack (pre-processing of the
flat, solid angle and polarization arrays, the normalization sums).  For a fixed
geometry, mask, flat, polarization and solid-angle setting this module takes the CSR
coefficients that pyFAI itself builds (bbox pixel splitting, not re-implemented here),
folds the constant per-bin normalization in once, and integrates each frame with one
multithreaded pass over the operator (signal and Poisson variance together, a fused
C kernel, :mod:`xrdpdf.stages._scatter`).  The operator is cached on disk keyed by a
hash of geometry and settings, so a second run starts fast (memory-mapped; location,
size cap and eviction in :mod:`xrdpdf.stages._opcache`).

The result equals pyFAI ``integrate1d(frame, npt, unit=..., method=("bbox", "csr",
"cython"), error_model="poisson", polarization_factor=..., correctSolidAngle=...,
mask=..., dark=..., flat=...)`` to round-off (float32 fused multiply-adds, eight at a
time, then float64 sums).

This is a private helper of :mod:`xrdpdf.stages.integrate`; it does no file I/O except the
operator cache.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core._prefetch import prefetched
from xrdpdf._core.errors import InputError
from xrdpdf.stages._fastop import (
    _UNITS,
    _build_operator,
    _cache_key,
    _load_cache,
    _Operator,
    _save_cache,
)
from xrdpdf.stages._opcache import default_cache_dir
from xrdpdf.stages._scatter import scatter, simd_available

__all__ = [
    "PreparedDark",
    "SparseIntegrator",
]


#: Frame dtypes the kernel reads without a copy.
_KERNEL_DTYPES = tuple(np.dtype(t) for t in ("uint16", "int32", "uint32", "float32", "float64"))

_POOL_LOCK = threading.Lock()
#: The helper threads' executor by its number of threads (one entry at most).
_POOL: dict[int, ThreadPoolExecutor] = {}


def _after_fork_in_child() -> None:
    # a forked child (a Dask or multiprocessing worker) inherits the executor but not
    # its threads, and maybe a lock a parent's thread held: it starts afresh
    global _POOL_LOCK
    _POOL_LOCK = threading.Lock()
    _POOL.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def kernel_threads() -> int:
    """Threads of the integration kernel: ``XRDPDF_NUM_THREADS``, else the usable cores.

    Raises
    ------
    InputError
        ``XRDPDF_NUM_THREADS`` is set but not a positive integer.
    """
    env = os.environ.get("XRDPDF_NUM_THREADS")
    if env is not None:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise InputError(f"XRDPDF_NUM_THREADS must be a positive integer, got {env!r}")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _pool(nthread: int) -> ThreadPoolExecutor | None:
    """The helper threads (``nthread - 1``; the calling thread is the last one)."""
    if nthread < 2:
        return None
    with _POOL_LOCK:
        if nthread - 1 not in _POOL:
            for other in _POOL.values():
                other.shutdown(wait=False)
            _POOL.clear()
            _POOL[nthread - 1] = ThreadPoolExecutor(nthread - 1, thread_name_prefix="xrdpdf-kernel")
        return _POOL[nthread - 1]


class PreparedDark:
    """A dark image laid out for one integrator's kernel (:meth:`SparseIntegrator.prepare_dark`).

    Attributes
    ----------
    flat : (npix,) ndarray
        The dark, flat, float32 or float64 (read for the few overflow coefficients).
    steps : (nstep * 16,) float32 ndarray
        The dark at the pixel each lane of each kernel step reads, in step order.
    """

    __slots__ = ("_op", "flat", "steps")

    def __init__(self, op: _Operator, flat: np.ndarray) -> None:
        self._op = op
        self.flat = flat
        self.steps = np.ascontiguousarray(flat[op.step_pixels()], dtype=np.float32).reshape(-1)
        self.flat.setflags(write=False)
        self.steps.setflags(write=False)


class SparseIntegrator:
    """Integrate frames of one geometry to I(radial) with a precomputed sparse operator.

    Build it with :meth:`from_pyfai`; then :meth:`integrate` one frame or
    :meth:`integrate_stack` an iterable of frames (read ahead in a thread).

    Attributes
    ----------
    radial : (npt,) ndarray
        Bin centres in `unit` (``"q_A^-1"`` or ``"2th_deg"``), equal to pyFAI's.
    unit : str
        Radial unit.
    shape : tuple of int
        Frame shape the operator expects.
    nbytes : int
        Memory of the operator in bytes.
    cache_path : Path or None
        The cache file used (read or written), None when caching is off.
    loaded_from_cache : bool
        True when the operator was read from the cache instead of built.

    Notes
    -----
    pyFAI's bbox-splitting CSR engine gives coefficients :math:`c_{ij}` (bin *i*,
    pixel *j*).  With the per-pixel normalization :math:`n_j = F_j \\Omega_j P_j`
    (flat, solid angle, polarization) pyFAI's ``integrate1d`` with
    ``error_model="poisson"`` computes, per bin, the ratio of sums [1]_ [2]_

    .. math::

        I_i = \\frac{\\sum_j c_{ij}(r_j - d_j)}{\\sum_j c_{ij} n_j}, \\qquad
        \\sigma_i = \\frac{\\sqrt{\\sum_j c_{ij}^2 \\max(r_j, 1)}}{\\sum_j c_{ij} n_j},

    with :math:`r` the raw frame and :math:`d` the dark.  pyFAI's Cython engine takes
    the Poisson variance as :math:`\\max(r, 1)`, without a dark term, and weights it by
    :math:`c^2` (checked against pyFAI 2026.9 to 1e-7).  The denominator does not depend
    on the frame and is summed once, when the operator is built.  Each pixel adds to
    a few consecutive bins (bbox splitting).  The kernel (C,
    :mod:`xrdpdf.stages._scatter`) takes the frame by strips of rows; in a strip, 16
    consecutive bins are the 16 lanes of one vector, and each step gathers one pixel
    per lane and adds its products into per-lane sums held in registers, so no two
    lanes add to one sum.  The terms :math:`c (r - d)` and :math:`c^2 \\max(r, 1)`
    (frame, dark and coefficients float32, as in pyFAI's engine) are added by
    float32 fused multiply-adds over at most 8 steps, then in float64: a partial sum
    of positive terms carries at most 8ε = 4.8e-7 relative error (9ε for the
    variance, whose c² is rounded; [3]_ §4.2), measured against pyFAI ~8e-8.
    With a dark prepared once (:meth:`prepare_dark`) the kernel reads it in step
    order instead of gathering it per frame.  The threads take
    strips in turn, each strip with its own bin sums, which the threads add into
    the result in strip order as the strips are done; the
    AVX-512 path (where the CPU has it) and the portable C path do the same
    operations in the same order, so the numbers are the same bits on every machine
    and with any number of threads.  Bins whose denominator is zero get pyFAI's
    ``empty`` value (0) for I and σ.

    Per-frame invalid pixels are left out of all three sums of their bins, as pyFAI
    does: non-finite raw values or dark values (always, like pyFAI), negative raw values when
    ``mask_negative`` (the xrdpdf convention, since detectors mark gaps with negative
    values; equal to pyFAI with those pixels added to its mask), and values within
    ``delta_dummy`` of the detector's ``dummy`` (pyFAI's dynamic mask).  Pixels of the
    static mask and pixels whose normalization is zero or non-finite (e.g. a zero
    flat) are dropped from the operator when it is built.

    References
    ----------
    .. [1] Ashiotis, G. et al. (2015). The fast azimuthal integration Python library:
       pyFAI. J. Appl. Cryst. 48, 510-519. https://doi.org/10.1107/S1600576715004306
    .. [2] Kieffer, J., Valls, V., Blanc, N. & Hennig, C. (2020). New tools for
       calibrating diffraction setups. J. Synchrotron Rad. 27, 558-566.
       https://doi.org/10.1107/S1600577520000776
    .. [3] Higham, N. J. (2002). Accuracy and Stability of Numerical Algorithms, 2nd ed.
       SIAM, Philadelphia. https://doi.org/10.1137/1.9780898718027
    """

    def __init__(
        self,
        op: _Operator,
        *,
        shape: tuple[int, int],
        unit: str,
        empty: float = 0.0,
        mask_negative: bool = True,
        dummy: float | None = None,
        delta_dummy: float | None = None,
        cache_path: Path | None = None,
        loaded_from_cache: bool = False,
    ) -> None:
        self._op = op
        self.shape = (int(shape[0]), int(shape[1]))
        self.unit = unit
        self.radial = op.radial
        self.radial.setflags(write=False)
        self.empty = float(empty)
        self.mask_negative = bool(mask_negative)
        self._dummy = dummy
        self._delta_dummy = delta_dummy
        self.cache_path = cache_path
        self.loaded_from_cache = loaded_from_cache
        self._nthread = kernel_threads()
        #: the AVX-512 path where the CPU has it (bit-identical to the portable one)
        self._simd = simd_available()
        self._spare: list[np.ndarray] = []  # accumulators of finished calls
        self._spare_lock = threading.Lock()

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_pyfai(
        cls,
        ai: Any,
        shape: tuple[int, int],
        npt: int,
        unit: str,
        *,
        mask: np.ndarray | None = None,
        polarization_factor: float | None = None,
        flat: np.ndarray | None = None,
        correct_solid_angle: bool = True,
        cache_dir: str | os.PathLike[str] | bool | None = None,
        mask_negative: bool = True,
    ) -> SparseIntegrator:
        """Build (or load from the cache) the operator for one pyFAI geometry.

        Parameters
        ----------
        ai : pyFAI.integrator.azimuthal.AzimuthalIntegrator
            Geometry; it is not modified (its ``engines`` cache is not touched).
        shape : tuple of int
            Frame shape (rows, columns).
        npt : int
            Number of radial bins.
        unit : {"q_A^-1", "2th_deg"}
            Radial unit.
        mask : (rows, cols) ndarray, optional
            Static mask, non-zero = masked, as pyFAI's ``mask``; None uses the
            detector's mask, as pyFAI does.
        polarization_factor : float, optional
            pyFAI polarization factor in [-1, 1]; None = no correction.
        flat : (rows, cols) ndarray, optional
            Flat field (the signal is divided by it).
        correct_solid_angle : bool
            Divide by the pixel solid angle, as pyFAI's ``correctSolidAngle``.
        cache_dir : path, bool or None
            Directory of the operator cache; None or True = :func:`default_cache_dir`,
            False = no cache.
        mask_negative : bool
            Treat negative raw pixels of a frame as invalid (default, the xrdpdf
            convention).  False keeps them, as pyFAI does without ``dummy``.

        Returns
        -------
        SparseIntegrator

        Raises
        ------
        InputError
            Unknown unit, npt < 1, polarization factor outside [-1, 1], or a mask or
            flat whose shape is not `shape`.
        """
        if unit not in _UNITS:
            raise InputError(f"unit {unit!r} is not supported; use one of {_UNITS}")
        if isinstance(npt, bool) or int(npt) != npt or npt < 1:
            raise InputError(f"npt must be a positive integer, got {npt!r}")
        npt = int(npt)
        shape = (int(shape[0]), int(shape[1]))
        if mask is None:
            mask = ai.detector.mask
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != shape:
                raise InputError(f"mask shape {mask.shape} differs from frame shape {shape}")
        if flat is not None:
            flat = np.asarray(flat, dtype=np.float32)
            if flat.shape != shape:
                raise InputError(f"flat shape {flat.shape} differs from frame shape {shape}")
        if polarization_factor is not None and not -1.0 <= polarization_factor <= 1.0:
            raise InputError(f"polarization_factor {polarization_factor} is outside [-1, 1]")
        det = ai.detector
        dummy = None if det.dummy is None else float(det.dummy)
        delta = None if det.delta_dummy is None else float(det.delta_dummy)

        path = None
        op = None
        if cache_dir is not False:
            base = default_cache_dir() if cache_dir in (None, True) else Path(cache_dir)
            key = _cache_key(
                ai, shape, npt, unit, mask, polarization_factor, flat, correct_solid_angle
            )
            path = base / f"fastint_{key}.op"
            op = _load_cache(path, npt, shape[0] * shape[1])
        loaded = op is not None
        if op is None:
            op = _build_operator(
                ai, shape, npt, unit, mask, polarization_factor, flat, correct_solid_angle
            )
            if path is not None:
                _save_cache(op, path)
        return cls(
            op,
            shape=shape,
            unit=unit,
            empty=float(ai.empty),
            mask_negative=mask_negative,
            dummy=dummy,
            delta_dummy=delta,
            cache_path=path,
            loaded_from_cache=loaded,
        )

    @classmethod
    def from_cache_file(
        cls,
        path: str | os.PathLike[str],
        shape: tuple[int, int],
        npt: int,
        unit: str,
        *,
        empty: float = 0.0,
        mask_negative: bool = True,
        dummy: float | None = None,
        delta_dummy: float | None = None,
    ) -> SparseIntegrator | None:
        """The integrator of an operator file written by :meth:`from_pyfai`, without pyFAI.

        The geometry-dependent values that :meth:`from_pyfai` takes from pyFAI
        (``empty``, the detector's ``dummy`` and ``delta_dummy``) are given
        here; :attr:`cache_info` of the integrator that wrote the file holds them.

        Returns
        -------
        SparseIntegrator or None
            None when the file is missing, truncated or not of this shape, npt
            and layout (the caller then builds the operator through pyFAI).
        """
        if unit not in _UNITS:
            return None
        shape = (int(shape[0]), int(shape[1]))
        path = Path(path)
        op = _load_cache(path, int(npt), shape[0] * shape[1])
        if op is None:
            return None
        return cls(
            op,
            shape=shape,
            unit=unit,
            empty=empty,
            mask_negative=mask_negative,
            dummy=dummy,
            delta_dummy=delta_dummy,
            cache_path=path,
            loaded_from_cache=True,
        )

    @property
    def cache_info(self) -> dict[str, Any]:
        """What :meth:`from_cache_file` needs besides the file: a JSON-ready dict."""
        return {
            "path": None if self.cache_path is None else str(self.cache_path),
            "shape": list(self.shape),
            "npt": self.npt,
            "unit": self.unit,
            "empty": self.empty,
            "mask_negative": self.mask_negative,
            "dummy": self._dummy,
            "delta_dummy": self._delta_dummy,
        }

    # ---------------------------------------------------------------- properties
    @property
    def npt(self) -> int:
        """Number of radial bins."""
        return int(self.radial.size)

    @property
    def nnz(self) -> int:
        """Number of non-zero coefficients of the operator."""
        return self._op.nnz

    @property
    def nbytes(self) -> int:
        """Memory of the operator in bytes."""
        return int(sum(a.nbytes for a in self._op.arrays().values()))

    # ---------------------------------------------------------------- integration
    def _dummies(self, dtype: np.dtype) -> tuple[bool, float, float]:
        # pyFAI Detector.get_dummies: the dummy goes through the frame's dtype, and a
        # missing delta_dummy means float32 eps.
        if self._dummy is None:
            return False, 0.0, 0.0
        dummy = float(np.float32(dtype.type(np.int64(self._dummy))))
        delta = (
            float(np.finfo(np.float32).eps)
            if self._delta_dummy is None
            else float(np.float32(self._delta_dummy))
        )
        return True, dummy, delta

    def _check_frame(self, frame: Any, what: str = "frame") -> np.ndarray:
        """Flat contiguous view of a frame in a dtype the kernel reads.

        uint16, int32, uint32, float32 and float64 are read as they are (the kernel
        takes 32-bit integers through float32, as pyFAI's preprocessing does with
        every frame); other real dtypes are cast to float32 here.
        """
        a = np.asarray(frame)
        if a.shape != self.shape:
            raise InputError(f"{what} shape {a.shape} differs from the operator's {self.shape}")
        if a.dtype.kind not in "uif":
            raise InputError(f"{what} dtype {a.dtype} is not a real number type")
        if not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        if a.dtype not in _KERNEL_DTYPES:
            a = a.astype(np.float32)
        return np.ascontiguousarray(a).reshape(-1)

    def _flat_dark(self, dark: Any) -> np.ndarray:
        d = self._check_frame(dark, "dark")
        return d if d.dtype.kind == "f" else d.astype(np.float32)

    def prepare_dark(self, dark: Any) -> PreparedDark:
        """A dark laid out in the kernel's order, for many frames (saves a gather per frame).

        Parameters
        ----------
        dark : (rows, cols) array_like
            Dark image; it is copied, so later changes to it are not seen.

        Returns
        -------
        PreparedDark
            Pass it as ``dark`` to :meth:`integrate` of this integrator: the same
            numbers as with the array, bit for bit.

        Raises
        ------
        InputError
            Wrong shape or dtype.
        """
        return PreparedDark(self._op, np.array(self._flat_dark(dark)))

    def _prepare_dark(self, dark: Any) -> PreparedDark | np.ndarray | None:
        if dark is None:
            return None
        if isinstance(dark, PreparedDark):
            if dark._op is not self._op:
                raise InputError("the prepared dark belongs to another integrator")
            return dark
        return self._flat_dark(dark)

    def integrate(self, frame: Any, dark: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Integrate one frame.

        Parameters
        ----------
        frame : (rows, cols) array_like
            Raw counts (any integer or float dtype).
        dark : (rows, cols) array_like or PreparedDark, optional
            Dark image subtracted from the frame; where it is not finite the
            pixel is left out, as pyFAI does.  For many frames with one dark,
            :meth:`prepare_dark` it once.

        Returns
        -------
        radial : (npt,) ndarray
            Bin centres in :attr:`unit`.
        intensity : (npt,) ndarray
            I per bin (pyFAI's ``empty``, 0, where a bin has no valid pixel).
        sigma : (npt,) ndarray
            Poisson standard error of I.

        Raises
        ------
        InputError
            Wrong shape or dtype of the frame or the dark.
        """
        return self._integrate(frame, self._prepare_dark(dark))

    def _integrate(
        self, frame: Any, dark: PreparedDark | np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        frame = np.asarray(frame)
        flat_frame = self._check_frame(frame)
        check_dummy, dummy, delta = self._dummies(frame.dtype)  # pyFAI uses the raw dtype
        op = self._op
        sig, var, rnorm, rcount = self._sums(flat_frame, dark, check_dummy, dummy, delta)
        # A bin is empty (pyFAI: normalization == 0) when all its coefficients were
        # removed, which the count tells exactly; the norm difference could be round-off.
        empty = rcount >= op.bin_count
        nrm = np.where(empty, 1.0, op.bin_norm - rnorm)
        intensity = np.where(empty, self.empty, sig / nrm)
        sigma = np.where(empty, self.empty, np.sqrt(var) / nrm)
        return self.radial, intensity, sigma

    def _sums(
        self,
        flat_frame: np.ndarray,
        dark: PreparedDark | np.ndarray | None,
        check_dummy: bool,
        dummy: float,
        delta: float,
    ) -> np.ndarray:
        """Σc·(raw−dark), Σc²·max(raw, 1), removed Σc·norm and removed count per bin."""
        op = self._op
        acc = self._take_accumulators()
        try:
            # the next free block, the next block to add into sums, a lock, done flags
            counter = np.zeros(3 + op.blocks.shape[0], dtype=np.int64)
            sums = np.zeros((4, self.npt))
            args = (
                op.off,
                op.coef,
                op.batches,
                op.blocks,
                op.ov_pix,
                op.ov_bin,
                op.ov_coef,
                flat_frame,
                dark.flat if isinstance(dark, PreparedDark) else dark,
                dark.steps if isinstance(dark, PreparedDark) else None,
                op.pixel_norm,
                acc,
                counter,
                sums,
                self.mask_negative,
                check_dummy,
                dummy,
                delta,
                self._simd,
            )
            pool = _pool(self._nthread)
            helpers = [pool.submit(scatter, *args) for _ in range(1, self._nthread)]
            try:
                scatter(*args)
            finally:
                for h in helpers:
                    h.result()
            return sums  # the blocks' sums added in block order by the kernel
        finally:
            with self._spare_lock:
                self._spare.append(acc)

    def _take_accumulators(self) -> np.ndarray:
        """The blocks' sums, reused between frames (the kernel zeroes each block's)."""
        with self._spare_lock:
            acc = self._spare.pop() if self._spare else None
        return np.empty(self._op.acc_size) if acc is None else acc

    def integrate_stack(
        self, frames: Iterable[Any], dark: Any = None, *, prefetch: int = 2
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Integrate frames one by one while a thread reads the next ones.

        Parameters
        ----------
        frames : iterable of (rows, cols) array_like
            Frames, e.g. a generator that reads files; it is advanced in a background
            thread, so reading (which releases the GIL in tifffile/h5py) overlaps the
            integration (whose kernel runs without the GIL).
        dark : (rows, cols) array_like or PreparedDark, optional
            Dark image subtracted from every frame (an array is prepared once here,
            :meth:`prepare_dark`).
        prefetch : int
            Frames read ahead (>= 1).

        Yields
        ------
        tuple of (npt,) ndarray
            ``(radial, intensity, sigma)`` for each frame, in order.

        Raises
        ------
        InputError
            As :meth:`integrate`; an exception raised by `frames` is re-raised here.
        """
        if prefetch < 1:
            raise InputError(f"prefetch must be >= 1, got {prefetch}")
        if dark is not None and not isinstance(dark, PreparedDark):
            dark = self.prepare_dark(dark)
        d = self._prepare_dark(dark)
        for frame in prefetched(frames, prefetch):
            yield self._integrate(frame, d)
