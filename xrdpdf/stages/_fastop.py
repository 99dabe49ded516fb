"""The fast integration's operator: pyFAI's CSR coefficients by pixel, norm folded in, cached."""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf.stages import _opcache

#: Bump when the cached file layout or the meaning of its arrays changes.
_CACHE_FORMAT = 2


_METHOD = ("bbox", "csr", "cython")


_UNITS = ("q_A^-1", "2th_deg")


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
        and (npix == 0 or int(op.first.max()) < npt)  # the kernel adds to first + u < npt + W
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
