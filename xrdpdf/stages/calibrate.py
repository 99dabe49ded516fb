r"""Headless detector calibration from a calibrant image, automatic masks, instrument resolution.

A calibrant (CeO2, LaB6, Ni, Si, ...) image is turned into a pyFAI geometry without a GUI:

1. :func:`auto_mask` flags module gaps, dead (zero, negative, non-finite) and hot pixels.
2. A robust *start geometry* is built from the image alone: the beam centre from the point
   symmetry of the rings (an FFT auto-convolution, then the sharpest radial profile), the ring
   radii from that radial profile, and the ring order and distance from the *ratios* of the ring
   radii matched to the calibrant d-spacings (independent of the distance).
3. pyFAI does the rest: ``SingleGeometry.extract_cp`` (ring extraction, ``Massif`` peak picking)
   and ``GeometryRefinement.refine3`` (least squares in 2θ), repeated with more rings each time,
   with outlier points dropped between passes.
4. The result is refused with :class:`~xrdpdf.CalibrationError` when the rings are not found
   where the refined geometry predicts them (wrong calibrant, wrong wavelength, blank image),
   whatever the residual.

:func:`instrument_resolution` integrates the calibrant with the refined geometry, fits each
resolved calibrant peak with a pseudo-Voigt and stores the peak widths as a smooth model.

Resolution file (JSON, ``schema = "xrdpdf.resolution/1"``)
----------------------------------------------------------
The keys ``model``, ``unit``, ``fwhm_coeffs``, ``eta_coeffs``, ``wavelength_A`` are those that
:func:`xrdpdf.physics.resolution.load_resolution` reads (model ``"poly"``); the rest is provenance::

    {"schema": "xrdpdf.resolution/1",
     "model": "poly", "unit": "q_A^-1", "wavelength_A": 0.1173,
     "fwhm_coeffs": [c0, c1, c2],
     "eta_coeffs": [e0, e1],
     "q_range_invA": [qmin, qmax],
     "integration_method": ["no", "histogram", "cython"],
     "calibrant": "CeO2",
     "peaks": [{"q_invA": ..., "fwhm_invA": ..., "eta": ..., "fwhm_err_invA": ...}, ...]}

with, for Q in Å⁻¹ (coefficients low order first, as numpy ``polyval``),

.. math::

    \mathrm{FWHM}(Q) = c_0 + c_1 Q + c_2 Q^2 \quad [\text{Å}^{-1}], \qquad
    \eta(Q) = \mathrm{clip}(e_0 + e_1 Q,\ 0,\ 1).

A quadratic is enough: the Caglioti law [1]_ FWHM_2θ² = U tan²θ + V tan θ + W, moved to Q at the
small angles of high-energy diffraction (tan θ ≈ Qλ/4π, dQ = (2π/λ) cos θ d(2θ)), is a smooth,
slowly varying function of Q.  η is the pseudo-Voigt Lorentzian fraction,
pV = η L + (1 − η) G with a common FWHM.  Read it back with
:func:`~xrdpdf.load_resolution`; outside ``q_range_invA`` the model is extrapolated.

References
----------
.. [1] G. Caglioti, A. Paoletti, F. P. Ricci, "Choice of collimators for a crystal spectrometer
   for neutron diffraction", Nucl. Instrum. 3 (1958) 223, doi:10.1016/0369-643X(58)90029-X.
.. [2] G. Ashiotis et al., "The fast azimuthal integration Python library: pyFAI",
   J. Appl. Cryst. 48 (2015) 510, doi:10.1107/S1600576715004306.
.. [3] J. Kieffer, V. Valls, N. Blanc, C. Hennig, "New tools for calibrating diffraction setups",
   J. Synchrotron Rad. 27 (2020) 558, doi:10.1107/S1600577520000776.
"""

from __future__ import annotations

import io as _io
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage, optimize, signal

from xrdpdf._core.errors import CalibrationError, InputError
from xrdpdf.physics.resolution import Resolution

__all__ = [
    "CalibrationResult",
    "ResolutionFit",
    "RESOLUTION_SCHEMA",
    "auto_mask",
    "calibrate",
    "get_calibrant",
    "instrument_resolution",
    "make_detector",
]

RESOLUTION_SCHEMA = "xrdpdf.resolution/1"

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# pyFAI helpers
# --------------------------------------------------------------------------------------------
def get_calibrant(name: str, wavelength_A: float):
    """Return a pyFAI calibrant with its wavelength set.

    Parameters
    ----------
    name : str
        A pyFAI calibrant name (``"CeO2"``, ``"LaB6"``, ``"Ni"``, ``"Si"``, ...) or the path of a
        ``.D`` d-spacing file.
    wavelength_A : float
        X-ray wavelength in Å (converted to m for pyFAI).

    Returns
    -------
    pyFAI.crystallography.calibrant.Calibrant
    """
    from pyFAI.calibrant import CALIBRANT_FACTORY, Calibrant

    _check_wavelength(wavelength_A)
    if name in CALIBRANT_FACTORY:
        cal = CALIBRANT_FACTORY(name)
    elif os.path.isfile(name):
        if name.lower().endswith(".cif"):
            raise InputError(
                f"{name}: a CIF is not a calibrant; give a pyFAI name (CeO2, LaB6, ...) or a "
                "d-spacing (.D) file, e.g. from pyFAI-calib2's calibrant tools"
            )
        cal = Calibrant(filename=name)
        try:
            # pyFAI reads the file lazily: read it here (property name of pyFAI ≥ 2025.07 first)
            d_spacing = cal.dspacing if hasattr(cal, "dspacing") else cal.dSpacing
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{name}: not a d-spacing (.D) calibrant file ({exc})") from None
        if len(d_spacing) == 0:
            raise InputError(f"{name}: the calibrant file holds no d-spacings")
    else:
        known = ", ".join(sorted(CALIBRANT_FACTORY.keys()))
        raise InputError(f"unknown calibrant {name!r}; known: {known}")
    cal.wavelength = wavelength_A * 1e-10
    return cal


