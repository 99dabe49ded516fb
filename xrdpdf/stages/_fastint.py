"""Fast 1-D azimuthal integration with a precomputed sparse operator.

pyFAI's ``integrate1d(method=("bbox", "csr", "cython"))`` spends most of its time per
frame on work that does not change between frames of a stack (pre-processing of the
flat, solid angle and polarization arrays, the normalization sums).  For a fixed
geometry, mask, flat, polarization and solid-angle setting this module takes the CSR
coefficients that pyFAI itself builds (bbox pixel splitting, not re-implemented here),
folds the constant per-bin normalization in once, and integrates each frame with one
multithreaded pass over the operator (signal and Poisson variance together, a fused
numba kernel).  The operator is cached on disk keyed by a hash of geometry and
settings, so a second run starts fast (memory-mapped; location, size cap and
eviction in :mod:`xrdpdf.stages._opcache`).

The result equals pyFAI ``integrate1d(frame, npt, unit=..., method=("bbox", "csr",
"cython"), error_model="poisson", polarization_factor=..., correctSolidAngle=...,
mask=..., dark=..., flat=...)`` to round-off (float32 coefficients, float64 sums).

This is a private helper of :mod:`xrdpdf.stages.integrate`; it does no file I/O except the
operator cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

from xrdpdf._core._prefetch import prefetched
from xrdpdf._core.errors import InputError
from xrdpdf.stages import _opcache
from xrdpdf.stages._opcache import default_cache_dir

__all__ = ["SparseIntegrator", "default_cache_dir"]

#: Bump when the cached file layout or the meaning of its arrays changes.
_CACHE_FORMAT = 2
_METHOD = ("bbox", "csr", "cython")
_UNITS = ("q_A^-1", "2th_deg")
_BLOCKS_PER_THREAD = 32
# One kernel launch at a time: numba's workqueue threading layer (the fallback when
# neither OpenMP nor TBB is present) aborts on concurrent launches, and the kernel
# already uses every core.
_KERNEL_LOCK = threading.Lock()


# --------------------------------------------------------------------------- kernels


@numba.njit(inline="always", nogil=True)
def _valid(x, mask_negative, check_dummy, dummy, delta_dummy):  # pragma: no cover - jit
    if not np.isfinite(x):
        return False
    if mask_negative and x < 0.0:
        return False
    if check_dummy and abs(x - dummy) <= delta_dummy:
        return False
    return True


@numba.njit(inline="always", nogil=True)
def _add4(a_s, a_v, pad, j, col, b0, y, xv):  # pragma: no cover - jit
    # four coefficients of pixel j from column `col` (a literal: the loop unrolls)
    for u in range(4):
        c = np.float64(pad[j, col + u])
        b = b0 + col + u
        a_s[b] += c * y
        a_v[b] += c * c * xv


@numba.njit(inline="always", nogil=True)
def _remove4(a_n, a_c, pad, j, col, b0, nj):  # pragma: no cover - jit
    for u in range(4):
        c = np.float64(pad[j, col + u])
        if c != 0.0:
            b = b0 + col + u
            a_n[b] += c * nj
            a_c[b] += 1.0


@numba.njit(parallel=True, nogil=True, cache=True)
def _scatter_kernel(
    pad,
    first,
    ov_pix,
    ov_bin,
    ov_coef,
    pix_bounds,
    ov_bounds,
    frame,
    dark,
    has_dark,
    pixel_norm,
    mask_negative,
    check_dummy,
    dummy,
    delta_dummy,
    acc_sig,
    acc_var,
    acc_rnorm,
    acc_rcount,
):  # pragma: no cover - jit
    """One pass over the frame: Σc·(raw−dark) and Σc²·max(raw, 1) per bin.

    Pixel *j* adds to bins ``first[j] + u`` with coefficients ``pad[j, u]`` (zero
    padded to a width of 4 or 8, so the inner loops have fixed trip counts and
    unroll), plus the rare extra ``(ov_pix, ov_bin, ov_coef)`` entries of pixels
    that touch more bins.  The pixels are cut into blocks ``pix_bounds[k]:pix_bounds[k+1]``
    that the threads take as they become free (run it with a parallel chunk size of 1),
    each thread adding into its own row of the ``acc_*`` arrays.  An invalid pixel adds
    nothing to the sums; its c·norm goes to ``acc_rnorm`` and its non-zero
    coefficient count to ``acc_rcount`` instead.
    """
    nblock = pix_bounds.shape[0] - 1
    wide = pad.shape[1] == 8
    for blk in numba.prange(nblock):
        t = numba.get_thread_id()
        a_s = acc_sig[t]
        a_v = acc_var[t]
        a_n = acc_rnorm[t]
        a_c = acc_rcount[t]
        for j in range(pix_bounds[blk], pix_bounds[blk + 1]):
            x = np.float64(frame[j])
            b0 = np.int64(first[j])
            ok = _valid(x, mask_negative, check_dummy, dummy, delta_dummy)
            y = x
            if ok and has_dark:
                d = np.float64(dark[j])
                ok = np.isfinite(d)  # pyFAI masks a non-finite raw − dark
                y = x - d
            if ok:
                xv = max(x, 1.0)
                _add4(a_s, a_v, pad, j, 0, b0, y, xv)
                if wide:
                    _add4(a_s, a_v, pad, j, 4, b0, y, xv)
            else:
                nj = np.float64(pixel_norm[j])
                _remove4(a_n, a_c, pad, j, 0, b0, nj)
                if wide:
                    _remove4(a_n, a_c, pad, j, 4, b0, nj)
        for e in range(ov_bounds[blk], ov_bounds[blk + 1]):
            j = ov_pix[e]
            b = np.int64(ov_bin[e])
            c = np.float64(ov_coef[e])
            x = np.float64(frame[j])
            ok = _valid(x, mask_negative, check_dummy, dummy, delta_dummy)
            y = x
            if ok and has_dark:
                d = np.float64(dark[j])
                ok = np.isfinite(d)
                y = x - d
            if ok:
                a_s[b] += c * y
                a_v[b] += c * c * max(x, 1.0)
            else:
                a_n[b] += c * np.float64(pixel_norm[j])
                a_c[b] += 1.0


# --------------------------------------------------------------------------- operator


@dataclass(frozen=True)
class _Operator:
    """pyFAI's CSR matrix stored by pixel (the transpose), padded to a fixed width.

    Pixel *j* contributes ``pad[j, u]`` to bin ``first[j] + u``; bbox splitting puts a
    pixel's coefficients in consecutive bins, so a width of 4 holds nearly all of
    them and the few beyond the width go to the ``ov_*`` list.
    """

    pad: np.ndarray  # (npix, W) float32, W = 4 or 8
    first: np.ndarray  # (npix,) uint16 or int32, first bin of each pixel
    ov_pix: np.ndarray  # (nov,) int32, overflow entries sorted by pixel
    ov_bin: np.ndarray  # (nov,) int32
    ov_coef: np.ndarray  # (nov,) float32
    pixel_norm: np.ndarray  # (npix,) float32 flat·Ω·P (0 where the pixel is dropped)
    bin_norm: np.ndarray  # (npt,) float64 Σ c·flat·Ω·P
    bin_count: np.ndarray  # (npt,) float64 number of non-zero coefficients per bin
    radial: np.ndarray  # (npt,) bin centres in `unit`

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in _OPERATOR_FIELDS}

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.pad) + self.ov_coef.size)


_OPERATOR_FIELDS = (
    "pad",
    "first",
    "ov_pix",
    "ov_bin",
    "ov_coef",
    "pixel_norm",
    "bin_norm",
    "bin_count",
    "radial",
)


def _crc(a: np.ndarray | None) -> str:
    if a is None:
        return "none"
    a = np.ascontiguousarray(a)
    return f"{a.dtype.str}{a.shape}:{zlib.crc32(a.view(np.uint8).ravel()):08x}"


def _cache_key(
    ai: Any,
    shape: tuple[int, int],
    npt: int,
    unit: str,
    mask: np.ndarray | None,
    polarization_factor: float | None,
    flat: np.ndarray | None,
    correct_solid_angle: bool,
) -> str:
    import pyFAI

    try:
        wavelength = float(ai.wavelength)
    except Exception:  # pyFAI raises when the wavelength is unset
        wavelength = None
    settings = {
        "format": _CACHE_FORMAT,
        "pyfai": pyFAI.version,
        "method": list(_METHOD),
        "config": ai.get_config(),
        "geometry": [
            float(ai.dist),
            float(ai.poni1),
            float(ai.poni2),
            float(ai.rot1),
            float(ai.rot2),
            float(ai.rot3),
        ],
        "wavelength_m": wavelength,
        "detector": type(ai.detector).__name__,
        "pixel_m": [float(ai.detector.pixel1), float(ai.detector.pixel2)],
        "shape": list(shape),
        "npt": int(npt),
        "unit": unit,
        "empty": float(ai.empty),
        "mask": _crc(mask),
        "flat": _crc(flat),
        "polarization_factor": polarization_factor,
        "solid_angle": bool(correct_solid_angle),
    }
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _pyfai_csr(
    ai: Any, shape: tuple[int, int], npt: int, unit: str, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """pyFAI's own bbox/CSR coefficients ``(data, indices, indptr)`` and bin centres."""
    import pyFAI.units

    pyfai_unit = pyFAI.units.to_unit(unit)
    mask_crc = None if mask is None else zlib.crc32(np.ascontiguousarray(mask))
    # The call integrate1d makes through _get_persistent_sparse_cython_integrator; it
    # does not touch ai.engines.
    engine = ai.setup_sparse_integrator(
        shape,
        npt,
        mask=mask,
        mask_checksum=mask_crc,
        unit=pyfai_unit,
        split=_METHOD[0],
        algo=_METHOD[1],
        empty=ai.empty,
        scale=False,
    )
    data, indices, indptr = (np.asarray(a) for a in engine.lut)
    radial = np.asarray(engine.bin_centers, dtype=np.float64) * pyfai_unit.scale
    return data, indices, indptr, radial


