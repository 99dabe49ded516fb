"""Composition: atom counts and the ⟨f²⟩, ⟨f⟩² of the ad hoc normalisation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from xrdpdf._core.errors import InputError


def parse_composition(text: str) -> dict[str, float]:
    """Atom counts of a chemical formula (``xraydb.chemparse``); repeats are summed.

    Parameters
    ----------
    text : str
        Formula such as ``"TiO2"``, ``"Na0.5TiO2"``, ``"Zr H2 P2 O8 H2 O"`` or
        ``"Zr(HPO4)2.H2O"`` (spaces ignored; parentheses and a ``.`` before
        water of crystallisation as xraydb reads them).

    Returns
    -------
    dict
        Element symbol → number of atoms.

    Raises
    ------
    InputError
        On an empty or unreadable formula, a zero count, or an element that
        has no X-ray form factor in xraydb.

    Examples
    --------
    >>> parse_composition("Zr H2 P2 O8 H2 O")
    {'Zr': 1.0, 'H': 4.0, 'P': 2.0, 'O': 9.0}
    """
    import xraydb

    if not isinstance(text, str) or not text.strip():
        raise InputError(f"composition must be a formula such as 'TiO2', got {text!r}")
    try:
        parsed = xraydb.chemparse("".join(text.split()))
    except ValueError as exc:
        first = str(exc).splitlines()[0]
        bad = re.match(r"'(\w+)' is not an element symbol", first)
        what = f"unknown element {bad.group(1)!r} in" if bad else "cannot read"
        raise InputError(
            f"{what} composition {text!r} ({first}): write it like 'TiO2' or "
            "'Zr H2 P2 O8 H2 O' (element symbols with counts)"
        ) from None
    if not parsed:
        raise InputError(f"cannot read composition {text!r}: no elements found")
    out: dict[str, float] = {}
    for sym, n in parsed.items():
        if not float(n) > 0:
            raise InputError(f"composition {text!r}: count of {sym} must be > 0, got {n}")
        _check_f0(sym)
        out[sym] = float(n)
    return out


@lru_cache(maxsize=128)
def _check_f0(symbol: str) -> None:
    """Raise InputError unless xraydb has a Waasmaier–Kirfel f0 for ``symbol``."""
    import xraydb

    if symbol not in xraydb.f0_ions(symbol):
        raise InputError(f"unknown element {symbol!r}: xraydb has no X-ray form factor for it")


def _f0(symbol: str, q_invA: np.ndarray) -> np.ndarray:
    import xraydb

    return np.asarray(xraydb.f0(symbol, np.asarray(q_invA, float) / (4.0 * np.pi)), float)


def composition_factors(
    composition: str | Mapping[str, float], q_invA
) -> tuple[np.ndarray, np.ndarray]:
    r"""⟨f²⟩ and ⟨f⟩² of a composition at Q.

    Parameters
    ----------
    composition : str or mapping
        Formula (see :func:`parse_composition`) or element → count.
    q_invA : (N,) array_like
        Q in Å⁻¹.

    Returns
    -------
    f2avg, favg2 : (N,) ndarray
        :math:`\sum_a c_a f_a^2` and :math:`(\sum_a c_a f_a)^2` (electrons²),
        :math:`c_a` the atom fractions.
    """
    comp = parse_composition(composition) if isinstance(composition, str) else dict(composition)
    total = float(sum(comp.values()))
    q = np.asarray(q_invA, float)
    f2 = np.zeros_like(q)
    f1 = np.zeros_like(q)
    for sym, n in comp.items():
        f = _f0(sym, q)
        c = n / total
        f2 += c * f * f
        f1 += c * f
    return f2, f1 * f1
