r"""Correlation length of a G(r): spherical-envelope diameter and noise-threshold length.

Definition: ``xi_A`` is the diameter D of the sphere whose
characteristic function :math:`\gamma_0(r; D)` [1]_ [2]_ (times the instrument
damping :math:`e^{-(Q_{damp} r)^2/2}` when ``qdamp_invA`` is known) describes
the decay of the *high-frequency* envelope of G(r):

1. **Band-pass.**  G(r) is extended oddly about r = 0 (G is a sine transform),
   zero-padded beyond its end, and its components below
   :math:`Q_c` are removed with a cosine taper from ``q_cut_invA[0]`` to
   ``q_cut_invA[1]`` (default 1.6–2.6 Å⁻¹); above, a cosine roll-off over the
   top 30 % of the data's Q_max (found from the spectrum of G, where its power
   falls below 10⁻⁴ of the strongest 0.5 Å⁻¹ bin) removes the termination
   ripples, whose 1/r tails otherwise read as an envelope beyond the particle.
   The low cut drops what is not atomic pair structure but follows the Q range
   chosen: the baseline :math:`-4\pi\rho_0 r\gamma_0`, the small-angle
   scattering of the particle, the slow ripples of the low-Q cut, and the
   end of the PDFgetX3 correction polynomial at qmin (on a 7 Å cluster F(Q) in
   1–2 Å⁻¹ differs by up to 0.7 between qmin 0.3 and 1.2 Å⁻¹; below 1.6 Å⁻¹
   the band-passed G still moved ξ by 25 % with qmin).  Interatomic distances
   ≥ 1 Å keep their peaks: the atomic F(Q) extends to ≥ 10 Å⁻¹ (anatase 101 lies
   at 1.78, rocksalt NaTiO2 111 at 2.59 Å⁻¹).
2. **Envelope.**  The amplitude of the analytic signal of the filtered G
   (:math:`|G_{bp} + i\,\mathcal{H}G_{bp}|`) does not depend on the phase of the
   oscillation; its RMS in windows of ``window_A`` is the envelope E.
3. **Model through the same filter.**  The band-pass of a product
   γ0(r; D)·G_bulk(r) is not γ0 times the band-pass of G_bulk: each spectral
   component of G_bulk is broadened by the spectrum of γ0 (width ~2π/D), and the
   part pushed below the cut is removed, which spreads the envelope beyond D
   by ~π/Q_c.  For a 7–10 Å cluster that tail alone makes an envelope fit with
   γ0² read +20…+30 %.  So the model is the expected envelope of the band-pass
   of γ0·damping times a stationary random carrier whose power spectrum
   :math:`P(Q')` is that of the data at :math:`Q' \ge Q_c`:

   .. math::

       \mathcal{E}^2(r; D) = \sum_{Q'} P(Q') \left|\mathcal{F}^{-1}\left[
           \hat\gamma(k)\, T(Q' + k)\right](r)\right|^2,

   :math:`\hat\gamma` the spectrum of :math:`\gamma_0 e^{-(Q_{damp} r)^2/2}`,
   T the band-pass (carriers far above the cut contribute :math:`T(Q')^2\gamma^2`).
   It is computed at diameters 1 % apart and interpolated.
4. **Fit.**  With :math:`\gamma_0 = 1 - 3r/2D + r^3/2D^3` (r ≤ D, 0 beyond),

   .. math::

       E_i^2 = A^2 \langle \mathcal{E}^2(r; D)\rangle_i + \langle \sigma_G^2 \rangle_i,

   fitted for A and D by least squares in two passes.  The first, with
   relative residuals :math:`(E^{model}_i - E_i)/(E^{model}_i + 0.2\max E)`,
   gives a start D₁.  The level t of the band-passed G beyond D₁ + ``window_A``
   (its RMS, at least the median σ_G; 0 with less than 5 Å of tail) is what the
   data hold once the particle has ended, and is added to the model as
   :math:`E_i^2 \mathrel{+}= t^2`.  The second pass minimises the log residuals
   :math:`\ln[(E^{model}_i + f)/(E_i + f)]`, :math:`f = \max(t, 0.01\max E)`:
   every window down to the noise floor weighs by its *relative* misfit.  The
   first shells, whose height is set by the bulk structure and not by D, then
   no longer pull D (with the relative residuals they did: the bulk envelope
   of a crystal rises over its first ~10 Å, and D followed ``rmin`` by ±14 %
   on the real CdSe data below); the decay to the floor, which D fixes, counts
   as much.  Below 1 % of the envelope window leakage dominates, hence the
   lower bound of f.  The model still assumes a flat bulk envelope (a
   nanoparticle's envelope is γ0·E_bulk).  The esd is the least-squares one
   scaled by the scatter of the windows; it omits the model error of that
   assumption.

Measured on Debye-equation spheres (tests/test_corrlen.py, Q ≤ 25 Å⁻¹; spheres
below 300 atoms averaged over 8 random lattice offsets, the ensemble whose pair
statistics are exactly γ0), qmin 0.3–1.2 Å⁻¹: rocksalt NaTiO2 (U = 0.005 Å²)
D = 7–100 Å read −4.1…+9.8 %, strongly disordered anatase TiO2 (U = 0.02 Å²,
broad peaks) −1.8…+11.4 %; for each D the four qmin agree within 5 % of D
(anatase 8 Å: 1.9–6.9 %, esd 3–20 %; most within 0.5 %).  On the PDFgui
tutorial G(r) of ~3 nm CdSe (PDFgetX2, Q_max 14 Å⁻¹) ξ = 33.1–35.4 Å for
rmin 2–6 Å and r_noise = 28.5 Å.  ¾·D is the volume-weighted mean column
length.  When the envelope does not decay within the fitted range, or D would
lie beyond it, :class:`NotDeterminedError` says so: the data do not determine ξ.

``r_noise_A``
    The largest r at which the RMS of G(r) in a sliding ±0.5 Å window exceeds
    3σ_n.  σ_n is the RMS of G beyond ``xi_A + window_A`` (no structure is left
    beyond the particle), and at least the median σ_G there: a σ_G propagated
    from counting statistics alone misses the correlated errors (on the CdSe
    data PDFgetX2's σ_G is 1.0e-3 Å⁻², the scatter beyond the particle 0.010).
    It is NaN, with ``r_noise_reason``, when less than 5 Å of data lie beyond
    that point or when the signal stays above 3σ_n to the end of the data.  It
    depends on Q_max, σ and any Lorch window: quote it only as secondary.

``qdamp_from_resolution`` turns a calibrant resolution file
(:func:`xrdpdf.physics.resolution.load_resolution`) into Q_damp: a Gaussian peak of
standard deviation :math:`\sigma_Q` in Q damps G(r) by
:math:`e^{-\sigma_Q^2 r^2/2}` (convolution theorem), so
:math:`Q_{damp} = \langle \mathrm{FWHM}(Q)\rangle/(2\sqrt{2\ln 2})` over the Q range of
the transform (Lorentzian fraction ignored).

References
----------
.. [1] K. Kodama, S. Iikubo, T. Taguchi, S. Shamoto, Acta Cryst. A62 (2006)
       444. https://doi.org/10.1107/S0108767306034635
.. [2] R. C. Howell, T. Proffen, S. D. Conradson, Phys. Rev. B 73 (2006)
       094107. https://doi.org/10.1103/PhysRevB.73.094107
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError, NotDeterminedError
from xrdpdf._core.pattern import Pattern
from xrdpdf._core.results import Result
from xrdpdf.stages.corrlen._filter import highpass_amplitude
from xrdpdf.stages.corrlen._model import (
    FLOOR_FRACTION,
    _envelope_model,
    _esd_of_d,
    _FilteredEnvelope,
    _fit_envelope,
    _tail_floor,
    sphere_envelope,
)

__all__ = [
    "CorrLenResult",
    "sphere_envelope",
    "correlation_length",
    "noise_length",
    "highpass_amplitude",
    "qdamp_from_resolution",
]

METHOD = "sphere-envelope"


@dataclass(frozen=True, eq=False)
class CorrLenResult(Result):
    """Result of :func:`correlation_length`.

    Attributes
    ----------
    xi_A : float
        Sphere diameter D of the envelope fit (Å).
    xi_esd_A : float
        Its estimated standard deviation (Å).
    r_noise_A : float
        Largest r where the local RMS of G exceeds 3σ_n (Å); NaN if not found.
    r_noise_reason : str or None
        Why ``r_noise_A`` is NaN.
    method : str
        ``"sphere-envelope"`` (× ``"qdamp"`` when damping was included).
    amplitude : float
        Envelope amplitude A (Å⁻²).
    noise_level : float
        σ_n used for ``r_noise_A`` (Å⁻²).
    qdamp_invA : float or None
        Instrument damping used (Å⁻¹).
    rmin_A, rmax_A, window_A : float
        Fitted r range and window width (Å).
    envelope_r_A, envelope, envelope_model : (K,) ndarray
        Window centres, measured RMS envelope and the fitted model.
    """

    xi_A: float
    xi_esd_A: float
    r_noise_A: float
    method: str
    amplitude: float
    noise_level: float
    qdamp_invA: float | None
    rmin_A: float
    rmax_A: float
    window_A: float
    r_noise_reason: str | None
    envelope_r_A: np.ndarray = field(repr=False)
    envelope: np.ndarray = field(repr=False)
    envelope_model: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON values (no arrays)."""
        return {
            "xi_A": self.xi_A,
            "xi_esd_A": self.xi_esd_A,
            "r_noise_A": None if not np.isfinite(self.r_noise_A) else self.r_noise_A,
            "r_noise_reason": self.r_noise_reason,
            "method": self.method,
            "amplitude": self.amplitude,
            "noise_level": self.noise_level,
            "qdamp_invA": self.qdamp_invA,
            "rmin_A": self.rmin_A,
            "rmax_A": self.rmax_A,
            "window_A": self.window_A,
        }

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in self.to_dict().items())
        return f"<table><tr><th colspan=2>CorrLenResult</th></tr>{rows}</table>"