def _pixel_norm(
    ai: Any,
    shape: tuple[int, int],
    polarization_factor: float | None,
    flat: np.ndarray | None,
    correct_solid_angle: bool,
) -> np.ndarray:
    """flat·P·Ω per pixel in float32, as pyFAI's preprocessing forms it."""
    norm = np.ones(shape, dtype=np.float32)
    if flat is not None:
        norm *= np.asarray(flat, dtype=np.float32)
    if polarization_factor is not None:
        norm *= np.asarray(ai.polarization(shape, polarization_factor), dtype=np.float32)
    if correct_solid_angle:
        norm *= np.asarray(ai.solidAngleArray(shape, True), dtype=np.float32)
    return norm.ravel()


def _build_operator(
    ai: Any,
    shape: tuple[int, int],
    npt: int,
    unit: str,
    mask: np.ndarray | None,
    polarization_factor: float | None,
    flat: np.ndarray | None,
    correct_solid_angle: bool,
) -> _Operator:
    """Take pyFAI's CSR coefficients, transpose them by pixel and fold in the norm."""
    from scipy import sparse

    data, indices, indptr, radial = _pyfai_csr(ai, shape, npt, unit, mask)
    npix = shape[0] * shape[1]
    norm = _pixel_norm(ai, shape, polarization_factor, flat, correct_solid_angle)
    # pyFAI masks pixels with a non-finite or zero normalization in every frame; here
    # they are dropped once.  (They stay in pyFAI's mask as given, so the bin edges,
    # which depend on the mask, are pyFAI's.)
    bad_pix = ~np.isfinite(norm) | (norm == 0)
    norm = np.where(bad_pix, np.float32(0), norm).astype(np.float32)

    csc = sparse.csr_matrix(
        (data.astype(np.float32), indices.astype(np.int32), indptr.astype(np.int64)),
        shape=(npt, npix),
    ).tocsc()
    csc.data[bad_pix[np.repeat(np.arange(npix), np.diff(csc.indptr))]] = 0
    csc.eliminate_zeros()
    csc.sort_indices()
    col_ptr = csc.indptr.astype(np.int64)
    counts = np.diff(col_ptr)
    pix_of = np.repeat(np.arange(npix, dtype=np.int64), counts)
    bins = csc.indices.astype(np.int64)
    coef = csc.data.astype(np.float32)

    first = np.zeros(npix, dtype=np.int64)
    has = counts > 0
    first[has] = bins[col_ptr[:-1][has]]
    offset = bins - first[pix_of]  # position of each coefficient in its pixel's row
    # Width 4, or 8 if more than 5 % of the coefficients would not fit in 4 (the rest
    # go to the overflow list).
    width = 4 if np.count_nonzero(offset >= 4) <= 0.05 * max(coef.size, 1) else 8
    inside = offset < width
    pad = np.zeros((npix, width), dtype=np.float32)
    pad[pix_of[inside], offset[inside]] = coef[inside]
    over = ~inside
    first_dtype = np.uint16 if npt + width <= np.iinfo(np.uint16).max else np.int32

    bin_norm = np.bincount(bins, weights=coef.astype(np.float64) * norm[pix_of], minlength=npt)[
        :npt
    ]
    bin_count = np.bincount(bins, minlength=npt)[:npt].astype(np.float64)
    return _Operator(
        pad=pad,
        first=first.astype(first_dtype),
        ov_pix=pix_of[over].astype(np.int32),
        ov_bin=bins[over].astype(np.int32),
        ov_coef=coef[over],
        pixel_norm=norm,
        bin_norm=bin_norm,
        bin_count=bin_count,
        radial=radial,
    )


