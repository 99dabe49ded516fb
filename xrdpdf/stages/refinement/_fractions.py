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
Compton scattering, and the reference composition given.  Both fractions are lmfit
``expr`` parameters of the scales, occupancies and cell parameters; lmfit propagates the
covariance of the fit into their esds (first order).

References
----------
.. [1] R. J. Hill & C. J. Howard (1987). J. Appl. Cryst. 20, 467.
       https://doi.org/10.1107/S0021889887086199
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np

from xrdpdf._core.errors import InputError
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


def _site_term(pm, params, site, factor: float) -> str:
    name = pm.prefix + "occ_" + site.label
    occ = name if name in params else repr(float(site.occupancy))
    return f"{factor!r}*{occ}"


def mass_expr(pm, params) -> str:
    """Cell mass (amu) of a phase as an lmfit expression of its occupancy parameters."""
    import xraydb

    return (
        "("
        + " + ".join(
            _site_term(pm, params, s, s.multiplicity * xraydb.atomic_mass(s.symbol))
            for s in pm.phase.sites
        )
        + ")"
    )


def atoms_expr(pm, params) -> str:
    """Atoms per cell of a phase as an lmfit expression of its occupancy parameters."""
    return (
        "("
        + " + ".join(_site_term(pm, params, s, float(s.multiplicity)) for s in pm.phase.sites)
        + ")"
    )


def volume_expr(pm) -> str:
    """Cell volume (Å³) of a phase as an lmfit expression of its free cell parameters."""
    a, b, c, al, be, ga = pm.cell_sources()
    if all(isinstance(t, float) for t in (al, be, ga)):
        ca, cb, cg = np.cos(np.radians([al, be, ga]))
        f = math.sqrt(max(1 - ca**2 - cb**2 - cg**2 + 2 * ca * cb * cg, 0.0))
        return f"({a}*{b}*{c}*{f!r})"
    ca, cb, cg = (f"cos(radians({t}))" for t in (al, be, ga))
    return f"({a}*{b}*{c}*sqrt(1 - {ca}**2 - {cb}**2 - {cg}**2 + 2*{ca}*{cb}*{cg}))"


def add_fraction_params(params, phases, ref_atoms: float | None) -> None:
    r"""Add ``p{i}_wf`` (weight fraction) and, with ``ref_atoms``, ``p{i}_xf`` (crystalline
    fraction) of the detected ``phases`` (PhaseModel) as ``expr`` parameters.

    Scales, occupancies and cell parameters enter the expressions, so that lmfit's
    propagation (``Parameters.create_uvars``) gives esds from the full covariance.
    Scales below 0 count as 0.
    """
    mass = [f"max({pm.prefix}scale, 0)*{mass_expr(pm, params)}/{volume_expr(pm)}" for pm in phases]
    for pm, term in zip(phases, mass, strict=True):
        params.add(pm.prefix + "wf", expr=f"{term}/({' + '.join(mass)})")
    if ref_atoms is None:
        return
    n = [
        f"max({pm.prefix}scale, 0)*{atoms_expr(pm, params)}/(2*pi**2*{volume_expr(pm)})"
        for pm in phases
    ]
    total = " + ".join([*n, f"max(bkg_ref, 0)*{ref_atoms!r}"])
    for pm, term in zip(phases, n, strict=True):
        params.add(pm.prefix + "xf", expr=f"{term}/({total})")
