r"""Crystal phases, reflection lists, structure factors and powder patterns.

A :class:`Phase` is a crystal structure (built-in or read from a CIF through
diffpy.structure) expanded to the full unit cell, with its space group, cell
parameters, crystal system and the occupancy and Biso of every site of the
asymmetric unit.  From it come the reflection list with multiplicities
(:meth:`Phase.reflections`), structure factors with xraydb form factors
(:func:`structure_factors`) and a powder pattern in Q or 2θ with size and
strain broadening (:func:`powder_pattern`).

Units: Q in Å⁻¹, 2θ in degrees, lengths in Å, Biso in Å², wavelength in Å.

Notes
-----
Structure factor of reflection :math:`\mathbf h`:

.. math::

    F(\mathbf h) = \sum_j o_j\, f_j(s)\, e^{-B_j s^2}\, e^{2\pi i\,\mathbf h\cdot\mathbf x_j},
    \qquad s = \frac{\sin\theta}{\lambda} = \frac{Q}{4\pi}

with :math:`f_j` from ``xraydb.f0`` (Waasmaier & Kirfel [1]_, neutral atoms
unless ``ionic=True``), :math:`o_j` the occupancy and :math:`B_j = 8\pi^2 U_j`.

Integrated intensity of a reflection group of multiplicity :math:`m`
(Debye–Scherrer geometry, polarization removed by the integration) is, in Q,

.. math::  A_Q = S\, m |F|^2 / (V^2 Q^2)

and in 2θ for lab Bragg–Brentano data :math:`A_{2\theta} = S\, m|F|^2 L_p / V^2`,
:math:`L_p = (1+\cos^2 2\theta)/(\sin^2\theta\cos\theta)`.  Dividing by the
squared cell volume :math:`V^2` makes the scale :math:`S` proportional to the
volume fraction of the phase, so weight fractions are
:math:`w_p = S_p\rho_p/\sum_i S_i\rho_i` (Hill & Howard [2]_).

Profiles are unit-area pseudo-Voigts whose FWHM Γ and mixing η come from a
Gaussian and a Lorentzian width through Thompson, Cox & Hastings [3]_.  Size
(Scherrer) and microstrain broadening are Lorentzian:
:math:`\Gamma_{L,Q} = 2\pi K/L + 2\varepsilon Q` (Williamson–Hall in Q).

References
----------
.. [1] D. Waasmaier & A. Kirfel (1995). Acta Cryst. A51, 416.
       https://doi.org/10.1107/S0108767394013292
.. [2] R. J. Hill & C. J. Howard (1987). J. Appl. Cryst. 20, 467.
       https://doi.org/10.1107/S0021889887086199
.. [3] P. Thompson, D. E. Cox & J. B. Hastings (1987). J. Appl. Cryst. 20, 79.
       https://doi.org/10.1107/S0021889887087090
.. [4] B. H. Toby (2006). Powder Diffr. 21, 67. https://doi.org/10.1154/1.2179804
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from . import units
from .errors import InputError

__all__ = [
    "CU_KA1_A",
    "CU_KA2_A",
    "CU_KA2_RATIO",
    "CU_KB_A",
    "ANODES",
    "anode_lines",
    "Site",
    "Phase",
    "Reflections",
    "Resolution",
    "get_phase",
    "phase_from_cif",
    "builtin_phases",
    "form_factor",
    "structure_factors",
    "q_from_cell",
    "reflection_intensities",
    "pseudo_voigt",
    "pv_sum",
    "tch_fwhm_eta",
    "tch_split",
    "lp_bragg_brentano",
    "chebyshev_background",
    "load_resolution",
    "peak_widths",
    "scherrer_size_definition",
    "powder_pattern",
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
        start value of 0.05 relative to Kα1, refined by :func:`xrdpdf.refine.refine`.

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


def _expand_unit(spacegroup, positions):
    import diffpy.structure.symmetryutilities as su

    cls = su.ExpandAsymmetricUnit
    return cls(spacegroup, positions)


# --------------------------------------------------------------------------- sites
@dataclass(frozen=True)
class Site:
    """One site of the asymmetric unit.

    Parameters
    ----------
    label : str
        Unique site label, e.g. ``"Na1"``.
    element : str
        Scatterer (element symbol, or ion such as ``"O2-"`` from a CIF).
    xyz : tuple of float
        Fractional coordinates of the representative position.
    occupancy : float
        Site occupancy, 0…1 (two species sharing a position are two Sites).
    biso_A2 : float
        Isotropic displacement parameter B = 8π²U in Å².
    multiplicity : int
        Number of positions of this site in the full unit cell.
    """

    label: str
    element: str
    xyz: tuple[float, float, float]
    occupancy: float
    biso_A2: float
    multiplicity: int = 0

    @property
    def symbol(self) -> str:
        """Element symbol without charge (``"O2-"`` → ``"O"``)."""
        m = re.match(r"([A-Z][a-z]?)", self.element)
        if not m:
            raise InputError(f"site {self.label}: cannot read an element from {self.element!r}")
        return m.group(1)


# ---------------------------------------------------------------------- reflections
@dataclass(frozen=True, eq=False)
class Reflections:
    """Symmetry-unique reflections of a phase (one row per group of equivalents).

    Attributes
    ----------
    hkl : (M, 3) ndarray of int
        Representative Miller indices of each group.
    multiplicity : (M,) ndarray of int
        Number of symmetry-equivalent reflections in the group (Friedel pairs counted).
    q_invA : (M,) ndarray
        Q = 2π/d in Å⁻¹ for the phase's cell.
    d_A : (M,) ndarray
        d-spacing in Å.
    f2 : (M,) ndarray
        |F|² of one reflection of the group (electrons²), with the phase's
        occupancies and Biso.
    site_sums : (M, n_sites) complex ndarray
        Geometric sums G_j(h) = Σ exp(2πi h·x) over the positions of each site,
        so that F = Σ_j o_j f_j(s) exp(−B_j s²) G_j(h).
    elements : tuple of str
        Scatterer of each site column.
    """

    hkl: np.ndarray
    multiplicity: np.ndarray
    q_invA: np.ndarray
    d_A: np.ndarray
    f2: np.ndarray
    site_sums: np.ndarray
    elements: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.hkl.shape[0])

    @property
    def intensity(self) -> np.ndarray:
        """m|F|² of each group (electrons²)."""
        return self.multiplicity * self.f2

    def tth_deg(self, wavelength_A: float) -> np.ndarray:
        """2θ (degrees) of each group at ``wavelength_A`` (Å)."""
        return units.q_to_tth(self.q_invA, wavelength_A)

    def as_table(self) -> list[dict[str, Any]]:
        """Rows ``{"hkl", "d_A", "q_invA", "multiplicity", "f2"}`` for printing or JSON."""
        return [
            {
                "hkl": [int(v) for v in h],
                "d_A": float(d),
                "q_invA": float(q),
                "multiplicity": int(m),
                "f2": float(f),
            }
            for h, d, q, m, f in zip(
                self.hkl, self.d_A, self.q_invA, self.multiplicity, self.f2, strict=True
            )
        ]


# ---------------------------------------------------------------------------- phase
@dataclass(frozen=True, eq=False)
class Phase:
    """A crystal phase: space group, cell, sites and the expanded structure.

    Build one with :func:`get_phase` (built-in name or CIF path) rather than
    directly.  A Phase is immutable; :meth:`with_cell` and :meth:`with_sites`
    return modified copies.

    Attributes
    ----------
    name : str
        Phase name (built-in name or the CIF's stem).
    spacegroup_number : int
        International Tables number.
    spacegroup_symbol : str
        Short Hermann–Mauguin symbol, e.g. ``"Fm-3m"``.
    cell : tuple of 6 float
        a, b, c (Å), α, β, γ (degrees).
    sites : tuple of Site
        Asymmetric unit.
    crystal_system : str
        ``"cubic"``, ``"tetragonal"``, ``"hexagonal"``, ``"trigonal"``,
        ``"orthorhombic"``, ``"monoclinic"`` or ``"triclinic"``.
    structure : diffpy.structure.Structure
        Full unit cell (every position of every site), built on access.
    source : str
        ``"builtin"`` or the CIF path.
    """

    name: str
    spacegroup_number: int
    spacegroup_symbol: str
    cell: tuple[float, float, float, float, float, float]
    sites: tuple[Site, ...]
    crystal_system: str
    source: str = "builtin"
    _positions: tuple[np.ndarray, ...] = field(default=(), repr=False)
    _rotations: np.ndarray = field(default_factory=lambda: np.eye(3)[None], repr=False)

    # ------------------------------------------------------------------ cell
    @property
    def a_A(self) -> float:
        """Cell edge a in Å."""
        return self.cell[0]

    @property
    def b_A(self) -> float:
        """Cell edge b in Å."""
        return self.cell[1]

    @property
    def c_A(self) -> float:
        """Cell edge c in Å."""
        return self.cell[2]

    @property
    def volume_A3(self) -> float:
        """Unit-cell volume in Å³."""
        return _cell_volume(self.cell)

    @property
    def free_cell_parameters(self) -> tuple[str, ...]:
        """Cell parameters free under the crystal system (``("a",)`` for cubic)."""
        sysname = self.crystal_system
        if sysname == "cubic":
            return ("a",)
        if sysname == "tetragonal":
            return ("a", "c")
        if sysname in ("hexagonal", "trigonal"):
            if abs(self.cell[5] - 120.0) < 1e-6:
                return ("a", "c")
            return ("a", "alpha")  # rhombohedral setting
        if sysname == "orthorhombic":
            return ("a", "b", "c")
        if sysname == "monoclinic":
            angles = ("alpha", "beta", "gamma")
            odd = [n for n, v in zip(angles, self.cell[3:], strict=True) if abs(v - 90.0) > 1e-6]
            return ("a", "b", "c", odd[0] if odd else "beta")
        return ("a", "b", "c", "alpha", "beta", "gamma")

    def cell_from_free(self, values: Mapping[str, float]) -> tuple[float, ...]:
        """Full cell (a, b, c, α, β, γ) from values of the free parameters.

        Missing free parameters keep the phase's current value; dependent ones
        follow the crystal system (cubic b = c = a, tetragonal b = a, …).
        """
        a, b, c, al, be, ga = self.cell
        v = {"a": a, "b": b, "c": c, "alpha": al, "beta": be, "gamma": ga}
        for k, val in values.items():
            if k not in self.free_cell_parameters:
                raise InputError(
                    f"{self.name}: cell parameter {k!r} is not free in the {self.crystal_system} "
                    f"system; free: {', '.join(self.free_cell_parameters)}"
                )
            v[k] = float(val)
        sysname = self.crystal_system
        if sysname == "cubic":
            v["b"] = v["c"] = v["a"]
        elif sysname == "tetragonal" or (
            sysname in ("hexagonal", "trigonal") and "c" in self.free_cell_parameters
        ):
            v["b"] = v["a"]
        elif sysname in ("hexagonal", "trigonal"):
            v["b"] = v["c"] = v["a"]
            v["beta"] = v["gamma"] = v["alpha"]
        return (v["a"], v["b"], v["c"], v["alpha"], v["beta"], v["gamma"])

    def with_cell(self, **values: float) -> Phase:
        """Copy with free cell parameters changed, e.g. ``phase.with_cell(a=4.18)``."""
        cell = self.cell_from_free(values)
        _check_cell(cell, self.name)
        return _replace(self, cell=cell)

    def with_sites(
        self,
        occupancy: Mapping[str, float] | None = None,
        biso_A2: Mapping[str, float] | None = None,
    ) -> Phase:
        """Copy with occupancies and/or Biso changed.

        Parameters
        ----------
        occupancy : mapping, optional
            Site label → occupancy (0…1).
        biso_A2 : mapping, optional
            Site label **or** element symbol → Biso in Å² (an element key sets
            every site of that element).
        """
        occupancy = dict(occupancy or {})
        biso = dict(biso_A2 or {})
        labels = {s.label for s in self.sites}
        symbols = {s.symbol for s in self.sites}
        for k in occupancy:
            if k not in labels:
                raise InputError(f"{self.name}: no site {k!r}; sites: {', '.join(sorted(labels))}")
        for k in biso:
            if k not in labels and k not in symbols:
                raise InputError(
                    f"{self.name}: no site or element {k!r}; sites: {', '.join(sorted(labels))}"
                )
        new = []
        for s in self.sites:
            occ = float(occupancy.get(s.label, s.occupancy))
            if not 0.0 <= occ <= 1.0 + 1e-9:
                raise InputError(f"{self.name}: occupancy of {s.label} must be in 0…1, got {occ}")
            b = float(biso.get(s.label, biso.get(s.symbol, s.biso_A2)))
            if not np.isfinite(b) or b < -1.0:
                raise InputError(f"{self.name}: Biso of {s.label} must be ≥ 0 Å², got {b}")
            new.append(Site(s.label, s.element, s.xyz, occ, b, s.multiplicity))
        return _replace(self, sites=tuple(new))

    # ------------------------------------------------------------ composition
    @property
    def cell_mass_amu(self) -> float:
        """Mass of the unit-cell contents in atomic mass units (with occupancies)."""
        import xraydb

        return float(
            sum(s.occupancy * s.multiplicity * xraydb.atomic_mass(s.symbol) for s in self.sites)
        )

    @property
    def density_g_cm3(self) -> float:
        """Crystallographic density in g/cm³."""
        return self.cell_mass_amu * 1.66053906660 / self.volume_A3

    @property
    def occupancies(self) -> dict[str, float]:
        """Site label → occupancy."""
        return {s.label: s.occupancy for s in self.sites}

    @property
    def biso(self) -> dict[str, float]:
        """Site label → Biso (Å²)."""
        return {s.label: s.biso_A2 for s in self.sites}

    @property
    def elements(self) -> tuple[str, ...]:
        """Distinct element symbols, in site order."""
        out: list[str] = []
        for s in self.sites:
            if s.symbol not in out:
                out.append(s.symbol)
        return tuple(out)

    @property
    def structure(self):
        """The full unit cell as a :class:`diffpy.structure.Structure`."""
        from diffpy.structure import Atom, Lattice, Structure

        atoms = []
        for site, pos in zip(self.sites, self._positions, strict=True):
            for k, xyz in enumerate(pos):
                at = Atom(
                    site.element,
                    xyz,
                    occupancy=site.occupancy,
                    label=f"{site.label}_{k}" if k else site.label,
                )
                at.Bisoequiv = site.biso_A2
                atoms.append(at)
        return Structure(atoms, lattice=Lattice(*self.cell), title=self.name)

    def positions(self, label: str) -> np.ndarray:
        """(n, 3) fractional positions of site ``label`` in the full cell."""
        for s, p in zip(self.sites, self._positions, strict=True):
            if s.label == label:
                return p.copy()
        raise InputError(f"{self.name}: no site {label!r}")

    # ----------------------------------------------------------- reflections
    def reflections(
        self,
        qmax_invA: float,
        qmin_invA: float = 0.0,
        *,
        ionic: bool = False,
    ) -> Reflections:
        """Symmetry-unique reflections with Q in ``[qmin_invA, qmax_invA]``.

        Parameters
        ----------
        qmax_invA, qmin_invA : float
            Q range in Å⁻¹.
        ionic : bool
            Use ionic form factors when the site's element names an ion.

        Returns
        -------
        Reflections
            Sorted by Q; systematic absences (all geometric sums zero) removed.

        Notes
        -----
        Every h with |Q| < ``qmax_invA`` is enumerated (|h_i| ≤ Q_max|a_i|/2π),
        grouped into orbits of the Laue group (rotation parts of the space
        group plus Friedel inversion), and F is computed for one representative
        per orbit; the multiplicity is the orbit size.
        """
        qmax = float(qmax_invA)
        if not np.isfinite(qmax) or qmax <= 0:
            raise InputError(f"qmax must be a positive number of Å⁻¹, got {qmax_invA!r}")
        hkl, mult = _unique_hkl(self.cell, self._rotations, qmax)
        if hkl.shape[0] == 0:
            return _empty_reflections(len(self.sites), self.elements)
        q = q_from_cell(hkl, self.cell)
        keep = (q >= float(qmin_invA)) & (q <= qmax)
        hkl, mult, q = hkl[keep], mult[keep], q[keep]
        sums = _site_sums(hkl, self._positions)
        npos = np.array([max(len(p), 1) for p in self._positions], float)
        present = np.any(np.abs(sums) > 1e-6 * npos, axis=1)
        hkl, mult, q, sums = hkl[present], mult[present], q[present], sums[present]
        order = np.lexsort((-hkl[:, 2], -hkl[:, 1], -hkl[:, 0], np.round(q, 10)))
        hkl, mult, q, sums = hkl[order], mult[order], q[order], sums[order]
        elements = tuple(s.element if ionic else s.symbol for s in self.sites)
        occ = np.array([s.occupancy for s in self.sites])
        biso = np.array([s.biso_A2 for s in self.sites])
        f2 = _f2(sums, elements, q, occ, biso)
        return Reflections(
            hkl=hkl,
            multiplicity=mult,
            q_invA=q,
            d_A=2 * np.pi / q,
            f2=f2,
            site_sums=sums,
            elements=elements,
        )

    def __repr__(self) -> str:
        a, b, c, al, be, ga = self.cell
        return (
            f"Phase({self.name!r}, {self.spacegroup_symbol} (#{self.spacegroup_number}), "
            f"{self.crystal_system}, a={a:.5g} b={b:.5g} c={c:.5g} Å, "
            f"α={al:g} β={be:g} γ={ga:g}°, {len(self.sites)} sites)"
        )


def _replace(phase: Phase, **changes: Any) -> Phase:
    import dataclasses

    return dataclasses.replace(phase, **changes)


def _empty_reflections(nsites: int, elements: tuple[str, ...]) -> Reflections:
    return Reflections(
        hkl=np.zeros((0, 3), int),
        multiplicity=np.zeros(0, int),
        q_invA=np.zeros(0),
        d_A=np.zeros(0),
        f2=np.zeros(0),
        site_sums=np.zeros((0, nsites), complex),
        elements=elements,
    )


# ------------------------------------------------------------------ geometry helpers
def _cell_volume(cell: Sequence[float]) -> float:
    a, b, c, al, be, ga = cell
    ca, cb, cg = np.cos(np.radians([al, be, ga]))
    return float(a * b * c * np.sqrt(max(1 - ca**2 - cb**2 - cg**2 + 2 * ca * cb * cg, 0.0)))


def _check_cell(cell: Sequence[float], name: str) -> None:
    if any((not np.isfinite(v)) or v <= 0 for v in cell[:3]):
        raise InputError(f"{name}: cell lengths must be positive Å, got {tuple(cell[:3])}")
    if any((not np.isfinite(v)) or not 0 < v < 180 for v in cell[3:]):
        raise InputError(f"{name}: cell angles must be in (0, 180)°, got {tuple(cell[3:])}")
    if _cell_volume(cell) <= 0:
        raise InputError(f"{name}: cell angles {tuple(cell[3:])} give no volume")


def _reciprocal_metric(cell: Sequence[float]) -> np.ndarray:
    a, b, c, al, be, ga = cell
    ca, cb, cg = np.cos(np.radians([al, be, ga]))
    g = np.array(
        [
            [a * a, a * b * cg, a * c * cb],
            [a * b * cg, b * b, b * c * ca],
            [a * c * cb, b * c * ca, c * c],
        ]
    )
    return np.linalg.inv(g)


def q_from_cell(hkl: np.ndarray, cell: Sequence[float]) -> np.ndarray:
    r"""Q (Å⁻¹) of reflections ``hkl`` for a cell (a, b, c in Å; α, β, γ in degrees).

    Notes
    -----
    :math:`Q = 2\pi\sqrt{\mathbf h^T G^{*}\mathbf h}` with :math:`G^*` the
    reciprocal metric tensor (inverse of the real-space metric).
    """
    hkl = np.asarray(hkl, dtype=float).reshape(-1, 3)
    gs = _reciprocal_metric(cell)
    d2 = np.einsum("ni,ij,nj->n", hkl, gs, hkl)
    return 2.0 * np.pi * np.sqrt(np.maximum(d2, 0.0))


def _unique_hkl(cell, rotations: np.ndarray, qmax: float) -> tuple[np.ndarray, np.ndarray]:
    a, b, c = cell[:3]
    # |h_i| = |a_i · d*| ≤ |a_i| Q_max / 2π; angles only shorten it
    hmax = [int(np.floor(length * qmax / (2 * np.pi))) for length in (a, b, c)]
    # a_i · d* bound holds for any cell (|a_i||d*|); add one for round-off
    rng = [np.arange(-m - 1, m + 2) for m in hmax]
    h, k, l = np.meshgrid(*rng, indexing="ij")
    hkl = np.stack([h.ravel(), k.ravel(), l.ravel()], axis=1)
    q = q_from_cell(hkl, cell)
    sel = (q > 0) & (q <= qmax)
    hkl = hkl[sel]
    if hkl.shape[0] == 0:
        return hkl, np.zeros(0, int)
    big = int(np.max(np.abs(hkl))) + 1
    base = 2 * big + 1
    # Laue group: rotations R (x' = Rx + t) act on h as R^T h; add Friedel −h.
    rt = np.concatenate([rotations, -rotations]).transpose(0, 2, 1).round().astype(np.int64)
    keys = np.full(hkl.shape[0], -1, dtype=np.int64)
    for r in rt:
        hh = hkl @ r.T
        kk = ((hh[:, 0] + big) * base + (hh[:, 1] + big)) * base + (hh[:, 2] + big)
        np.maximum(keys, kk, out=keys)
    uniq, counts = np.unique(keys, return_counts=True)
    rep = np.stack(
        [uniq // (base * base) - big, (uniq // base) % base - big, uniq % base - big], axis=1
    )
    return rep.astype(int), counts.astype(int)


def _site_sums(hkl: np.ndarray, positions: Sequence[np.ndarray]) -> np.ndarray:
    out = np.zeros((hkl.shape[0], len(positions)), complex)
    hf = hkl.astype(float)
    for j, pos in enumerate(positions):
        phase = 2j * np.pi * (hf @ np.asarray(pos, float).T)
        out[:, j] = np.exp(phase).sum(axis=1)
    return out


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


@lru_cache(maxsize=256)
def _f0_coeffs(name: str) -> tuple[float, np.ndarray, np.ndarray] | None:
    """Waasmaier–Kirfel (offset, scales, exponents) of ``name`` read from xraydb's table."""
    import xraydb

    try:
        rows = xraydb.get_xraydb().get_cache("Waasmaier")
        row = next(r for r in rows if r.ion == name)
        return (
            float(row.offset),
            np.array(json.loads(row.scale), float),
            np.array(json.loads(row.exponents), float),
        )
    except Exception:  # table layout changed: use xraydb.f0 itself
        return None


def _f0_fast(name: str, s: np.ndarray) -> np.ndarray:
    """f0 at s = sinθ/λ from the cached coefficients (same formula as ``xraydb.f0``)."""
    c = _f0_coeffs(name)
    if c is None:
        import xraydb

        return np.asarray(xraydb.f0(name, s), float).reshape(s.shape)
    off, sc, ex = c
    s2 = s * s
    return off + (sc[None, :] * np.exp(-ex[None, :] * s2.reshape(-1, 1))).sum(1).reshape(s.shape)


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


def reflection_intensities(
    refl: Reflections,
    q_invA: np.ndarray,
    occupancy: Sequence[float],
    biso_A2: Sequence[float],
) -> np.ndarray:
    """m|F|² of each reflection group at positions ``q_invA`` (after a cell change).

    Parameters
    ----------
    refl : Reflections
        From :meth:`Phase.reflections` (supplies hkl, multiplicities, site sums).
    q_invA : (M,) ndarray
        Q of each group for the current cell (:func:`q_from_cell`).
    occupancy, biso_A2 : sequence of float
        One value per site (order of ``Phase.sites``).
    """
    occ = np.asarray(occupancy, float)
    b = np.asarray(biso_A2, float)
    return refl.multiplicity * _f2(refl.site_sums, refl.elements, np.asarray(q_invA), occ, b)


def structure_factors(phase: Phase, hkl, *, ionic: bool = False) -> np.ndarray:
    """Complex structure factors F(h) (electrons) of reflections ``hkl`` ((M, 3) ints).

    See the module Notes for the formula; positions are the full cell's.
    """
    hkl = np.atleast_2d(np.asarray(hkl, dtype=int))
    if hkl.shape[1] != 3:
        raise InputError(f"hkl must have shape (M, 3), got {hkl.shape}")
    q = q_from_cell(hkl, phase.cell)
    sums = _site_sums(hkl, phase._positions)
    s2 = (q / (4.0 * np.pi)) ** 2
    f = np.zeros(hkl.shape[0], complex)
    for j, site in enumerate(phase.sites):
        el = site.element if ionic else site.symbol
        f += site.occupancy * form_factor(el, q) * np.exp(-site.biso_A2 * s2) * sums[:, j]
    return f


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
) -> Phase:
    """Phase from a space group, a cell and (label, element, xyz, occ, Biso) sites."""
    cell = tuple(float(v) for v in cell)
    _check_cell(cell, name)
    if not asym:
        raise InputError(f"{name}: no atom sites")
    eau = _expand_unit(spacegroup, [list(map(float, s[2])) for s in asym])
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
        sites.append(
            Site(str(label), str(element), tuple(float(v) for v in xyz), occ, float(biso), len(pos))
        )
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


