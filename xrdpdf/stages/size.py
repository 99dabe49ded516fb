r"""Scherrer crystallite sizes from single-peak fits, and a Williamson–Hall fit.

:func:`scherrer` finds peaks (or takes given Q positions), fits each group of
overlapping peaks with pseudo-Voigts on a linear background (lmfit), removes
the instrument width, and turns each sample width into a size

.. math::  L = \frac{K\lambda}{\beta\cos\theta} = \frac{2\pi K}{\Delta Q}

(β the FWHM in 2θ radians, ΔQ the FWHM in Å⁻¹), then averages the sizes with
weights 1/σ² and fits Williamson–Hall, :math:`\Delta Q = 2\pi K/L + 2\varepsilon Q`.

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

**Which size.** With the FWHM, K = 0.9 (default) gives the cube root of the
crystallite volume V^⅓ of spheres (K = 0.892), K = 1.107 the sphere diameter
D, K = 0.83 the volume-weighted column length ⟨L⟩_vol = ¾D.  The result's
``size_definition`` says which.

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
from xrdpdf.physics.profiles import tch_fwhm_eta, tch_split
from xrdpdf.physics.resolution import Resolution, scherrer_size_definition

__all__ = ["scherrer", "SizeResult", "PeakSize", "deconvolve_width"]


@dataclass(frozen=True)
class PeakSize:
    """One fitted peak (widths in Å⁻¹; ``size_A`` None when not resolvable)."""

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping with ``size_A``, ``size_esd_A``, ``peaks`` …"""
        return {
            "size_A": self.size_A,
            "size_esd_A": self.size_esd_A,
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


def deconvolve_width(fwhm_obs, eta_obs, fwhm_inst, eta_inst) -> np.ndarray:
    """Sample FWHM from observed and instrument (FWHM, η) by the module's rule.

    Returns NaN where the observed peak is not broader than the instrument.
    """
    go, lo = tch_split(fwhm_obs, eta_obs)
    gi, li = tch_split(fwhm_inst, eta_inst)
    g2 = go**2 - gi**2
    ls = lo - li
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
        Scherrer K for the FWHM (0.9: V^⅓; 1.107: sphere diameter D).
    resolution : Resolution, optional
        Instrument FWHM(Q), η(Q).
    inst_fwhm_invA : float, optional
        Constant Gaussian instrument FWHM in Å⁻¹ (if no ``resolution``).
        Without either, the instrument width is taken as zero.
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
    import lmfit

    if not 0 < k_scherrer < 5:
        raise InputError(f"k must be in (0, 5), got {k_scherrer}")
    if pattern.unit not in (units.Q_A, units.TTH_DEG):
        raise InputError(f"{pattern.source}: need Q or 2θ data, got {pattern.unit}")
    q = np.asarray(pattern.q, float)
    order = np.argsort(q)
    q = q[order]
    y = np.asarray(pattern.y, float)[order]
    sig = (
        np.sqrt(np.maximum(y, 1.0))
        if pattern.sigma is None
        else np.asarray(pattern.sigma, float)[order]
    )
    good = sig > 0
    q, y, sig = q[good], y[good], sig[good]
    if isinstance(peaks, str):
        if peaks.strip().lower() != "auto":
            raise InputError(f"peaks must be 'auto' or Q positions, got {peaks!r}")
        centres = _auto_peaks(q, y, sig, max_peaks)
        if not centres:
            raise InputError(f"{pattern.source}: no peaks found")
    else:
        centres = sorted(float(v) for v in peaks)
        if not centres:
            raise InputError("no peak positions given")
        for c in centres:
            if not q[0] < c < q[-1]:
                raise InputError(
                    f"peak at Q = {c} Å⁻¹ is outside the data ({q[0]:.4g}…{q[-1]:.4g} Å⁻¹)"
                )

    # instrument widths at each centre
    cq = np.array(centres)
    if resolution is not None:
        fi, ei = resolution.fwhm_eta_q(cq, pattern.wavelength_A)
    elif inst_fwhm_invA is not None:
        if inst_fwhm_invA < 0:
            raise InputError(f"instrument FWHM must be ≥ 0 Å⁻¹, got {inst_fwhm_invA}")
        fi, ei = np.full(cq.size, float(inst_fwhm_invA)), np.zeros(cq.size)
    else:
        fi, ei = np.zeros(cq.size), np.zeros(cq.size)

    # starting FWHM: half-height width above a local straight baseline through the lowest
    # points on either side, searched up to half-way to the neighbouring peak (≤ 0.8 Å⁻¹),
    # so that a steep diffuse background or a neighbour does not inflate the estimate
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
    est_a = np.array(est)

    # group peaks whose windows overlap
    groups: list[list[int]] = [[0]]
    for i in range(1, len(centres)):
        j = groups[-1][-1]
        if centres[i] - centres[j] < window_fwhm * (est_a[i] + est_a[j]):  # windows overlap
            groups[-1].append(i)
        else:
            groups.append([i])

    results: list[PeakSize] = []
    failed: list[float] = []
    for grp in groups:
        lo = centres[grp[0]] - window_fwhm * est_a[grp[0]]
        hi = centres[grp[-1]] + window_fwhm * est_a[grp[-1]]
        sel = (q >= lo) & (q <= hi)
        if sel.sum() < 4 * len(grp) + 2:
            failed += [centres[i] for i in grp]
            continue
        qq, yy, ss = q[sel], y[sel], sig[sel]
        model = lmfit.models.LinearModel(prefix="b_")
        pars = model.make_params(slope=0.0, intercept=float(min(yy[0], yy[-1])))
        for k, i in enumerate(grp):
            m = lmfit.models.PseudoVoigtModel(prefix=f"p{k}_")
            model = model + m
            i0 = int(np.argmin(np.abs(qq - centres[i])))
            hwhm = est_a[i] / 2
            amp = max(float(yy[i0] - min(yy[0], yy[-1])), 1e-12) * est_a[i] * 1.2
            pars.update(m.make_params())
            pars[f"p{k}_center"].set(value=centres[i], min=centres[i] - hwhm, max=centres[i] + hwhm)
            pars[f"p{k}_sigma"].set(value=hwhm, min=hwhm / 20, max=hwhm * 5)
            pars[f"p{k}_amplitude"].set(value=amp, min=0.0)
            pars[f"p{k}_fraction"].set(value=0.5, min=0.0, max=1.0)
        try:
            fit = model.fit(yy, pars, x=qq, weights=1.0 / ss, max_nfev=4000)
        except (ValueError, TypeError):
            failed += [centres[i] for i in grp]
            continue
        if not fit.success:
            failed += [centres[i] for i in grp]
            continue
        for k, i in enumerate(grp):
            p = fit.params
            cen = float(p[f"p{k}_center"].value)
            fw = 2.0 * float(p[f"p{k}_sigma"].value)
            e_fw = p[f"p{k}_sigma"].stderr
            e_fw = None if e_fw is None or not np.isfinite(e_fw) else 2.0 * float(e_fw)
            e_c = p[f"p{k}_center"].stderr
            e_c = None if e_c is None or not np.isfinite(e_c) else float(e_c)
            eta = float(p[f"p{k}_fraction"].value)
            fs = float(deconvolve_width(fw, eta, fi[i], ei[i]))
            size = size_e = None
            if np.isfinite(fs) and fs > 0:
                size = 2 * math.pi * k_scherrer / fs
                if e_fw is not None:
                    # dΓ_s/dΓ_o by a finite difference of the deconvolution rule
                    h = 1e-4 * fw
                    d = (float(deconvolve_width(fw + h, eta, fi[i], ei[i])) - fs) / h
                    size_e = size * abs(d) * e_fw / fs
            tth = None
            if pattern.wavelength_A is not None and cen * pattern.wavelength_A < 4 * math.pi:
                tth = float(units.q_to_tth(cen, pattern.wavelength_A))
            results.append(
                PeakSize(
                    q_invA=cen,
                    q_esd_invA=e_c,
                    fwhm_obs_invA=fw,
                    fwhm_obs_esd_invA=e_fw,
                    eta=eta,
                    fwhm_inst_invA=float(fi[i]),
                    fwhm_sample_invA=fs if np.isfinite(fs) else None,
                    size_A=size,
                    size_esd_A=size_e,
                    tth_deg=tth,
                )
            )
    usable = [r for r in results if r.size_A is not None and r.size_esd_A]
    if not usable:
        raise ConvergenceError(
            f"{pattern.source}: no peak gave a size (fits failed or peaks not broader than "
            "the instrument)"
        )
    ls = np.array([r.size_A for r in usable])
    es = np.array([r.size_esd_A for r in usable])
    wts = 1.0 / es**2
    mean = float(np.sum(wts * ls) / np.sum(wts))
    err = 1.0 / math.sqrt(float(np.sum(wts)))
    if ls.size > 1:
        scatter = math.sqrt(float(np.sum(wts * (ls - mean) ** 2)) / ((ls.size - 1) * np.sum(wts)))
        err = max(err, scatter)

    wh = (None, None, None, None)
    if len(usable) >= 2:
        qx = np.array([r.q_invA for r in usable])
        fy = np.array([r.fwhm_sample_invA for r in usable])
        fe = np.array([2 * math.pi * k_scherrer * r.size_esd_A / r.size_A**2 for r in usable])
        a = np.stack([np.ones_like(qx), qx], axis=1) / fe[:, None]
        coef, *_ = np.linalg.lstsq(a, fy / fe, rcond=None)
        cov = np.linalg.pinv(a.T @ a)
        if len(usable) > 2:
            chi2 = float(np.sum((fy / fe - a @ coef) ** 2)) / (len(usable) - 2)
            cov = cov * max(chi2, 1.0)
        c0, c1 = float(coef[0]), float(coef[1])
        e0, e1 = math.sqrt(max(cov[0, 0], 0)), math.sqrt(max(cov[1, 1], 0))
        if c0 > 0:
            wl_size = 2 * math.pi * k_scherrer / c0
            wh = (wl_size, wl_size * e0 / c0, c1 / 2, e1 / 2)
        else:
            wh = (None, None, c1 / 2, e1 / 2)

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
        if (resolution is not None or inst_fwhm_invA)
        else "no instrument width given: observed widths used as sample widths",
        failed_peaks=tuple(failed),
    )
