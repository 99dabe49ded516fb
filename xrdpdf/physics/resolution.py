"""The instrument resolution (peak widths of a calibrant) and the Scherrer size conventions."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf.physics.crystallite import (
    SPHERE_PV_FWHM,
    combined_fwhm_eta,
    diameter_from_scherrer,
)

__all__ = [
    "Resolution",
    "load_resolution",
    "peak_widths",
    "scherrer_size_definition",
]


# ---------------------------------------------------------------------- resolution
@dataclass(frozen=True)
class Resolution:
    r"""Instrument resolution: profile FWHM and η as functions of Q or 2θ.

    JSON schema (``load_resolution``), written next to the PONI by calibration::

        {"model": "poly",              # or "caglioti"
         "unit": "q_A^-1",             # unit of x and FWHM: "q_A^-1" or "2th_deg"
         "fwhm_coeffs": [c0, c1, ...], # poly: FWHM(x) = Σ c_k x^k (numpy order, low first)
                                       # caglioti: [U, V, W] → FWHM² = U tan²θ + V tanθ + W
         "eta_coeffs": [e0, e1, ...],  # η(x) = Σ e_k x^k, clipped to 0…1 (optional, [0])
         "wavelength_A": 0.1173}       # needed for caglioti, or unit 2th_deg used with Q

    Attributes
    ----------
    model : str
        ``"poly"`` or ``"caglioti"``.
    fwhm_coeffs, eta_coeffs : tuple of float
        Coefficients as in the schema.
    unit : str
        ``"q_A^-1"`` or ``"2th_deg"``.
    wavelength_A : float or None
        Wavelength of the calibration.
    """

    model: str
    fwhm_coeffs: tuple[float, ...]
    eta_coeffs: tuple[float, ...] = (0.0,)
    unit: str = units.Q_A
    wavelength_A: float | None = None

    def __post_init__(self) -> None:
        if self.model not in ("poly", "caglioti"):
            raise InputError(f"resolution model must be 'poly' or 'caglioti', got {self.model!r}")
        if self.unit not in (units.Q_A, units.TTH_DEG):
            raise InputError(f"resolution unit must be q_A^-1 or 2th_deg, got {self.unit!r}")
        if len(self.fwhm_coeffs) == 0 or not np.all(np.isfinite(self.fwhm_coeffs)):
            raise InputError("resolution fwhm_coeffs must be a non-empty list of numbers")
        if self.model == "caglioti" and len(self.fwhm_coeffs) != 3:
            raise InputError("caglioti resolution needs fwhm_coeffs = [U, V, W]")
        if self.model == "caglioti" and self.wavelength_A is None:
            raise InputError("caglioti resolution needs wavelength_A")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "resolution") -> Resolution:
        """Build from the JSON mapping described in the class docstring."""
        try:
            model = str(d.get("model", "poly"))
            fw = tuple(float(v) for v in d["fwhm_coeffs"])
            eta = tuple(float(v) for v in d.get("eta_coeffs", [0.0]))
            unit = str(d.get("unit", units.Q_A))
            wl = d.get("wavelength_A")
            wl = None if wl is None else float(wl)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: bad resolution file ({exc})") from exc
        try:
            return cls(model, fw, eta, unit, wl)
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The JSON mapping of this resolution."""
        return {
            "model": self.model,
            "unit": self.unit,
            "fwhm_coeffs": list(self.fwhm_coeffs),
            "eta_coeffs": list(self.eta_coeffs),
            "wavelength_A": self.wavelength_A,
        }

    def _native(self, x_native: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.model == "poly":
            fw = np.polynomial.polynomial.polyval(x_native, self.fwhm_coeffs)
        else:
            tth = (
                x_native
                if self.unit == units.TTH_DEG
                else units.q_to_tth(x_native, self.wavelength_A)
            )
            t = np.tan(np.radians(tth) / 2)
            u, v, w = self.fwhm_coeffs
            fw = np.sqrt(np.maximum(u * t * t + v * t + w, 0.0))
        eta = np.clip(np.polynomial.polynomial.polyval(x_native, self.eta_coeffs), 0.0, 1.0)
        return np.maximum(fw, 0.0), eta

    def fwhm_eta_q(self, q_invA, wavelength_A: float | None = None):
        """(FWHM in Å⁻¹, η) at ``q_invA``.  ``wavelength_A`` only for 2θ files without one."""
        q = np.asarray(q_invA, float)
        if self.unit == units.Q_A:
            return self._native(q)
        wl = self.wavelength_A or units.check_wavelength(wavelength_A, "2θ resolution")
        tth = units.q_to_tth(q, wl)
        fw_deg, eta = self._native(tth)
        dq = (2 * np.pi / wl) * np.cos(np.radians(tth) / 2) * np.radians(fw_deg)
        return dq, eta

    def fwhm_eta_tth(self, tth_deg, wavelength_A: float):
        """(FWHM in degrees 2θ, η) at ``tth_deg`` for data taken at ``wavelength_A``."""
        tth = np.asarray(tth_deg, float)
        if self.unit == units.TTH_DEG:
            return self._native(tth)
        q = units.tth_to_q(tth, wavelength_A)
        fw_q, eta = self._native(q)
        dtth = np.degrees(fw_q * wavelength_A / (2 * np.pi * np.cos(np.radians(tth) / 2)))
        return dtth, eta


def load_resolution(path: str | os.PathLike) -> Resolution:
    """Read a resolution JSON file (schema in :class:`Resolution`)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: resolution file not found")
    try:
        d = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: not a JSON resolution file ({exc})") from exc
    if not isinstance(d, dict):
        raise InputError(f"{p}: resolution file must hold a JSON object")
    return Resolution.from_dict(d, str(p))


# --------------------------------------------------------------------- peak widths
def peak_widths(
    q_invA,
    *,
    size_A: float | None = None,
    k_scherrer: float = 0.9,
    strain: float = 0.0,
    inst_gauss_q=0.0,
    inst_lorentz_q=0.0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Total (FWHM Å⁻¹, η) of peaks at ``q_invA``: instrument ⊗ sphere size ⊗ strain.

    ``size_A`` is the Scherrer length for ``k_scherrer`` of spheres of diameter
    D = 1.10665·L/K (:mod:`xrdpdf.physics.crystallite`, the size model of the refinement).

    Notes
    -----
    :math:`\Gamma_G^2 = \Gamma_{G,inst}^2 + (0.823\cdot2\pi/D)^2`,
    :math:`\Gamma_L = \Gamma_{L,inst} + 0.361\cdot2\pi/D + 2\varepsilon Q`,
    combined by Thompson–Cox–Hastings (:func:`~xrdpdf.physics.crystallite.combined_fwhm_eta`).
    """
    q = np.asarray(q_invA, float)
    width = 0.0
    if size_A is not None:
        d = float(diameter_from_scherrer(size_A, k_scherrer))
        width = 2.0 * np.pi * SPHERE_PV_FWHM / d
    return combined_fwhm_eta(inst_gauss_q, inst_lorentz_q, width, strain, q)


def scherrer_size_definition(k_scherrer: float) -> str:
    """Which crystallite size a Scherrer constant K (used with the FWHM) gives, for spheres.

    K = 1.107 → sphere diameter D; K ≈ 0.89–0.9 → V^⅓ (cube root of the volume,
    0.806 D); K = 0.83 → volume-weighted column length ⟨L⟩_vol = ¾D
    (Langford & Wilson 1978, J. Appl. Cryst. 11, 102; for spheres the profile is the cosine
    transform of the common-volume function, integral breadth K_β = 4/3 for D).
    """
    if abs(k_scherrer - 1.107) < 0.02:
        return "D (sphere diameter; K = 1.107 with the FWHM)"
    if abs(k_scherrer - 0.9) < 0.02 or abs(k_scherrer - 0.892) < 0.02:
        return "V^(1/3) (cube root of the crystallite volume; K = 0.89-0.9 with the FWHM)"
    if abs(k_scherrer - 0.83) < 0.02:
        return "<L>_vol (volume-weighted column length = 3D/4; K = 0.83 with the FWHM)"
    return f"Scherrer length L = 2*pi*K/FWHM_Q with K = {k_scherrer:g}"
