r"""Debye-equation scattering of finite clusters (spheres cut from a crystal).

Used to make test data whose true size and pair distances are known.  This
module computes I(Q) from atom positions only; it shares no code with
:mod:`xrdpdf.stages.pdf` (form factors are taken from ``xraydb.f0`` directly).

Notes
-----
Debye (1915) scattering equation [1]_ with the pair-distance histogram of
[2]_: for element pairs (a, b) and ordered pairs i ≠ j binned at distances
:math:`r_k` (bin mean of the exact distances),

.. math::

    I(Q) = \frac{1}{N}\Big[\sum_a N_a f_a^2(Q)
           + e^{-U Q^2} \sum_{a,b} f_a(Q) f_b(Q) \sum_k n_{ab}(r_k)
             \frac{\sin Q r_k}{Q r_k}\Big]

per atom (electrons²), U the isotropic displacement (Å²) of every atom.
Replacing each distance by its bin mean changes :math:`\sin(Qr)/Qr` by at
most :math:`(Q\,\delta)^2/24` relative (δ = bin width).  The equation
includes small-angle scattering; keep Q above ~2π/D·1.5 when the result goes
into a PDF transform.

References
----------
.. [1] P. Debye, Ann. Phys. 351 (1915) 809. https://doi.org/10.1002/andp.19153510606
.. [2] A. Cervellino, C. Giannini, A. Guagliardi, J. Appl. Cryst. 43 (2010) 1543
       (DEBUSSY). https://doi.org/10.1107/S0021889810041889
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern

__all__ = ["Cluster", "PairHistogram", "sphere_cluster", "pair_histogram", "debye_iq"]


@dataclass(frozen=True, eq=False)
class Cluster:
    """Atoms of a finite cluster.

    Attributes
    ----------
    xyz_A : (N, 3) ndarray
        Cartesian positions in Å, centred on the cut centre.
    elements : tuple of str
        Element symbol of each atom.
    diameter_A : float or None
        Diameter of the sphere it was cut with (Å).
    metadata : Mapping
        Provenance (structure, seed, ...).
    cell_index : (N, 3) int ndarray or None
        Lattice cell of each atom when cut from a crystal (``xyz = cell·base +
        site offset − centre``); lets :func:`pair_histogram` count pairs by
        lattice vector (FFT) instead of by pair.
    site_index : (N,) int ndarray or None
        Site of each atom within the cell (same condition).
    """

    xyz_A: np.ndarray
    elements: tuple[str, ...]
    diameter_A: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    cell_index: np.ndarray | None = field(default=None, repr=False)
    site_index: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        xyz = np.array(self.xyz_A, dtype=float, copy=True).reshape(-1, 3)
        if xyz.shape[0] != len(self.elements):
            raise InputError(
                f"cluster has {xyz.shape[0]} positions but {len(self.elements)} element labels"
            )
        xyz.setflags(write=False)
        object.__setattr__(self, "xyz_A", xyz)
        object.__setattr__(self, "elements", tuple(self.elements))

    @property
    def natoms(self) -> int:
        """Number of atoms."""
        return int(self.xyz_A.shape[0])

    @property
    def composition(self) -> dict[str, int]:
        """Element → number of atoms."""
        out: dict[str, int] = {}
        for e in self.elements:
            out[e] = out.get(e, 0) + 1
        return out


@dataclass(frozen=True, eq=False)
class PairHistogram:
    """Ordered-pair (i ≠ j) distance histogram per element pair.

    Attributes
    ----------
    r_A : dict
        ``(a, b)`` → (K,) ndarray of bin-mean distances (Å), non-empty bins only.
    counts : dict
        ``(a, b)`` → (K,) ndarray of ordered-pair counts (both i→j and j→i, so
        for a ≠ b the key ``(a, b)`` holds the pairs of both orders).
    natoms : dict
        Element → number of atoms.
    bin_A : float
        Bin width (Å).
    """

    r_A: dict[tuple[str, str], np.ndarray]
    counts: dict[tuple[str, str], np.ndarray]
    natoms: dict[str, int]
    bin_A: float


def _symbol(element: str) -> str:
    m = re.match(r"([A-Z][a-z]?)", str(element).strip().capitalize())
    if not m:
        raise InputError(f"cannot read an element from {element!r}")
    return m.group(1)


def _as_structure(structure):
    """diffpy Structure from a Structure, a Phase (``.structure``) or a phase name/CIF."""
    if isinstance(structure, str):
        from xrdpdf.physics.cif import get_phase

        structure = get_phase(structure)
    if hasattr(structure, "lattice") and hasattr(structure, "__len__"):
        return structure
    stru = getattr(structure, "structure", None)
    if stru is None:
        raise InputError(f"cannot use {type(structure).__name__} as a crystal structure")
    return stru


def sphere_cluster(
    structure, diameter_A: float, *, seed: int = 0, center_frac=(0.0, 0.0, 0.0)
) -> Cluster:
    """Atoms of a crystal inside a sphere of diameter ``diameter_A``.

    Parameters
    ----------
    structure : diffpy.structure.Structure, Phase or str
        Full unit cell (diffpy Structure), an :class:`xrdpdf.physics.crystal.Phase`, or
        a built-in phase name / CIF path.
    diameter_A : float
        Sphere diameter in Å.
    seed : int
        Seed of the random choice of species on partially occupied or shared
        sites (e.g. Na/Ti ½/½ in rocksalt NaTiO2); each site of each cell is
        filled independently with probabilities equal to the occupancies (a
        vacancy with the remainder).
    center_frac : sequence of 3 float
        Sphere centre in fractional coordinates of the cell.

    Returns
    -------
    Cluster
    """
    d = float(diameter_A)
    if not np.isfinite(d) or d <= 0:
        raise InputError(f"sphere diameter must be > 0 Å, got {diameter_A!r}")
    stru = _as_structure(structure)
    if len(stru) == 0:
        raise InputError("structure has no atoms")
    frac = np.array([np.asarray(a.xyz, float) for a in stru]) % 1.0
    occ = np.array([float(getattr(a, "occupancy", 1.0)) for a in stru])
    sym = [_symbol(a.element) for a in stru]
    # group atoms sharing a position into sites
    key = np.round(frac, 4) % 1.0
    sites: list[list[int]] = []
    for i in range(len(sym)):
        for s in sites:
            if np.allclose(key[s[0]], key[i], atol=2e-4):
                s.append(i)
                break
        else:
            sites.append([i])
    base = np.asarray(stru.lattice.base, float)  # rows: a, b, c in Cartesian Å
    radius = 0.5 * d
    # cells needed: perpendicular widths of the cell
    vol = abs(np.linalg.det(base))
    widths = [
        vol / np.linalg.norm(np.cross(base[(i + 1) % 3], base[(i + 2) % 3])) for i in range(3)
    ]
    nmax = [int(np.ceil(radius / w)) + 1 for w in widths]
    grids = np.meshgrid(*[np.arange(-n, n + 1) for n in nmax], indexing="ij")
    cells = np.stack([g.ravel() for g in grids], axis=1).astype(float)
    center = np.asarray(center_frac, float) @ base
    rng = np.random.default_rng(seed)
    xyz_parts = []
    el_parts: list[np.ndarray] = []
    cell_parts: list[np.ndarray] = []
    site_parts: list[np.ndarray] = []
    for isite, s in enumerate(sites):
        pos = (cells + frac[s[0]]) @ base - center
        inside = np.einsum("ij,ij->i", pos, pos) <= radius * radius
        pos = pos[inside]
        cin = cells[inside]
        p = occ[s]
        if p.sum() > 1.0 + 1e-6:
            raise InputError(f"site at {frac[s[0]]} has total occupancy {p.sum():.3g} > 1")
        if len(s) == 1 and p[0] >= 1.0 - 1e-9:
            choice = np.zeros(pos.shape[0], int)
        else:
            probs = np.append(p, max(0.0, 1.0 - p.sum()))
            choice = rng.choice(len(probs), size=pos.shape[0], p=probs / probs.sum())
        keep = choice < len(s)
        xyz_parts.append(pos[keep])
        cell_parts.append(cin[keep].astype(np.int64))
        site_parts.append(np.full(int(keep.sum()), isite, np.int64))
        el_parts.append(np.array([sym[s[c]] for c in choice[keep]], dtype=object))
    xyz = np.concatenate(xyz_parts) if xyz_parts else np.zeros((0, 3))
    els = tuple(np.concatenate(el_parts).tolist()) if el_parts else ()
    if len(els) < 2:
        raise InputError(f"a sphere of {d:g} Å holds fewer than 2 atoms of this structure")
    md = {
        "seed": seed,
        "center_frac": tuple(map(float, center_frac)),
        "lattice_A": tuple(tuple(map(float, row)) for row in base),
    }
    cidx = np.concatenate(cell_parts) if cell_parts else None
    sidx = np.concatenate(site_parts) if site_parts else None
    return Cluster(xyz, els, d, md, cidx, sidx)


def _hist(d: np.ndarray, bin_A: float, nb: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.floor(d / bin_A).astype(np.int64)
    cnt = np.bincount(idx, minlength=nb)
    tot = np.bincount(idx, weights=d, minlength=nb)
    return cnt[:nb], tot[:nb]


def pair_histogram(cluster: Cluster, bin_A: float = 0.0005) -> PairHistogram:
    """Histogram of the ordered-pair distances of a cluster, per element pair.

    Parameters
    ----------
    cluster : Cluster
    bin_A : float
        Bin width in Å; each bin keeps the mean of its exact distances.

    Returns
    -------
    PairHistogram
    """
    from scipy.spatial.distance import cdist, pdist

    if not bin_A > 0:
        raise InputError(f"bin width must be > 0 Å, got {bin_A!r}")
    if (
        cluster.cell_index is not None
        and cluster.site_index is not None
        and "lattice_A" in cluster.metadata
    ):
        return _lattice_histogram(cluster, bin_A)
    els = np.array(cluster.elements, dtype=object)
    kinds = sorted(set(cluster.elements))
    xyz = cluster.xyz_A
    span = float(np.ptp(xyz, axis=0).max()) if xyz.shape[0] > 1 else 0.0
    dmax = np.sqrt(3.0) * span + 2 * bin_A
    nb = int(dmax / bin_A) + 2
    r_out: dict[tuple[str, str], np.ndarray] = {}
    c_out: dict[tuple[str, str], np.ndarray] = {}
    pos = {k: xyz[els == k] for k in kinds}
    chunk = 2000
    for ia, a in enumerate(kinds):
        for b in kinds[ia:]:
            cnt = np.zeros(nb, np.int64)
            tot = np.zeros(nb)
            xa, xb = pos[a], pos[b]
            if a == b:
                if xa.shape[0] > 1:
                    for i in range(0, xa.shape[0], chunk):
                        # pairs (i, j) with j > i, in row blocks to bound memory
                        blk = xa[i : i + chunk]
                        if i + chunk < xa.shape[0]:
                            c, t = _hist(cdist(blk, xa[i + chunk :]).ravel(), bin_A, nb)
                            cnt += c
                            tot += t
                        c, t = _hist(pdist(blk), bin_A, nb)
                        cnt += c
                        tot += t
                cnt *= 2
                tot *= 2
            else:
                for i in range(0, xa.shape[0], chunk):
                    c, t = _hist(cdist(xa[i : i + chunk], xb).ravel(), bin_A, nb)
                    cnt += c
                    tot += t
                cnt *= 2
                tot *= 2
            nz = np.nonzero(cnt)[0]
            r_out[(a, b)] = tot[nz] / cnt[nz]
            c_out[(a, b)] = cnt[nz].astype(float)
    natoms = {k: int(np.sum(els == k)) for k in kinds}
    return PairHistogram(r_out, c_out, natoms, float(bin_A))


def _lattice_histogram(cluster: Cluster, bin_A: float) -> PairHistogram:
    """Same histogram as the pair loop, counted per lattice vector L.

    For channels u = (site, element) with occupation n_u(c) on the cell grid,
    the ordered pairs at separation L + o_v − o_u number
    Σ_c n_u(c) n_v(c + L), a cross-correlation done by FFT; the L = 0 term of
    u = v is the atom itself and is dropped.  Distances are exact, so the bins
    equal those of the direct count up to round-off at bin edges.
    """
    cells = np.asarray(cluster.cell_index, np.int64)
    sites = np.asarray(cluster.site_index, np.int64)
    xyz = cluster.xyz_A
    lo = cells.min(axis=0)
    c = cells - lo
    n = c.max(axis=0) + 1
    shape = tuple(int(2 * k - 1) for k in n)
    els = np.array(cluster.elements, dtype=object)
    chans = sorted({(int(si), str(e)) for si, e in zip(sites, els, strict=True)})
    # Cartesian offset o_u of each channel: xyz − cell·base is the same for all its atoms
    first = {}
    for i, (si, e) in enumerate(zip(sites, els, strict=True)):
        first.setdefault((int(si), str(e)), i)
    base = np.asarray(cluster.metadata["lattice_A"], float)
    off = {u: xyz[i] - c[i] @ base for u, i in first.items()}
    spec = {}
    for u in chans:
        grid = np.zeros(shape)
        m = (sites == u[0]) & (els == u[1])
        np.add.at(grid, tuple(c[m].T), 1.0)
        spec[u] = np.fft.rfftn(grid)
    lv = [np.fft.fftfreq(k, 1.0 / k) for k in shape]
    lgrid = np.stack(np.meshgrid(*lv, indexing="ij"), axis=-1) @ base  # L in Å
    span = float(np.ptp(xyz, axis=0).max())
    nb = int((np.sqrt(3.0) * span + 2 * bin_A) / bin_A) + 2
    kinds = sorted(set(cluster.elements))
    cnt = {(a, b): np.zeros(nb, np.int64) for i, a in enumerate(kinds) for b in kinds[i:]}
    tot = {k: np.zeros(nb) for k in cnt}
    for u in chans:
        for v in chans:
            corr = np.fft.irfftn(np.conj(spec[u]) * spec[v], s=shape, axes=(0, 1, 2))
            num = np.rint(corr).astype(np.int64)
            if u == v:
                num[(0,) * 3] = 0
            nz = num > 0
            d = np.linalg.norm(lgrid[nz] + (off[v] - off[u]), axis=1)
            key = (u[1], v[1]) if u[1] <= v[1] else (v[1], u[1])
            idx = np.minimum((d / bin_A).astype(np.int64), nb - 1)
            cnt[key] += np.bincount(idx, weights=num[nz], minlength=nb).astype(np.int64)
            tot[key] += np.bincount(idx, weights=num[nz] * d, minlength=nb)
    r_out, c_out = {}, {}
    for key in cnt:
        nzb = np.nonzero(cnt[key])[0]
        r_out[key] = tot[key][nzb] / cnt[key][nzb]
        c_out[key] = cnt[key][nzb].astype(float)
    natoms = {k: int(np.sum(els == k)) for k in kinds}
    return PairHistogram(r_out, c_out, natoms, float(bin_A))


def _f0(symbol: str, q: np.ndarray) -> np.ndarray:
    import xraydb

    try:
        return np.asarray(xraydb.f0(symbol, q / (4.0 * np.pi)), float).reshape(q.shape)
    except ValueError as exc:
        raise InputError(f"no X-ray form factor for {symbol!r}") from exc


def debye_iq(
    cluster: Cluster | PairHistogram, q_invA, *, uiso_A2: float = 0.0, bin_A: float = 0.0005
) -> Pattern:
    """X-ray I(Q) per atom of a cluster by the Debye equation.

    Parameters
    ----------
    cluster : Cluster or PairHistogram
        Atoms (their histogram is built with ``bin_A``) or a ready histogram.
    q_invA : (M,) array_like
        Increasing Q in Å⁻¹ (> 0).
    uiso_A2 : float
        Isotropic displacement U (Å²) of every atom: pair terms × exp(−U Q²).
    bin_A : float
        Distance bin (Å) when a Cluster is given.

    Returns
    -------
    Pattern
        I(Q) in electrons² per atom, unit ``"q_A^-1"``, no wavelength.
    """
    q = np.asarray(q_invA, float)
    if q.ndim != 1 or q.size < 2 or np.any(q <= 0):
        raise InputError("Debye I(Q) needs an increasing 1-D Q grid with Q > 0")
    hist = cluster if isinstance(cluster, PairHistogram) else pair_histogram(cluster, bin_A)
    ntot = sum(hist.natoms.values())
    f = {k: _f0(k, q) for k in hist.natoms}
    self_term = sum(n * f[k] ** 2 for k, n in hist.natoms.items())
    pair = np.zeros_like(q)
    for (a, b), r in hist.r_A.items():
        if r.size == 0:
            continue
        n = hist.counts[(a, b)]
        s = np.zeros_like(q)
        step = max(1, 2_000_000 // q.size)
        for j in range(0, r.size, step):
            qr = np.multiply.outer(q, r[j : j + step])
            s += (np.sin(qr) / qr) @ n[j : j + step]
        pair += f[a] * f[b] * s
    iq = (self_term + np.exp(-uiso_A2 * q * q) * pair) / ntot
    md = {"source": "debye", "natoms": ntot, "uiso_A2": uiso_A2, "bin_A": hist.bin_A}
    if isinstance(cluster, Cluster) and cluster.diameter_A is not None:
        md["diameter_A"] = cluster.diameter_A
    return Pattern(q, iq, units.Q_A, None, None, md)