def _check_gr(gr: Pattern) -> None:
    if not isinstance(gr, Pattern):
        raise InputError(f"correlation_length needs a Pattern, got {type(gr).__name__}")
    if gr.unit != units.R_A:
        raise InputError(f"{gr.source}: G(r) must have unit r_A, got {gr.unit!r}")
    if gr.x.size < 20:
        raise InputError(f"{gr.source}: G(r) has only {gr.x.size} points; need ≥ 20")


def noise_length(
    gr: Pattern, r_signal_end_A: float, *, window_A: float = 1.0
) -> tuple[float, float, str | None]:
    """``(r_noise_A, sigma_n, reason)``: largest r whose local RMS of G exceeds 3σ_n.

    Parameters
    ----------
    gr : Pattern
        G(r), unit ``"r_A"``.
    r_signal_end_A : float
        r beyond which no structure is expected (e.g. ξ + window); σ_n is measured there.
    window_A : float
        Width of the sliding RMS window (Å).

    Returns
    -------
    r_noise_A : float
        NaN when it cannot be found (then ``reason`` says why).
    sigma_n : float
        Noise level (Å⁻²), NaN when there is no noise region.
    reason : str or None
    """
    _check_gr(gr)
    r, g = gr.x, gr.y
    tail = r >= r_signal_end_A
    if r[-1] - max(r_signal_end_A, r[0]) < 5.0 or tail.sum() < 10:
        return (
            float("nan"),
            float("nan"),
            f"less than 5 Å of G(r) beyond {r_signal_end_A:.1f} Å to measure the noise; "
            "extend rmax",
        )
    # the scatter that is there, never less than the stated σ: a σ_G propagated from
    # counting statistics alone misses the correlated errors (termination, normalisation)
    sn = float(np.sqrt(np.mean(g[tail] ** 2)))
    if gr.sigma is not None and np.any(gr.sigma[tail] > 0):
        sn = max(sn, float(np.median(gr.sigma[tail])))
    step = float(np.median(np.diff(r)))
    half = max(1, int(round(0.5 * window_A / step)))
    c = np.concatenate([[0.0], np.cumsum(g * g)])
    lo = np.clip(np.arange(r.size) - half, 0, r.size)
    hi = np.clip(np.arange(r.size) + half + 1, 0, r.size)
    rms = np.sqrt((c[hi] - c[lo]) / (hi - lo))
    above = np.nonzero(rms > 3.0 * sn)[0]
    if above.size == 0:
        return float("nan"), sn, "G(r) never exceeds 3σ of the noise"
    rn = float(r[above[-1]])
    if rn >= r[-1] - window_A:
        return float("nan"), sn, "G(r) stays above 3σ of the noise to the end of the data"
    return rn, sn, None


