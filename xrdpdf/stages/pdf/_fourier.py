"""Sine transform, correction polynomial and the F(Q) → G(r) map with its σ."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from xrdpdf._core.errors import InputError


def _r_grid(rmin: float, rmax: float, rstep: float) -> np.ndarray:
    n = int(np.floor((rmax - rmin) / rstep + 1e-9)) + 1
    return rmin + rstep * np.arange(n)


def _is_regular(q: np.ndarray) -> bool:
    """Whether every Q_i lies within 10⁻³ΔQ of Q_0 + iΔQ (text files round the grid).

    The phase error of treating such a grid as exact is < 10⁻³ΔQ·r (≈ 2·10⁻³ rad
    at r = 100 Å for ΔQ = 0.02 Å⁻¹).
    """
    if q.size < 2:
        return False
    dq = (q[-1] - q[0]) / (q.size - 1)
    ideal = q[0] + dq * np.arange(q.size)
    return bool(dq > 0 and np.max(np.abs(q - ideal)) <= 1e-3 * dq)


def _cell_widths(q: np.ndarray) -> np.ndarray:
    """Integration weights: ΔQ on a regular grid, midpoint-cell widths otherwise."""
    if q.size == 1:
        return np.ones(1)
    w = np.empty_like(q)
    w[1:-1] = 0.5 * (q[2:] - q[:-2])
    w[0] = q[1] - q[0]
    w[-1] = q[-1] - q[-2]
    return w


@lru_cache(maxsize=16)
def _czt_plan(n: int, m: int, dq: float, dr: float, r0: float):
    from scipy.signal import CZT

    return CZT(n, m, w=np.exp(1j * dq * dr), a=np.exp(-1j * dq * r0))


def _sum_exp(c: np.ndarray, q: np.ndarray, r: np.ndarray, regular: bool) -> np.ndarray:
    """Σ_i c_i exp(i Q_i r_j) (complex) for all r_j."""
    if regular and r.size > 1 and q.size > 1:
        dq = (q[-1] - q[0]) / (q.size - 1)
        dr = (r[-1] - r[0]) / (r.size - 1)
        plan = _czt_plan(int(q.size), int(r.size), float(dq), float(dr), float(r[0]))
        return plan(c.astype(complex)) * np.exp(1j * q[0] * r)
    out = np.empty(r.size, complex)
    chunk = max(1, 4_000_000 // max(q.size, 1))
    for j in range(0, r.size, chunk):
        rr = r[j : j + chunk]
        out[j : j + chunk] = np.exp(1j * np.multiply.outer(rr, q)) @ c
    return out


def sine_transform(
    q_invA, fq, r_A, *, sigma=None, window=None, neighbour_cov=None
) -> tuple[np.ndarray, np.ndarray | None]:
    r"""G(r) = (2/π) Σ w_i F_i M_i sin(Q_i r) and its σ.

    Parameters
    ----------
    q_invA : (N,) array_like
        Increasing Q (Å⁻¹); a regular grid uses a chirp-z transform (exact,
        O((N+M) log(N+M))), an irregular one a direct sum.
    fq : (N,) array_like
        F(Q) in Å⁻¹.
    r_A : (M,) array_like
        Regular r grid (Å).
    sigma : (N,) array_like, optional
        σ of F(Q).
    window : (N,) array_like, optional
        Modification function M(Q) (e.g. Lorch); 1 if omitted.
    neighbour_cov : (N-1,) array_like, optional
        Covariance c_i of F_i and F_{i+1} (e.g. after linear interpolation
        onto another grid); regular grids only.  Adds
        :math:`2(2/\pi)^2\sum_i c_i s_i s_{i+1}`, :math:`s_i = w_i M_i \sin Q_i r`.

    Returns
    -------
    gr : (M,) ndarray
        G(r) in Å⁻².
    sigma_gr : (M,) ndarray or None
        :math:`\sigma_G^2 = (2/\pi)^2\sum_i (w_i M_i \sigma_i)^2 \sin^2 Q_i r`,
        evaluated as :math:`\tfrac12\sum a_i - \tfrac12\mathrm{Re}\sum a_i e^{2iQ_i r}`.

    Notes
    -----
    Weights :math:`w_i` are ΔQ on a regular grid (rectangle rule, as PDFgetX3)
    and midpoint-cell widths otherwise.
    """
    q = np.asarray(q_invA, float)
    f = np.asarray(fq, float)
    r = np.asarray(r_A, float)
    regular = _is_regular(q)
    w = _cell_widths(q)
    if window is not None:
        w = w * np.asarray(window, float)
    g = (2.0 / np.pi) * _sum_exp(w * f, q, r, regular).imag
    if sigma is None:
        return g, None
    a = (w * np.asarray(sigma, float)) ** 2
    var = 0.5 * a.sum() - 0.5 * _sum_exp(a, 2.0 * q, r, regular).real
    if neighbour_cov is not None and q.size > 1:
        if not regular:
            raise InputError("neighbour_cov needs a regular Q grid")
        dq = (q[-1] - q[0]) / (q.size - 1)
        b = np.asarray(neighbour_cov, float) * w[:-1] * w[1:]
        # 2 Σ b s_i s_{i+1} with 2 sin x sin y = cos(x − y) − cos(x + y)
        var = var + b.sum() * np.cos(dq * r) - _sum_exp(b, 2.0 * q[:-1] + dq, r, True).real
    return g, (2.0 / np.pi) * np.sqrt(np.clip(var, 0.0, None))


def _poly_basis(q: np.ndarray, n: int, qlo: float, qhi: float) -> np.ndarray:
    """Columns T_j(x), j < n, x = Q mapped from [qlo, qhi] onto [−1, 1] (Chebyshev, numpy).

    Times Q (as the callers use them) they span the same space as Q, Q², …, Qⁿ but are well
    conditioned, so the normal equations are accurate (and much faster than an SVD on a busy
    host).
    """
    x = (2.0 * q - (qlo + qhi)) / (qhi - qlo)
    if n == 0:
        return np.empty((q.size, 0))
    return np.polynomial.chebyshev.chebvander(x, n - 1)


def _poly_correction(q: np.ndarray, fm: np.ndarray, degree: float) -> np.ndarray:
    """P(Q) = B(Q)/Q of the blended fit of F_m (module Notes); S = S_m − P."""
    lo = int(np.floor(degree + 1e-9))
    alpha = degree - lo
    t = _poly_basis(q, lo + 1, float(q[0]), float(q[-1]))
    out = np.zeros_like(q)
    for n, weight in ((lo, 1.0 - alpha), (lo + 1, alpha)):
        if n == 0 or weight < 1e-9:
            continue
        tn = t[:, :n]
        basis = q[:, None] * tn
        coef = np.linalg.solve(basis.T @ basis, basis.T @ fm)
        out += weight * (tn @ coef)
    return out


def _poly_projectors(q: np.ndarray, degree: float) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal columns U and weights v with F = F_m − U diag(v) Uᵀ F_m (the blend)."""
    lo = int(np.floor(degree + 1e-9))
    alpha = degree - lo
    t = _poly_basis(q, lo + 1, float(q[0]), float(q[-1]))
    cols, wts = [], []
    for n, weight in ((lo, 1.0 - alpha), (lo + 1, alpha)):
        if n == 0 or weight < 1e-9:
            continue
        u, _ = np.linalg.qr(q[:, None] * t[:, :n])
        cols.append(u)
        wts.append(np.full(n, weight))
    if not cols:
        return np.zeros((q.size, 0)), np.zeros(0)
    return np.hstack(cols), np.concatenate(wts)


