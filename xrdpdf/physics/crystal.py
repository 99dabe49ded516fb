r"""Crystal phases: cell, sites, reflection lists with multiplicities and structure factors.

A :class:`Phase` is a crystal structure expanded to the full unit cell, with its space group,
cell parameters, crystal system and the occupancy and Biso of every site of the asymmetric
unit (built by :mod:`xrdpdf.physics.cif` from a built-in table or a CIF).

Units: Q in Å⁻¹, lengths in Å, Biso in Å².

Notes
-----
Structure factor of reflection :math:`\mathbf h`:

.. math::

    F(\mathbf h) = \sum_j o_j\, f_j(s)\, e^{-B_j s^2}\, e^{2\pi i\,\mathbf h\cdot\mathbf x_j},
    \qquad s = \frac{\sin\theta}{\lambda} = \frac{Q}{4\pi}

with :math:`f_j` from :func:`xrdpdf.physics.scattering.form_factor`, :math:`o_j` the
occupancy and :math:`B_j = 8\pi^2 U_j`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf.physics.scattering import _f2, form_factor

__all__ = [
    "cell_volume_A3",
    "Site",
    "Reflections",
    "Phase",
    "q_from_cell",
    "reflection_intensities",
    "structure_factors",
]


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


# ---------------------------------------------------------------------------- phase
@dataclass(frozen=True, eq=False)
class Phase:
    """A crystal phase: space group, cell, sites and the expanded structure.

    Build one with :func:`~xrdpdf.physics.cif.get_phase` (built-in name or CIF path) rather than
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
        return cell_volume_A3(self.cell)

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
def cell_volume_A3(cell: Sequence[float]) -> float:
    r"""Unit-cell volume (Å³) of ``(a, b, c, α, β, γ)`` in Å and degrees.

    .. math:: V = abc\sqrt{1 - \cos^2\alpha - \cos^2\beta - \cos^2\gamma
              + 2\cos\alpha\cos\beta\cos\gamma}

    (0 for angles that make no cell).
    """
    a, b, c, al, be, ga = cell
    ca, cb, cg = np.cos(np.radians([al, be, ga]))
    return float(a * b * c * np.sqrt(max(1 - ca**2 - cb**2 - cg**2 + 2 * ca * cb * cg, 0.0)))


def _check_cell(cell: Sequence[float], name: str) -> None:
    if any((not np.isfinite(v)) or v <= 0 for v in cell[:3]):
        raise InputError(f"{name}: cell lengths must be positive Å, got {tuple(cell[:3])}")
    if any((not np.isfinite(v)) or not 0 < v < 180 for v in cell[3:]):
        raise InputError(f"{name}: cell angles must be in (0, 180)°, got {tuple(cell[3:])}")
    if cell_volume_A3(cell) <= 0:
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
