"""Automatic masks from the image: module gaps, dead and hot pixels, the beamstop shadow."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from xrdpdf._core.errors import InputError

__all__ = [
    "auto_mask",
]


def auto_mask(
    image: np.ndarray,
    *,
    detector_mask: np.ndarray | None = None,
    user_mask: np.ndarray | None = None,
    dark: np.ndarray | None = None,
    hot_nsigma: float = 12.0,
    dead_below: float | None = None,
    edge_px: int = 0,
    beamstop: bool = True,
) -> np.ndarray:
    """Flag the pixels that must not be used: gaps, dead, hot, non-finite.

    Parameters
    ----------
    image : (ny, nx) ndarray
        Calibrant (or any) frame, raw or dark-subtracted.
    detector_mask : (ny, nx) ndarray, optional
        The detector's static mask (pyFAI ``detector.mask``; non-zero = bad), e.g. module gaps.
    user_mask : (ny, nx) ndarray, optional
        Extra mask from the user (non-zero = bad); it is OR-ed in.
    dark : (ny, nx) ndarray, optional
        A dark frame; its hot pixels are flagged as well.
    hot_nsigma : float
        A pixel is hot when it exceeds the brightest of its 8 neighbours by more than
        ``hot_nsigma`` noise standard deviations *and* by more than a factor of 3.
    dead_below : float, optional
        Pixels at or below this value are dead.  Default: 0 when fewer than 1 % of the pixels
        are negative (a raw-count image: zero or negative means dead or a gap), otherwise a
        robust lower bound, median − 10·σ (a dark-subtracted image whose noise dips below 0).
    edge_px : int
        Also mask this many pixels along each detector edge.
    beamstop : bool
        Mask the beamstop and its arm: connected regions of at least 50 pixels whose 5×5-mean
        intensity is below 20 % of the 5th percentile of the 5×5 means (the darkest
        background; for a dark-subtracted image, with more
        than 1 % negative pixels: below 20 % of the median and the median − 5 robust σ; only
        for images with a positive median), dilated by 3 pixels (penumbra).

    Returns
    -------
    (ny, nx) ndarray of bool
        True = masked (pyFAI convention).

    Notes
    -----
    Module gaps of tiled detectors are rows or columns whose pixels (nearly all) share one
    value (the dummy value, often 0 or −1); such lines are flagged, which also catches gaps
    the detector description does not know.  A ring pixel always has a neighbour along the ring
    of similar intensity, so sharp rings are not flagged as hot.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2 or min(img.shape) < 8:
        raise InputError(f"image must be 2-D and at least 8×8, got shape {img.shape}")
    mask = ~np.isfinite(img)
    for extra, label in ((detector_mask, "detector mask"), (user_mask, "user mask")):
        if extra is not None:
            extra = np.asarray(extra)
            if extra.shape != img.shape:
                raise InputError(f"{label} shape {extra.shape} differs from image {img.shape}")
            mask |= extra != 0
    work = np.where(mask, np.nan, img)
    # module gaps: rows / columns that are (nearly) constant
    for axis in (0, 1):
        lines = np.moveaxis(work, axis, 0)
        med = np.nanmedian(lines, axis=1, keepdims=True) if lines.size else lines
        same = np.isclose(lines, med, rtol=0, atol=0) | np.isnan(lines)
        const = same.mean(axis=1) > 0.95
        # a line is a gap only if its constant value is not the value of a normal pixel line
        if np.any(const):
            gap = np.moveaxis(np.zeros_like(lines, dtype=bool), 0, axis)
            idx = np.nonzero(const)[0]
            if axis == 0:
                gap[idx, :] = True
            else:
                gap[:, idx] = True
            mask |= gap
    finite = img[~mask]
    if finite.size == 0:
        raise InputError("image is entirely masked")
    if dead_below is None:
        if np.mean(finite < 0) < 0.01:
            dead_below = 0.0
        else:
            med = float(np.median(finite))
            mad = float(np.median(np.abs(finite - med))) * 1.4826
            dead_below = med - 10.0 * max(mad, 1e-12)
    mask |= img <= dead_below
    if beamstop:
        mask |= _beamstop(np.where(mask, np.nan, img))
    mask |= _hot_pixels(np.where(mask, np.nan, img), hot_nsigma)
    if dark is not None:
        dark = np.asarray(dark, dtype=np.float64)
        if dark.shape != img.shape:
            raise InputError(f"dark shape {dark.shape} differs from image {img.shape}")
        mask |= _hot_pixels(dark, hot_nsigma)
    if edge_px > 0:
        mask[:edge_px, :] = mask[-edge_px:, :] = True
        mask[:, :edge_px] = mask[:, -edge_px:] = True
    return mask


def _beamstop(img: np.ndarray) -> np.ndarray:
    """Large dark connected regions (the beamstop shadow and its arm); NaN = masked."""
    valid = np.isfinite(img)
    med = float(np.median(img[valid])) if valid.any() else 0.0
    if med <= 0:
        return np.zeros(img.shape, bool)
    filled = np.where(valid, img, med)
    smooth = ndimage.uniform_filter(filled, size=5)
    sv = smooth[valid]
    spread = 1.4826 * float(np.median(np.abs(sv - np.median(sv))))
    raw = np.mean(img[valid] < 0) < 0.01
    p5 = float(np.percentile(sv, 5))
    level = 0.2 * p5 if raw else min(0.2 * med, med - 5.0 * spread)
    dark = (smooth < level) & valid
    lab, n = ndimage.label(dark)
    if n == 0:
        return np.zeros(img.shape, bool)
    sizes = np.bincount(lab.ravel())
    big = sizes >= 50
    big[0] = False
    out = big[lab]
    return ndimage.binary_dilation(out, iterations=3)


def _hot_pixels(img: np.ndarray, nsigma: float) -> np.ndarray:
    """Isolated pixels far above all 8 neighbours (NaN = already masked).

    A ring pixel always has a neighbour along the ring of similar intensity; a hot pixel has
    none.  Hot: value − max(neighbours) > nsigma·√(σ² + max(neighbours)) and value >
    3·max(neighbours) + nsigma·σ, with σ the robust pixel-to-pixel noise of the image.
    """
    filled = np.where(np.isfinite(img), img, np.nanmedian(img))
    foot = np.ones((3, 3), bool)
    foot[1, 1] = False
    nmax = ndimage.maximum_filter(filled, footprint=foot, mode="nearest")
    d = np.diff(filled[:: max(1, filled.shape[0] // 512)], axis=1).ravel()
    sigma = max(1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2.0), 1e-12)
    local = np.sqrt(sigma**2 + np.clip(nmax, 0, None))
    hot = (filled - nmax > nsigma * local) & (filled > 3.0 * np.abs(nmax) + nsigma * sigma)
    return hot & np.isfinite(img)