def qdamp_from_resolution(
    resolution: Any, qmin_invA: float, qmax_invA: float, wavelength_A: float | None = None
) -> float:
    """Q_damp (Å⁻¹) from a calibrant resolution model (module Notes).

    Parameters
    ----------
    resolution : xrdpdf.physics.resolution.Resolution
        E.g. from :func:`xrdpdf.physics.resolution.load_resolution`.
    qmin_invA, qmax_invA : float
        Q range of the transform (Å⁻¹).
    wavelength_A : float, optional
        Only for a 2θ resolution file that states none.
    """
    if not (np.isfinite(qmin_invA) and np.isfinite(qmax_invA) and 0 <= qmin_invA < qmax_invA):
        raise InputError(f"qdamp needs 0 ≤ qmin < qmax, got {qmin_invA}–{qmax_invA} Å⁻¹")
    q = np.linspace(max(qmin_invA, 1e-3), qmax_invA, 200)
    fwhm, _ = resolution.fwhm_eta_q(q, wavelength_A)
    fwhm = np.asarray(fwhm, float)
    if not np.all(np.isfinite(fwhm)) or np.any(fwhm <= 0):
        raise InputError("resolution model gives a non-positive FWHM in the transform's Q range")
    return float(np.mean(fwhm) / (2.0 * np.sqrt(2.0 * np.log(2.0))))


