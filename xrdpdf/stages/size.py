r"""Scherrer crystallite sizes from single-peak fits, and a Williamson–Hall fit.

:func:`scherrer` finds peaks (or takes given Q positions), fits each group of
overlapping peaks with pseudo-Voigts on a linear background (lmfit), removes
the instrument width, and turns each sample width ΔQ (FWHM, Å⁻¹) into the diameter
of spheres with the size model of the whole-pattern refinement
(:mod:`xrdpdf.physics.crystallite`),

.. math::  D = \frac{2\pi\cdot 1.0286}{\Delta Q},\qquad L = \frac{K D}{1.10665}

L the Scherrer length for the constant K (L = Kλ/(β cosθ) for the exact sphere
profile, β its FWHM in 2θ radians), then averages the sizes with weights 1/σ² and
fits Williamson–Hall with the same model, sphere size ⊗ Lorentzian strain 2εQ.
Without a resolution or instrument width all broadening is the sample's and the
sizes are lower bounds (``size_is_lower_bound``).

Notes
-----
**Instrument deconvolution rule.** The observed profile (FWHM Γ, mixing η) and
the instrument profile are each split into a Gaussian and a Lorentzian FWHM by
inverting Thompson–Cox–Hastings (:func:`xrdpdf.physics.profiles.tch_split`).  Gaussian
widths subtract in quadrature, Lorentzian widths linearly:

.. math::

    \Gamma_{G,s} = \sqrt{\Gamma_{G,o}^2 - \Gamma_{G,i}^2},\qquad
    \Gamma_{L,s} = \Gamma_{L,o} - \Gamma_{L,i}

and the sample FWHM is their TCH combination.  A peak narrower than the
instrument gives no size (reported as ``None``).

**Which size.** ``diameter_A`` is always D.  ``size_A`` is the Scherrer length:
K = 0.9 (default) gives the cube root of the crystallite volume V^⅓ of spheres
(K = 0.892), K = 1.107 the sphere diameter D, K = 0.83 the volume-weighted column
length ⟨L⟩_vol = ¾D.  The result's ``size_definition`` says which.

**Mean.** Weighted mean :math:`\bar L = \sum w_iL_i/\sum w_i`, :math:`w_i=1/\sigma_i^2`;
its esd is the larger of :math:`1/\sqrt{\sum w_i}` and the scatter estimate
:math:`\sqrt{\sum w_i(L_i-\bar L)^2/((n-1)\sum w_i)}`.

References
----------
.. [1] J. I. Langford & A. J. C. Wilson (1978). J. Appl. Cryst. 11, 102.
       https://doi.org/10.1107/S0021889878012844
.. [2] G. K. Williamson & W. H. Hall (1953). Acta Metall. 1, 22.
       https://doi.org/10.1016/0001-6160(53)90006-6
.. [3] P. Thompson, D. E. Cox & J. B. Hastings (1987). J. Appl. Cryst. 20, 79.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import ConvergenceError, InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf._core.results import Result
from xrdpdf.physics.crystallite import (
    SPHERE_K_FWHM,
    combined_fwhm_eta,
    diameter_from_fwhm,
    scherrer_length,
)
from xrdpdf.physics.profiles import pseudo_voigt, tch_fwhm_eta, tch_split
from xrdpdf.physics.resolution import Resolution, scherrer_size_definition

__all__ = ["scherrer", "SizeResult", "PeakSize", "deconvolve_width"]


@dataclass(frozen=True)
class PeakSize:
    """One fitted peak (widths in Å⁻¹; ``size_A`` None when not resolvable).

    ``fwhm_obs_invA``/``eta`` are those of the fitted profile (instrument ⊗ sphere size),
    ``fwhm_sample_invA`` the sphere size profile's FWHM, ``diameter_A`` its D.
    """

    q_invA: float
    q_esd_invA: float | None
    fwhm_obs_invA: float
    fwhm_obs_esd_invA: float | None
    eta: float
    fwhm_inst_invA: float
    fwhm_sample_invA: float | None
    size_A: float | None
    size_esd_A: float | None
    tth_deg: float | None = None
    diameter_A: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class SizeResult(Result):
    """Per-peak Scherrer sizes, their weighted mean, and Williamson–Hall.

    Attributes
    ----------
    size_A, size_esd_A : float
        Weighted mean Scherrer size and its esd (module Notes).
    peaks : tuple of PeakSize
    k_scherrer : float
    size_definition : str
        Which size is meant (D, V^⅓ or ⟨L⟩_vol).
    wh_size_A, wh_size_esd_A, wh_strain, wh_strain_esd : float or None
        Williamson–Hall size and microstrain ε (None with fewer than 2 peaks).
    deconvolution : str
        The instrument rule used.
    failed_peaks : tuple of float
        Q of peaks whose fit failed (not in ``peaks``).
    diameter_A, diameter_esd_A : float
        Sphere diameter D of the mean size (:mod:`xrdpdf.physics.crystallite`).
    size_is_lower_bound : bool
        True without instrument information: all broadening attributed to the sample.
    """

    size_A: float
    size_esd_A: float
    peaks: tuple[PeakSize, ...]
    k_scherrer: float
    size_definition: str
    wh_size_A: float | None
    wh_size_esd_A: float | None
    wh_strain: float | None
    wh_strain_esd: float | None
    deconvolution: str
    failed_peaks: tuple[float, ...] = ()
    diameter_A: float | None = None
    diameter_esd_A: float | None = None
    size_is_lower_bound: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping with ``size_A``, ``size_esd_A``, ``peaks`` …"""
        return {
            "size_A": self.size_A,
            "size_esd_A": self.size_esd_A,
            "diameter_A": self.diameter_A,
            "diameter_esd_A": self.diameter_esd_A,
            "size_is_lower_bound": self.size_is_lower_bound,
            "size_definition": self.size_definition,
            "k_scherrer": self.k_scherrer,
            "peaks": [p.to_dict() for p in self.peaks],
            "williamson_hall": {
                "size_A": self.wh_size_A,
                "size_esd_A": self.wh_size_esd_A,
                "strain": self.wh_strain,
                "strain_esd": self.wh_strain_esd,
            },
            "deconvolution": self.deconvolution,
            "failed_peaks_q_invA": list(self.failed_peaks),
        }