def phase_from_cif(path: str | os.PathLike, name: str | None = None) -> Phase:
    """Read a phase from a CIF file (first data block) through diffpy.structure.

    Raises
    ------
    InputError
        If the file is missing or diffpy cannot parse it.
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
    return _build(name or p.stem, sg, cell, sites, str(p))


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


# ------------------------------------------------------------------------ profiles
def pseudo_voigt(x, x0, fwhm, eta) -> np.ndarray:
    r"""Unit-area pseudo-Voigt: η·L + (1−η)·G with common FWHM.

    All arguments broadcast; result in 1/(unit of x).

    Notes
    -----
    .. math::

        G = \frac{2}{\Gamma}\sqrt{\frac{\ln 2}{\pi}} e^{-4\ln 2\,u^2/\Gamma^2},\quad
        L = \frac{2}{\pi\Gamma}\frac{1}{1+4u^2/\Gamma^2},\quad u = x - x_0
    """
    u2 = ((np.asarray(x) - x0) / fwhm) ** 2
    g = (2.0 * np.sqrt(np.log(2) / np.pi)) * np.exp(-4.0 * np.log(2) * u2)
    lor = (2.0 / np.pi) / (1.0 + 4.0 * u2)
    return (eta * lor + (1.0 - eta) * g) / fwhm


@lru_cache(maxsize=1)
def _pv_kernel():
    import numba

    @numba.njit(cache=True, nogil=True, fastmath=True)
    def kernel(x, x0, fw, eta, area, out):  # pragma: no cover - compiled
        c_g = 2.0 * np.sqrt(np.log(2.0) / np.pi)
        k_g = 4.0 * np.log(2.0)
        c_l = 2.0 / np.pi
        n = x.size
        for h in range(x0.size):
            f = fw[h]
            if not f > 0.0:
                continue
            ag = area[h] * (1.0 - eta[h]) * c_g / f
            al = area[h] * eta[h] * c_l / f
            inv = 1.0 / f
            c = x0[h]
            for i in range(n):  # Lorentzian over the whole grid (vectorizes)
                u = (x[i] - c) * inv
                out[i] += al / (1.0 + 4.0 * u * u)
            # Gaussian only within ±3.2 FWHM (exp(−4 ln2 u²) < 1e-17 beyond)
            lo = np.searchsorted(x, c - 3.2 * f)
            hi = np.searchsorted(x, c + 3.2 * f)
            for i in range(lo, hi):
                u = (x[i] - c) * inv
                out[i] += ag * np.exp(-k_g * u * u)
        return out

    return kernel


def pv_sum(x, x0, fwhm, eta, area) -> np.ndarray:
    """Σ_h area_h · pseudo_voigt(x, x0_h, fwhm_h, eta_h), a compiled loop.

    Same values as summing :func:`pseudo_voigt` except that the Gaussian part is
    cut beyond ±3.2 FWHM from the centre (where it is below 5e-13 of its
    maximum); Lorentzian tails are summed over the whole grid.  ``x`` must be
    increasing.
    """
    x = np.ascontiguousarray(x, dtype=float)
    x0, fwhm, eta, area = (
        np.ascontiguousarray(np.broadcast_to(np.asarray(a, float), np.shape(x0)))
        for a in (x0, fwhm, eta, area)
    )
    out = np.zeros_like(x)
    if x0.size == 0:
        return out
    return _pv_kernel()(x, x0.ravel(), fwhm.ravel(), eta.ravel(), area.ravel(), out)


def tch_fwhm_eta(gamma_g, gamma_l) -> tuple[np.ndarray, np.ndarray]:
    r"""Pseudo-Voigt FWHM and η from Gaussian and Lorentzian FWHMs (TCH 1987).

    Notes
    -----
    .. math::

        \Gamma^5 = \Gamma_G^5 + 2.69269\Gamma_G^4\Gamma_L + 2.42843\Gamma_G^3\Gamma_L^2
        + 4.47163\Gamma_G^2\Gamma_L^3 + 0.07842\Gamma_G\Gamma_L^4 + \Gamma_L^5

        \eta = 1.36603 r - 0.47719 r^2 + 0.11116 r^3,\quad r = \Gamma_L/\Gamma
    """
    g = np.asarray(gamma_g, float)
    lo = np.asarray(gamma_l, float)
    f5 = (
        g**5
        + 2.69269 * g**4 * lo
        + 2.42843 * g**3 * lo**2
        + 4.47163 * g**2 * lo**3
        + 0.07842 * g * lo**4
        + lo**5
    )
    fwhm = f5**0.2
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(fwhm > 0, lo / np.where(fwhm > 0, fwhm, 1.0), 0.0)
    eta = 1.36603 * r - 0.47719 * r**2 + 0.11116 * r**3
    return fwhm, np.clip(eta, 0.0, 1.0)


def tch_split(fwhm, eta) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`tch_fwhm_eta`: Gaussian and Lorentzian FWHMs from (Γ, η).

    Solved by bisection (both TCH relations are monotonic on 0 ≤ η ≤ 1).
    """
    fwhm = np.asarray(fwhm, float)
    eta = np.clip(np.asarray(eta, float), 0.0, 1.0)
    fwhm, eta = np.broadcast_arrays(fwhm, eta)
    lo, hi = np.zeros(eta.shape), np.ones(eta.shape)
    for _ in range(60):  # r = Γ_L/Γ from η(r)
        mid = 0.5 * (lo + hi)
        e = 1.36603 * mid - 0.47719 * mid**2 + 0.11116 * mid**3
        lo, hi = np.where(e < eta, mid, lo), np.where(e < eta, hi, mid)
    r = 0.5 * (lo + hi)
    glo, ghi = np.zeros(eta.shape), np.ones(eta.shape)
    for _ in range(60):  # g = Γ_G/Γ from the TCH quintic with Γ = 1
        g = 0.5 * (glo + ghi)
        f5 = (
            g**5
            + 2.69269 * g**4 * r
            + 2.42843 * g**3 * r**2
            + 4.47163 * g**2 * r**3
            + 0.07842 * g * r**4
            + r**5
        )
        glo, ghi = np.where(f5 < 1.0, g, glo), np.where(f5 < 1.0, ghi, g)
    return 0.5 * (glo + ghi) * fwhm, r * fwhm


