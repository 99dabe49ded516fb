"""The envelope model through the same band-pass, its fit and its esd (module Notes, steps 3–4)."""

from __future__ import annotations

import numpy as np

from xrdpdf._core.errors import ConvergenceError
from xrdpdf.stages.corrlen._filter import _odd_extension, _q_top, _taper


def sphere_envelope(r_A, diameter_A: float) -> np.ndarray:
    r"""Spherical-particle characteristic function γ0(r; D).

    .. math:: \gamma_0 = 1 - \tfrac{3}{2}x + \tfrac12 x^3,\ x = r/D \le 1;\ 0\ \text{beyond}.
    """
    x = np.asarray(r_A, float) / float(diameter_A)
    return np.where(x < 1.0, 1.0 - 1.5 * x + 0.5 * x**3, 0.0)


FLOOR_FRACTION = 0.01


#: Relative spacing of the diameters at which the filtered envelope model is computed
#: (it is interpolated linearly between them).
D_NODE_STEP = 0.01

#: Complex transforms per chunk of _FilteredEnvelope._near_power (memory: 2·16·N·16 B).
_CHUNK = 16


def _tail_floor(r: np.ndarray, g_hp: np.ndarray, sigma, r_end_A: float) -> float:
    """RMS of the high-passed G beyond ``r_end_A`` (≥ median σ_G); 0 with < 5 Å of tail."""
    tail = r >= r_end_A
    if r[-1] - max(r_end_A, r[0]) < 5.0 or tail.sum() < 10:
        return 0.0
    rms = float(np.sqrt(np.mean(g_hp[tail] ** 2)))
    if sigma is not None and np.any(sigma[tail] > 0):
        rms = max(rms, float(np.median(sigma[tail])))
    return rms


class _FilteredEnvelope:
    """Window means of the expected squared envelope of high-pass[γ0(r; D)·damping·carrier].

    The carrier is a stationary random oscillation whose power spectrum is that of
    the data at Q ≥ ``q_cut[0]`` (module Notes, step 3): a component at Q′
    contributes :math:`|\\mathcal{F}^{-1}[\\hat\\gamma(k) T(Q' + k)]|^2`, with
    :math:`\\hat\\gamma` the spectrum of γ0·damping and T the high-pass taper; far
    above the taper that is γ0²·damping² itself.
    """

    def __init__(self, r, g, idx, q_cut: tuple[float, float], qdamp: float | None):
        arr, self.n0, self.step = _odd_extension(r, g)
        self.size, self.n, self.idx, self.q_cut, self.qdamp = arr.size, r.size, idx, q_cut, qdamp
        self.freq = 2.0 * np.pi * np.fft.fftfreq(arr.size, self.step)
        spec = np.fft.fft(arr)
        self.q_top = _q_top(self.freq, spec)
        keep = (self.freq >= q_cut[0]) & (self.freq <= self.q_top)
        self.q_car = self.freq[keep]
        power = np.abs(spec[keep]) ** 2
        self.w_car = power / max(float(power.sum()), 1e-300)
        k = np.arange(arr.size)
        self.r_even = np.minimum(k, arr.size - k) * self.step  # γ0(|r|) on the periodic grid
        self._nodes: dict[int, np.ndarray] = {}

    def _at_node(self, j: int) -> np.ndarray:
        if j not in self._nodes:
            d = float(np.exp(j * np.log1p(D_NODE_STEP)))
            env = sphere_envelope(self.r_even, d)
            if self.qdamp:
                env = env * np.exp(-0.5 * (self.qdamp * self.r_even) ** 2)
            spec = np.fft.fft(env)
            kmax = 4.0 * 2.0 * np.pi / d  # γ̂ of the |r| cusp falls as k⁻²
            near = self.q_car < self.q_cut[1] + kmax
            sl = slice(self.n0, self.n0 + self.n)
            # far above the low cut the broadened line sees the slow roll-off as a weight
            far_t = _taper(self.q_car[~near], self.q_cut, self.q_top)
            e2 = float(self.w_car[~near] @ far_t**2) * env[sl] ** 2
            # carriers near the taper, binned at half the width of γ̂ (π/D)
            dq = 0.5 * np.pi / d
            bins = np.floor(self.q_car[near] / dq).astype(int)
            wsum = np.bincount(bins - bins.min(), weights=self.w_car[near])
            (used,) = np.nonzero(wsum > 0)
            qcs = (used + bins.min() + 0.5) * dq
            e2 = e2 + self._near_power(spec.real, qcs, wsum[used], sl)
            self._nodes[j] = np.array([e2[i].mean() for i in self.idx])
        return self._nodes[j]

    def _near_power(self, spec: np.ndarray, qcs: np.ndarray, ws: np.ndarray, sl: slice):
        """Σ_b w_b·|ifft(spec·T(qc_b + f))|² on sl, two carriers per complex transform.

        spec is real (γ0·damping is even on the periodic grid), so u = ifft(spec·T) is
        Hermitian, u(−r) = conj u(r): two carriers a, b travel as one transform
        z = ifft(spec·(T_a + i·T_b)) and part again as u_a = (z(r) + conj z(−r))/2 and
        u_b = (z(r) − conj z(−r))/2i (the two-for-one FFT; Press et al., Numerical
        Recipes, 3rd ed., §12.3.2), in chunks of ``_CHUNK`` transforms.
        """
        from scipy import fft

        k = np.arange(sl.start, sl.stop)
        neg = (-k) % self.size  # the grid point at −r
        out = np.zeros(k.size)
        for c0 in range(0, qcs.size, 2 * _CHUNK):
            qc, w = qcs[c0 : c0 + 2 * _CHUNK], ws[c0 : c0 + 2 * _CHUNK]
            t = np.zeros((qc.size + qc.size % 2, self.size))
            for i, q in enumerate(qc):
                # T(q + f) vanishes outside (q_cut[0], q_top): evaluated only inside
                inside = (self.freq > self.q_cut[0] - q) & (self.freq < self.q_top - q)
                t[i, inside] = _taper(q + self.freq[inside], self.q_cut, self.q_top)
            z = fft.ifft(spec * (t[0::2] + 1j * t[1::2]), axis=-1)
            zk, zn = z[:, k], np.conj(z[:, neg])
            out += w[0::2] @ (np.abs(zk + zn) ** 2 / 4.0)
            if qc.size > 1:
                half = qc.size // 2  # the last transform carries one carrier when odd
                out += w[1::2] @ (np.abs(zk[:half] - zn[:half]) ** 2 / 4.0)
        return out

    def __call__(self, d: float) -> np.ndarray:
        x = np.log(d) / np.log1p(D_NODE_STEP)
        j = int(np.floor(x))
        f = x - j
        return (1.0 - f) * self._at_node(j) + f * self._at_node(j + 1)


