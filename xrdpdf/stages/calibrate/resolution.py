r"""The instrument resolution from a calibrant: pseudo-Voigt fits of its peaks, a smooth model.

Resolution file (JSON, ``schema = "xrdpdf.resolution/1"``)
----------------------------------------------------------
The keys ``model``, ``unit``, ``fwhm_coeffs``, ``eta_coeffs``, ``wavelength_A`` are those that
:func:`xrdpdf.physics.resolution.load_resolution` reads (model ``"poly"``); the rest is provenance::

    {"schema": "xrdpdf.resolution/1",
     "model": "poly", "unit": "q_A^-1", "wavelength_A": 0.1173,
     "fwhm_coeffs": [c0, c1, c2],
     "eta_coeffs": [e0, e1],
     "q_range_invA": [qmin, qmax],
     "integration_method": ["no", "histogram", "cython"],
     "calibrant": "CeO2",
     "peaks": [{"q_invA": ..., "fwhm_invA": ..., "eta": ..., "fwhm_err_invA": ...}, ...]}

with, for Q in Å⁻¹ (coefficients low order first, as numpy ``polyval``),

.. math::

    \mathrm{FWHM}(Q) = c_0 + c_1 Q + c_2 Q^2 \quad [\text{Å}^{-1}], \qquad
    \eta(Q) = \mathrm{clip}(e_0 + e_1 Q,\ 0,\ 1).

A quadratic is enough: the Caglioti law [1]_ FWHM_2θ² = U tan²θ + V tan θ + W, moved to Q at the
small angles of high-energy diffraction (tan θ ≈ Qλ/4π, dQ = (2π/λ) cos θ d(2θ)), is a smooth,
slowly varying function of Q.  η is the pseudo-Voigt Lorentzian fraction,
pV = η L + (1 − η) G with a common FWHM.  Read it back with
:func:`~xrdpdf.load_resolution`; outside ``q_range_invA`` the model is extrapolated.

References
----------
.. [1] G. Caglioti, A. Paoletti, F. P. Ricci, "Choice of collimators for a crystal spectrometer
   for neutron diffraction", Nucl. Instrum. 3 (1958) 223, doi:10.1016/0369-643X(58)90029-X.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xrdpdf._core.errors import CalibrationError
from xrdpdf.physics.resolution import Resolution
from xrdpdf.stages.calibrate._calibrate import CalibrationResult
from xrdpdf.stages.calibrate.calibrants import get_calibrant

__all__ = [
    "RESOLUTION_SCHEMA",
    "ResolutionFit",
    "instrument_resolution",
]


RESOLUTION_SCHEMA = "xrdpdf.resolution/1"


@dataclass(frozen=True)
class ResolutionFit:
    """The fitted instrument resolution and where it came from (see the module docstring).

    The model itself is a :class:`~xrdpdf.Resolution` (model ``"poly"`` in Q), the one
    that refinement and sizing read back with :func:`~xrdpdf.load_resolution`; this
    class adds the provenance written to the same JSON file.

    Attributes
    ----------
    resolution : xrdpdf.physics.resolution.Resolution
        FWHM(Q) = Σ c_k Q^k (Å⁻¹) and η(Q) = clip(Σ e_k Q^k, 0, 1).
    q_range_invA : (float, float)
        Q range of the fitted calibrant peaks.
    peaks : tuple of dict
        The fitted peaks (``q_invA``, ``fwhm_invA``, ``eta``, ``fwhm_err_invA``, ``eta_err``).
    integration_method : tuple of str
    calibrant : str
    """

    resolution: Resolution
    q_range_invA: tuple[float, float] = (0.0, float("inf"))
    peaks: tuple[dict, ...] = ()
    integration_method: tuple[str, ...] = ("no", "histogram", "cython")
    calibrant: str = ""

    def fwhm_invA(self, q: np.ndarray | float) -> np.ndarray:
        """Instrumental FWHM (Å⁻¹) at Q (Å⁻¹); never below 0."""
        return self.resolution.fwhm_eta_q(q)[0]

    def eta(self, q: np.ndarray | float) -> np.ndarray:
        """Lorentzian fraction η of the instrumental pseudo-Voigt at Q (Å⁻¹), in [0, 1]."""
        return self.resolution.fwhm_eta_q(q)[1]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of the resolution file (model plus provenance)."""
        doc: dict[str, Any] = {"schema": RESOLUTION_SCHEMA}
        doc.update(self.resolution.to_dict())
        doc.update(
            q_range_invA=list(self.q_range_invA),
            integration_method=list(self.integration_method),
            calibrant=self.calibrant,
            peaks=[dict(p) for p in self.peaks],
        )
        return doc