def lp_bragg_brentano(tth_deg, monochromator_tth_deg: float | None = None) -> np.ndarray:
    r"""Lorentz-polarization factor of lab Bragg–Brentano geometry.

    Notes
    -----
    .. math::  L_p = \frac{1+\cos^2 2\theta}{\sin^2\theta\cos\theta}

    With a monochromator at :math:`2\theta_m`, :math:`1+\cos^2 2\theta` becomes
    :math:`(1+\cos^2 2\theta_m\cos^2 2\theta)/(1+\cos^2 2\theta_m)`.
    """
    t = np.radians(np.asarray(tth_deg, float))
    th = t / 2
    if monochromator_tth_deg is None:
        pol = 1.0 + np.cos(t) ** 2
    else:
        cm2 = np.cos(np.radians(monochromator_tth_deg)) ** 2
        pol = (1.0 + cm2 * np.cos(t) ** 2) / (1.0 + cm2)
    return pol / (np.sin(th) ** 2 * np.cos(th))


def chebyshev_background(x, coeffs: Sequence[float], xmin=None, xmax=None) -> np.ndarray:
    r"""Chebyshev-polynomial background Σ B_j T_j(x̃), x̃ = 2(x − x_min)/(x_max − x_min) − 1."""
    x = np.asarray(x, float)
    lo = float(np.min(x)) if xmin is None else float(xmin)
    hi = float(np.max(x)) if xmax is None else float(xmax)
    xt = 2.0 * (x - lo) / (hi - lo) - 1.0
    return np.polynomial.chebyshev.chebval(xt, np.asarray(coeffs, float))


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
    r"""Total (FWHM Å⁻¹, η) of peaks at ``q_invA``: instrument ⊗ size ⊗ strain.

    Notes
    -----
    :math:`\Gamma_G = \Gamma_{G,inst}`,
    :math:`\Gamma_L = \Gamma_{L,inst} + 2\pi K/L + 2\varepsilon Q`,
    combined with :func:`tch_fwhm_eta`.
    """
    q = np.asarray(q_invA, float)
    gl = np.asarray(inst_lorentz_q, float) + 2.0 * abs(strain) * q
    if size_A is not None:
        gl = gl + 2.0 * np.pi * k_scherrer / size_A
    return tch_fwhm_eta(np.broadcast_to(inst_gauss_q, q.shape), np.broadcast_to(gl, q.shape))