def _check_signal(gr: Pattern, env: np.ndarray, nvar: np.ndarray) -> None:
    """Refuse a G(r) whose envelope carries no oscillation (all zero, or below σ).

    Without this the envelope fit returns its start value or a bound, which
    reads like a measured length.  With σ given, the strongest window must
    exceed three times the noise envelope √⟨σ²⟩ (a 3σ detection).
    """
    top = float(np.max(env)) if env.size else 0.0
    if not np.isfinite(top) or top <= 0:
        raise InputError(
            f"{gr.source}: G(r) has no oscillating signal (all zero after the high-pass)"
        )
    noise = float(np.sqrt(np.max(nvar))) if nvar.size else 0.0
    if noise > 0 and top < 3 * noise:
        raise NotDeterminedError(
            f"{gr.source}: G(r) oscillations ({top:.3g}) are below 3σ of its noise "
            f"({noise:.3g}); the correlation length is not determined"
        )


def _windows(gr: Pattern, rmin: float, rmax: float, window_A: float) -> list[np.ndarray]:
    """Point indices of the fit windows; checks the r range, window and grid."""
    r = gr.x
    if not (np.isfinite(rmin) and np.isfinite(rmax)) or rmin < 0 or rmax <= rmin:
        raise InputError(
            f"correlation length r range must satisfy 0 ≤ rmin < rmax, got {rmin}–{rmax} Å"
        )
    if not window_A > 0:
        raise InputError(f"window_A must be > 0 Å, got {window_A}")
    edges = np.arange(rmin, rmax - 0.5 * window_A + 1e-9, window_A)
    idx = [np.nonzero((r >= lo) & (r < lo + window_A))[0] for lo in edges]
    idx = [i for i in idx if i.size >= 3]
    if len(idx) < 4:
        raise InputError(
            f"only {len(idx)} windows of {window_A} Å with ≥ 3 points in {rmin}–{rmax} Å; "
            "need ≥ 4 (widen the range or refine the r grid)"
        )
    step = np.diff(r)
    if np.max(np.abs(step - step.mean())) > 1e-3 * step.mean():
        raise InputError(f"{gr.source}: correlation length needs a regular r grid")
    return idx


def _check_options(qdamp_invA: float | None, q_cut_invA) -> tuple[float, float]:
    if qdamp_invA is not None and not (np.isfinite(qdamp_invA) and qdamp_invA >= 0):
        raise InputError(f"qdamp must be ≥ 0 Å⁻¹, got {qdamp_invA}")
    lo_c, hi_c = (float(v) for v in q_cut_invA)
    if not (0 <= lo_c <= hi_c):
        raise InputError(f"q_cut must be 0 ≤ low ≤ high Å⁻¹, got {q_cut_invA}")
    return lo_c, hi_c


