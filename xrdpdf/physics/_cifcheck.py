r"""Checks of an expanded CIF structure against what the CIF itself states.

A CIF states its contents three ways besides the atom sites: the chemical formula
(``_chemical_formula_sum``), the number of formula units per cell
(``_cell_formula_units_Z``) and the crystallographic density
(``_exptl_crystal_density_diffrn``).  A site whose rounded coordinates (0.3333 for 1/3)
miss its special position by more than the expansion's tolerance is expanded as a
general position: the cell then holds too many atoms, the density is several times too
high, and a weight fraction built on it (Hill & Howard) is wrong by the same factor.
:func:`check_contents` compares the expanded cell with each statement present and
returns one message per disagreement.

Notes
-----
Cell contents of element e: :math:`n_e = \sum_{j \in e} o_j m_j` (occupancy times
multiplicity of the sites of e).  Stated contents: :math:`Z\,c_e`, :math:`c_e` the
formula count.  Density :math:`\rho = \sum_j o_j m_j M_j \cdot 1.66054/V`
(g cm⁻³ for masses in u and V in Å³).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__: list[str] = []

#: Relative disagreement tolerated between the expanded cell and the CIF's statements:
#: formulas and densities are printed to 3–4 significant figures, and programs use
#: slightly different atomic masses (≤ 0.1 %); a wrong expansion is off by ≥ 50 %.
REL_TOL = 0.02

#: Default tolerance (fractional coordinates, box distance) within which symmetry
#: images of a site are one position.  Coordinates printed to 3 decimals are off by
#: ≤ 5×10⁻⁴; an image built through x − y doubles that, hence 1.5×10⁻³ (0.015 Å in a
#: 10 Å cell, about 1 % of the shortest bond).  diffpy.structure's own default, 10⁻⁵,
#: keeps 0.3333 and 1/3 apart.
SPECIAL_POSITION_TOL = 1.5e-3


def _number(value: Any) -> float | None:
    """A CIF number without its esd, ``"5.675(3)"`` → 5.675; None for ``?``/``.``."""
    if value is None or isinstance(value, list):
        return None
    m = re.match(r"\s*([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)", str(value))
    return float(m.group(1)) if m else None


def parse_formula_sum(text: str) -> dict[str, float] | None:
    """``'Al2 O3'`` or ``'Na0.35 O Ti0.65'`` → element counts; None if unreadable."""
    parts = str(text).replace("'", " ").split()
    out: dict[str, float] = {}
    for part in parts:
        m = re.fullmatch(r"([A-Z][a-z]?)(\d*\.?\d*)", part)
        if not m:
            return None
        n = float(m.group(2)) if m.group(2) not in ("", ".") else 1.0
        out[m.group(1)] = out.get(m.group(1), 0.0) + n
    return out or None


def stated_contents(block: Mapping[str, Any]) -> dict[str, Any]:
    """The CIF's own statements: ``formula`` (dict or None), ``z`` and ``density_g_cm3``."""
    formula = block.get("_chemical_formula_sum")
    return {
        "formula": None if formula is None else parse_formula_sum(str(formula)),
        "z": _number(block.get("_cell_formula_units_Z")),
        "density_g_cm3": _number(block.get("_exptl_crystal_density_diffrn")),
    }


def _fmt(counts: Mapping[str, float]) -> str:
    return " ".join(f"{el} {n:.4g}" for el, n in counts.items())


def check_contents(
    cell_counts: Mapping[str, float],
    density_g_cm3: float,
    stated: Mapping[str, Any],
    source: str,
) -> str | None:
    """One message naming every CIF statement the expanded cell disagrees with.

    Parameters
    ----------
    cell_counts : mapping
        Element → atoms per cell of the expanded structure (occupancy × multiplicity).
    density_g_cm3 : float
        Density of the expanded structure.
    stated : mapping
        From :func:`stated_contents`.
    source : str
        File name for the message.

    Returns
    -------
    str or None
        None when every statement present agrees within :data:`REL_TOL`.
    """
    formula, z, rho = stated["formula"], stated["z"], stated["density_g_cm3"]
    bad: list[str] = []
    if formula:
        els = set(formula) | set(cell_counts)
        if z:
            want = {el: z * formula.get(el, 0.0) for el in els}
            if any(not _close(cell_counts.get(el, 0.0), want[el]) for el in els):
                bad.append(f"Z = {z:g} × {_fmt(formula)}")
        else:
            ref = next(iter(formula))
            k = cell_counts.get(ref, 0.0) / formula[ref]
            if not k > 0 or any(
                not _close(cell_counts.get(el, 0.0), k * formula.get(el, 0.0)) for el in els
            ):
                bad.append(f"the formula {_fmt(formula)} (not a multiple of it)")
    if rho and not _close(density_g_cm3, rho):
        bad.append(f"a density of {rho:g} g/cm³")
    if not bad:
        return None
    return (
        f"{source}: the expanded cell holds {_fmt(cell_counts)} (density "
        f"{density_g_cm3:.3f} g/cm³), but the CIF states {' and '.join(bad)}: check the site "
        "coordinates (a site near a special position expanded as a general one?) or "
        "special_position_tol"
    )


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-3)