def scherrer_size_definition(k_scherrer: float) -> str:
    """Which crystallite size a Scherrer constant K (used with the FWHM) gives, for spheres.

    K = 1.107 → sphere diameter D; K ≈ 0.89–0.9 → V^⅓ (cube root of the volume,
    0.806 D); K = 0.83 → volume-weighted column length ⟨L⟩_vol = ¾D
    (ALGORITHMS.md §5; Langford & Wilson 1978, J. Appl. Cryst. 11, 102).
    """
    if abs(k_scherrer - 1.107) < 0.02:
        return "D (sphere diameter; K = 1.107 with the FWHM)"
    if abs(k_scherrer - 0.9) < 0.02 or abs(k_scherrer - 0.892) < 0.02:
        return "V^(1/3) (cube root of the crystallite volume; K = 0.89-0.9 with the FWHM)"
    if abs(k_scherrer - 0.83) < 0.02:
        return "<L>_vol (volume-weighted column length = 3D/4; K = 0.83 with the FWHM)"
    return f"Scherrer length L = 2*pi*K/FWHM_Q with K = {k_scherrer:g}"


def _per_phase(value, n: int, what: str) -> list:
    if value is None or np.isscalar(value):
        return [value] * n
    vals = list(value)
    if len(vals) != n:
        raise InputError(f"{what}: give one value or one per phase ({n}), got {len(vals)}")
    return vals


