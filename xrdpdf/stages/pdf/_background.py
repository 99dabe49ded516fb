"""Background interpolation and the automatic background scale (container features)."""

from __future__ import annotations

import numpy as np

from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern


def _interp_background(
    sample_q: np.ndarray, background: Pattern, qlo: float, qhi: float
) -> tuple[np.ndarray, np.ndarray | None]:
    bq = background.q
    step = float(np.median(np.diff(bq)))
    if bq[0] > qlo + 0.5 * step or bq[-1] < qhi - 0.5 * step:
        raise InputError(
            f"background {background.source} covers Q = {bq[0]:.4g}–{bq[-1]:.4g} Å⁻¹ but the "
            f"sample needs {qlo:.4g}–{qhi:.4g} Å⁻¹; it cannot be interpolated onto the sample grid"
        )
    ib = np.interp(sample_q, bq, background.y)
    sb = None if background.sigma is None else np.interp(sample_q, bq, background.sigma)
    return ib, sb


#: Span (Å⁻¹) of the local quartic that defines "sharp": features narrower than about a
#: third of it are kept by the high-pass of :func:`_auto_bkg_scale`.
SHARP_WIDTH = 0.12
#: Order of that local polynomial (Savitzky–Golay).
ORDER = 4
#: Smallest contrast of a container feature, relative to the container intensity.
MIN_CONTRAST = 0.03
#: Fewest container features (points) the automatic scale needs.
MIN_FEATURES = 5


def _sharp_part(y: np.ndarray, n: int) -> np.ndarray:
    """y minus its local least-squares polynomial (order :data:`ORDER`) over n points."""
    from scipy.signal import savgol_filter

    return y - savgol_filter(y, n, ORDER, mode="interp")