def make_detector(
    *,
    name: str | None = None,
    pixel_size_m: float | tuple[float, float] | None = None,
    shape: tuple[int, int] | None = None,
):
    """Build a pyFAI detector from a name or from a pixel size and a shape.

    Parameters
    ----------
    name : str, optional
        pyFAI detector name (``"Perkin"``, ``"Pilatus2M"``, ...).  Wins over the other arguments.
    pixel_size_m : float or (float, float), optional
        Pixel size in m (slow, fast).  Default 200e-6 (a PerkinElmer flat panel).
    shape : (int, int), optional
        (rows, columns) of the detector.

    Returns
    -------
    pyFAI.detectors.Detector
    """
    import pyFAI
    from pyFAI.detectors import Detector

    if name is not None:
        try:
            det = pyFAI.detector_factory(name)
        except Exception as exc:  # pyFAI raises RuntimeError / KeyError for unknown names
            raise InputError(f"unknown detector {name!r}: {exc}") from exc
        return det
    if pixel_size_m is None:
        pixel_size_m = 200e-6
    p1, p2 = (
        (float(pixel_size_m), float(pixel_size_m))
        if np.isscalar(pixel_size_m)
        else tuple(float(p) for p in pixel_size_m)  # type: ignore[union-attr]
    )
    if not (1e-6 <= p1 <= 5e-3 and 1e-6 <= p2 <= 5e-3):
        raise InputError(f"pixel size {pixel_size_m!r} m out of range [1e-6, 5e-3] m")
    return Detector(pixel1=p1, pixel2=p2, max_shape=tuple(shape) if shape else None)


def _check_wavelength(wavelength_A: float) -> None:
    if not (np.isfinite(wavelength_A) and 0.01 <= wavelength_A <= 20.0):
        raise InputError(f"wavelength {wavelength_A!r} Å out of range [0.01, 20] Å")


def _unique_tth(calibrant) -> np.ndarray:
    """Sorted distinct calibrant 2θ (rad) at its wavelength; reflections beyond 180° dropped."""
    tth = np.array([t for t in calibrant.get_2th() if t is not None], dtype=float)
    return tth


