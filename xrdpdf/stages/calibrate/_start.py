"""A start geometry from the image alone: beam centre from ring symmetry, ring radii, ring order.

The centre comes from the point symmetry of the rings (an FFT auto-convolution, then the sharpest
radial profile); the ring order and distance from the *ratios* of the ring radii matched to the
calibrant d-spacings, which do not depend on the distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

from xrdpdf._core.errors import CalibrationError


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


def _inner_centre(img: np.ndarray, valid: np.ndarray, cx: float, cy: float) -> tuple[float, float]:
    """The symmetry centre again, from the inner rings only, around a first centre (cx, cy).

    Near the beam the rings are circles about the beam centre; further out a detector tilt
    makes them ellipses whose centres drift with radius, and on a large detector those outer
    rings (most of the pixels) pull the whole-image symmetry centre off by several pixels,
    enough to split a ring sharper than a pixel in the radial profile.
    """
    h = int(max(128, 0.15 * max(img.shape)))
    if 2 * h >= min(img.shape):
        return cx, cy
    x0, y0 = max(0, int(cx) - h), max(0, int(cy) - h)
    x1, y1 = int(cx) + h, int(cy) + h
    sub, ok = img[y0:y1, x0:x1], valid[y0:y1, x0:x1]
    if ok.sum() < 0.25 * ok.size:
        return cx, cy
    try:
        sx, sy = _centre_from_symmetry(sub, ok, (cx - x0, cy - y0), max(20.0, 0.25 * h))
    except CalibrationError:
        return cx, cy
    return sx + x0, sy + y0


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
    set of lines (a wrong calibrant far out in Q) explains nothing; an observed ring where
    unresolvable predicted rings blend is left out (``observed`` does not count it).  w grows
    with the peak's prominence (capped) so that noise peaks count less.
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
        # a ring seen where two or more predicted rings blend (closer than the detector
        # resolves: small detectors, high Q) neither matches nor counts against
        blend = ~ok & ~resolvable[near] & (dr < tol + sep[near])
        resolvable &= (pred > rmin) & (pred < rmax)
        seen = np.zeros(pred.size, bool)
        seen[near[ok]] = True
        missing = int(np.sum(resolvable & ~seen))
        score = float(np.sum(w[ok]) - np.sum(w[~ok & ~blend]) - 0.5 * missing)
        if score > best.score:
            observed = int(radii_px.size - blend.sum())
            best = _Assignment(d, int(ok.sum()), observed, missing, score)
    return best