def _sharp_noise(sigma: np.ndarray | None, hp: np.ndarray, n: int) -> np.ndarray:
    """σ of the sharp part: from σ(I) through the filter, else the local MAD of ``hp``."""
    from scipy.signal import savgol_coeffs

    c = savgol_coeffs(n, ORDER)
    c[n // 2] -= 1.0
    gain = float(np.sqrt(np.sum(c * c)))
    if sigma is not None:
        return gain * sigma
    block = 25 * n
    out = np.empty_like(hp)
    for i in range(0, hp.size, block):
        seg = hp[i : i + block]
        out[i : i + block] = 1.4826 * np.median(np.abs(seg - np.median(seg)))
    return out


def _auto_bkg_scale(
    pattern: Pattern, background: Pattern, qmin: float, qmaxinst: float
) -> tuple[float, float | None]:
    r"""Background scale from the container's sharp features, capped by I_c ≥ 0.

    Returns the scale and, when the non-negativity cap set it, the (larger) scale
    the sharp features asked for; else None.

    Notes
    -----
    The measured intensity is :math:`I_s = I_{sample} + s I_{bg}`.  A container
    such as Kapton has features much narrower than anything the sample scatters
    in the same Q range (its 00l reflections and texture spikes at 0.3–0.9 Å⁻¹,
    0.02–0.06 Å⁻¹ wide, below the first peak of most samples).  Take from both
    patterns the part that a local quartic over :data:`SHARP_WIDTH` does not
    follow, :math:`h = y - \mathrm{SG}_4(y)` (the low-order polynomial that
    absorbs the sample's slowly varying part, applied locally; a quadratic
    leaves the curvature of the sample's Porod tail, ∝ Q⁻⁴, which biased s by
    −0.03…−0.06 on the mixtures below); then :math:`h_s = s\,h_{bg} + h_{sample}`
    with :math:`h_{sample}` ≈ 0 where the container has its features.  s is
    fitted on the points where :math:`|h_{bg}|` exceeds both 3σ of its noise
    (σ(I) through the filter, else the local MAD of h) and :data:`MIN_CONTRAST`
    of :math:`I_{bg}`, by least squares with a Cauchy loss (scale 3σ), so that
    sample features that do fall there (a Bragg peak) are down-weighted rather
    than followed.  The contrast floor keeps the container's strong features
    only: weak ones are where the sample's own peaks can lie (the Kapton file
    of tests/data/ni_xpd has 1–2 % features at the Ni peak positions 3.0–3.5
    and 5–6 Å⁻¹, traces of the sample).  The points come from the whole range
    where both patterns are positive up to ``qmaxinst``: the scale is a
    property of the two measurements, and the container's sharpest features lie
    below the usual ``qmin``.  The subtracted intensity cannot be negative
    (PDFgetX3 leaves bgscale to the user, who inspects it [1]_), so the result
    is capped at the smallest ratio of the smoothed I_s and I_bg on
    [qmin, qmaxinst]; when the container's features ask for more, the cap is
    returned (flagged).

    Measured on simulated mixtures (tests/test_pdf_bkg.py: Debye-equation
    Ni-like crystalline and amorphous-like powders + the real Kapton pattern of
    tests/data/ni_xpd, scales 0.5–1.5, 0.2 % independent noise on both
    measurements; 40 seeded mixtures): within −3.0…+4.0 % of the truth, a statistical error
    (1–3 % esd; it halves with the noise).  On the real Ni + Kapton set the
    features give 0.54 ± 0.02 and the cap 0.408, which is returned (the
    PDFgetXgui user chose 0.4; the Kapton features near the beam stop scale
    otherwise than its 1–2 Å⁻¹ hump in these data).

    References
    ----------
    .. [1] P. Juhás, T. Davis, C. L. Farrow, S. J. L. Billinge, J. Appl. Cryst. 46
           (2013) 560–566. https://doi.org/10.1107/S0021889813005190
    """
    from scipy.optimize import least_squares

    q = pattern.q
    use = (q <= qmaxinst + 1e-9) & (q >= background.q[0]) & (q <= background.q[-1])
    q = q[use]
    if q.size < 5 * MIN_FEATURES:
        raise InputError("bkg scale auto: too few points where sample and background overlap")
    step = float(np.median(np.diff(q)))
    grid = np.arange(q[0], q[-1] + 0.5 * step, step)
    ys = np.interp(grid, q, pattern.y[use])
    yb = np.interp(grid, background.q, background.y)
    ss = None if pattern.sigma is None else np.interp(grid, q, pattern.sigma[use])
    sb = None if background.sigma is None else np.interp(grid, background.q, background.sigma)
    n = max(ORDER + 3, 2 * int(round(0.5 * SHARP_WIDTH / step)) + 1)
    ok = (ys > 0) & (yb > 0)
    hs, hb = _sharp_part(ys, n), _sharp_part(yb, n)
    ns, nb = _sharp_noise(ss, hs, n), _sharp_noise(sb, hb, n)
    sel = ok & (np.abs(hb) > 3.0 * nb) & (np.abs(hb) > MIN_CONTRAST * yb)
    if sel.sum() < MIN_FEATURES:
        raise InputError(
            f"bkg scale auto: the background has {int(sel.sum())} sharp features "
            f"(< {MIN_FEATURES}) to match in the sample; a smooth container is absorbed by "
            "the correction polynomial whatever its scale; give bkg_scale"
        )
    hs, hb, ns, nb = hs[sel], hb[sel], ns[sel], nb[sel]
    s0 = max(float(hs @ hb) / float(hb @ hb), 0.0)

    def resid(p: np.ndarray) -> np.ndarray:
        return (hs - p[0] * hb) / np.sqrt(ns**2 + (p[0] * nb) ** 2 + 1e-300)

    fit = least_squares(resid, [s0], loss="cauchy", f_scale=3.0, bounds=([0.0], [np.inf]))
    scale = float(fit.x[0])
    from scipy.signal import savgol_filter

    band = ok & (grid >= qmin - 1e-9)
    if not band.any():
        raise InputError("bkg scale auto: no positive sample and background in [qmin, qmaxinst]")
    ratio = savgol_filter(ys, n, ORDER, mode="interp") / savgol_filter(yb, n, ORDER, mode="interp")
    cap = float(np.min(ratio[band]))
    if scale > cap:
        return max(cap, 0.0), scale
    return scale, None