def _load_cache(path: Path, npt: int, npix: int) -> _Operator | None:
    arrays = _opcache.load(path)
    if arrays is None or set(arrays) != set(_OPERATOR_FIELDS):
        return None  # missing, truncated or foreign file: rebuild it
    for name in ("bin_norm", "bin_count", "radial"):  # small, handed to callers: copies
        arrays[name] = np.array(arrays[name])
    op = _Operator(**arrays)
    width = op.pad.shape[1] if op.pad.ndim == 2 else 0
    ok = (
        op.pad.shape == (npix, width)
        and width in (4, 8)
        and op.pad.dtype == np.float32
        and op.first.shape == (npix,)
        and op.first.dtype in (np.uint16, np.int32)
        and op.ov_pix.shape == op.ov_bin.shape == op.ov_coef.shape
        and op.ov_pix.dtype == op.ov_bin.dtype == np.int32
        and op.ov_coef.dtype == np.float32
        and op.pixel_norm.shape == (npix,)
        and op.pixel_norm.dtype == np.float32
        and op.bin_norm.shape == op.bin_count.shape == op.radial.shape == (npt,)
        and (npix == 0 or int(op.first.max()) < npt + width)
        and (
            op.ov_pix.size == 0
            or (
                int(op.ov_pix.max()) < npix
                and int(op.ov_bin.max()) < npt
                and bool(np.all(np.diff(op.ov_pix) >= 0))
            )
        )
    )
    return op if ok else None