def _fit_peak(q, y, q0, half, f0, step) -> dict | None:
    """Pseudo-Voigt + linear background fit (lmfit) of one peak on q0 ± half; None if unusable.

    lmfit's ``PseudoVoigtModel`` is η·L + (1 − η)·G with a common FWHM = 2σ, the profile of
    :func:`~xrdpdf.physics.profiles.pseudo_voigt`; esds are scaled by the reduced χ².
    """
    from lmfit.models import LinearModel, PseudoVoigtModel

    win = (q > q0 - half) & (q < q0 + half)
    if win.sum() < 10:
        return None
    x, yy = q[win], y[win]
    b0 = float(min(yy[0], yy[-1]))
    model = PseudoVoigtModel(prefix="p_") + LinearModel(prefix="b_")
    pars = model.make_params(b_intercept=b0, b_slope=0.0)
    pars["p_amplitude"].set(value=float(max(np.sum(yy - b0) * step, 1e-12)), min=0.0)
    pars["p_center"].set(value=q0, min=q0 - f0, max=q0 + f0)
    pars["p_sigma"].set(value=0.5 * f0, min=0.25 * step, max=half)
    pars["p_fraction"].set(value=0.3, min=0.0, max=1.0)
    try:
        fit = model.fit(yy, pars, x=x, max_nfev=4000)
    except (RuntimeError, ValueError):
        return None
    p = fit.params
    if not fit.success or p["p_sigma"].stderr is None or p["p_fraction"].stderr is None:
        return None
    fwhm, fwhm_err = 2.0 * p["p_sigma"].value, 2.0 * p["p_sigma"].stderr
    if not np.isfinite(fwhm_err):
        return None
    height = p["p_amplitude"].value / fwhm
    noise = float(np.std(fit.residual))
    if height < 10 * max(noise, 1e-12) or fwhm > 0.99 * 2 * half or fwhm_err > 0.2 * fwhm:
        return None
    return {
        "q_invA": float(p["p_center"].value),
        "fwhm_invA": float(fwhm),
        "fwhm_err_invA": float(fwhm_err),
        "eta": float(p["p_fraction"].value),
        "eta_err": float(p["p_fraction"].stderr),
    }


def instrument_resolution(
    image: np.ndarray,
    result: CalibrationResult,
    *,
    calibrant: str | None = None,
    npt: int | None = None,
    method: Sequence[str] = ("no", "histogram", "cython"),
    max_peaks: int = 30,
) -> ResolutionFit:
    """Fit the calibrant peaks of an integrated image and model the instrumental widths.

    Parameters
    ----------
    image : (ny, nx) ndarray
        The calibrant frame that was calibrated.
    result : CalibrationResult
        Its geometry and mask.
    calibrant : str, optional
        Default ``result.calibrant``.
    npt : int, optional
        Number of Q bins (default: 4 bins per pixel across the Q range).
    method : sequence of str
        pyFAI integration method.  Use the method with which the samples are integrated, so
        that the integration's own broadening is part of the instrument.
    max_peaks : int
        Fit at most this many resolved peaks.

    Returns
    -------
    ResolutionFit

    Raises
    ------
    CalibrationError
        Fewer than 3 resolved peaks could be fitted.

    Notes
    -----
    Each calibrant peak separated from its neighbours by more than 5 estimated FWHM is fitted
    on ±2.5 FWHM with pV(Q) = A[η L + (1 − η) G] + b0 + b1(Q − Q0) (common FWHM).  FWHM(Q) is fitted
    by a quadratic (a line below 5 peaks), weighted with 1/σ(FWHM), and η(Q) by a line.
    """
    img = np.asarray(image, dtype=np.float64)
    q, y, dq_pix = _calibrant_profile(img, result, npt, method)
    step = float(np.median(np.diff(q)))
    cal = get_calibrant(calibrant or result.calibrant, result.wavelength_A)
    qpk, sep = _calibrant_lines(cal, q)
    f0 = _width_scale(q, y, qpk, sep, max(2.0 * dq_pix, 4 * step), step)
    peaks = _resolved_peaks(q, y, qpk, sep, f0, step, max_peaks)
    if len(peaks) < 3:
        raise CalibrationError(
            f"only {len(peaks)} resolved calibrant peak(s) could be fitted; need 3 for the "
            "resolution model"
        )
    qp = np.array([p["q_invA"] for p in peaks])
    return ResolutionFit(
        resolution=_resolution_model(peaks, float(result.wavelength_A)),
        q_range_invA=(float(qp.min()), float(qp.max())),
        peaks=tuple(peaks),
        integration_method=tuple(str(m) for m in method),
        calibrant=calibrant or result.calibrant,
    )


