r"""Peak profiles: pseudo-Voigt, the Thompson–Cox–Hastings width and mixing, Lorentz–polarization.

Profiles are unit-area pseudo-Voigts whose FWHM Γ and mixing η come from a Gaussian and a
Lorentzian width through Thompson, Cox & Hastings [1]_.

References
----------
.. [1] P. Thompson, D. E. Cox & J. B. Hastings (1987). J. Appl. Cryst. 20, 79.
       https://doi.org/10.1107/S0021889887087090
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = [
    "pseudo_voigt",
    "pv_sum",
    "tch_fwhm_eta",
    "tch_split",
    "lp_bragg_brentano",
]


# ------------------------------------------------------------------------ profiles
def pseudo_voigt(x, x0, fwhm, eta) -> np.ndarray:
    r"""Unit-area pseudo-Voigt: η·L + (1−η)·G with common FWHM.

    All arguments broadcast; result in 1/(unit of x).

    Notes
    -----
    .. math::

        G = \frac{2}{\Gamma}\sqrt{\frac{\ln 2}{\pi}} e^{-4\ln 2\,u^2/\Gamma^2},\quad
        L = \frac{2}{\pi\Gamma}\frac{1}{1+4u^2/\Gamma^2},\quad u = x - x_0
    """
    u2 = ((np.asarray(x) - x0) / fwhm) ** 2
    g = (2.0 * np.sqrt(np.log(2) / np.pi)) * np.exp(-4.0 * np.log(2) * u2)
    lor = (2.0 / np.pi) / (1.0 + 4.0 * u2)
    return (eta * lor + (1.0 - eta) * g) / fwhm


@lru_cache(maxsize=1)
def _pv_kernel():
    import numba

    @numba.njit(cache=True, nogil=True, fastmath=True)
    def kernel(x, x0, fw, eta, area, out):  # pragma: no cover - compiled
        c_g = 2.0 * np.sqrt(np.log(2.0) / np.pi)
        k_g = 4.0 * np.log(2.0)
        c_l = 2.0 / np.pi
        n = x.size
        for h in range(x0.size):
            f = fw[h]
            if not f > 0.0:
                continue
            ag = area[h] * (1.0 - eta[h]) * c_g / f
            al = area[h] * eta[h] * c_l / f
            inv = 1.0 / f
            c = x0[h]
            for i in range(n):  # Lorentzian over the whole grid (vectorizes)
                u = (x[i] - c) * inv
                out[i] += al / (1.0 + 4.0 * u * u)
            # Gaussian only within ±3.2 FWHM (exp(−4 ln2 u²) < 1e-17 beyond)
            lo = np.searchsorted(x, c - 3.2 * f)
            hi = np.searchsorted(x, c + 3.2 * f)
            for i in range(lo, hi):
                u = (x[i] - c) * inv
                out[i] += ag * np.exp(-k_g * u * u)
        return out

    return kernel


def pv_sum(x, x0, fwhm, eta, area) -> np.ndarray:
    """Σ_h area_h · pseudo_voigt(x, x0_h, fwhm_h, eta_h), a compiled loop.

    Same values as summing :func:`pseudo_voigt` except that the Gaussian part is
    cut beyond ±3.2 FWHM from the centre (where it is below 5e-13 of its
    maximum); Lorentzian tails are summed over the whole grid.  ``x`` must be
    increasing.
    """
    x = np.ascontiguousarray(x, dtype=float)
    x0, fwhm, eta, area = (
        np.ascontiguousarray(np.broadcast_to(np.asarray(a, float), np.shape(x0)))
        for a in (x0, fwhm, eta, area)
    )
    out = np.zeros_like(x)
    if x0.size == 0:
        return out
    return _pv_kernel()(x, x0.ravel(), fwhm.ravel(), eta.ravel(), area.ravel(), out)


def tch_fwhm_eta(gamma_g, gamma_l) -> tuple[np.ndarray, np.ndarray]:
    r"""Pseudo-Voigt FWHM and η from Gaussian and Lorentzian FWHMs (TCH 1987).

    Notes
    -----
    .. math::

        \Gamma^5 = \Gamma_G^5 + 2.69269\Gamma_G^4\Gamma_L + 2.42843\Gamma_G^3\Gamma_L^2
        + 4.47163\Gamma_G^2\Gamma_L^3 + 0.07842\Gamma_G\Gamma_L^4 + \Gamma_L^5

        \eta = 1.36603 r - 0.47719 r^2 + 0.11116 r^3,\quad r = \Gamma_L/\Gamma
    """
    g = np.asarray(gamma_g, float)
    lo = np.asarray(gamma_l, float)
    f5 = (
        g**5
        + 2.69269 * g**4 * lo
        + 2.42843 * g**3 * lo**2
        + 4.47163 * g**2 * lo**3
        + 0.07842 * g * lo**4
        + lo**5
    )
    fwhm = f5**0.2
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(fwhm > 0, lo / np.where(fwhm > 0, fwhm, 1.0), 0.0)
    eta = 1.36603 * r - 0.47719 * r**2 + 0.11116 * r**3
    return fwhm, np.clip(eta, 0.0, 1.0)


def tch_split(fwhm, eta) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`tch_fwhm_eta`: Gaussian and Lorentzian FWHMs from (Γ, η).

    Both TCH relations are monotonic on 0 ≤ η ≤ 1: r = Γ_L/Γ from η(r), then
    g = Γ_G/Γ from the quintic with Γ = 1, each by 12 bisection steps (bracket
    2⁻¹²) polished by 3 Newton steps kept inside the bracket (quadratic
    convergence: round-off after the third).
    """
    fwhm = np.asarray(fwhm, float)
    eta = np.clip(np.asarray(eta, float), 0.0, 1.0)
    fwhm, eta = np.broadcast_arrays(fwhm, eta)

    def eta_of(r):
        return ((0.11116 * r - 0.47719) * r + 1.36603) * r, (0.33348 * r - 0.95438) * r + 1.36603

    r = _monotonic_root(eta_of, eta)

    c1, c2, c3, c4, c5 = 2.69269 * r, 2.42843 * r**2, 4.47163 * r**3, 0.07842 * r**4, r**5

    def quintic(g):
        f = ((((g + c1) * g + c2) * g + c3) * g + c4) * g + c5
        df = (((5 * g + 4 * c1) * g + 3 * c2) * g + 2 * c3) * g + c4
        return f, df

    g = _monotonic_root(quintic, np.ones(eta.shape))
    return g * fwhm, r * fwhm