def _envelope_model(p, model: _FilteredEnvelope, nvar, tail: float) -> np.ndarray:
    """Window RMS of A·γ0(r; D)·damping, high-passed, with the noise and the tail level added."""
    a, d = p
    return np.sqrt(a * a * model(d) + nvar + tail * tail)


def _fit_envelope(model, env, nvar, bounds, rmax: float, tail: float, offset):
    """Least-squares envelope fit: relative residuals (offset None) or log residuals.

    Without an offset the residual is (m − E)/(m + 0.2 max E), a start that the
    first shells dominate; with the offset f it is ln((m + f)/(E + f)), so every
    window down to the noise floor weighs by its relative misfit (module Notes).
    """
    from scipy.optimize import least_squares

    top = float(env.max())

    def resid(p: np.ndarray) -> np.ndarray:
        m = _envelope_model(p, model, nvar, tail)
        if offset is None:
            return (m - env) / (0.2 * top + m)
        return np.log((m + offset) / (env + offset))

    a0 = float(env[: max(2, len(env) // 5)].mean()) or 1.0
    best = None
    for d0 in (0.3 * rmax, 0.7 * rmax, 1.5 * rmax):
        d0 = min(max(d0, bounds[0] * 1.01), bounds[1] * 0.99)
        try:
            fit = least_squares(
                resid,
                [a0, d0],
                bounds=([0.0, bounds[0]], [np.inf, bounds[1]]),
                x_scale=[a0, rmax],
                diff_step=[1e-6, 0.3 * D_NODE_STEP],
            )
        except (ValueError, np.linalg.LinAlgError):  # pragma: no cover - defensive
            continue
        if best is None or fit.cost < best.cost:
            best = fit
    if best is None or not best.success:
        raise ConvergenceError("correlation-length envelope fit did not converge")
    return best


def _esd_of_d(fit, nwin: int) -> float:
    """Least-squares esd of D, scaled by the scatter of the windows."""
    s2 = 2.0 * fit.cost / max(nwin - 2, 1)
    try:
        cov = np.linalg.inv(fit.jac.T @ fit.jac) * s2
    except np.linalg.LinAlgError:
        return float("inf")
    return float(np.sqrt(max(cov[1, 1], 0.0)))