def _calibrant_profile(
    img: np.ndarray, result: CalibrationResult, npt: int | None, method: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Integrate the calibrant frame to I(Q) over its unmasked Q range.

    Returns the bins with a finite, non-zero intensity and the Q width of one pixel at the
    beam centre, ``dq_pix`` (Å⁻¹).  Without ``npt`` the bins are half a pixel wide.
    """
    ai = result.integrator()
    qmap = ai.array_from_unit(img.shape, "center", "q_A^-1", scale=True)
    qv = qmap[~result.mask]
    qlo, qhi = float(np.percentile(qv, 0.5)), float(np.percentile(qv, 99.5))
    dq_pix = (4 * math.pi / (result.wavelength_A)) * 0.5 * (ai.detector.pixel1 / ai.dist)
    if npt is None:
        # bins of half a pixel: finer bins alias the pixel grid without pixel splitting
        npt = int(min(20000, max(200, 2 * (qhi - qlo) / dq_pix)))
    res1d = ai.integrate1d(
        img,
        npt,
        unit="q_A^-1",
        mask=result.mask,
        method=tuple(method),
        radial_range=(qlo, qhi),
        correctSolidAngle=True,
        polarization_factor=None,
    )
    q = np.asarray(res1d.radial, dtype=float)
    y = np.asarray(res1d.intensity, dtype=float)
    good = np.isfinite(y) & (y != 0)
    return q[good], y[good], dq_pix


def _calibrant_lines(cal, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct calibrant line positions inside the data and each one's distance to its nearest
    neighbour (both Å⁻¹)."""
    qpk = np.unique(np.round(2 * math.pi / np.asarray(cal.dspacing, dtype=float), 9))
    qpk = qpk[(qpk > q[0] + 0.05) & (qpk < q[-1] - 0.05)]
    gaps = np.diff(qpk)
    sep = np.minimum(np.r_[np.inf, gaps], np.r_[gaps, np.inf])
    return qpk, sep


def _width_scale(q, y, qpk, sep, f0: float, step: float) -> float:
    """The FWHM of the first well isolated line (one of the first three further than 10 ``f0``
    from its neighbours) fitted on a wide window; ``f0`` when none fits."""
    for i in np.nonzero(sep > 10 * f0)[0][:3]:
        fit = _fit_peak(q, y, qpk[i], min(0.4 * sep[i], 10 * f0), f0, step)
        if fit is not None:
            return max(fit["fwhm_invA"], 2 * step)
    return f0


def _resolved_peaks(q, y, qpk, sep, f0: float, step: float, max_peaks: int) -> list[dict]:
    """Fits of the resolved lines (neighbours further than 5 FWHM), each on ±2.5 FWHM, in order
    of Q, at most ``max_peaks``."""
    peaks: list[dict] = []
    for i, q0 in enumerate(qpk):
        if sep[i] < 5.0 * f0:
            continue
        fit = _fit_peak(q, y, q0, 2.5 * f0, f0, step)
        if fit is not None:
            peaks.append(fit)
        if len(peaks) >= max_peaks:
            break
    return peaks


def _resolution_model(peaks: list[dict], wavelength_A: float) -> Resolution:
    """FWHM(Q) as a quadratic (a line below 5 peaks) weighted with 1/σ(FWHM), η(Q) as a line.

    The esds are floored (FWHM at 0.1 %, η at 0.02) so that one peak with an unrealistically
    small esd does not pin the curve.
    """
    qp = np.array([p["q_invA"] for p in peaks])
    fw = np.array([p["fwhm_invA"] for p in peaks])
    fe = np.array([max(p["fwhm_err_invA"], 1e-3 * p["fwhm_invA"]) for p in peaks])
    deg = 2 if len(peaks) >= 5 else 1
    fw_c = np.polynomial.polynomial.polyfit(qp, fw, deg, w=1.0 / fe)
    et = np.array([p["eta"] for p in peaks])
    ee = np.array([max(p["eta_err"], 0.02) for p in peaks])
    et_c = np.polynomial.polynomial.polyfit(qp, et, 1, w=1.0 / ee)
    return Resolution(
        "poly",
        tuple(float(c) for c in fw_c),
        tuple(float(c) for c in et_c),
        "q_A^-1",
        wavelength_A,
    )