def _monotonic_root(func, target: np.ndarray) -> np.ndarray:
    """x in [0, 1] with func(x)[0] = target for an increasing func returning (f, f')."""
    lo, hi = np.zeros(target.shape), np.ones(target.shape)
    for _ in range(12):
        mid = 0.5 * (lo + hi)
        below = func(mid)[0] < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    x = 0.5 * (lo + hi)
    for _ in range(3):
        f, df = func(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(df > 0, (f - target) / np.where(df > 0, df, 1.0), 0.0)
        x = np.clip(x - step, lo, hi)
    return x


def lp_bragg_brentano(tth_deg, monochromator_tth_deg: float | None = None) -> np.ndarray:
    r"""Lorentz-polarization factor of lab Bragg–Brentano geometry.

    Notes
    -----
    .. math::  L_p = \frac{1+\cos^2 2\theta}{\sin^2\theta\cos\theta}

    With a monochromator at :math:`2\theta_m`, :math:`1+\cos^2 2\theta` becomes
    :math:`(1+\cos^2 2\theta_m\cos^2 2\theta)/(1+\cos^2 2\theta_m)`.
    """
    t = np.radians(np.asarray(tth_deg, float))
    th = t / 2
    if monochromator_tth_deg is None:
        pol = 1.0 + np.cos(t) ** 2
    else:
        cm2 = np.cos(np.radians(monochromator_tth_deg)) ** 2
        pol = (1.0 + cm2 * np.cos(t) ** 2) / (1.0 + cm2)
    return pol / (np.sin(th) ** 2 * np.cos(th))
