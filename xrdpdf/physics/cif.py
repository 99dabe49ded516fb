"""Phases from the built-in table or from CIF files (through diffpy.structure).

:func:`get_phase` takes a built-in name (case-insensitive) or a CIF path; :func:`phase_from_cif`
reads the first data block of a CIF and expands the asymmetric unit with its space group.
Symmetry images of a site within ``special_position_tol`` are one position, so rounded
coordinates (0.3333 for 1/3) land on their special position, and the expanded cell is
checked against the CIF's own formula, Z and density (:mod:`xrdpdf.physics._cifcheck`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from xrdpdf._core.errors import InputError, InputWarning
from xrdpdf.physics import _cifcheck
from xrdpdf.physics._cifcheck import SPECIAL_POSITION_TOL
from xrdpdf.physics.crystal import Phase, Site, _check_cell
from xrdpdf.physics.scattering import _f0_name

__all__ = [
    "SPECIAL_POSITION_TOL",
    "builtin_phases",
    "phase_from_cif",
    "get_phase",
]


_SYSTEMS = (
    "cubic",
    "tetragonal",
    "hexagonal",
    "trigonal",
    "orthorhombic",
    "monoclinic",
    "triclinic",
)


# --------------------------------------------------------------------- diffpy shims
def _sg_module():
    import diffpy.structure.spacegroups as sg

    return sg


def _get_space_group(ident: int | str):
    sg = _sg_module()
    getter = getattr(sg, "get_space_group", None) or sg.GetSpaceGroup
    try:
        return getter(ident)
    except (ValueError, KeyError) as exc:
        raise InputError(f"unknown space group {ident!r}") from exc


def _expand_unit(spacegroup, positions, eps: float):
    import diffpy.structure.symmetryutilities as su

    cls = su.ExpandAsymmetricUnit
    return cls(spacegroup, positions, eps=eps)


# ----------------------------------------------------------------------- building
def _crystal_system(spacegroup) -> str:
    name = str(getattr(spacegroup, "crystal_system", "")).lower()
    if name in _SYSTEMS:
        return name
    n = int(spacegroup.number) % 1000
    for lim, nm in (
        (2, "triclinic"),
        (15, "monoclinic"),
        (74, "orthorhombic"),
        (142, "tetragonal"),
        (167, "trigonal"),
        (194, "hexagonal"),
    ):
        if n <= lim:
            return nm
    return "cubic"


def _build(
    name: str,
    spacegroup,
    cell: Sequence[float],
    asym: Sequence[tuple[str, str, Sequence[float], float, float]],
    source: str,
    special_position_tol: float = SPECIAL_POSITION_TOL,
) -> Phase:
    """Phase from a space group, a cell and (label, element, xyz, occ, Biso) sites.

    Symmetry images of a site closer than ``special_position_tol`` (fractional box
    distance) are one position, and the site is moved onto the exact special
    position (diffpy.structure ``GeneratorSite``), so 0.3333 expands as 1/3.
    """
    cell = tuple(float(v) for v in cell)
    _check_cell(cell, name)
    if not asym:
        raise InputError(f"{name}: no atom sites")
    if not 0.0 < special_position_tol < 0.05:
        raise InputError(
            f"{name}: special_position_tol must be in (0, 0.05) (fractional), "
            f"got {special_position_tol}"
        )
    eau = _expand_unit(
        spacegroup, [list(map(float, s[2])) for s in asym], float(special_position_tol)
    )
    positions = tuple(np.array(p, float).reshape(-1, 3) % 1.0 for p in eau.expandedpos)
    sites = []
    labels = set()
    for (label, element, xyz, occ, biso), pos in zip(asym, positions, strict=True):
        if label in labels:
            raise InputError(f"{name}: duplicate site label {label!r}")
        labels.add(label)
        occ = float(occ)
        if not 0.0 <= occ <= 1.0 + 1e-9:
            raise InputError(f"{name}: occupancy of {label} must be in 0…1, got {occ}")
        _f0_name(element)  # fail early on an unknown scatterer
        # the first image is the site moved onto its special position
        xyz = tuple(float(v) for v in pos[0])
        sites.append(Site(str(label), str(element), xyz, occ, float(biso), len(pos)))
    rot = np.array([np.asarray(op.R, float) for op in spacegroup.iter_symops()])
    rot = np.unique(rot.round(6), axis=0)
    return Phase(
        name=name,
        spacegroup_number=int(spacegroup.number),
        spacegroup_symbol=str(spacegroup.short_name),
        cell=cell,  # type: ignore[arg-type]
        sites=tuple(sites),
        crystal_system=_crystal_system(spacegroup),
        source=source,
        _positions=positions,
        _rotations=rot,
    )


# name -> (space group number, cell, sites (label, element, xyz, occupancy, Biso Å²), note)
_BUILTINS: dict[str, tuple[int, tuple[float, ...], list[tuple], str]] = {
    "NaTiO2": (
        225,
        (4.20464, 4.20464, 4.20464, 90.0, 90.0, 90.0),
        [
            ("Na1", "Na", (0.0, 0.0, 0.0), 0.5, 0.8),
            ("Ti1", "Ti", (0.0, 0.0, 0.0), 0.5, 0.5),
            ("O1", "O", (0.5, 0.5, 0.5), 1.0, 0.7),
        ],
        "rocksalt NaTiO2, Na/Ti disordered on 4a, O on 4b",
    ),
    "anatase": (
        141,  # origin choice 1 (diffpy's setting): Ti 4a (0,0,0), O 8e (0,0,z)
        (3.7842, 3.7842, 9.5146, 90.0, 90.0, 90.0),
        [("Ti1", "Ti", (0.0, 0.0, 0.0), 1.0, 0.4), ("O1", "O", (0.0, 0.0, 0.20806), 1.0, 0.6)],
        "anatase TiO2, Howard, Sabine & Dickson 1991 Acta Cryst. B47, 462",
    ),
    "rutile": (
        136,
        (4.5937, 4.5937, 2.9587, 90.0, 90.0, 90.0),
        [("Ti1", "Ti", (0.0, 0.0, 0.0), 1.0, 0.4), ("O1", "O", (0.3048, 0.3048, 0.0), 1.0, 0.6)],
        "rutile TiO2, Howard, Sabine & Dickson 1991",
    ),
    "CeO2": (
        225,
        (5.411651, 5.411651, 5.411651, 90.0, 90.0, 90.0),
        [("Ce1", "Ce", (0.0, 0.0, 0.0), 1.0, 0.3), ("O1", "O", (0.25, 0.25, 0.25), 1.0, 0.6)],
        "ceria, fluorite type (NIST SRM 674b certificate, a = 5.411651 Å at 22.5 °C)",
    ),
    "Ni": (
        225,
        (3.524, 3.524, 3.524, 90.0, 90.0, 90.0),
        [("Ni1", "Ni", (0.0, 0.0, 0.0), 1.0, 0.4)],
        "fcc nickel",
    ),
    "LaB6": (
        221,
        (4.156826, 4.156826, 4.156826, 90.0, 90.0, 90.0),
        [("La1", "La", (0.0, 0.0, 0.0), 1.0, 0.3), ("B1", "B", (0.1996, 0.5, 0.5), 1.0, 0.4)],
        "LaB6 (NIST SRM 660c certificate, a = 4.156826 Å at 22.5 °C)",
    ),
    "Si": (
        227,  # origin choice 1: Si 8a (0,0,0)
        (5.431179, 5.431179, 5.431179, 90.0, 90.0, 90.0),
        [("Si1", "Si", (0.0, 0.0, 0.0), 1.0, 0.47)],
        "silicon (NIST SRM 640e certificate, a = 5.431179 Å at 22.5 °C)",
    ),
}


_ALIASES = {
    "natio2": "NaTiO2",
    "rocksalt": "NaTiO2",
    "rs": "NaTiO2",
    "anatase": "anatase",
    "tio2": "anatase",
    "rutile": "rutile",
    "ceo2": "CeO2",
    "ni": "Ni",
    "lab6": "LaB6",
    "si": "Si",
}


def builtin_phases() -> dict[str, str]:
    """Built-in phase names → one-line description (names are case-insensitive)."""
    return {k: v[3] for k, v in _BUILTINS.items()}


@lru_cache(maxsize=32)
def _builtin(key: str) -> Phase:
    sgnum, cell, sites, _ = _BUILTINS[key]
    return _build(key, _get_space_group(sgnum), cell, sites, "builtin")


def phase_from_cif(
    path: str | os.PathLike,
    name: str | None = None,
    *,
    special_position_tol: float = SPECIAL_POSITION_TOL,
) -> Phase:
    """Read a phase from a CIF file (first data block with atom sites) through diffpy.structure.

    Parameters
    ----------
    path : path
        The CIF file.
    name : str, optional
        Phase name; default the file's stem.
    special_position_tol : float
        Symmetry images of a site closer than this (fractional coordinates) are one
        position: rounded coordinates such as 0.3333/0.6667 land on 1/3, 2/3
        (default :data:`xrdpdf._cifcheck.SPECIAL_POSITION_TOL`).

    Raises
    ------
    InputError
        If the file is missing or diffpy cannot parse it.

    Warns
    -----
    InputWarning
        When the expanded cell disagrees with the CIF's own formula and Z, or its
        density (:func:`xrdpdf._cifcheck.check_contents`).
    """
    from diffpy.structure import getParser

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: CIF file not found")
    parser = getParser("cif")
    try:
        parser.parseFile(str(p))
    except Exception as exc:  # diffpy raises several types for bad CIFs
        msg = " ".join(str(exc).split())[:200]
        raise InputError(f"{p}: cannot read CIF ({type(exc).__name__}: {msg})") from exc
    sg = parser.spacegroup
    asym = parser.asymmetric_unit
    if sg is None or not asym:
        raise InputError(f"{p}: CIF has no space group or no atom sites")
    lat = asym[0].lattice if asym[0].lattice is not None else parser.stru.lattice
    cell = lat.abcABG()
    sites = []
    for k, at in enumerate(asym):
        label = at.label or f"{at.element}{k + 1}"
        sites.append((label, at.element, tuple(at.xyz), at.occupancy, float(at.Bisoequiv)))
    phase = _build(name or p.stem, sg, cell, sites, str(p), special_position_tol)
    cif = parser.ciffile
    block = next((cif[k] for k in cif.keys() if "_atom_site_label" in cif[k]), {})
    counts: dict[str, float] = {}
    for s in phase.sites:
        counts[s.symbol] = counts.get(s.symbol, 0.0) + s.occupancy * s.multiplicity
    msg = _cifcheck.check_contents(
        counts, phase.density_g_cm3, _cifcheck.stated_contents(block), str(p)
    )
    if msg:
        warnings.warn(msg, InputWarning, stacklevel=2)
    return phase


def get_phase(name_or_cif: str | os.PathLike) -> Phase:
    """A built-in phase by name (case-insensitive) or a phase read from a CIF path.

    Built-ins: ``NaTiO2`` (also ``rocksalt``, ``RS``: Fm-3m, a = 4.20464 Å,
    Na/Ti ½/½ on 4a, O on 4b), ``anatase`` (also ``TiO2``: I4₁/amd), ``rutile``,
    ``CeO2``, ``Ni``, ``LaB6``, ``Si``.

    Examples
    --------
    >>> p = get_phase("natio2")
    >>> p.spacegroup_symbol, round(p.a_A, 5)
    ('Fm-3m', 4.20464)
    """
    if isinstance(name_or_cif, Phase):
        return name_or_cif
    text = str(name_or_cif)
    key = _ALIASES.get(text.strip().lower())
    if key is not None:
        return _builtin(key)
    p = Path(text)
    if text.strip() and (p.suffix.lower() == ".cif" or p.is_file()):
        return phase_from_cif(p)
    raise InputError(f"unknown phase {text!r}: give a CIF path or one of {', '.join(_BUILTINS)}")
