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
_CACHE_FORMAT = 3


_METHOD = ("bbox", "csr", "cython")


_UNITS = ("q_A^-1", "2th_deg")


@dataclass(frozen=True)
class _Operator:
    """pyFAI's CSR matrix in the kernel's layout (:mod:`xrdpdf.stages._scatter`).

    Pixel *j* adds its coefficients to consecutive bins ``first(j) + u`` (bbox
    splitting), u < W = 4 or 8.  The frame is cut into strips of whole rows (the
    blocks, ``blocks``); in a strip, the pixels of first bin *b* are lane ``b % 16`` of
    the batch of bins ``[g, g + 16)``, ``g = 16 (b // 16)`` (``batches``), one pixel per
    lane and step: ``off[s, lane]`` is its place in the strip, ``coef[s, u, lane]`` its
    coefficients, 0 in the lanes a batch pads.  Coefficients beyond W, and every
    coefficient of the frame's last pixel, are the ``ov_*`` entries, by pixel.
    """

    off: np.ndarray  # (nstep, 16) uint16, place of each step's pixels in their strip
    coef: np.ndarray  # (nstep, W, 16) float32
    batches: np.ndarray  # (nbatch, 3) int64: first bin g, steps, first step
    blocks: np.ndarray  # (nblock, 8) int64: see _BLOCK_COLUMNS
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
    def width(self) -> int:
        return int(self.coef.shape[1])

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.coef) + self.ov_coef.size)

    def step_pixels(self) -> np.ndarray:
        """(nstep, 16) index into the flat frame of the pixel each step's lanes read."""
        bk, bt = self.blocks, self.batches
        which = np.repeat(np.arange(bk.shape[0]), bk[:, 2] - bk[:, 1])  # block of each batch
        p0 = np.repeat(bk[which, _B_P0], bt[:, 1])  # strip start of each step
        return p0[:, None] + self.off

    @property
    def acc_size(self) -> int:
        """Doubles of the blocks' sums (four rows over each block's window of bins)."""
        b = self.blocks
        return int(max(1, (b[:, _B_ACC] + 4 * b[:, _B_NBIN]).max(initial=0)))


_OPERATOR_FIELDS = (
    "off",
    "coef",
    "batches",
    "blocks",
    "ov_pix",
    "ov_bin",
    "ov_coef",
    "pixel_norm",
    "bin_norm",
    "bin_count",
    "radial",
)

#: Columns of the block table (the kernel's B_* in _scatter.c).
_BLOCK_COLUMNS = ("p0", "batch_lo", "batch_hi", "ov_lo", "ov_hi", "bin_lo", "nbin", "acc")
_B_P0, _B_NBIN, _B_ACC = 0, 6, 7
#: Lanes of a batch, and the bins a batch adds to (16 + W - 1 <= 24).
_LANES, _ROW = 16, 24
#: Pixels of a strip at most (a place in it is 16 bits), and strips per frame at least.
_MAX_STRIP, _MIN_BLOCKS = 1 << 16, 32


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
    bin_norm = np.bincount(bins, weights=coef.astype(np.float64) * norm[pix_of], minlength=npt)[
        :npt
    ]
    bin_count = np.bincount(bins, minlength=npt)[:npt].astype(np.float64)
    layout = _tile(pad, first, pix_of[over], bins[over], coef[over], shape)
    return _Operator(
        **layout, pixel_norm=norm, bin_norm=bin_norm, bin_count=bin_count, radial=radial
    )