def _save_cache(op: _Operator, path: Path) -> None:
    """Write the operator atomically, then trim the cache to its size cap."""
    _opcache.save(op.arrays(), path)
    _opcache.evict(path.parent, keep=path)


# --------------------------------------------------------------------------- public


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
    on the frame and is summed once, when the operator is built.  The operator is
    pyFAI's matrix stored by pixel: each pixel adds to a few consecutive bins, so one
    frame costs one sequential pass over the pixels (numba, one thread per block of
    pixels, each with its own bin accumulators).  Bins whose denominator is zero get
    pyFAI's ``empty`` value (0) for I and σ.

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
        self._no_dark = np.zeros(1, dtype=np.float32)

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
        """Flat contiguous view of a frame: uint16, float32 and float64 as they are.

        Other dtypes are cast to float32, as pyFAI's preprocessing does with every
        frame; the kernel is compiled for these three only.
        """
        a = np.asarray(frame)
        if a.shape != self.shape:
            raise InputError(f"{what} shape {a.shape} differs from the operator's {self.shape}")
        if a.dtype.kind not in "uif":
            raise InputError(f"{what} dtype {a.dtype} is not a real number type")
        if a.dtype not in (np.uint16, np.float32, np.float64):
            a = a.astype(np.float32)
        return np.ascontiguousarray(a).reshape(-1)

    def _prepare_dark(self, dark: Any) -> np.ndarray | None:
        if dark is None:
            return None
        d = self._check_frame(dark, "dark")
        return d if d.dtype.kind == "f" else d.astype(np.float32)

    def integrate(self, frame: Any, dark: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Integrate one frame.

        Parameters
        ----------
        frame : (rows, cols) array_like
            Raw counts (any integer or float dtype).
        dark : (rows, cols) array_like, optional
            Dark image subtracted from the frame; where it is not finite the
            pixel is left out, as pyFAI does.

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
        self, frame: Any, dark: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        frame = np.asarray(frame)
        flat_frame = self._check_frame(frame)
        check_dummy, dummy, delta = self._dummies(frame.dtype)  # pyFAI uses the raw dtype
        op = self._op
        npt = self.npt
        npix = flat_frame.size
        nthread = numba.get_num_threads()
        # Blocks of pixels handed to the threads dynamically: a thread slowed down by a
        # busy machine (or by the reader thread) takes fewer blocks.
        nblock = max(1, min(_BLOCKS_PER_THREAD * nthread, npix // 4096))
        pix_bounds = np.linspace(0, npix, nblock + 1).astype(np.int64)
        ov_bounds = np.searchsorted(op.ov_pix, pix_bounds).astype(np.int64)
        nacc = npt + op.pad.shape[1]
        acc = np.zeros((4, nthread, nacc))
        with _KERNEL_LOCK, numba.parallel_chunksize(1):
            _scatter_kernel(
                op.pad,
                op.first,
                op.ov_pix,
                op.ov_bin,
                op.ov_coef,
                pix_bounds,
                ov_bounds,
                flat_frame,
                self._no_dark if dark is None else dark,
                dark is not None,
                op.pixel_norm,
                self.mask_negative,
                check_dummy,
                dummy,
                delta,
                acc[0],
                acc[1],
                acc[2],
                acc[3],
            )
        sig, var, rnorm, rcount = acc[:, :, :npt].sum(axis=1)
        # A bin is empty (pyFAI: normalization == 0) when all its coefficients were
        # removed, which the count tells exactly; the norm difference could be round-off.
        empty = rcount >= op.bin_count
        nrm = np.where(empty, 1.0, op.bin_norm - rnorm)
        intensity = np.where(empty, self.empty, sig / nrm)
        sigma = np.where(empty, self.empty, np.sqrt(var) / nrm)
        return self.radial, intensity, sigma

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
        dark : (rows, cols) array_like, optional
            Dark image subtracted from every frame.
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
        d = self._prepare_dark(dark)
        for frame in prefetched(frames, prefetch):
            yield self._integrate(frame, d)