# --------------------------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# start geometry
# --------------------------------------------------------------------------------------------
def _bin_image(img: np.ndarray, valid: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = (img.shape[0] // b) * b, (img.shape[1] // b) * b
    w = np.where(valid, img, 0.0)[:ny, :nx].reshape(ny // b, b, nx // b, b).sum((1, 3))
    n = valid[:ny, :nx].reshape(ny // b, b, nx // b, b).sum((1, 3))
    ok = n == b * b
    return np.where(ok, w / (b * b), 0.0), ok


def _centre_from_symmetry(
    img: np.ndarray, valid: np.ndarray, guess: tuple[float, float] | None, window_px: float
) -> tuple[float, float]:
    """Beam centre (x, y) in pyFAI pixel coordinates from the point symmetry of the rings.

    A powder pattern f(x) on an untilted detector obeys f(x) = f(2c − x); its auto-convolution
    (f * f)(s) = Σ_x f(x) f(s − x) then peaks at s = 2c.  The rings are high-pass filtered and
    clipped (a hot pixel would make its own peak at 2x), and the convolution is normalised by
    Σ f² over the overlap of the valid pixels, (f² * m)(s), so a perfect symmetry scores 1.
    """
    b = max(1, int(round(max(img.shape) / 1024)))
    w, ok = _bin_image(img, valid, b)
    okf = ok.astype(np.float64)
    sm = ndimage.gaussian_filter(w, 4.0) / np.maximum(ndimage.gaussian_filter(okf, 4.0), 1e-3)
    hp = np.where(ok, w - sm, 0.0)
    if not np.any(hp > 0):
        raise CalibrationError("blank image: no ring signal above the local background")
    hi = np.percentile(hp[ok], 99.5)
    hp = np.clip(hp, 0.0, hi if hi > 0 else None)
    shape = (2 * hp.shape[0], 2 * hp.shape[1])
    fh = np.fft.rfft2(hp, shape)
    fm = np.fft.rfft2(okf, shape)
    conv = np.fft.irfft2(fh * fh, shape)
    overlap = np.fft.irfft2(fm * fm, shape)
    energy = np.fft.irfft2(np.fft.rfft2(hp * hp, shape) * fm, shape)
    keep = (overlap > 0.1 * okf.sum()) & (energy > 1e-12 * float(np.sum(hp * hp)))
    score = np.where(keep, conv / np.where(keep, energy, 1.0), -np.inf)
    if guess is not None:
        sy, sx = np.mgrid[0 : shape[0], 0 : shape[1]]
        # s = k1 + k2 in binned indices; centre position = (s + 1) * b / 2
        cx = (sx + 1) * b / 2.0
        cy = (sy + 1) * b / 2.0
        far = np.hypot(cx - guess[0], cy - guess[1]) > window_px
        score[far] = -np.inf
    if not np.isfinite(score).any():
        raise CalibrationError("cannot find the beam centre: the image has too few valid pixels")
    ky, kx = np.unravel_index(np.argmax(score), score.shape)
    return (kx + 1) * b / 2.0, (ky + 1) * b / 2.0


@dataclass
class _Pixels:
    """Valid pixel positions (pyFAI coordinates: centre of pixel i at i + 0.5) and values."""

    x: np.ndarray
    y: np.ndarray
    v: np.ndarray


def _pixels(img: np.ndarray, valid: np.ndarray, nmax: int, seed: int = 0) -> _Pixels:
    yy, xx = np.nonzero(valid)
    v = img[yy, xx].astype(np.float64)
    if v.size > nmax:
        k = np.random.default_rng(seed).choice(v.size, nmax, replace=False)
        yy, xx, v = yy[k], xx[k], v[k]
    hi = np.percentile(v, 99.9)
    v = np.minimum(v, hi)
    return _Pixels(xx + 0.5, yy + 0.5, v - v.mean())


def _between_ss(px: _Pixels, cx: float, cy: float, step: float, rmax: float) -> float:
    r = np.hypot(px.x - cx, px.y - cy)
    sel = r < rmax
    k = (r[sel] / step).astype(np.int64)
    s = np.bincount(k, px.v[sel])
    c = np.bincount(k)
    return float(np.sum(s * s / np.maximum(c, 1)))


def _refine_centre(
    px: _Pixels, cx: float, cy: float, rmax: float, half: float = 4.0
) -> tuple[float, float]:
    """Centre that maximises the between-radius-bin sum of squares (the sharpest rings)."""
    best = (cx, cy)
    for h, st in ((half, 1.0), (1.0, 0.25)):
        g = np.arange(-h, h + 1e-9, st)
        sc = np.array(
            [[_between_ss(px, best[0] + a, best[1] + b, 0.5, rmax) for a in g] for b in g]
        )
        j = np.unravel_index(np.argmax(sc), sc.shape)
        best = (best[0] + g[j[1]], best[1] + g[j[0]])
    return best


def _radial_profile(
    img: np.ndarray, valid: np.ndarray, cx: float, cy: float, step: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and its standard error in radius bins of ``step`` pixels around (cx, cy)."""
    yy, xx = np.nonzero(valid)
    r = np.hypot(xx + 0.5 - cx, yy + 0.5 - cy)
    k = (r / step).astype(np.int64)
    v = img[yy, xx].astype(np.float64)
    s = np.bincount(k, v)
    s2 = np.bincount(k, v * v)
    c = np.bincount(k)
    rad = (np.arange(s.size) + 0.5) * step
    good = c >= 8
    mean = s[good] / c[good]
    sem = np.sqrt(np.clip(s2[good] / c[good] - mean**2, 0, None) / c[good])
    return rad[good], mean, sem


def _profile_peaks(
    rad: np.ndarray,
    prof: np.ndarray,
    min_sep: float,
    nsigma: float = 6.0,
    sem: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and prominences (in noise units) of the peaks of a radial profile.

    The noise is √2 × the background standard error near the peak (from ``sem``) when given,
    else the robust scatter of the profile's first differences.
    """
    if prof.size < 20:
        return np.empty(0), np.empty(0)
    step = float(np.median(np.diff(rad)))
    base = ndimage.minimum_filter1d(prof, size=max(5, int(12 * min_sep / step)))
    base = ndimage.uniform_filter1d(base, size=max(5, int(12 * min_sep / step)))
    y = prof - base
    d = np.diff(y)
    noise = 1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0)
    floor = 1e-9 * max(1.0, float(np.max(np.abs(prof))))
    pk, props = signal.find_peaks(y, prominence=0.0, distance=max(1, int(min_sep / step)))
    if sem is not None and sem.size:
        # local noise: the standard error of the peak bin (the baseline has its own, hence √2)
        # the background's standard error near the peak (the peak bin's own is inflated by
        # any azimuthal spread of the ring)
        wide = max(5, int(12 * min_sep / step))
        sem_bg = ndimage.median_filter(sem, size=wide, mode="nearest")
        sem_bg = np.minimum(sem_bg, ndimage.minimum_filter1d(sem, size=wide) * 3.0)
        noise = np.maximum(math.sqrt(2.0) * sem_bg[pk], floor)
    else:
        noise = np.full(pk.size, max(noise, floor))
    # significant, and not negligible next to the strongest ring (beamstop edges, arm shadow)
    sig = props["prominences"] / noise
    keep = (sig > nsigma) & (sig > 0.02 * (sig.max() if sig.size else 0.0))
    pk, prom, noise = pk[keep], props["prominences"][keep], noise[keep]
    if pk.size == 0:
        return np.empty(0), np.empty(0)
    # sub-bin position: parabola through the three highest samples
    pos = rad[pk].astype(float)
    inner = (pk > 0) & (pk < y.size - 1)
    a, b0, c = y[pk[inner] - 1], y[pk[inner]], y[pk[inner] + 1]
    den = a - 2 * b0 + c
    off = np.where(den != 0, 0.5 * (a - c) / np.where(den != 0, den, 1), 0.0)
    pos[inner] += np.clip(off, -0.5, 0.5) * step
    return pos, prom / noise


@dataclass
class _Assignment:
    distance_m: float
    matched: int
    observed: int
    missing: int
    score: float


def _assign_rings(
    radii_px: np.ndarray,
    strength: np.ndarray,
    tth: np.ndarray,
    pixel_m: float,
    dist_range_m: tuple[float, float],
) -> _Assignment:
    """Distance and ring order from the ratios of ring radii.

    Each hypothesis "observed ring j is calibrant ring i" gives D = R_j p / tan 2θ_i.  A
    hypothesis scores +w for each observed ring within tolerance of a predicted ring, −w for
    each observed ring that matches none, and −½ for each predicted, resolvable ring inside the
    observed radius range that is not seen (so that D/2 or D/√2 aliases of the true distance
    lose).  Only predicted rings resolvable from their neighbours can match, so that a dense
    set of lines (a wrong calibrant far out in Q) explains nothing.  w grows with the peak's
    prominence (capped) so that noise peaks count less.
    """
    order = np.argsort(radii_px)
    radii_px, strength = radii_px[order], strength[order]
    w = np.clip(strength / 10.0, 0.3, 1.0)
    tan_t = np.tan(tth[tth < math.radians(89.0)])
    if tan_t.size < 2 or radii_px.size < 2:
        return _Assignment(float("nan"), 0, int(radii_px.size), 0, -np.inf)
    lead = radii_px[np.argsort(-strength)[:8]]
    cands = (lead[:, None] * pixel_m / tan_t[None, : min(tan_t.size, 30)]).ravel()
    cands = cands[(cands >= dist_range_m[0]) & (cands <= dist_range_m[1])]
    tol = np.maximum(1.5, 0.006 * radii_px)
    rmin, rmax = radii_px.min() - 2.0, radii_px.max() + 2.0
    best = _Assignment(float("nan"), 0, int(radii_px.size), 0, -np.inf)
    for d in np.unique(np.round(cands, 6)):
        for _ in range(2):  # score, least-squares distance from the matches, score again
            pred = d * tan_t / pixel_m
            j = np.clip(np.searchsorted(pred, radii_px), 1, pred.size - 1)
            near = np.where(np.abs(pred[j - 1] - radii_px) < np.abs(pred[j] - radii_px), j - 1, j)
            dr = np.abs(pred[near] - radii_px)
            gaps = np.diff(pred)
            sep = np.minimum(np.r_[np.inf, gaps], np.r_[gaps, np.inf])
            resolvable = sep > 2.5 * np.maximum(1.5, 0.006 * pred)
            ok = (dr < tol) & resolvable[near]
            if ok.sum() >= 2:
                t_ok = tan_t[near[ok]]
                d = float(np.sum(radii_px[ok] * pixel_m * t_ok) / np.sum(t_ok**2))
        resolvable &= (pred > rmin) & (pred < rmax)
        seen = np.zeros(pred.size, bool)
        seen[near[ok]] = True
        missing = int(np.sum(resolvable & ~seen))
        score = float(np.sum(w[ok]) - np.sum(w[~ok]) - 0.5 * missing)
        if score > best.score:
            best = _Assignment(d, int(ok.sum()), int(radii_px.size), missing, score)
    return best


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CalibrationResult:
    """A refined detector geometry and how well the calibrant rings support it.

    Attributes
    ----------
    dist_m, poni1_m, poni2_m : float
        pyFAI distance and point of normal incidence (m).
    rot1_rad, rot2_rad, rot3_rad : float
        pyFAI detector rotations (rad).
    wavelength_A : float
        Wavelength (Å), refined only when asked.
    rms_2theta_deg : float
        RMS of 2θ_obs − 2θ_calc over the control points (degrees).
    n_rings, n_points : int
        Rings and control points used in the final refinement.
    beam_center_px : (float, float)
        Direct-beam position (x = column, y = row) in pixels, Fit2D convention.
    direct_distance_m : float
        Sample to direct-beam-spot distance (m), Fit2D convention.
    control_points : (N, 3) ndarray
        Row, column (pixels) and calibrant ring index of each control point.
    residuals_deg : (N,) ndarray
        2θ_obs − 2θ_calc of each control point (degrees).
    rings_expected, rings_found : int
        Resolvable calibrant rings inside the image and how many of them a 1-D integration
        shows at the predicted place.
    mask : (ny, nx) ndarray of bool
        The mask used (True = masked).
    poni_text : str
        The PONI file (version 2.1) as text.
    geometry : dict
        pyFAI ``get_config()`` of the geometry (JSON-able).
    detector_name : str
    calibrant : str
    start : dict
        The start geometry (centre, distance) that the robust search found.
    """

    dist_m: float
    poni1_m: float
    poni2_m: float
    rot1_rad: float
    rot2_rad: float
    rot3_rad: float
    wavelength_A: float
    rms_2theta_deg: float
    n_rings: int
    n_points: int
    beam_center_px: tuple[float, float]
    direct_distance_m: float
    control_points: np.ndarray
    residuals_deg: np.ndarray
    rings_expected: int
    rings_found: int
    mask: np.ndarray
    poni_text: str
    geometry: dict
    detector_name: str
    calibrant: str
    start: dict = field(default_factory=dict)

    def integrator(self):
        """A pyFAI ``AzimuthalIntegrator`` with this geometry."""
        from pyFAI.integrator.azimuthal import AzimuthalIntegrator

        ai = AzimuthalIntegrator()
        ai.set_config(dict(self.geometry))
        return ai

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON summary (the CLI report)."""
        return {
            "dist_m": self.dist_m,
            "poni1_m": self.poni1_m,
            "poni2_m": self.poni2_m,
            "rot1_rad": self.rot1_rad,
            "rot2_rad": self.rot2_rad,
            "rot3_rad": self.rot3_rad,
            "wavelength_A": self.wavelength_A,
            "rms_2theta_deg": self.rms_2theta_deg,
            "n_rings": self.n_rings,
            "n_points": self.n_points,
            "beam_center_x_px": self.beam_center_px[0],
            "beam_center_y_px": self.beam_center_px[1],
            "direct_distance_m": self.direct_distance_m,
            "rings_expected": self.rings_expected,
            "rings_found": self.rings_found,
            "masked_fraction": float(np.mean(self.mask)),
            "detector": self.detector_name,
            "calibrant": self.calibrant,
            "start": dict(self.start),
        }


def _poni_text(ai) -> str:
    from pyFAI.io.ponifile import PoniFile

    buf = _io.StringIO()
    PoniFile(ai).write(buf)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------------
def calibrate(
    image: np.ndarray,
    *,
    calibrant: str,
    wavelength_A: float,
    detector=None,
    mask: np.ndarray | None = None,
    distance_guess_m: float | None = None,
    center_guess_px: tuple[float, float] | None = None,
    refine_wavelength: bool = False,
    refine_rot3: bool = False,
    max_rings: int | None = 24,
    auto_masking: bool = True,
    progress: Callable[[str], None] | None = None,
) -> CalibrationResult:
    """Calibrate the detector geometry from one calibrant image, without a GUI.

    Parameters
    ----------
    image : (ny, nx) ndarray
        Calibrant frame (raw or dark-subtracted).
    calibrant : str
        pyFAI calibrant name (``"CeO2"``, ``"LaB6"``, ``"Ni"``, ``"Si"``, ...).
    wavelength_A : float
        Wavelength in Å.  Fixed unless ``refine_wavelength``.
    detector : pyFAI Detector, optional
        Default: a 200 µm detector of the image's shape (:func:`make_detector`).
    mask : (ny, nx) ndarray, optional
        User mask (non-zero = bad), combined with the automatic mask.
    distance_guess_m : float, optional
        Sample–detector distance guess (m).  Without it 0.05–5 m are searched.
    center_guess_px : (float, float), optional
        Beam centre guess (x = column, y = row), pixels.  Without it the whole image is searched.
    refine_wavelength, refine_rot3 : bool
        Free the wavelength / rot3 in the last refinement (both fixed by default).
    max_rings : int, optional
        Use at most this many calibrant rings (default 24; None: all inside the image).
    auto_masking : bool
        Add :func:`auto_mask` to ``mask`` (default True).
    progress : callable, optional
        Called with a short text at each step (e.g. to log on stderr).

    Returns
    -------
    CalibrationResult

    Raises
    ------
    InputError
        Bad arguments (wavelength, shapes, ...).
    CalibrationError
        Blank image, rings that do not match the calibrant at this wavelength, too few control
        points, or rings not found where the refined geometry predicts them.

    Notes
    -----
    The refinement minimises Σ(2θ_obs − 2θ_calc)² over the control points
    (pyFAI ``GeometryRefinement.refine3``) [2]_ [3]_.  The start geometry (centre, distance, ring
    order) comes from ratios of ring radii, R_i = D tan 2θ_i / p, with 2θ_i = 2 asin(λ/2d_i).
    """
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    say = progress or (lambda _msg: None)
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise InputError(f"image must be 2-D, got shape {img.shape}")
    _check_wavelength(wavelength_A)
    if distance_guess_m is not None and not (0.01 <= distance_guess_m <= 10.0):
        raise InputError(f"distance guess {distance_guess_m!r} m out of range [0.01, 10] m")
    cal = get_calibrant(calibrant, wavelength_A)
    if detector is None:
        detector = make_detector(shape=img.shape)
    if detector.shape is not None and tuple(detector.shape) != img.shape:
        raise InputError(
            f"image shape {img.shape} differs from detector {detector.name} shape "
            f"{tuple(detector.shape)}"
        )
    if detector.shape is None:
        detector.shape = img.shape
        detector.max_shape = img.shape
    pixel_m = float(math.sqrt(detector.pixel1 * detector.pixel2))

    finite = img[np.isfinite(img)]
    if finite.size == 0 or float(np.ptp(finite)) == 0.0:
        raise CalibrationError("blank image: all pixels are equal or not finite")
    say("masking")
    det_mask = detector.mask
    if auto_masking:
        bad = auto_mask(img, detector_mask=det_mask, user_mask=mask)
    else:
        bad = ~np.isfinite(img)
        for m in (det_mask, mask):
            if m is not None:
                if np.shape(m) != img.shape:
                    raise InputError(f"mask shape {np.shape(m)} differs from image {img.shape}")
                bad |= np.asarray(m) != 0
    valid = ~bad
    if valid.mean() < 0.05:
        raise CalibrationError(f"only {valid.mean():.1%} of the pixels are usable")
    vals = img[valid]
    spread = 1.4826 * float(np.median(np.abs(vals - np.median(vals))))
    if float(np.std(vals)) <= 1e-12 or float(np.percentile(vals, 99.9) - np.median(vals)) <= 0:
        raise CalibrationError("blank image: the unmasked pixels are (nearly) constant")

    # ---- start geometry ------------------------------------------------------------------
    say("beam centre from ring symmetry")
    ny, nx = img.shape
    window = max(50.0, 0.1 * max(ny, nx))
    cx, cy = _centre_from_symmetry(img, valid, center_guess_px, window)
    px = _pixels(img, valid, 400_000)
    # profile around the rough centre -> ring radii -> radius that holds ~8 rings
    rad, prof, sem = _radial_profile(img, valid, cx, cy)
    pos, _ = _profile_peaks(rad, prof, min_sep=2.0, sem=sem)
    rmax_c = float(
        np.clip(pos[min(7, pos.size - 1)] if pos.size else 300.0, 150.0, 0.6 * max(ny, nx))
    )
    cx, cy = _refine_centre(px, cx, cy, rmax_c)
    rad, prof, sem = _radial_profile(img, valid, cx, cy, step=0.5)
    pos, strength = _profile_peaks(rad, prof, min_sep=2.0, sem=sem)
    if pos.size < 3:
        raise CalibrationError(
            f"blank image or no rings: found {pos.size} ring(s) in the radial profile around "
            f"({cx:.1f}, {cy:.1f}) px, need at least 3 (noise level {spread:.3g})"
        )
    tth_all = _unique_tth(cal)
    if distance_guess_m is not None:
        drange = (0.75 * distance_guess_m, 1.25 * distance_guess_m)
    else:
        drange = (0.03, 5.0)
    # fit the ratios on the inner rings, where tilts distort least
    use = pos < max(rmax_c * 1.5, np.sort(pos)[min(11, pos.size - 1)] + 1)
    asg = _assign_rings(pos[use], strength[use], tth_all, pixel_m, drange)
    say(
        f"start: centre ({cx:.1f}, {cy:.1f}) px, distance {asg.distance_m * 1e3:.1f} mm, "
        f"{asg.matched}/{asg.observed} rings matched"
    )
    if not (asg.matched >= 3 and asg.matched >= 0.6 * asg.observed and asg.missing <= asg.matched):
        raise CalibrationError(
            f"the rings do not match calibrant {calibrant} at {wavelength_A} Å: best distance "
            f"{asg.distance_m * 1e3:.1f} mm explains {asg.matched} of {asg.observed} rings seen "
            f"({asg.missing} predicted rings missing); check --calibrant and --wavelength"
        )
    start = {"center_x_px": cx, "center_y_px": cy, "distance_m": asg.distance_m}

    # ---- pyFAI refinement ----------------------------------------------------------------
    ai0 = AzimuthalIntegrator(detector=detector, wavelength=wavelength_A * 1e-10)
    ai0.setFit2D(asg.distance_m * 1e3, cx, cy)
    geo, cp, res_deg, n_rings = _refine(
        img, bad, cal, detector, ai0, refine_wavelength, refine_rot3, max_rings, say
    )
    ai = AzimuthalIntegrator()
    ai.set_config(geo.get_config())

    # ---- refuse a bad result -------------------------------------------------------------
    expected, found, extra = _check_rings(ai, img, bad, cal)
    if expected < 3 or found < max(3, math.ceil(0.8 * expected)) or extra > 1:
        raise CalibrationError(
            f"rings not found where predicted: {found} of {expected} resolvable {calibrant} "
            f"rings seen at the refined geometry, {extra} strong unexplained peak(s); "
            "check --calibrant, --wavelength and the guesses"
        )
    f2d = ai.getFit2D()
    rms_deg = float(np.sqrt(np.mean(res_deg**2)))
    pix_deg = math.degrees(pixel_m / ai.dist)
    if rms_deg > pix_deg:
        raise CalibrationError(
            f"poor fit: RMS 2θ residual {rms_deg:.4f}° exceeds one pixel ({pix_deg:.4f}°)"
        )
    return CalibrationResult(
        dist_m=float(ai.dist),
        poni1_m=float(ai.poni1),
        poni2_m=float(ai.poni2),
        rot1_rad=float(ai.rot1),
        rot2_rad=float(ai.rot2),
        rot3_rad=float(ai.rot3),
        wavelength_A=float(f"{ai.wavelength * 1e10:.12g}"),
        rms_2theta_deg=rms_deg,
        n_rings=n_rings,
        n_points=int(cp.shape[0]),
        beam_center_px=(float(f2d["centerX"]), float(f2d["centerY"])),
        direct_distance_m=float(f2d["directDist"]) * 1e-3,
        control_points=cp,
        residuals_deg=res_deg,
        rings_expected=expected,
        rings_found=found,
        mask=bad,
        poni_text=_poni_text(ai),
        geometry=ai.get_config(),
        detector_name=str(detector.name),
        calibrant=calibrant,
        start=start,
    )


def _refine(img, bad, cal, detector, ai0, refine_wavelength, refine_rot3, max_rings, say):
    """pyFAI ring extraction + refinement, with growing ring count and outlier rejection."""
    from pyFAI.goniometer import SingleGeometry

    det = detector
    old_mask = det.mask
    det.mask = bad.astype(np.int8)
    try:
        sg = SingleGeometry(
            "calib", image=img, calibrant=cal, detector=det, geometry=ai0.get_config()
        )
        gr = sg.geometry_refinement
        fix = ["rot3", "wavelength"]
        ntot = _unique_tth(cal).size
        limit = ntot if max_rings is None else min(max_rings, ntot)
        schedule = [n for n in (4, 10) if n < limit] + [limit]
        cp = np.empty((0, 3))
        res = np.empty(0)
        for step, nr in enumerate(schedule):
            say(f"extracting up to {nr} rings")
            sg.extract_cp(max_rings=nr, pts_per_deg=1.0)
            data = np.asarray(gr.data, dtype=float) if gr.data is not None else np.empty((0, 3))
            if data.shape[0] < 10:
                raise CalibrationError(
                    f"too few control points ({data.shape[0]}) on the first {nr} rings"
                )
            if step == 0:
                # first pass: tilts fixed to 0, then free
                gr.refine3(fix=["rot1", "rot2", "rot3", "wavelength"])
            for _ in range(3):
                gr.refine3(fix=fix)
                data = np.asarray(gr.data, dtype=float)
                res = gr.tth(data[:, 0], data[:, 1]) - gr.calc_2th(data[:, 2].astype(int))
                mad = 1.4826 * np.median(np.abs(res - np.median(res)))
                keep = np.abs(res - np.median(res)) < max(5.0 * mad, 1e-7)
                if keep.all():
                    break
                gr.data = data[keep]
            if step == len(schedule) - 1:
                final_fix = []
                if not refine_rot3:
                    final_fix.append("rot3")
                if not refine_wavelength:
                    final_fix.append("wavelength")
                if final_fix != fix:
                    gr.refine3(fix=final_fix)
            data = np.asarray(gr.data, dtype=float)
            cp = data[:, :3].copy()
            res = gr.tth(data[:, 0], data[:, 1]) - gr.calc_2th(data[:, 2].astype(int))
        n_rings = int(np.unique(cp[:, 2]).size)
        return gr, cp, np.degrees(res), n_rings
    finally:
        det.mask = old_mask


def _check_rings(ai, img, bad, cal) -> tuple[int, int, int]:
    """Resolvable calibrant rings inside the image, how many are seen, unexplained peaks.

    The image is averaged in 1-pixel 2θ bins with the refined geometry; a calibrant ring counts
    as found when the highest bin of its neighbourhood lies within 1.5 bins of its predicted 2θ
    and stands 5 robust σ above the neighbourhood's background.
    """
    tth_map = ai.array_from_unit(img.shape, "center", "2th_deg", scale=True)
    t = tth_map[~bad]
    lo, hi = float(t.min()), float(np.percentile(t, 99))
    pix_deg = math.degrees(ai.detector.pixel1 / ai.dist)
    step = pix_deg
    nb = max(16, int((hi - lo) / step))
    k = ((t - lo) / step).astype(np.int64)
    ok = (k >= 0) & (k < nb)
    s = np.bincount(k[ok], img[~bad][ok], minlength=nb)
    c = np.bincount(k[ok], minlength=nb)
    good = c > 20
    x = lo + (np.arange(nb) + 0.5) * step
    prof = np.where(good, s / np.maximum(c, 1), np.nan)
    x, prof = x[good], prof[good]
    tth = np.degrees(_unique_tth(cal))
    inside = (tth > x[0] + 3 * step) & (tth < x[-1] - 3 * step)
    gaps = np.diff(tth)
    sep = np.minimum(np.r_[np.inf, gaps], np.r_[gaps, np.inf])
    # resolvable: 4 bins (4 pixels) from its neighbours; only the first 12, where rings stand
    # out from the overlap continuum
    resolvable = np.nonzero(inside & (sep > 4 * step))[0][:12]
    tol = 1.5 * step
    found = 0
    for i in resolvable:
        half = min(0.5 * sep[i], 10 * step)
        win = np.abs(x - tth[i]) <= half
        if win.sum() < 5:
            continue
        xw, yw = x[win], prof[win]
        base = np.percentile(yw, 20)
        low = yw[yw <= np.median(yw)]
        scatter = 1.4826 * np.median(np.abs(low - np.median(low))) + 1e-12 * abs(base)
        j = int(np.argmax(yw))
        if abs(xw[j] - tth[i]) <= tol and yw[j] - base > 5 * scatter:
            found += 1
    # strong peaks (prominence > 10 % of the strongest) below the last tested ring that no
    # calibrant ring explains
    extra = 0
    if resolvable.size:
        upto = tth[resolvable[-1]] + tol
        sel = x <= upto
        pk, props = signal.find_peaks(prof[sel], prominence=0.0)
        if pk.size:
            prom = props["prominences"]
            strong = x[sel][pk[prom > 0.1 * prom.max()]]
            extra = int(sum(not np.any(np.abs(tth - p) < tol) for p in strong))
    return int(resolvable.size), int(found), extra


# --------------------------------------------------------------------------------------------
# resolution
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResolutionFit:
    """The fitted instrument resolution and where it came from (see the module docstring).

    The model itself is a :class:`~xrdpdf.Resolution` (model ``"poly"`` in Q), the one
    that refinement and sizing read back with :func:`~xrdpdf.load_resolution`; this
    class adds the provenance written to the same JSON file.

    Attributes
    ----------
    resolution : xrdpdf.physics.resolution.Resolution
        FWHM(Q) = Σ c_k Q^k (Å⁻¹) and η(Q) = clip(Σ e_k Q^k, 0, 1).
    q_range_invA : (float, float)
        Q range of the fitted calibrant peaks.
    peaks : tuple of dict
        The fitted peaks (``q_invA``, ``fwhm_invA``, ``eta``, ``fwhm_err_invA``, ``eta_err``).
    integration_method : tuple of str
    calibrant : str
    """

    resolution: Resolution
    q_range_invA: tuple[float, float] = (0.0, float("inf"))
    peaks: tuple[dict, ...] = ()
    integration_method: tuple[str, ...] = ("no", "histogram", "cython")
    calibrant: str = ""

    def fwhm_invA(self, q: np.ndarray | float) -> np.ndarray:
        """Instrumental FWHM (Å⁻¹) at Q (Å⁻¹); never below 0."""
        return self.resolution.fwhm_eta_q(q)[0]

    def eta(self, q: np.ndarray | float) -> np.ndarray:
        """Lorentzian fraction η of the instrumental pseudo-Voigt at Q (Å⁻¹), in [0, 1]."""
        return self.resolution.fwhm_eta_q(q)[1]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of the resolution file (model plus provenance)."""
        doc: dict[str, Any] = {"schema": RESOLUTION_SCHEMA}
        doc.update(self.resolution.to_dict())
        doc.update(
            q_range_invA=list(self.q_range_invA),
            integration_method=list(self.integration_method),
            calibrant=self.calibrant,
            peaks=[dict(p) for p in self.peaks],
        )
        return doc


def _pseudo_voigt(x, area, x0, fwhm, eta, b0, b1):
    fwhm = abs(fwhm)
    z = (x - x0) / fwhm
    g = math.sqrt(4 * math.log(2) / math.pi) / fwhm * np.exp(-4 * math.log(2) * z * z)
    lor = 2.0 / (math.pi * fwhm) / (1.0 + 4.0 * z * z)
    return area * (eta * lor + (1.0 - eta) * g) + b0 + b1 * (x - x0)


def _fit_peak(q, y, q0, half, f0, step) -> dict | None:
    """Pseudo-Voigt + linear background fit of one peak on q0 ± half; None if unusable."""
    win = (q > q0 - half) & (q < q0 + half)
    if win.sum() < 10:
        return None
    x, yy = q[win], y[win]
    b0 = float(min(yy[0], yy[-1]))
    area0 = float(max(np.sum(yy - b0) * step, 1e-12))
    p0 = [area0, q0, f0, 0.3, b0, 0.0]
    lo = [0.0, q0 - f0, 0.5 * step, 0.0, -np.inf, -np.inf]
    hi = [np.inf, q0 + f0, 2 * half, 1.0, np.inf, np.inf]
    try:
        popt, pcov = optimize.curve_fit(_pseudo_voigt, x, yy, p0=p0, bounds=(lo, hi), maxfev=4000)
    except (RuntimeError, ValueError):
        return None
    err = np.sqrt(np.clip(np.diag(pcov), 0, None))
    if not np.all(np.isfinite(err)):
        return None
    height = popt[0] / popt[2]
    noise = float(np.std(yy - _pseudo_voigt(x, *popt)))
    if height < 10 * max(noise, 1e-12) or popt[2] > 0.99 * 2 * half or err[2] > 0.2 * popt[2]:
        return None
    return {
        "q_invA": float(popt[1]),
        "fwhm_invA": float(abs(popt[2])),
        "fwhm_err_invA": float(err[2]),
        "eta": float(popt[3]),
        "eta_err": float(err[3]),
    }


def instrument_resolution(
    image: np.ndarray,
    result: CalibrationResult,
    *,
    calibrant: str | None = None,
    npt: int | None = None,
    method: Sequence[str] = ("no", "histogram", "cython"),
    max_peaks: int = 30,
) -> ResolutionFit:
    """Fit the calibrant peaks of an integrated image and model the instrumental widths.

    Parameters
    ----------
    image : (ny, nx) ndarray
        The calibrant frame that was calibrated.
    result : CalibrationResult
        Its geometry and mask.
    calibrant : str, optional
        Default ``result.calibrant``.
    npt : int, optional
        Number of Q bins (default: 4 bins per pixel across the Q range).
    method : sequence of str
        pyFAI integration method.  Use the method with which the samples are integrated, so
        that the integration's own broadening is part of the instrument.
    max_peaks : int
        Fit at most this many resolved peaks.

    Returns
    -------
    ResolutionFit

    Raises
    ------
    CalibrationError
        Fewer than 3 resolved peaks could be fitted.

    Notes
    -----
    Each calibrant peak separated from its neighbours by more than 5 estimated FWHM is fitted
    on ±2.5 FWHM with pV(Q) = A[η L + (1 − η) G] + b0 + b1(Q − Q0) (common FWHM).  FWHM(Q) is fitted
    by a quadratic (a line below 5 peaks), weighted with 1/σ(FWHM), and η(Q) by a line.
    """
    ai = result.integrator()
    cal = get_calibrant(calibrant or result.calibrant, result.wavelength_A)
    img = np.asarray(image, dtype=np.float64)
    qmap = ai.array_from_unit(img.shape, "center", "q_A^-1", scale=True)
    qv = qmap[~result.mask]
    qlo, qhi = float(np.percentile(qv, 0.5)), float(np.percentile(qv, 99.5))
    dq_pix = (4 * math.pi / (result.wavelength_A)) * 0.5 * (ai.detector.pixel1 / ai.dist)
    if npt is None:
        # bins of half a pixel: finer bins alias the pixel grid without pixel splitting
        npt = int(min(20000, max(200, 2 * (qhi - qlo) / dq_pix)))
    res1d = ai.integrate1d(
        img,
        npt,
        unit="q_A^-1",
        mask=result.mask,
        method=tuple(method),
        radial_range=(qlo, qhi),
        correctSolidAngle=True,
        polarization_factor=None,
    )
    q = np.asarray(res1d.radial, dtype=float)
    y = np.asarray(res1d.intensity, dtype=float)
    good = np.isfinite(y) & (y != 0)
    q, y = q[good], y[good]
    step = float(np.median(np.diff(q)))
    qpk = np.unique(np.round(2 * math.pi / np.asarray(cal.dspacing, dtype=float), 9))
    qpk = qpk[(qpk > q[0] + 0.05) & (qpk < q[-1] - 0.05)]
    gaps = np.diff(qpk)
    sep = np.minimum(np.r_[np.inf, gaps], np.r_[gaps, np.inf])
    # width scale from the first well isolated peak, fitted on a wide window
    f0 = max(2.0 * dq_pix, 4 * step)
    for i in np.nonzero(sep > 10 * f0)[0][:3]:
        fit = _fit_peak(q, y, qpk[i], min(0.4 * sep[i], 10 * f0), f0, step)
        if fit is not None:
            f0 = max(fit["fwhm_invA"], 2 * step)
            break
    peaks: list[dict] = []
    for i, q0 in enumerate(qpk):
        # resolved: neighbours further than 5 FWHM; fitted on +-2.5 FWHM
        if sep[i] < 5.0 * f0:
            continue
        fit = _fit_peak(q, y, q0, 2.5 * f0, f0, step)
        if fit is not None:
            peaks.append(fit)
        if len(peaks) >= max_peaks:
            break
    if len(peaks) < 3:
        raise CalibrationError(
            f"only {len(peaks)} resolved calibrant peak(s) could be fitted; need 3 for the "
            "resolution model"
        )
    qp = np.array([p["q_invA"] for p in peaks])
    fw = np.array([p["fwhm_invA"] for p in peaks])
    fe = np.array([max(p["fwhm_err_invA"], 1e-3 * p["fwhm_invA"]) for p in peaks])
    deg = 2 if len(peaks) >= 5 else 1
    fw_c = np.polynomial.polynomial.polyfit(qp, fw, deg, w=1.0 / fe)
    et = np.array([p["eta"] for p in peaks])
    ee = np.array([max(p["eta_err"], 0.02) for p in peaks])
    et_c = np.polynomial.polynomial.polyfit(qp, et, 1, w=1.0 / ee)
    model = Resolution(
        "poly",
        tuple(float(c) for c in fw_c),
        tuple(float(c) for c in et_c),
        "q_A^-1",
        float(result.wavelength_A),
    )
    return ResolutionFit(
        resolution=model,
        q_range_invA=(float(qp.min()), float(qp.max())),
        peaks=tuple(peaks),
        integration_method=tuple(str(m) for m in method),
        calibrant=calibrant or result.calibrant,
    )