def _strip_pixels(shape: tuple[int, int]) -> int:
    """Pixels of a strip: whole rows, at most 2**16 pixels, at least 32 strips if rows allow."""
    nrow, ncol = shape
    if ncol > _MAX_STRIP:
        return _MAX_STRIP
    rows = max(1, min(_MAX_STRIP // ncol, -(-nrow // _MIN_BLOCKS)))
    return rows * ncol


def _tile(
    pad: np.ndarray,
    first: np.ndarray,
    ov_pix: np.ndarray,
    ov_bin: np.ndarray,
    ov_coef: np.ndarray,
    shape: tuple[int, int],
) -> dict[str, np.ndarray]:
    """The kernel's layout (see :class:`_Operator`) of the operator stored by pixel.

    `pad` (npix, W) holds pixel j's coefficients for bins ``first[j] + u``; the
    ``ov_*`` entries (sorted by pixel) the rest.  Pixels without a coefficient are
    left out.
    """
    npix, width = pad.shape
    strip = _strip_pixels(shape)
    has = pad.any(axis=1)
    if npix and has[-1]:  # the last pixel: to the overflow list (see _scatter.c)
        u = np.flatnonzero(pad[-1])
        ov_pix = np.concatenate([ov_pix, np.full(u.size, npix - 1)])
        ov_bin = np.concatenate([ov_bin, first[-1] + u])
        ov_coef = np.concatenate([ov_coef, pad[-1, u]])
        order = np.argsort(ov_pix, kind="stable")
        ov_pix, ov_bin, ov_coef = ov_pix[order], ov_bin[order], ov_coef[order]
        has[-1] = False
    pix = np.flatnonzero(has)
    b = first[pix].astype(np.int64)
    s = pix // strip
    span = (int(b.max(initial=0)) // _LANES + 1) * _LANES
    key = s * span + b  # by strip, then bin, then pixel (pix is sorted, the sort stable)
    order = np.argsort(key, kind="stable")
    pix, b, s, key = pix[order], b[order], s[order], key[order]
    new_group = np.r_[True, key[1:] != key[:-1]]
    group_start = np.flatnonzero(new_group)
    rank = np.arange(pix.size) - np.repeat(group_start, np.diff(np.r_[group_start, pix.size]))
    bkey = key // _LANES
    new_batch = np.r_[True, bkey[1:] != bkey[:-1]]
    batch_of = np.cumsum(new_batch) - 1
    bstart = np.flatnonzero(new_batch)
    nstep = np.maximum.reduceat(rank + 1, bstart) if pix.size else np.zeros(0, np.int64)
    step0 = np.cumsum(nstep) - nstep
    step = step0[batch_of] + rank
    lane = b % _LANES
    off = np.zeros((int(nstep.sum()), _LANES), dtype=np.uint16)
    off[step, lane] = pix - s * strip
    coef = np.zeros((off.shape[0], width, _LANES), dtype=np.float32)
    coef[step[:, None], np.arange(width)[None, :], lane[:, None]] = pad[pix]
    batch_strip = s[bstart]
    batches = np.stack([b[bstart] - lane[bstart], nstep, step0], axis=1).astype(np.int64)

    nblock = max(1, -(-npix // strip))
    p0 = np.arange(nblock, dtype=np.int64) * strip
    batch_bounds = np.searchsorted(batch_strip, np.arange(nblock + 1))
    ov_bounds = _ov_bounds(ov_pix, p0, npix)
    blocks = np.zeros((nblock, len(_BLOCK_COLUMNS)), dtype=np.int64)
    acc = 0
    for k in range(nblock):
        bl, bh = batch_bounds[k], batch_bounds[k + 1]
        ol, oh = ov_bounds[k]
        lo = [batches[bl:bh, 0].min()] if bh > bl else []
        hi = [batches[bl:bh, 0].max() + _ROW] if bh > bl else []
        if oh > ol:
            lo.append(ov_bin[ol:oh].min())
            hi.append(ov_bin[ol:oh].max() + 1)
        bin_lo = int(min(lo)) if lo else 0
        nbin = int(max(hi)) - bin_lo if hi else 0
        blocks[k] = (p0[k], bl, bh, ol, oh, bin_lo, nbin, acc)
        acc += 4 * nbin
    return {
        "off": off,
        "coef": coef,
        "batches": batches,
        "blocks": blocks,
        "ov_pix": np.asarray(ov_pix, dtype=np.int32),
        "ov_bin": np.asarray(ov_bin, dtype=np.int32),
        "ov_coef": np.asarray(ov_coef, dtype=np.float32),
    }


def _layout_ok(op: _Operator, npt: int, npix: int) -> bool:
    """Every check of the layout that the kernel would otherwise fail, or leave undone.

    The kernel checks its tables at each call (and raises); a file that would fail
    them is rebuilt instead.  The places in ``off`` it does not check: every pixel
    must lie inside the frame and below its last pixel, which a 32-bit read of a
    16-bit frame would read past (the layout keeps that pixel in the overflow list).
    """
    off, coef, bt, bk = op.off, op.coef, op.batches, op.blocks
    nstep = off.shape[0] if off.ndim == 2 else -1
    shapes = (
        off.ndim == 2
        and off.shape[1] == _LANES
        and off.dtype == np.uint16
        and coef.shape in ((nstep, 4, _LANES), (nstep, 8, _LANES))
        and coef.dtype == np.float32
        and bt.dtype == bk.dtype == np.int64
        and bt.ndim == bk.ndim == 2
        and bt.shape[1] == 3
        and bk.shape[1] == len(_BLOCK_COLUMNS)
        and bk.shape[0] >= 1
        and op.ov_pix.shape == op.ov_bin.shape == op.ov_coef.shape
        and op.ov_pix.dtype == op.ov_bin.dtype == np.int32
        and op.ov_coef.dtype == np.float32
        and op.pixel_norm.shape == (npix,)
        and op.pixel_norm.dtype == np.float32
        and op.bin_norm.shape == op.bin_count.shape == op.radial.shape == (npt,)
    )
    if not shapes:
        return False
    p0, blo, bhi, olo, ohi, bin_lo, nbin, acc = (bk[:, i] for i in range(bk.shape[1]))
    g, nst, step0 = bt[:, 0], bt[:, 1], bt[:, 2]
    nper = bhi - blo
    operator_order = (
        p0[0] == 0
        and bool(np.all(np.diff(p0) > 0))
        and int(p0[-1]) < max(npix, 1)
        and blo[0] == 0
        and bool(np.all(blo[1:] == bhi[:-1]))
        and bhi[-1] == bt.shape[0]
        and bool(np.all(nper >= 0))
        and bool(np.all(np.diff(op.ov_pix) >= 0))
        and np.array_equal(np.c_[olo, ohi], _ov_bounds(op.ov_pix, p0, npix))
        and bool(np.all(nbin >= 0))
        and np.array_equal(acc, np.cumsum(4 * nbin) - 4 * nbin)
        and bool(np.all(nst >= 1))
        and np.array_equal(step0, np.cumsum(nst) - nst)
        and int(nst.sum()) == nstep
    )
    if not operator_order:
        return False
    which = np.repeat(np.arange(bk.shape[0]), nper)
    bins_inside = (
        bool(np.all((g >= bin_lo[which]) & (g + _ROW <= bin_lo[which] + nbin[which])))
        and bool(np.all((g % _LANES == 0) & (g < npt)))
        and (op.ov_pix.size == 0 or (int(op.ov_pix.min()) >= 0 and int(op.ov_pix.max()) < npix))
    )
    if op.ov_pix.size and bins_inside:
        ov_block = np.repeat(np.arange(bk.shape[0]), ohi - olo)
        b = op.ov_bin
        bins_inside = bool(
            np.all((b >= bin_lo[ov_block]) & (b < bin_lo[ov_block] + nbin[ov_block]) & (b < npt))
        )
    if not bins_inside:
        return False
    if nstep:
        top = np.maximum.reduceat(off.max(axis=1).astype(np.int64), step0)
        if int((p0[which] + top).max()) > npix - 2:
            return False
    return True


def _ov_bounds(ov_pix: np.ndarray, p0: np.ndarray, npix: int) -> np.ndarray:
    """The overflow entries of each block: (nblock, 2) bounds into the ``ov_*`` arrays."""
    edges = np.searchsorted(ov_pix, np.r_[p0, npix])
    return np.c_[edges[:-1], edges[1:]]


def _load_cache(path: Path, npt: int, npix: int) -> _Operator | None:
    arrays = _opcache.load(path)
    if arrays is None or set(arrays) != set(_OPERATOR_FIELDS):
        return None  # missing, truncated or foreign file: rebuild it
    for name in ("bin_norm", "bin_count", "radial"):  # small, handed to callers: copies
        arrays[name] = np.array(arrays[name])
    op = _Operator(**arrays)
    return op if _layout_ok(op, npt, npix) else None


def _save_cache(op: _Operator, path: Path) -> None:
    """Write the operator atomically, then trim the cache to its size cap."""
    _opcache.save(op.arrays(), path)
    _opcache.evict(path.parent, keep=path)