def correlation_length(
    gr: Pattern,
    *,
    rmin_A: float = 3.0,
    rmax_A: float | None = None,
    window_A: float = 2.0,
    qdamp_invA: float | None = None,
    q_cut_invA: tuple[float, float] = (1.6, 2.6),
) -> CorrLenResult:
    """Correlation length of G(r) with its esd (see the module docstring).

    Parameters
    ----------
    gr : Pattern
        G(r) (unit ``"r_A"``, Å⁻²), σ optional.
    rmin_A : float
        Start of the envelope fit (Å); beyond the first shells, whose RMS is
        below the bulk envelope (no pairs below the first neighbour).
    rmax_A : float, optional
        End of the fit (Å); default the end of the data.  It must reach past
        the correlation length for D to be determined.
    window_A : float
        Width of the RMS windows (Å); a few peak spacings.
    qdamp_invA : float, optional
        Instrument Q_damp (Å⁻¹) from a standard (Ni, CeO2) in the same geometry
        (:func:`qdamp_from_resolution`).
    q_cut_invA : (float, float)
        Low edge of the band-pass taper (Å⁻¹) applied before the envelope
        (module Notes).

    Returns
    -------
    CorrLenResult

    Raises
    ------
    InputError
        Bad r range or too few windows.
    ConvergenceError
        If the fit fails or D runs to its bound.

    Examples
    --------
    >>> import numpy as np
    >>> from xrdpdf import Pattern
    >>> r = np.arange(0.01, 60, 0.01)
    >>> g = sphere_envelope(r, 30.0) * 3 * np.sin(2 * np.pi * r / 2.5)
    >>> res = correlation_length(Pattern(r, g, "r_A"))
    >>> round(res.xi_A)
    30
    """
    _check_gr(gr)
    r, g = gr.x, gr.y
    rmin, rmax = float(rmin_A), float(r[-1]) if rmax_A is None else float(rmax_A)
    idx = _windows(gr, rmin, rmax, window_A)
    q_cut = _check_options(qdamp_invA, q_cut_invA)
    ghp, amp = highpass_amplitude(r, g, q_cut)
    # amplitude² = G_hp² + (H G_hp)²: twice the mean square of an oscillation
    env = np.array([np.sqrt(0.5 * np.mean(amp[i] ** 2)) for i in idx])
    nvar = np.array([0.0 if gr.sigma is None else np.mean(gr.sigma[i] ** 2) for i in idx])
    _check_signal(gr, env, nvar)
    model = _FilteredEnvelope(r, g, idx, q_cut, qdamp_invA)
    bounds = (rmin + window_A, 20.0 * rmax)
    first = _fit_envelope(model, env, nvar, bounds, rmax, 0.0, None)
    # noise floor: what the high-passed G holds beyond the first estimate; the log
    # offset is at least 1 % of the envelope (below that window leakage dominates)
    tail = _tail_floor(r, ghp, gr.sigma, float(first.x[1]) + window_A)
    offset = max(tail, FLOOR_FRACTION * float(env.max()))
    best = _fit_envelope(model, env, nvar, bounds, rmax, tail, offset)
    a, d = (float(v) for v in best.x)
    if d >= 0.999 * bounds[1] or d > rmax - window_A:
        raise NotDeterminedError(
            f"the data do not determine the correlation length: the envelope does not decay "
            f"within {rmin}–{rmax} Å (fitted D = {d:.3g} Å); extend rmax"
        )
    rn, sn, why = noise_length(gr, d + window_A)
    return CorrLenResult(
        xi_A=d,
        xi_esd_A=_esd_of_d(best, len(env)),
        r_noise_A=rn,
        method=METHOD + ("×qdamp" if qdamp_invA else ""),
        amplitude=a,
        noise_level=sn,
        qdamp_invA=None if qdamp_invA is None else float(qdamp_invA),
        rmin_A=rmin,
        rmax_A=rmax,
        window_A=float(window_A),
        r_noise_reason=why,
        envelope_r_A=np.array([r[i].mean() for i in idx]),
        envelope=env,
        envelope_model=_envelope_model(best.x, model, nvar, tail),
    )
