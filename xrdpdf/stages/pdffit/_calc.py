r"""Real-space pair-distribution G(r) of a periodic crystal, PDFfit2's model.

Private engine of :mod:`xrdpdf.stages.pdffit`.  One :class:`Crystal` is the full unit
cell (every atom, fractional coordinates, occupancies, Uij in the CIF
convention) with its space group; :class:`PhaseCalculator` caches its
neighbour list and evaluates G(r) for changed lattice, coordinates,
occupancies, displacements and peak-width parameters.

Notes
-----
The model is that of PDFfit2 (Farrow et al. 2007 [1]_, ``libpdffit2/pdf.cc``):

.. math::

    G(r) = \frac{1}{N r}\sum_{i\le j}\sum_{\mathbf n}{}^{'} m_{ij}\,c_i c_j w_i w_j
           \frac{1}{\sqrt{2\pi}\sigma_{ij}}
           e^{-(r - r_{ij})^2 / 2\sigma_{ij}^2} - 4\pi\rho_0 r,

with :math:`m_{ij} = 2` for :math:`i \ne j`, :math:`N = \sum_i c_i` (occupancy
sum of the cell), :math:`\rho_0 = N/V`, X-ray weights
:math:`w_i = Z_i/\langle Z\rangle` with :math:`\langle Z\rangle = \sum_i c_i Z_i/N`
(PDFfit2 tabulates the X-ray factor as the atomic number, i.e. f(Q = 0) of the
neutral atom), and the peak width

.. math::

    \sigma_{ij} = \sigma'_{ij}\sqrt{1 - \delta_1/r_{ij} - \delta_2/r_{ij}^2
                  + Q_\mathrm{broad}^2 r_{ij}^2}

where :math:`\sigma'^2_{ij}` is the sum of both atoms' mean-square displacements
along the pair vector.  A pair whose square-root argument is ≤ 0 is dropped, as
PDFfit2 does; pairs closer than 0.1 Å (atoms sharing a site) never pair.  Each
Gaussian is summed within ±5σ.  The phase G(r) is then multiplied by
:math:`\exp(-(rQ_\mathrm{damp})^2/2)` and by the sphere envelope
:math:`1 - \tfrac32 x + \tfrac12 x^3`, :math:`x = r/d` (0 beyond d) [2]_.

References
----------
.. [1] C. L. Farrow et al., J. Phys.: Condens. Matter 19 (2007) 335219,
   https://doi.org/10.1088/0953-8984/19/33/335219
.. [2] K. Kodama et al., Acta Cryst. A62 (2006) 444,
   https://doi.org/10.1107/S0108767306034635
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.fft

from xrdpdf._core.errors import InputError
from xrdpdf.physics.crystal import cell_volume_A3

# pairs closer than this are one site shared by several atoms (PDFfit2: r² < 0.01 Å²)
_SAME_SITE_A = 0.1
# Gaussians are summed within ±_NSIGMA σ, as PDFfit2 does
_NSIGMA = 5.0
# the neighbour list reaches this much beyond the calculation range, so that a
# refinement may strain the cell by up to _STRAIN_MAX before it is rebuilt
_STRAIN_MAX = 0.02
_SHIFT_MAX_A = 0.3


@dataclass(frozen=True, eq=False)
class Crystal:
    """Full unit cell: cell (Å, degrees), atoms (element, xyz, occupancy, Uij Å²)."""

    name: str
    cell: tuple[float, float, float, float, float, float]
    elements: tuple[str, ...]
    xyz: np.ndarray  # (N, 3) fractional
    occupancy: np.ndarray  # (N,)
    u_cif: np.ndarray  # (N, 3, 3) Uij, CIF convention (Å²)
    labels: tuple[str, ...]
    spacegroup: object  # diffpy.structure SpaceGroup


def lattice_matrix(cell) -> np.ndarray:
    """(3, 3) rows = a, b, c in Cartesian Å (a along x, b in the xy plane)."""
    a, b, c, al, be, ga = (float(v) for v in cell)
    ca, cb, cg = np.cos(np.radians([al, be, ga]))
    sg = np.sin(np.radians(ga))
    cx = cb
    cy = (ca - cb * cg) / sg
    cz2 = 1.0 - cx * cx - cy * cy
    if cz2 <= 0:
        raise InputError(f"cell angles {al}, {be}, {ga} degrees do not make a cell")
    return np.array([[a, 0, 0], [b * cg, b * sg, 0], [c * cx, c * cy, c * np.sqrt(cz2)]])


def u_iso_to_cif(uiso: float, cell) -> np.ndarray:
    """CIF-convention Uij of an isotropic displacement Uiso (Å²)."""
    m = lattice_matrix(cell)
    gstar = np.linalg.inv(m @ m.T)
    ar = np.sqrt(np.diag(gstar))
    return uiso * gstar / np.outer(ar, ar)


@numba.njit(cache=True, nogil=True)
def _sum_gaussians(r0, dr, n, dist, sigma, ampl, nsig):  # pragma: no cover - compiled
    """Σ_g ampl_g N(r; dist_g, σ_g) on r0 + k·dr, each within ±nsig·σ_g.

    exp(−x_k²/2σ²) on a uniform grid obeys g_{k+1} = g_k·q_k, q_{k+1} = q_k·c
    with c = exp(−dr²/σ²): two products per point instead of an exponential
    (relative round-off ~1e-13 over a window).
    """
    out = np.zeros(n)
    norm = 1.0 / np.sqrt(2.0 * np.pi)
    for g in range(dist.size):
        s = sigma[g]
        if ampl[g] == 0.0 or s <= 0.0:
            continue
        ib = int(np.ceil((dist[g] - nsig * s - r0) / dr))
        ie = int(np.floor((dist[g] + nsig * s - r0) / dr))
        if ib < 0:
            ib = 0
        if ie > n - 1:
            ie = n - 1
        if ie < ib:
            continue
        inv = 0.5 / (s * s)
        x = r0 + ib * dr - dist[g]
        val = ampl[g] * norm / s * np.exp(-x * x * inv)
        q = np.exp(-(2.0 * x * dr + dr * dr) * inv)
        c = np.exp(-2.0 * dr * dr * inv)
        for k in range(ib, ie + 1):
            out[k] += val
            val *= q
            q *= c
    return out


def sphere_envelope(r_A: np.ndarray, diameter_A: float) -> np.ndarray:
    """Sphere envelope 1 − 3x/2 + x³/2, x = r/d (0 beyond d); 1 for d ≤ 0."""
    if diameter_A <= 0:
        return np.ones_like(r_A)
    x = r_A / diameter_A
    return np.where(x < 1.0, 1.0 - 1.5 * x + 0.5 * x**3, 0.0)


def _translations(rmax_A: float, cell) -> np.ndarray:
    m = lattice_matrix(cell)
    ar = np.sqrt(np.diag(np.linalg.inv(m @ m.T)))
    nmax = np.ceil(rmax_A * ar).astype(int) + 1
    axes = [np.arange(-k, k + 1) for k in nmax]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3).astype(float)


def pair_list(
    xyz: np.ndarray, cell, rmax_A: float, centres=None, rmin_A: float = _SAME_SITE_A
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ordered pairs (i, j, n), i in ``centres``, with rmin < |x_i − x_j − n| ≤ rmax.

    Returns (i, j, n, r): (P,) ints, (P,) ints, (P, 3) floats, (P,) Å.  Works for
    any cell: the translation range along axis k is rmax·|a*_k| + 1 cells.
    """
    m = lattice_matrix(cell)
    nvec = _translations(rmax_A, cell)
    ncart = nvec @ m
    out_i, out_j, out_n, out_r = [], [], [], []
    nat = len(xyz)
    for i in range(nat) if centres is None else centres:
        dij = (xyz[i] - xyz) @ m  # (nat, 3)
        vec = dij[:, None, :] - ncart[None, :, :]
        r = np.sqrt(np.einsum("jkc,jkc->jk", vec, vec))
        jj, kk = np.nonzero((r > rmin_A) & (r <= rmax_A))
        out_i.append(np.full(jj.size, i))
        out_j.append(jj)
        out_n.append(nvec[kk])
        out_r.append(r[jj, kk])
    return (
        np.concatenate(out_i),
        np.concatenate(out_j),
        np.concatenate(out_n),
        np.concatenate(out_r),
    )


