"""I_c → S, F for one background scale, and the automatic Q_max."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xrdpdf._core.errors import InputError
from xrdpdf.stages.pdf._fourier import _poly_correction


def _last_nonzero_q(q: np.ndarray, y: np.ndarray) -> float:
    nz = np.nonzero(y != 0)[0]
    if nz.size == 0:
        raise InputError("all intensities are zero")
    return float(q[nz[-1]])


def _noise_var(f: np.ndarray, sig: np.ndarray | None) -> np.ndarray:
    """Per-point noise variance of F: from σ, else from second differences."""
    if sig is not None:
        return sig**2
    d = np.zeros_like(f)
    d[1:-1] = f[1:-1] - 0.5 * (f[:-2] + f[2:])
    d[0], d[-1] = d[1], d[-2]
    return d**2 / 1.5


def _auto_qmax(q: np.ndarray, f: np.ndarray, sig: np.ndarray | None, qmin: float) -> float:
    """Upper edge of the last 1 Å⁻¹ window before noise variance exceeds signal variance."""
    nv = _noise_var(f, sig)
    width = 1.0
    edges = np.arange(max(qmin, q[0]), q[-1] + 1e-12, width)
    qmax = float(q[-1])
    for lo in edges:
        hi = lo + width
        m = (q >= lo) & (q < hi)
        if m.sum() < 5 or lo < 3.0:
            continue
        noise = float(nv[m].mean())
        signal = float(np.mean(f[m] ** 2)) - noise
        if signal < noise:
            qmax = float(lo)
            break
    qmax = max(qmax, min(q[-1], qmin + 2.0))
    return float(q[q <= qmax + 1e-12][-1])


@dataclass(frozen=True)
class _Prepared:
    q: np.ndarray
    i_s: np.ndarray
    s_s: np.ndarray | None
    i_b: np.ndarray | None
    s_b: np.ndarray | None
    f2avg: np.ndarray
    favg2: np.ndarray
    qmin: float
    qmaxinst: float
    degree: float
    regular: bool


def _reduce(p: _Prepared, bkg_scale: float):
    """I_c, σ_c, k, S, σ_S, F, σ_F on the prepared grid for one background scale."""
    ic = p.i_s if p.i_b is None else p.i_s - bkg_scale * p.i_b
    if p.s_s is None:
        sc = None
    elif p.s_b is None or p.i_b is None:
        sc = p.s_s
    else:
        sc = np.sqrt(p.s_s**2 + (bkg_scale * p.s_b) ** 2)
    wt = 1.0 / p.favg2**2
    den = float(np.sum(ic * ic * wt))
    k = float(np.sum(ic * p.f2avg * wt)) / den if den > 0 else np.nan
    if not np.isfinite(k) or k <= 0:
        raise InputError(
            f"background-subtracted intensity is mostly negative (bkg scale {bkg_scale:g}); "
            "lower the background scale"
        )
    sm1 = (k * ic - p.f2avg) / p.favg2  # S_m - 1
    fm = p.q * sm1
    s = 1.0 + sm1 - _poly_correction(p.q, fm, p.degree)
    f = p.q * (s - 1.0)
    ss = None if sc is None else k * sc / p.favg2
    sf = None if ss is None else p.q * ss
    return ic, sc, k, s, ss, f, sf
