r"""Phase fractions from refined scales: weight fractions and crystalline (atom) fractions.

Notes
-----
The refinement's phase term is :math:`S_p\sum_h m_h|F_h|^2\phi_h(Q)/(V_p^2Q_h^2)`, so
:math:`S_p` is proportional to the volume of phase p in the beam.

Weight fractions (Hill & Howard 1987 [1]_), ρ the crystallographic density:

.. math::  w_p = S_p\rho_p / \sum_i S_i\rho_i

Crystalline fraction (of atoms, i.e. of the sample's coherent scattering in units of
⟨f²⟩ per atom).  Averaged over many reflections the Bragg term of N atoms equals
:math:`N\langle f^2\rangle` per unit Q times a constant (the powder average of the
reciprocal lattice, Warren, *X-ray Diffraction*, ch. 3):
:math:`\sum_h m_h|F_h|^2 \approx n_{cell}\langle f^2\rangle\,4\pi Q^2\,dQ\,V/(2\pi)^3`,
hence, in the units of the fitted pattern,

.. math::  N_p = \frac{S_p\,n_{cell,p}}{2\pi^2 V_p}

The amorphous reference y_ref (the fully amorphous sample, same Q range and λ, its
intensity per atom oscillating about ⟨f²⟩_ref since S(Q) → 1) is written
:math:`y_{ref}(Q) \approx c_{ref}\langle f^2\rangle_{ref}(Q) + b` by weighted linear least
squares over the fitted range, weighted by Q² as in the Krogh-Moe–Norman normalisation
(:math:`\int Q^2[S(Q)-1]\,dQ = -2\pi^2\rho_0` is small against :math:`\int Q^2 dQ`;
Krogh-Moe 1956, Acta Cryst. 9, 951; Norman 1957, Acta Cryst. 10, 370), b absorbing a flat
background; with the refined reference
scale k, :math:`N_{ref} = k\,c_{ref}`.  Then

.. math::  x_p = N_p \Big/ \Big(\sum_i N_i + N_{ref}\Big)

Assumptions: same Q range and wavelength for sample and reference, independent
scatterers (the sum rule ⟨S(Q)⟩ = 1 over the range), data corrected for polarization and
Compton scattering, and the reference composition given.  esds are propagated from the
covariance of the scales (first order).

References
----------
.. [1] R. J. Hill & C. J. Howard (1987). J. Appl. Cryst. 20, 467.
       https://doi.org/10.1107/S0021889887086199
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

from xrdpdf._core.errors import InputError
from xrdpdf.physics.crystal import Phase
from xrdpdf.physics.scattering import form_factor

__all__: list[str] = []


def parse_formula(composition: str | Mapping[str, float]) -> dict[str, float]:
    """``"TiO2"`` or {"Ti": 1, "O": 2} → element counts (validated, positive)."""
    if isinstance(composition, Mapping):
        out = {str(k): float(v) for k, v in composition.items()}
    else:
        text = str(composition).replace(" ", "")
        parts = re.findall(r"([A-Z][a-z]?)(\d*\.?\d*)", text)
        if not parts or "".join(a + b for a, b in parts) != text:
            raise InputError(
                f"composition {composition!r}: write it like 'TiO2' or 'Na0.35Ti0.65O'"
            )
        out = {}
        for el, n in parts:
            out[el] = out.get(el, 0.0) + (float(n) if n else 1.0)
    if not out or any(not (v > 0) for v in out.values()):
        raise InputError(f"composition {composition!r}: counts must be positive")
    return out


def mean_f2(composition: Mapping[str, float], q_invA: np.ndarray) -> np.ndarray:
    """⟨f²⟩(Q) per atom of a composition (electrons²)."""
    tot = sum(composition.values())
    return sum(n * form_factor(el, q_invA) ** 2 for el, n in composition.items()) / tot


def reference_atoms_per_scale(
    q_invA: np.ndarray, y_ref: np.ndarray, composition: Mapping[str, float]
) -> float | None:
    """c_ref of y_ref ≈ c_ref⟨f²⟩ + b, least squares weighted by Q²; None if not positive."""
    f2 = mean_f2(composition, q_invA)
    sw = np.abs(np.asarray(q_invA, float))
    a = np.stack([f2, np.ones_like(f2)], axis=1) * sw[:, None]
    coef, *_ = np.linalg.lstsq(a, y_ref * sw, rcond=None)
    return float(coef[0]) if coef[0] > 0 else None


def atoms_per_scale(phase: Phase) -> float:
    """n_cell/(2π²V): atoms of phase p per unit refined scale (module Notes)."""
    n_cell = sum(s.occupancy * s.multiplicity for s in phase.sites)
    return n_cell / (2 * math.pi**2 * phase.volume_A3)


def weight_fractions(
    scales: np.ndarray, rho: np.ndarray, cov: np.ndarray | None
) -> tuple[list[float], list[float | None]]:
    """w_p = S_p ρ_p / Σ S_i ρ_i and esds from the covariance of the scales (or None)."""
    return _ratio_fractions(scales, rho, cov)


def crystalline_fractions(
    scales: np.ndarray,
    atoms: np.ndarray,
    ref_scale: float,
    ref_atoms: float,
    cov: np.ndarray | None,
) -> tuple[list[float], list[float | None]]:
    """x_p = N_p/(Σ N_i + N_ref); ``cov`` over (S_1 … S_n, k)."""
    s = np.append(np.asarray(scales, float), ref_scale)
    c = np.append(np.asarray(atoms, float), ref_atoms)
    x, e = _ratio_fractions(s, c, cov)
    return x[:-1], e[:-1]


def _ratio_fractions(
    s: np.ndarray, c: np.ndarray, cov: np.ndarray | None
) -> tuple[list[float], list[float | None]]:
    """f_p = s_p c_p / Σ s_i c_i with first-order esds; ∂f_p/∂s_i = c_i(δ_pi − f_p)/Σ s c."""
    s = np.maximum(np.asarray(s, float), 0.0)
    tot = float(np.sum(s * c))
    if not tot > 0:
        return [float("nan")] * s.size, [None] * s.size
    f = s * c / tot
    esd: list[float | None] = [None] * s.size
    if cov is not None:
        for p in range(s.size):
            g = c * ((np.arange(s.size) == p) - f[p]) / tot
            esd[p] = float(np.sqrt(max(g @ cov @ g, 0.0)))
    return [float(v) for v in f], esd


def covariance_of(fit, names: Sequence[str]) -> np.ndarray | None:
    """Covariance block of ``names`` from an lmfit result (None if any is not varied)."""
    if fit.covar is None or not all(n in fit.var_names for n in names):
        return None
    idx = [fit.var_names.index(n) for n in names]
    return np.asarray(fit.covar)[np.ix_(idx, idx)]