def _fq_grid(q: np.ndarray, qmax: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Grid Q_k = kΔQ in [Q_0, qmax] of a regular input grid, its left neighbours i and fractions t.

    ``None`` when the input is irregular or already on that grid (t ≈ 0).
    """
    if not _is_regular(q) or q.size < 2:
        return None
    dq = (q[-1] - q[0]) / (q.size - 1)
    k = np.arange(np.ceil(q[0] / dq - 1e-9), np.floor(min(qmax, q[-1]) / dq + 1e-9) + 1)
    qg = k * dq
    x = (qg - q[0]) / dq
    i = np.clip(np.floor(x + 1e-9).astype(int), 0, q.size - 2)
    t = np.clip(x - i, 0.0, 1.0)
    if np.all(t < 1e-6):
        return None
    return qg, i, t


def _gr(p: Any, f, sf, qmax: float, lorch: bool, r: np.ndarray, fq_grid: bool = True):
    """G(r) and σ_G of F on p.q (p: ``_reduce._Prepared``), polynomial σ propagated exactly.

    F = (1 − P) F_m with P = U diag(v) Uᵀ (:func:`_poly_projectors`), and G = H F for the
    linear map H (regrid, window, sine sum).  For D = diag(σ_F²):
    Var G = diag(H D Hᵀ) − 2 diag(H P D Hᵀ) + diag(H P D P Hᵀ); the first term is the
    closed-form :func:`sine_transform` σ, the others need one transform per column of U.
    """
    g, sg = _gr_linear(p.q, f, sf, qmax, lorch, r, fq_grid)
    if sf is None:
        return g, None
    u, v = _poly_projectors(p.q, p.degree)
    if v.size == 0:
        return g, sg
    d = sf**2
    hu = np.array(
        [_gr_linear(p.q, u[:, j], None, qmax, lorch, r, fq_grid)[0] for j in range(v.size)]
    )
    hdu = np.array(
        [_gr_linear(p.q, d * u[:, j], None, qmax, lorch, r, fq_grid)[0] for j in range(v.size)]
    )
    c = (u * d[:, None]).T @ u
    vhu = v[:, None] * hu
    var = sg**2 - 2.0 * np.sum(vhu * hdu, axis=0) + np.einsum("cr,cd,dr->r", vhu, c, vhu)
    return g, np.sqrt(np.clip(var, 0.0, None))


def _gr_linear(q_all, f, sf, qmax: float, lorch: bool, r: np.ndarray, fq_grid: bool):
    m = q_all <= qmax + 1e-9
    grid = _fq_grid(q_all, qmax) if fq_grid else None
    if grid is None:
        q = q_all[m]
        win = np.sinc(q / qmax) if lorch else None
        return sine_transform(q, f[m], r, sigma=None if sf is None else sf[m], window=win)
    qg, i, t = grid
    fg = (1.0 - t) * f[i] + t * f[i + 1]
    win = np.sinc(qg / qmax) if lorch else None
    if sf is None:
        return sine_transform(qg, fg, r, window=win)
    var = ((1.0 - t) * sf[i]) ** 2 + (t * sf[i + 1]) ** 2
    # neighbours k, k+1 share input point i_k + 1 (weights t_k and 1 − t_{k+1})
    cov = np.where(i[1:] == i[:-1] + 1, t[:-1] * (1.0 - t[1:]) * sf[i[:-1] + 1] ** 2, 0.0)
    return sine_transform(qg, fg, r, sigma=np.sqrt(var), window=win, neighbour_cov=cov)
