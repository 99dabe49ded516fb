r"""X-ray scattering data: anode emission lines and atomic form factors.

Form factors :math:`f_0(s)`, :math:`s = \sin\theta/\lambda = Q/4\pi`, come from ``xraydb.f0``
(Waasmaier & Kirfel [1]_, neutral atoms unless an ion is named).  Emission lines: Cr, Co, Cu
from Hölzer et al. [2]_ (the values of the NIST SRM certificates), Mo and Ag from Deslattes et
al. [3]_.

References
----------
.. [1] D. Waasmaier & A. Kirfel (1995). Acta Cryst. A51, 416.
       https://doi.org/10.1107/S0108767394013292
.. [2] G. Hölzer et al. (1997). Phys. Rev. A 56, 4554. https://doi.org/10.1103/PhysRevA.56.4554
.. [3] R. D. Deslattes et al. (2003). Rev. Mod. Phys. 75, 35.
       https://doi.org/10.1103/RevModPhys.75.35
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from xrdpdf._core.errors import InputError

__all__ = [
    "CU_KA1_A",
    "CU_KA2_A",
    "CU_KB_A",
    "CU_KA2_RATIO",
    "ANODES",
    "anode_lines",
    "form_factor",
]


#: Cu Kα1, Kα2 and Kβ1,3 wavelengths in Å (Hölzer et al. 1997, Phys. Rev. A 56, 4554,
#: https://doi.org/10.1103/PhysRevA.56.4554; the values of the NIST SRM certificates).
CU_KA1_A = 1.5405929


CU_KA2_A = 1.5444274


CU_KB_A = 1.3922340


#: Start value of the intensity ratio I(Kα2)/I(Kα1) (GSAS-II default instrument parameters).
CU_KA2_RATIO = 0.5


#: Anode → (Kα1, Kα2, Kβ1,3) in Å.  Cr, Co, Cu: Hölzer et al. 1997; Mo, Ag: Deslattes
#: et al. 2003, Rev. Mod. Phys. 75, 35 (https://doi.org/10.1103/RevModPhys.75.35).
ANODES: dict[str, tuple[float, float, float]] = {
    "Cr": (2.2897260, 2.2936510, 2.0848810),
    "Co": (1.7889960, 1.7928350, 1.6208260),
    "Cu": (CU_KA1_A, CU_KA2_A, CU_KB_A),
    "Mo": (0.7093171, 0.7136035, 0.6323029),
    "Ag": (0.5594218, 0.5638128, 0.4970810),
}


def anode_lines(anode: str, kbeta: bool = False) -> tuple[tuple[float, float], ...]:
    """Emission lines (wavelength Å, relative intensity) of an X-ray tube anode.

    Parameters
    ----------
    anode : str
        ``"Cu"``, ``"Mo"``, ``"Co"``, ``"Ag"`` or ``"Cr"`` (case-insensitive), see :data:`ANODES`.
    kbeta : bool
        Include the Kβ1,3 line (unfiltered or partly filtered tube); its intensity is a
        start value of 0.05 relative to Kα1, refined by :func:`xrdpdf.stages.refinement.refine`.

    Returns
    -------
    tuple of (float, float)
        Kα1 (1.0), Kα2 (:data:`CU_KA2_RATIO`) and optionally Kβ.

    Raises
    ------
    InputError
        Unknown anode.
    """
    names = {k.lower(): k for k in ANODES}
    key = names.get(str(anode).strip().lower())
    if key is None:
        raise InputError(f"unknown anode {anode!r}; choose one of {', '.join(ANODES)}")
    a1, a2, b = ANODES[key]
    lines = ((a1, 1.0), (a2, CU_KA2_RATIO))
    return (*lines, (b, 0.05)) if kbeta else lines


# --------------------------------------------------------------------- form factors
@lru_cache(maxsize=256)
def _f0_name(element: str) -> str:
    import xraydb

    m = re.match(r"^([A-Z][a-z]?)(\d*)([+-]?)(\d*)$", element.strip())
    if not m:
        raise InputError(f"cannot read an element or ion from {element!r}")
    sym, n1, sign, n2 = m.groups()
    known = set(xraydb.f0_ions(sym) or [])
    if not known:
        raise InputError(f"xraydb has no form factor for {element!r}")
    if not sign:
        return sym
    # CIF writes O2- or O-2; xraydb uses O2-
    charge = n1 or n2 or "1"
    name = f"{sym}{charge}{sign}"
    if name not in known:
        raise InputError(
            f"xraydb has no form factor for ion {element!r}; available: {', '.join(sorted(known))}"
        )
    return name


#: s = sinθ/λ grid (Å⁻¹) on which ``xraydb.f0`` is tabulated once per scatterer; 0…6 Å⁻¹ is
#: the range of the Waasmaier–Kirfel fit.  Linear interpolation on a 0.0005 Å⁻¹ step is within
#: max|f0''|·h²/8 of xraydb: 5e-5 electrons for U (f0'' ≈ 1.6e3 e Å² at the core term), 1.5e-6
#: for H; about 1e-6 of f0(0) for every element (H … U, checked in tests/test_phases.py).
_S_GRID = np.linspace(0.0, 6.0, 12001)


@lru_cache(maxsize=256)
def _f0_table(name: str) -> np.ndarray:
    """``xraydb.f0(name, s)`` on :data:`_S_GRID` (read-only)."""
    import xraydb

    f = np.asarray(xraydb.f0(name, _S_GRID), dtype=float)
    f.flags.writeable = False
    return f


def _f0_fast(name: str, s: np.ndarray) -> np.ndarray:
    """f0 at s = sinθ/λ, interpolated in the cached ``xraydb.f0`` table (s beyond 6 Å⁻¹ clamps).

    A refinement evaluates f0 at new Q on every step; a table look-up is ~20× faster than a
    call of ``xraydb.f0`` and equal to it within the grid error stated at :data:`_S_GRID`.
    """
    return np.interp(s, _S_GRID, _f0_table(name))


def form_factor(element: str, q_invA) -> np.ndarray:
    r"""Atomic X-ray form factor f0 (electrons) of ``element`` at Q (Å⁻¹).

    Notes
    -----
    ``xraydb.f0`` takes :math:`s = \sin\theta/\lambda = Q/4\pi` (Waasmaier &
    Kirfel 1995, valid to s = 6 Å⁻¹).
    """
    import xraydb

    s = np.asarray(q_invA, dtype=float) / (4.0 * np.pi)
    return np.asarray(xraydb.f0(_f0_name(element), s), dtype=float).reshape(s.shape)


def _f2(sums, elements, q, occ, biso) -> np.ndarray:
    if sums.shape[0] == 0:
        return np.zeros(0)
    sv = q / (4.0 * np.pi)
    s2 = sv**2
    cache: dict[str, np.ndarray] = {}
    f = np.zeros(sums.shape[0], complex)
    for j, el in enumerate(elements):
        if el not in cache:
            cache[el] = _f0_fast(_f0_name(el), sv)
        f += occ[j] * cache[el] * np.exp(-biso[j] * s2) * sums[:, j]
    return np.abs(f) ** 2
