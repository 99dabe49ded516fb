"""The band-pass of G(r) and the amplitude of its analytic signal (module Notes, steps 1–2)."""

from __future__ import annotations

import numpy as np


def _odd_extension(r: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, int, float]:
    """G on 0…rmax, zero-padded to 2·rmax and extended oddly about r = 0; (array, n0, Δr)."""
    step = float(np.median(np.diff(r)))
    n0 = int(round(r[0] / step))
    full = np.concatenate([np.zeros(n0), np.asarray(g, float)])
    ext = np.concatenate([full, np.zeros(full.size)])  # zero padding beyond rmax
    return np.concatenate([ext, [0.0], -ext[:0:-1]]), n0, step


def _taper(q: np.ndarray, q_cut_invA: tuple[float, float], q_top: float = np.inf) -> np.ndarray:
    """Band-pass transmission: 0 below ``q_cut[0]``, cosine rise to 1 at ``q_cut[1]``, and
    a cosine fall over the top ``ROLLOFF`` of ``q_top`` (no edge at the data's Q_max)."""
    lo, hi = q_cut_invA
    x = np.clip((np.abs(q) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    t = 0.5 - 0.5 * np.cos(np.pi * x)
    if np.isfinite(q_top):
        y = np.clip((q_top - np.abs(q)) / (ROLLOFF * q_top), 0.0, 1.0)
        t = t * (0.5 - 0.5 * np.cos(np.pi * y))
    return t


#: Fraction of the data's top Q over which the band-pass falls to 0 (module Notes).
ROLLOFF = 0.3


def _q_top(freq: np.ndarray, spec: np.ndarray) -> float:
    """Highest Q (Å⁻¹) whose 0.5 Å⁻¹ bin holds ≥ 10⁻⁴ of the largest bin's power.

    Beyond the Q_max of the transform the spectrum of G(r) holds only the leakage
    of its truncation at r_max; this finds that Q_max without metadata.
    """
    pos = freq > 0
    bins = np.floor(freq[pos] / 0.5).astype(int)
    power = np.bincount(bins, weights=np.abs(spec[pos]) ** 2)
    above = np.nonzero(power >= 1e-4 * power.max())[0]
    return float((above[-1] + 1) * 0.5)


def _analytic(spec: np.ndarray) -> np.ndarray:
    """Analytic signal of a real signal given its spectrum: positive frequencies twice."""
    h = np.zeros(spec.size)
    h[0] = 1.0
    h[1 : (spec.size + 1) // 2] = 2.0
    if spec.size % 2 == 0:
        h[spec.size // 2] = 1.0
    return np.fft.ifft(spec * h)


def highpass_amplitude(
    r_A: np.ndarray, g: np.ndarray, q_cut_invA: tuple[float, float] = (1.6, 2.6)
) -> tuple[np.ndarray, np.ndarray]:
    """High-passed G(r) and the amplitude of its analytic signal (module Notes, step 1–2).

    Parameters
    ----------
    r_A : (N,) ndarray
        Regular r grid (Å), r ≥ 0.
    g : (N,) ndarray
        G(r).
    q_cut_invA : (float, float)
        Cosine taper from 0 (below the first) to 1 (above the second), Å⁻¹.

    Returns
    -------
    g_hp, amplitude : (N,) ndarray
    """
    r = np.asarray(r_A, float)
    arr, n0, step = _odd_extension(r, g)
    qv = 2.0 * np.pi * np.fft.fftfreq(arr.size, step)
    spec = np.fft.fft(arr)
    spec = spec * _taper(qv, q_cut_invA, _q_top(qv, spec))
    ghp = np.fft.ifft(spec).real[n0 : n0 + r.size]
    amp = np.abs(_analytic(spec))[n0 : n0 + r.size]
    return ghp, amp