_RULE = (
    "TCH split of observed and instrument profiles; Gaussian FWHMs subtracted in "
    "quadrature, Lorentzian FWHMs linearly; sample FWHM recombined by TCH"
)


def _sample_parts(fwhm_obs, eta_obs, fwhm_inst, eta_inst):
    """Sample (Γ_G², Γ_L) by the module's rule: Gaussians in quadrature, Lorentzians linearly."""
    go, lo = tch_split(fwhm_obs, eta_obs)
    gi, li = tch_split(fwhm_inst, eta_inst)
    return go**2 - gi**2, lo - li


def deconvolve_width(fwhm_obs, eta_obs, fwhm_inst, eta_inst) -> np.ndarray:
    """Sample FWHM from observed and instrument (FWHM, η) by the module's rule.

    Returns NaN where the observed peak is not broader than the instrument.
    """
    g2, ls = _sample_parts(fwhm_obs, eta_obs, fwhm_inst, eta_inst)
    bad = (g2 < 0) & (ls <= 0) | (ls < 0) & (g2 <= 0)
    fw, _ = tch_fwhm_eta(np.sqrt(np.maximum(g2, 0.0)), np.maximum(ls, 0.0))
    return np.where(bad | (fw <= 0), np.nan, fw)


def _auto_peaks(q: np.ndarray, y: np.ndarray, sigma: np.ndarray, npeaks: int) -> list[float]:
    from scipy.ndimage import minimum_filter1d, uniform_filter1d
    from scipy.signal import find_peaks

    n = q.size
    bk = uniform_filter1d(minimum_filter1d(y, max(n // 8, 3)), max(n // 8, 3))
    net = y - bk
    sm = uniform_filter1d(net, 5)
    idx, prop = find_peaks(sm, prominence=6 * float(np.median(sigma)) + 1e-300, width=3)
    if idx.size == 0:
        return []
    order = np.argsort(prop["prominences"])[::-1][:npeaks]
    return sorted(float(q[i]) for i in idx[order])


def _points(pattern: Pattern) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Q, y, σ) sorted by Q, points with σ ≤ 0 dropped (Poisson σ when none)."""
    q = np.asarray(pattern.q, float)
    order = np.argsort(q)
    q = q[order]
    y = np.asarray(pattern.y, float)[order]
    if pattern.sigma is None:
        sig = np.sqrt(np.maximum(y, 1.0))
    else:
        sig = np.asarray(pattern.sigma, float)[order]
    good = sig > 0
    return q[good], y[good], sig[good]


def _centres(pattern: Pattern, q, y, sig, peaks, max_peaks: int) -> list[float]:
    if isinstance(peaks, str):
        if peaks.strip().lower() != "auto":
            raise InputError(f"peaks must be 'auto' or Q positions, got {peaks!r}")
        centres = _auto_peaks(q, y, sig, max_peaks)
        if not centres:
            raise InputError(f"{pattern.source}: no peaks found")
        return centres
    centres = sorted(float(v) for v in peaks)
    if not centres:
        raise InputError("no peak positions given")
    for c in centres:
        if not q[0] < c < q[-1]:
            raise InputError(
                f"peak at Q = {c} Å⁻¹ is outside the data ({q[0]:.4g}…{q[-1]:.4g} Å⁻¹)"
            )
    return centres


def _instrument(cq: np.ndarray, pattern: Pattern, resolution, inst_fwhm_invA):
    """Instrument (FWHM Å⁻¹, η) at the peak centres; zero without information."""
    if resolution is not None:
        return resolution.fwhm_eta_q(cq, pattern.wavelength_A)
    if inst_fwhm_invA is not None:
        if inst_fwhm_invA < 0:
            raise InputError(f"instrument FWHM must be ≥ 0 Å⁻¹, got {inst_fwhm_invA}")
        return np.full(cq.size, float(inst_fwhm_invA)), np.zeros(cq.size)
    return np.zeros(cq.size), np.zeros(cq.size)


def _start_widths(q, y, centres: list[float]) -> np.ndarray:
    """Half-height widths above a local straight baseline (starting FWHMs).

    The baseline runs through the lowest points on either side, searched up to half-way
    to the neighbouring peak (≤ 0.8 Å⁻¹), so that a steep diffuse background or a
    neighbour does not inflate the estimate.
    """
    est = []
    step = float(np.median(np.diff(q)))
    for n, c in enumerate(centres):
        reach = 0.8
        if n > 0:
            reach = min(reach, 0.5 * (c - centres[n - 1]))
        if n + 1 < len(centres):
            reach = min(reach, 0.5 * (centres[n + 1] - c))
        reach = max(reach, 4 * step)
        i0 = min(max(int(np.searchsorted(q, c)), 1), q.size - 2)
        lo_i = int(np.searchsorted(q, c - reach))
        hi_i = min(int(np.searchsorted(q, c + reach)), q.size - 1)
        il = lo_i + int(np.argmin(y[lo_i : i0 + 1]))
        ir = i0 + int(np.argmin(y[i0 : hi_i + 1]))
        if ir > il:
            line = y[il] + (y[ir] - y[il]) * (q - q[il]) / (q[ir] - q[il])
        else:
            line = np.full_like(q, min(y[il], y[ir]))
        net = y - line
        half = 0.5 * net[i0]
        left = i0
        while left > il and net[left] > half:
            left -= 1
        right = i0
        while right < ir and net[right] > half:
            right += 1
        est.append(max(q[right] - q[left], 3 * step))
    return np.array(est)


def _overlap_groups(centres: list[float], est: np.ndarray, window: float) -> list[list[int]]:
    """Indices of peaks whose fit windows (± ``window`` start widths) overlap."""
    groups: list[list[int]] = [[0]]
    for i in range(1, len(centres)):
        j = groups[-1][-1]
        if centres[i] - centres[j] < window * (est[i] + est[j]):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _fit_group(q, y, sig, centres, est, grp: list[int], window: float, inst):
    """Least squares of one group of overlapping peaks on a quadratic background.

    Each peak is the refinement's profile (:func:`~xrdpdf.physics.crystallite.combined_fwhm_eta`):
    the instrument at its centre, ``inst`` = (Γ_G, Γ_L) arrays, convolved with the sphere
    size profile of FWHM ``p{k}_width``; free: centre, area and that width.  Returns the
    lmfit MinimizerResult, or None when the fit fails.
    """
    import lmfit

    lo = centres[grp[0]] - window * est[grp[0]]
    hi = centres[grp[-1]] + window * est[grp[-1]]
    sel = (q >= lo) & (q <= hi)
    if sel.sum() < 3 * len(grp) + 4:
        return None
    qq, yy, ss = q[sel], y[sel], sig[sel]
    # fit in units of the window's largest |I|: the residuals (I − calc)/σ, hence widths,
    # centres and their esds, do not change, and absurd intensities (1e153 in a fuzz
    # run) cannot overflow lmfit's bound transforms
    scale = float(np.max(np.abs(yy)))
    if np.isfinite(scale) and scale > 0:
        yy, ss = yy / scale, ss / scale
    xt = 2.0 * (qq - qq[0]) / (qq[-1] - qq[0]) - 1.0
    pars = lmfit.Parameters()
    base = float(min(yy[0], yy[-1]))
    for j, v0 in enumerate((base, 0.0, 0.0)):
        pars.add(f"b{j}", value=v0)
    # a weak peak on the flank of a strong one gets a too narrow half-height width:
    # start no narrower than half the group's median, allow up to 10× its widest
    w_med, w_max = float(np.median(est[grp])), float(np.max(est[grp]))
    for k, i in enumerate(grp):
        hwhm = est[i] / 2
        i0 = int(np.argmin(np.abs(qq - centres[i])))
        area = max(float(yy[i0] - base), 1e-12) * est[i] * 1.2
        pars.add(f"p{k}_center", value=centres[i], min=centres[i] - hwhm, max=centres[i] + hwhm)
        pars.add(f"p{k}_amplitude", value=area, min=0.0)
        pars.add(f"p{k}_width", value=max(est[i], 0.5 * w_med), min=1e-6, max=10 * w_max)
    ig = [inst[0][i] for i in grp]
    il = [inst[1][i] for i in grp]

    def resid(p):
        v = p.valuesdict()
        calc = v["b0"] + v["b1"] * xt + v["b2"] * (2 * xt**2 - 1)
        for k in range(len(grp)):
            c = v[f"p{k}_center"]
            fw, eta = combined_fwhm_eta(ig[k], il[k], v[f"p{k}_width"], 0.0, np.array([c]))
            calc = calc + v[f"p{k}_amplitude"] * pseudo_voigt(qq, c, fw[0], eta[0])
        return (yy - calc) / ss

    try:
        fit = lmfit.minimize(resid, pars, method="leastsq", max_nfev=2000 * (len(grp) + 1))
    except (ValueError, TypeError, ArithmeticError):
        # ArithmeticError: lmfit's bound transform overflows on absurd intensities (1e153)
        return None
    return fit if fit.success else None


def _fit_group_dropping(q, y, sig, centres, est, grp, window, inst):
    """:func:`_fit_group`, leaving out peaks whose width ends on a bound (then refitted).

    A peak the data do not resolve (a weak one on the flank of a strong one) runs its
    width to a bound and takes the group's covariance with it.  Returns (fit, the kept
    peak indices); (None, []) when nothing could be fitted.
    """
    kept = list(grp)
    while kept:
        fit = _fit_group(q, y, sig, centres, est, kept, window, inst)
        if fit is None:
            return None, []
        bad = [
            i
            for k, i in enumerate(kept)
            if _on_bound(fit.params[f"p{k}_width"]) or fit.params[f"p{k}_amplitude"].value <= 0
        ]
        if not bad or fit.errorbars:
            return fit, kept
        kept = [i for i in kept if i not in bad]
    return None, []


def _on_bound(par, rel: float = 1e-3) -> bool:
    return bool(par.value <= par.min * (1 + rel) or par.value >= par.max * (1 - rel))


def _stderr(par, factor: float = 1.0) -> float | None:
    e = par.stderr
    return None if e is None or not np.isfinite(e) else factor * float(e)


def _peak_size(p, k: int, fi, ei, k_scherrer: float, wl: float | None) -> PeakSize:
    """One fitted peak → its sample width and sphere size (shared size model)."""
    cen = float(p[f"p{k}_center"].value)
    ws = float(p[f"p{k}_width"].value)
    e_ws = _stderr(p[f"p{k}_width"])
    ig, il = tch_split(fi, ei)
    fw, eta = (float(v[0]) for v in combined_fwhm_eta(ig, il, ws, 0.0, np.array([cen])))
    e_fw = None
    if e_ws is not None:  # dΓ_obs/dΓ_s of the convolution rule, by a finite difference
        h = 1e-4 * max(ws, 1e-6)
        fw_h = float(combined_fwhm_eta(ig, il, ws + h, 0.0, np.array([cen]))[0][0])
        e_fw = abs(fw_h - fw) / h * e_ws
    # a peak no broader than the instrument: its width stays at the lower bound
    resolved = ws > 10 * p[f"p{k}_width"].min
    diam = size = size_e = None
    if resolved:
        diam = float(diameter_from_fwhm(ws))
        size = float(scherrer_length(diam, k_scherrer))
        size_e = None if e_ws is None else size * e_ws / ws  # L ∝ 1/Γ_s
    tth = None
    if wl is not None and cen * wl < 4 * math.pi:
        tth = float(units.q_to_tth(cen, wl))
    return PeakSize(
        q_invA=cen,
        q_esd_invA=_stderr(p[f"p{k}_center"]),
        fwhm_obs_invA=fw,
        fwhm_obs_esd_invA=e_fw,
        eta=eta,
        fwhm_inst_invA=float(fi),
        fwhm_sample_invA=ws if resolved else None,
        size_A=size,
        size_esd_A=size_e,
        tth_deg=tth,
        diameter_A=diam,
    )


def _weighted_mean(sizes: np.ndarray, esds: np.ndarray) -> tuple[float, float]:
    """Weighted mean and its esd (module Notes)."""
    wts = 1.0 / esds**2
    mean = float(np.sum(wts * sizes) / np.sum(wts))
    err = 1.0 / math.sqrt(float(np.sum(wts)))
    if sizes.size > 1:
        scatter = math.sqrt(
            float(np.sum(wts * (sizes - mean) ** 2)) / ((sizes.size - 1) * np.sum(wts))
        )
        err = max(err, scatter)
    return mean, err


def _williamson_hall(usable: list[PeakSize], k_scherrer: float):
    r"""(L, esd, ε, esd) of the sample FWHMs against Q; None entries when undetermined.

    The sample width of each peak is that of spheres of diameter D convolved with a
    Lorentzian microstrain of FWHM 2εQ, :math:`\Gamma_s(Q) = \mathrm{TCH}(c_G u,\ c_L u
    + 2\varepsilon Q)` with u = 2π/D (:func:`~xrdpdf.physics.crystallite.combined_fwhm_eta`;
    for Lorentzian sizes this is Williamson & Hall's ΔQ = 2πK/L + 2εQ).  (u, ε) by
    weighted least squares (``scipy.optimize.least_squares``), covariance (JᵀJ)⁻¹ scaled
    by χ²/ν when above 1.
    """
    from scipy.optimize import least_squares

    if len(usable) < 2:
        return None, None, None, None
    qx = np.array([r.q_invA for r in usable])
    fy = np.array([r.fwhm_sample_invA for r in usable])
    fe = np.array([r.fwhm_sample_invA * r.size_esd_A / r.size_A for r in usable])

    def resid(p):
        return (combined_fwhm_eta(0.0, 0.0, p[0], p[1], qx)[0] - fy) / fe

    start = (float(np.min(fy)), 1e-4)
    fit = least_squares(resid, start, bounds=([1e-9, 0.0], [np.inf, 0.5]))
    cov = np.linalg.pinv(fit.jac.T @ fit.jac)
    if len(usable) > 2:
        cov = cov * max(float(np.sum(fit.fun**2)) / (len(usable) - 2), 1.0)
    width, eps = (float(v) for v in fit.x)
    e_w, e_eps = math.sqrt(max(cov[0, 0], 0)), math.sqrt(max(cov[1, 1], 0))
    size = float(scherrer_length(diameter_from_fwhm(width), k_scherrer))
    return size, size * e_w / width, eps, e_eps


def scherrer(
    pattern: Pattern,
    *,
    peaks: str | Sequence[float] = "auto",
    k_scherrer: float = 0.9,
    resolution: Resolution | None = None,
    inst_fwhm_invA: float | None = None,
    max_peaks: int = 8,
    window_fwhm: float = 3.0,
) -> SizeResult:
    r"""Scherrer sizes of the peaks of a pattern, their mean and Williamson–Hall.

    Parameters
    ----------
    pattern : Pattern
        I(Q) or I(2θ) with wavelength.  Fits are made in Q.
    peaks : "auto" or sequence of float
        Peak positions in Q (Å⁻¹), or ``"auto"`` for the ``max_peaks`` most
        prominent peaks.
    k_scherrer : float
        Scherrer K for the FWHM of ``size_A`` (0.9: V^⅓; 1.107: sphere diameter D).
    resolution : Resolution, optional
        Instrument FWHM(Q), η(Q).
    inst_fwhm_invA : float, optional
        Constant Gaussian instrument FWHM in Å⁻¹ (if no ``resolution``).
        Without either, the instrument width is taken as zero and the sizes are
        lower bounds (``size_is_lower_bound``).
    max_peaks : int
        Most peaks used with ``"auto"``.
    window_fwhm : float
        Half-width of each fit window in units of the estimated FWHM.

    Returns
    -------
    SizeResult

    Raises
    ------
    InputError
        No peak found or given, or peaks outside the data.
    ConvergenceError
        No peak gives a size (all fits failed or all narrower than the instrument).
    """
    if not 0 < k_scherrer < 5:
        raise InputError(f"k must be in (0, 5), got {k_scherrer}")
    if pattern.unit not in (units.Q_A, units.TTH_DEG):
        raise InputError(f"{pattern.source}: need Q or 2θ data, got {pattern.unit}")
    q, y, sig = _points(pattern)
    centres = _centres(pattern, q, y, sig, peaks, max_peaks)
    fi, ei = _instrument(np.array(centres), pattern, resolution, inst_fwhm_invA)
    est = _start_widths(q, y, centres)
    results: list[PeakSize] = []
    failed: list[float] = []
    inst = tch_split(fi, ei)
    for grp in _overlap_groups(centres, est, window_fwhm):
        fit, kept = _fit_group_dropping(q, y, sig, centres, est, grp, window_fwhm, inst)
        failed += [centres[i] for i in grp if i not in kept]
        for k, i in enumerate(kept):
            results.append(
                _peak_size(fit.params, k, fi[i], ei[i], k_scherrer, pattern.wavelength_A)
            )
    usable = _usable(results)
    if not usable:
        raise ConvergenceError(
            f"{pattern.source}: no peak gave a size (fits failed or peaks not broader than "
            "the instrument)"
        )
    with_inst = resolution is not None or bool(inst_fwhm_invA)
    return _size_result(usable, results, failed, k_scherrer, with_inst)


def _usable(results: list[PeakSize]) -> list[PeakSize]:
    """The peaks whose size is known to better than ±50 % (a weak peak on a flank can come out
    anywhere); only these enter the mean and Williamson–Hall."""
    usable = [r for r in results if r.size_A is not None and r.size_esd_A]
    return [r for r in usable if r.size_esd_A < 0.5 * r.size_A]


def _size_result(
    usable: list[PeakSize],
    results: list[PeakSize],
    failed: list[float],
    k_scherrer: float,
    with_inst: bool,
) -> SizeResult:
    """The weighted mean of the usable sizes, Williamson–Hall, and the result."""
    ls = np.array([r.size_A for r in usable])
    mean, err = _weighted_mean(ls, np.array([r.size_esd_A for r in usable]))
    wh = _williamson_hall(usable, k_scherrer)
    to_d = SPHERE_K_FWHM / k_scherrer
    return SizeResult(
        size_A=mean,
        size_esd_A=err,
        peaks=tuple(results),
        k_scherrer=k_scherrer,
        size_definition=scherrer_size_definition(k_scherrer),
        wh_size_A=wh[0],
        wh_size_esd_A=wh[1],
        wh_strain=wh[2],
        wh_strain_esd=wh[3],
        deconvolution=_RULE
        if with_inst
        else "no instrument width given: observed widths used as sample widths (lower bounds)",
        failed_peaks=tuple(failed),
        diameter_A=mean * to_d,
        diameter_esd_A=err * to_d,
        size_is_lower_bound=not with_inst,
    )