def powder_pattern(
    phases: Phase | Sequence[Phase],
    x,
    *,
    unit: str = units.Q_A,
    wavelength_A: float | None = None,
    cuka: bool = False,
    scale: float | Sequence[float] = 1.0,
    size_A: float | Sequence[float | None] | None = None,
    k_scherrer: float = 0.9,
    strain: float | Sequence[float] = 0.0,
    fwhm_inst: float | None = None,
    eta_inst: float = 0.0,
    resolution: Resolution | None = None,
    zero: float = 0.0,
) -> np.ndarray:
    r"""Powder pattern of one or more phases on the grid ``x`` (peaks only, no background).

    Parameters
    ----------
    phases : Phase or sequence of Phase
        From :func:`get_phase`.
    x : (N,) array_like
        Grid in ``unit``.
    unit : str
        ``"q_A^-1"`` (Q, Å⁻¹) or ``"2th_deg"`` (2θ, degrees).
    wavelength_A : float, optional
        Wavelength (Å); required for ``"2th_deg"`` unless ``cuka``.
    cuka : bool
        Lab Cu Kα1 + Kα2 (I₂/I₁ = 0.5) in Bragg–Brentano geometry with its
        Lorentz-polarization factor; ``unit`` must be ``"2th_deg"``.
    scale : float or sequence
        Scale per phase; the intensity is ``scale · m|F|²/V²`` × geometry factor,
        so the scale is proportional to the phase's volume fraction.
    size_A : float, sequence or None
        Scherrer crystallite size L (Å) per phase, broadening
        Γ_L = 2πK/L in Q (Lorentzian).  ``None``: no size broadening.
    k_scherrer : float
        Scherrer constant K for the FWHM (0.9 ⇒ ``size_A`` ≈ V^⅓ of spheres;
        1.107 ⇒ sphere diameter D).
    strain : float or sequence
        Microstrain ε per phase: Lorentzian Γ_L = 2εQ (Williamson–Hall).
    fwhm_inst, eta_inst : float, optional
        Constant instrument FWHM in ``unit`` (Å⁻¹ or degrees 2θ) and its η.
        Ignored if ``resolution`` is given.
    resolution : Resolution, optional
        Instrument FWHM(x) and η(x) model (see :class:`Resolution`).
    zero : float
        Zero offset in ``unit``: a peak calculated at x₀ appears at x₀ + zero.

    Returns
    -------
    (N,) ndarray
        Intensity at each x (arbitrary absolute scale: electrons²/Å⁶ × scale).

    Raises
    ------
    InputError
        No width at all (neither size, strain nor instrument), unknown unit,
        or a missing wavelength.

    Notes
    -----
    In Q the integrated area of a reflection group is
    :math:`S\,m|F|^2/(V^2Q^2)` (Debye–Scherrer, polarization removed).  For 2θ
    data without ``cuka`` the Q model is evaluated at Q(2θ − zero): pyFAI's
    2θ output holds point values, not densities.  With ``cuka`` areas in 2θ are
    :math:`S\,m|F|^2 L_p/V^2` per line, Lp from :func:`lp_bragg_brentano`.
    Profiles: pseudo-Voigt with TCH widths from :func:`peak_widths`; the
    instrument's (FWHM, η) is split into Gaussian and Lorentzian parts by
    :func:`tch_split`.
    """
    plist = [phases] if isinstance(phases, Phase) else list(phases)
    if not plist:
        raise InputError("powder_pattern needs at least one phase")
    x = np.asarray(x, float)
    if x.ndim != 1 or x.size < 1:
        raise InputError(f"x must be a 1-D grid, got shape {x.shape}")
    n = len(plist)
    scales = _per_phase(scale, n, "scale")
    sizes = _per_phase(size_A, n, "size_A")
    strains = _per_phase(strain, n, "strain")
    for s in sizes:
        if s is not None and (not np.isfinite(s) or s <= 0):
            raise InputError(f"size_A must be positive Å, got {s}")
    if unit not in (units.Q_A, units.TTH_DEG):
        raise InputError(f"unit must be q_A^-1 or 2th_deg, got {unit!r}")
    if cuka and unit != units.TTH_DEG:
        raise InputError("cuka patterns are computed in 2θ: use unit='2th_deg'")
    if resolution is None and fwhm_inst is None:
        if any(s is None and not st for s, st in zip(sizes, strains, strict=True)):
            raise InputError("give size_A, strain or an instrument width (fwhm_inst/resolution)")

    y = np.zeros_like(x)
    if not cuka:
        if unit == units.TTH_DEG:
            wl = units.check_wavelength(wavelength_A, "a 2θ powder pattern")
            qgrid = units.tth_to_q(np.clip(x - zero, 0.0, 179.9), wl)
            zero_q = 0.0
        else:
            qgrid, zero_q, wl = x, zero, wavelength_A
        qmax = float(np.max(qgrid))
        for ph, sc, sz, st in zip(plist, scales, sizes, strains, strict=True):
            refl = ph.reflections(qmax + 1.0)
            if len(refl) == 0:
                continue
            qh = refl.q_invA
            if resolution is not None:
                fw_i, eta_i = resolution.fwhm_eta_q(qh, wl)
            elif fwhm_inst is not None:
                # constant width in the grid's unit; for 2θ convert at each peak
                conv = (
                    1.0
                    if unit == units.Q_A
                    else (
                        (2 * np.pi / wl)
                        * np.cos(np.arcsin(qh * wl / (4 * np.pi)))
                        * np.radians(1.0)
                    )
                )
                fw_i, eta_i = np.full_like(qh, fwhm_inst) * conv, np.full_like(qh, eta_inst)
            else:
                fw_i, eta_i = np.zeros_like(qh), np.zeros_like(qh)
            ig, il = tch_split(fw_i, eta_i)
            fw, eta = peak_widths(
                qh, size_A=sz, k_scherrer=k_scherrer, strain=st, inst_gauss_q=ig, inst_lorentz_q=il
            )
            area = sc * refl.intensity / (ph.volume_A3**2 * qh**2)
            y += (area[None, :] * pseudo_voigt(qgrid[:, None], qh[None, :] + zero_q, fw, eta)).sum(
                axis=1
            )
        return y

    # lab Cu Kα1/Kα2, Bragg–Brentano
    lines = ((CU_KA1_A, 1.0), (CU_KA2_A, CU_KA2_RATIO))
    qmax = float(units.tth_to_q(min(np.max(x) + 5.0, 179.0), CU_KA1_A))
    for ph, sc, sz, st in zip(plist, scales, sizes, strains, strict=True):
        refl = ph.reflections(qmax)
        if len(refl) == 0:
            continue
        base = sc * refl.intensity / ph.volume_A3**2
        for wl, ratio in lines:
            ok = refl.q_invA * wl / (4 * np.pi) < 0.999
            qh = refl.q_invA[ok]
            tth = units.q_to_tth(qh, wl)
            th = np.radians(tth) / 2
            dq_per_deg = (2 * np.pi / wl) * np.cos(th) * np.radians(1.0)
            if resolution is not None:
                fw_i, eta_i = resolution.fwhm_eta_tth(tth, wl)
            elif fwhm_inst is not None:
                fw_i, eta_i = np.full_like(tth, fwhm_inst), np.full_like(tth, eta_inst)
            else:
                fw_i, eta_i = np.zeros_like(tth), np.zeros_like(tth)
            ig, il = tch_split(fw_i * dq_per_deg, eta_i)
            fw_q, eta = peak_widths(
                qh, size_A=sz, k_scherrer=k_scherrer, strain=st, inst_gauss_q=ig, inst_lorentz_q=il
            )
            fw = fw_q / dq_per_deg
            area = ratio * base[ok] * lp_bragg_brentano(tth)
            y += (area[None, :] * pseudo_voigt(x[:, None], tth[None, :] + zero, fw, eta)).sum(
                axis=1
            )
    return y