def _pair_r(xyz, cell, i, j, n) -> np.ndarray:
    d = (xyz[i] - xyz[j] - n) @ lattice_matrix(cell)
    return np.sqrt(np.einsum("kc,kc->k", d, d))


def _pair_msd(xyz, cell, u_cif, i, j, n) -> np.ndarray:
    """σ'² of each pair: both atoms' mean-square displacement along the pair vector.

    For Uij (CIF convention) the projection on the unit pair vector ``l`` is
    ``(G l)ᵀ A U A (G l)`` with G the metric tensor and A = diag(a*, b*, c*)
    (PDFfit2 ``Phase::msdAtoms``); for isotropic atoms it is U_iso.
    """
    m = lattice_matrix(cell)
    g = m @ m.T
    ar = np.sqrt(np.diag(np.linalg.inv(g)))
    d = xyz[i] - xyz[j] - n
    length = np.sqrt(np.einsum("kc,cd,kd->k", d, g, d))
    rhs = (d @ g) / length[:, None] * ar[None, :]
    u = u_cif[i] + u_cif[j]
    return np.einsum("kc,kcd,kd->k", rhs, u, rhs)


class PhaseCalculator:
    """G(r) of one crystal with a cached, symmetry-grouped neighbour list.

    Pairs whose distance and displacement projection agree at the current
    structure and at two generic (randomly strained, space-group-allowed)
    structures are one group, evaluated once with its multiplicity; the
    grouping therefore holds for every parameter value a refinement can reach.

    Parameters
    ----------
    crystal : Crystal
    rmax_A : float
        Largest r at which G(r) will be evaluated.
    generic : callable
        ``generic(rng) -> (cell, xyz)``: a random structure allowed by the
        constraints (space group) the refinement keeps.
    """

    def __init__(self, crystal: Crystal, rmax_A: float, generic, site_of_atom) -> None:
        self.crystal = crystal
        self._site = np.asarray(site_of_atom, int)
        self.rmax_A = float(rmax_A)
        self._generic = generic
        self._build(np.asarray(crystal.cell, float), crystal.xyz, crystal.u_cif)

    def _build(self, cell, xyz, u_cif) -> None:
        reach = (self.rmax_A + 1.0) * (1 + 1.5 * _STRAIN_MAX) + 2 * _SHIFT_MAX_A + 1.0
        # symmetry-equivalent atoms see the same surroundings: one centre per site,
        # weighted by the site's multiplicity, over all neighbours (ordered pairs)
        _, centres = np.unique(self._site, return_index=True)
        i, j, n, r = pair_list(xyz, cell, reach, np.sort(centres))
        weight = np.bincount(self._site)[self._site[i]].astype(float)
        rng = np.random.default_rng(20070815)
        si, sj = self._site[i], self._site[j]
        # one group: the same two sites (so the same weights, occupancies, U_iso) and
        # equal distances and widths at the current and at two generic structures
        keys = [np.minimum(si, sj), np.maximum(si, sj), np.round(r * 1e6)]
        for _ in range(2):
            gcell, gxyz = self._generic(rng)
            keys.append(np.round(_pair_r(gxyz, gcell, i, j, n) * 1e6))
            keys.append(np.round(_pair_msd(gxyz, gcell, u_cif, i, j, n) * 1e9))
        order = np.lexsort([np.asarray(k, np.int64) for k in keys[::-1]])
        table = np.stack([np.asarray(k, np.int64)[order] for k in keys], 1)
        start = np.concatenate([[True], np.any(table[1:] != table[:-1], axis=1)])
        first = order[start]
        group = np.cumsum(start) - 1
        self._i, self._j, self._n = i[first], j[first], n[first]
        self._mult = np.bincount(group, weights=weight[order])
        self._cell0 = lattice_matrix(cell)
        self._xyz0 = xyz.copy()
        self.npairs = int(i.size)
        self.ngroups = int(first.size)

    def _check_cache(self, cell, xyz, u_cif) -> None:
        m = lattice_matrix(cell)
        # Frobenius norm: an upper bound of the largest strain
        strain = np.sqrt(np.sum((np.linalg.solve(self._cell0, m) - np.eye(3)) ** 2))
        shift = np.abs((xyz - self._xyz0) @ m).max() if xyz.size else 0.0
        if strain > _STRAIN_MAX or shift > _SHIFT_MAX_A:
            self._build(np.asarray(cell, float), xyz, u_cif)

    def gr(
        self,
        r_A: np.ndarray,
        *,
        cell,
        xyz: np.ndarray,
        occupancy: np.ndarray,
        u_cif: np.ndarray,
        isotropic_u: np.ndarray | None,
        weights: np.ndarray,
        delta1_A: float,
        delta2_A2: float,
        qbroad_invA: float,
        qdamp_invA: float,
        spdiameter_A: float,
    ) -> np.ndarray:
        """Phase G(r) (Å⁻², scale 1) on the uniform grid ``r_A``.

        ``isotropic_u`` (N,) holds U_iso per atom where the atom is isotropic
        (NaN where its Uij are used).
        """
        r_A = np.asarray(r_A, float)
        self._check_cache(cell, xyz, u_cif)
        i, j, n = self._i, self._j, self._n
        dist = _pair_r(xyz, cell, i, j, n)
        if isotropic_u is not None and not np.isnan(isotropic_u).any():
            msd = isotropic_u[i] + isotropic_u[j]
        else:
            u = u_cif.copy()
            if isotropic_u is not None:
                for k in np.flatnonzero(~np.isnan(isotropic_u)):
                    u[k] = u_iso_to_cif(isotropic_u[k], cell)
            msd = _pair_msd(xyz, cell, u, i, j, n)
        corr = 1.0 - delta2_A2 / dist**2 - delta1_A / dist + (qbroad_invA * dist) ** 2
        ok = (msd > 0) & (corr > 0)
        sigma = np.sqrt(np.where(ok, msd * corr, 1.0))
        ampl = np.where(ok, self._mult * occupancy[i] * occupancy[j] * weights[i] * weights[j], 0.0)
        dr = (r_A[-1] - r_A[0]) / (r_A.size - 1) if r_A.size > 1 else 1.0
        ppp = _sum_gaussians(r_A[0], dr, r_A.size, dist, sigma, ampl, _NSIGMA)
        natoms = occupancy.sum()
        rho0 = natoms / cell_volume_A3(cell)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(r_A > 0, ppp / natoms / r_A, 0.0) - 4 * np.pi * rho0 * r_A
        if qdamp_invA > 0:
            g = g * np.exp(-0.5 * (r_A * qdamp_invA) ** 2)
        return g * sphere_envelope(r_A, spdiameter_A)


