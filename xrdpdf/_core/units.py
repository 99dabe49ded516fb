r"""Conversions between scattering vector Q, scattering angle 2θ and d-spacing.

Units: Q in Å⁻¹, 2θ in degrees, d in Å, wavelength in Å.  The wavelength is
always an explicit argument; there is no default.

Notes
-----
.. math::

    Q = \frac{4\pi \sin\theta}{\lambda} = \frac{2\pi}{d}, \qquad
    2\theta = 2 \arcsin\left(\frac{Q\lambda}{4\pi}\right)

Unit names follow pyFAI's ``units.py``: ``"q_A^-1"``, ``"q_nm^-1"``,
``"2th_deg"``; ``"r_A"`` is used for G(r).
"""

from __future__ import annotations

import numpy as np

from xrdpdf._core.errors import InputError

__all__ = [
    "Q_A",
    "TTH_DEG",
    "R_A",
    "KNOWN_UNITS",
    "HC_KEV_A",
    "check_wavelength",
    "q_to_tth",
    "tth_to_q",
    "q_to_d",
    "d_to_q",
    "tth_to_d",
    "d_to_tth",
    "energy_keV_to_wavelength_A",
    "wavelength_A_to_energy_keV",
]

Q_A = "q_A^-1"
TTH_DEG = "2th_deg"
R_A = "r_A"
KNOWN_UNITS = (Q_A, TTH_DEG, R_A)

#: h·c in keV·Å (CODATA 2018), E[keV] = 12.398419843 / λ[Å].
HC_KEV_A = 12.398419843320026


def check_wavelength(wavelength_A: float | None, what: str = "this step") -> float:
    """Return ``wavelength_A`` as float, or raise :class:`InputError` if absent or ≤ 0."""
    if wavelength_A is None:
        raise InputError(f"{what} needs the wavelength (Å), but none is known; give wavelength_A")
    wl = float(wavelength_A)
    if not np.isfinite(wl) or wl <= 0:
        raise InputError(f"wavelength must be a positive number of Å, got {wavelength_A!r}")
    return wl


def tth_to_q(tth_deg, wavelength_A: float):
    """Scattering angle 2θ (degrees) to Q (Å⁻¹): Q = 4π sin(θ)/λ."""
    wl = check_wavelength(wavelength_A, "2θ → Q")
    return 4.0 * np.pi * np.sin(np.radians(np.asarray(tth_deg, dtype=float)) / 2.0) / wl


def q_to_tth(q_invA, wavelength_A: float):
    """Q (Å⁻¹) to 2θ (degrees): 2θ = 2 asin(Qλ/4π).

    Raises
    ------
    InputError
        If some Q is beyond the 4π/λ limit (no real angle exists).
    """
    wl = check_wavelength(wavelength_A, "Q → 2θ")
    s = np.asarray(q_invA, dtype=float) * wl / (4.0 * np.pi)
    if np.any(np.abs(s) > 1.0):
        raise InputError(
            f"Q up to {np.max(np.abs(q_invA)):.4g} Å⁻¹ exceeds 4π/λ = {4 * np.pi / wl:.4g} Å⁻¹ "
            f"at λ = {wl} Å"
        )
    return np.degrees(2.0 * np.arcsin(s))


def q_to_d(q_invA):
    """Q (Å⁻¹) to d-spacing (Å): d = 2π/Q."""
    return 2.0 * np.pi / np.asarray(q_invA, dtype=float)


def d_to_q(d_A):
    """d-spacing (Å) to Q (Å⁻¹): Q = 2π/d."""
    return 2.0 * np.pi / np.asarray(d_A, dtype=float)


def tth_to_d(tth_deg, wavelength_A: float):
    """2θ (degrees) to d (Å), Bragg's law d = λ / (2 sin θ)."""
    return q_to_d(tth_to_q(tth_deg, wavelength_A))


def d_to_tth(d_A, wavelength_A: float):
    """d (Å) to 2θ (degrees), Bragg's law."""
    return q_to_tth(d_to_q(d_A), wavelength_A)


def energy_keV_to_wavelength_A(energy_keV: float) -> float:
    """Photon energy (keV) to wavelength (Å): λ = hc/E."""
    return HC_KEV_A / float(energy_keV)


def wavelength_A_to_energy_keV(wavelength_A: float) -> float:
    """Wavelength (Å) to photon energy (keV): E = hc/λ."""
    return HC_KEV_A / check_wavelength(wavelength_A)