def terminate(r_A: np.ndarray, g: np.ndarray, qmax_invA: float) -> np.ndarray:
    r"""Truncate G(r) at Q_max by the exact sine-transform convolution.

    ``r_A`` must be the uniform grid k·dr, k = 0…K (G(0) = 0).  G is extended
    as an odd function of r, zero-padded to twice its length, and every sine
    component above Q_max removed (a type-I discrete sine transform):

    .. math:: G_t(r) = \frac{1}{\pi}\int_0^\infty G(r')\left[
              \frac{\sin Q_m(r-r')}{r-r'} - \frac{\sin Q_m(r+r')}{r+r'}\right] dr'

    PDFfit2 instead Fourier-filters G on [r_min, r_max + 6·2π/Q_max] without
    the odd extension, which gives ripples within ~1 Å of its r_min.
    """
    if qmax_invA <= 0:
        return g
    dr = r_A[1] - r_A[0]
    if abs(r_A[0]) > 1e-9 * dr:
        raise InputError("termination needs a grid that starts at r = 0")
    inner = np.concatenate([g[1:], np.zeros(g.size + 1)])
    spec = scipy.fft.dst(inner, type=1)
    q = np.pi * np.arange(1, inner.size + 1) / ((inner.size + 1) * dr)
    spec[q > qmax_invA] = 0.0
    out = scipy.fft.idst(spec, type=1)
    return np.concatenate([[0.0], out[: g.size - 1]])
