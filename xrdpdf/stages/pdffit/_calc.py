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

import math
from dataclasses import dataclass

import numba
import numpy as np

from xrdpdf._core.errors import InputError

# pairs closer than this are one site shared by several atoms (PDFfit2: r² < 0.01 Å²)
_SAME_SITE_A = 0.1
# Gaussians are summed within ±_NSIGMA σ, as PDFfit2 does
_NSIGMA = 5.0
# the neighbour list reaches this much beyond the calculation range, so that a
# refinement may strain the cell by up to _STRAIN_MAX before it is rebuilt
_STRAIN_MAX = 0.02
_SHIFT_MAX_A = 0.3
_EYE = np.eye(3)


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
    ca, cb, cg = (math.cos(math.radians(v)) for v in (al, be, ga))
    sg = math.sin(math.radians(ga))
    cx = cb
    cy = (ca - cb * cg) / sg
    cz2 = 1.0 - cx * cx - cy * cy
    if cz2 <= 0:
        raise InputError(f"cell angles {al}, {be}, {ga} degrees do not make a cell")
    return np.array([[a, 0, 0], [b * cg, b * sg, 0], [c * cx, c * cy, c * math.sqrt(cz2)]])


def u_iso_to_cif(uiso: float, cell) -> np.ndarray:
    """CIF-convention Uij of an isotropic displacement Uiso (Å²)."""
    m = lattice_matrix(cell)
    gstar = np.linalg.inv(m @ m.T)
    ar = np.sqrt(np.diag(gstar))
    return uiso * gstar / np.outer(ar, ar)


@numba.njit(cache=True, nogil=True)
def _pair_windows(
    r0, dr, n, xyz, pi, pj, pn, mult, lat, cov, ow, delta1, delta2, qbroad, nsig
):  # pragma: no cover - compiled
    """Each pair group's Gaussian on the grid r0 + k·dr: window, height and exponents.

    Group g = (i, j, n): Cartesian pair vector v = (x_i − x_j − n)·lat,
    r_g = |v|, σ'²_g = v̂ᵀ(C_i + C_j)v̂ with C the atoms' Cartesian displacement
    tensors (:func:`cartesian_u`), σ_g = σ'_g (1 − δ1/r − δ2/r² + Q_b²r²)^½ and
    amplitude m_g (cw)_i (cw)_j.  Returns the first grid point and the number
    of points within ±nsig·σ_g (0 for a pair PDFfit2 drops: width not real),
    the peak's value factor ``a/(√(2π)σ)`` and, for x = r_start − r_g, the
    exponents −x²/2σ², −(2x·dr + dr²)/2σ², −dr²/σ² of g_0, q_0 and c
    (see :func:`_add_peaks`).
    """
    ng = pi.size
    start = np.zeros(ng, np.int64)
    count = np.zeros(ng, np.int64)
    height = np.zeros(ng)
    expo = np.zeros((3, ng))
    qb2 = qbroad * qbroad
    norm = 1.0 / np.sqrt(2.0 * np.pi)
    inv_dr = 1.0 / dr
    for g in range(ng):
        a, b = pi[g], pj[g]
        amp = mult[g] * ow[a] * ow[b]
        f0 = xyz[a, 0] - xyz[b, 0] - pn[g, 0]
        f1 = xyz[a, 1] - xyz[b, 1] - pn[g, 1]
        f2 = xyz[a, 2] - xyz[b, 2] - pn[g, 2]
        vx = f0 * lat[0, 0] + f1 * lat[1, 0] + f2 * lat[2, 0]
        vy = f0 * lat[0, 1] + f1 * lat[1, 1] + f2 * lat[2, 1]
        vz = f0 * lat[0, 2] + f1 * lat[1, 2] + f2 * lat[2, 2]
        d2 = vx * vx + vy * vy + vz * vz
        dist = np.sqrt(d2)
        inv_d2 = 1.0 / d2
        msd = (
            vx * vx * (cov[a, 0, 0] + cov[b, 0, 0])
            + vy * vy * (cov[a, 1, 1] + cov[b, 1, 1])
            + vz * vz * (cov[a, 2, 2] + cov[b, 2, 2])
            + 2.0 * vx * vy * (cov[a, 0, 1] + cov[b, 0, 1])
            + 2.0 * vx * vz * (cov[a, 0, 2] + cov[b, 0, 2])
            + 2.0 * vy * vz * (cov[a, 1, 2] + cov[b, 1, 2])
        ) * inv_d2
        corr = 1.0 - delta1 * dist * inv_d2 - delta2 * inv_d2 + qb2 * d2
        if amp == 0.0 or msd <= 0.0 or corr <= 0.0:
            continue
        s = np.sqrt(msd * corr)
        ib = max(int(np.ceil((dist - nsig * s - r0) * inv_dr)), 0)
        ie = min(int(np.floor((dist + nsig * s - r0) * inv_dr)), n - 1)
        if ie < ib:
            continue
        inv_s = 1.0 / s
        inv = 0.5 * inv_s * inv_s
        x = r0 + ib * dr - dist
        start[g] = ib
        count[g] = ie - ib + 1
        height[g] = amp * norm * inv_s
        expo[0, g] = -x * x * inv
        expo[1, g] = -(2.0 * x * dr + dr * dr) * inv
        expo[2, g] = -2.0 * dr * dr * inv
    return start, count, height, expo


@numba.njit(cache=True, nogil=True)
def _pair_geometry(xyz, pi, pj, pn, lat, cov):  # pragma: no cover - compiled
    """Distance r (Å) and σ'² = v̂ᵀ(C_i + C_j)v̂ (Å²) of each pair (i, j, n), as in
    :func:`_pair_windows`."""
    dist = np.empty(pi.size)
    msd = np.empty(pi.size)
    for g in range(pi.size):
        a, b = pi[g], pj[g]
        f0 = xyz[a, 0] - xyz[b, 0] - pn[g, 0]
        f1 = xyz[a, 1] - xyz[b, 1] - pn[g, 1]
        f2 = xyz[a, 2] - xyz[b, 2] - pn[g, 2]
        vx = f0 * lat[0, 0] + f1 * lat[1, 0] + f2 * lat[2, 0]
        vy = f0 * lat[0, 1] + f1 * lat[1, 1] + f2 * lat[2, 1]
        vz = f0 * lat[0, 2] + f1 * lat[1, 2] + f2 * lat[2, 2]
        d2 = vx * vx + vy * vy + vz * vz
        dist[g] = np.sqrt(d2)
        msd[g] = (
            vx * vx * (cov[a, 0, 0] + cov[b, 0, 0])
            + vy * vy * (cov[a, 1, 1] + cov[b, 1, 1])
            + vz * vz * (cov[a, 2, 2] + cov[b, 2, 2])
            + 2.0 * vx * vy * (cov[a, 0, 1] + cov[b, 0, 1])
            + 2.0 * vx * vz * (cov[a, 0, 2] + cov[b, 0, 2])
            + 2.0 * vy * vz * (cov[a, 1, 2] + cov[b, 1, 2])
        ) / d2
    return dist, msd


@numba.njit(cache=True, nogil=True)
def _add_peaks(n, start, count, first, ratio, curv):  # pragma: no cover - compiled
    """Σ_g of the sampled Gaussians g_k on points start_g … start_g + count_g − 1.

    A Gaussian sampled on a uniform grid obeys g_{k+1} = g_k·q_k,
    q_{k+1} = q_k·c (``first`` = g_0, ``ratio`` = q_0, ``curv`` = c).  Four
    independent chains (lanes k mod 4) step four points at a time,
    g_{k+4} = g_k·R_k, R_{k+4} = R_k·c¹⁶, R_0 = q_0⁴c⁶, so that the products
    of one point do not wait for those of the previous one (relative
    round-off ~1e-13 over a window).  Unsigned indices spare the
    negative-index test.
    """
    out = np.zeros(n)
    one, two, three, four = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
    for g in range(start.size):
        if count[g] <= 0:
            continue
        c = curv[g]
        q = ratio[g]
        step = c * c
        step = step * step  # c⁴: R of lane l+1 over that of lane l
        grow = step * step
        grow = grow * grow  # c¹⁶: a lane's R from one block to the next
        q2 = q * q
        v0, r_0 = first[g], q2 * q2 * step * c * c  # R_0 = q⁴c⁶ = g_4/g_0
        v1, r_1 = v0 * q, r_0 * step
        q *= c
        v2, r_2 = v1 * q, r_1 * step
        q *= c
        v3, r_3 = v2 * q, r_2 * step
        k = np.uint64(start[g])
        last = np.uint64(start[g] + count[g])
        while k + three < last:
            out[k] += v0
            out[k + one] += v1
            out[k + two] += v2
            out[k + three] += v3
            v0 *= r_0
            v1 *= r_1
            v2 *= r_2
            v3 *= r_3
            r_0 *= grow
            r_1 *= grow
            r_2 *= grow
            r_3 *= grow
            k += four
        if k < last:
            out[k] += v0
        if k + one < last:
            out[k + one] += v1
        if k + two < last:
            out[k + two] += v2
    return out


def cartesian_u(u_cif: np.ndarray, cell) -> np.ndarray:
    """(N, 3, 3) Cartesian displacement tensors MᵀA U A M of CIF-convention Uij (Å²).

    M has the cell vectors as rows and A = diag(a*, b*, c*); the mean-square
    displacement along a Cartesian unit vector l is lᵀ C l, the same as
    PDFfit2's ``(G l)ᵀ A U A (G l)`` in fractional components.
    """
    m = lattice_matrix(cell)
    ar = np.sqrt(np.sum(np.linalg.inv(m) ** 2, axis=0))  # |a*|, |b*|, |c*|
    return m.T @ (u_cif * np.outer(ar, ar)) @ m


def sphere_envelope(r_A: np.ndarray, diameter_A: float) -> np.ndarray:
    """Sphere envelope 1 − 3x/2 + x³/2, x = r/d (0 beyond d); 1 for d ≤ 0."""
    if diameter_A <= 0:
        return np.ones_like(r_A)
    x = np.minimum(r_A / diameter_A, 1.0)  # the polynomial is 0 at x = 1
    return 1.0 + x * (0.5 * x * x - 1.5)


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
        self._grid_key: tuple | None = None
        self._cov_key: tuple | None = None
        self._cov_aniso = np.zeros((0, 3, 3))
        self._inv_r = np.zeros(0)
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
            gm, gcov = lattice_matrix(gcell), cartesian_u(u_cif, gcell)
            dist, msd = _pair_geometry(np.ascontiguousarray(gxyz, float), i, j, n, gm, gcov)
            keys.append(np.round(dist * 1e6))
            keys.append(np.round(msd * 1e9))
        order = np.lexsort([np.asarray(k, np.int64) for k in keys[::-1]])
        table = np.stack([np.asarray(k, np.int64)[order] for k in keys], 1)
        start = np.concatenate([[True], np.any(table[1:] != table[:-1], axis=1)])
        first = order[start]
        group = np.cumsum(start) - 1
        self._i, self._j, self._n = i[first], j[first], n[first]
        self._mult = np.bincount(group, weights=weight[order])
        self._cell0_inv = np.linalg.inv(lattice_matrix(cell))
        self._xyz0 = xyz.copy()
        self.npairs = int(i.size)
        self.ngroups = int(first.size)

    def _check_cache(self, m: np.ndarray, cell, xyz, u_cif) -> None:
        # Frobenius norm: an upper bound of the largest strain
        strain = np.sqrt(np.sum((self._cell0_inv @ m - _EYE) ** 2))
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
        m = lattice_matrix(cell)
        self._check_cache(m, cell, xyz, u_cif)
        nat = len(xyz)
        iso = np.full(nat, np.nan) if isotropic_u is None else np.asarray(isotropic_u, float)
        aniso = np.isnan(iso)
        # Cartesian displacement tensors: U_iso·1 for an isotropic atom
        cov = np.where(aniso, 0.0, iso)[:, None, None] * _EYE
        if aniso.any():
            key = (tuple(cell), aniso.tobytes(), id(u_cif))
            if self._cov_key != key:  # the Uij stay, the cell changes with the lattice
                self._cov_aniso = cartesian_u(u_cif[aniso], cell)
                self._cov_key = key
            cov[aniso] = self._cov_aniso
        n = r_A.size
        dr = (r_A[-1] - r_A[0]) / (n - 1) if n > 1 else 1.0
        start, count, height, expo = _pair_windows(
            r_A[0], dr, n, np.ascontiguousarray(xyz, float), self._i, self._j,
            self._n, self._mult, m, cov, occupancy * weights, delta1_A, delta2_A2,
            qbroad_invA, _NSIGMA,
        )  # fmt: skip
        e = np.exp(expo)  # one vectorised call for the three exponentials of every pair
        ppp = _add_peaks(n, start, count, height * e[0], e[1], e[2])
        natoms = occupancy.sum()
        inv_r = self._inverse_r(r_A)
        g = ppp * (inv_r / natoms)
        g -= (4 * np.pi * natoms / abs(np.linalg.det(m))) * r_A
        if qdamp_invA > 0:
            g *= np.exp(-0.5 * (r_A * qdamp_invA) ** 2)
        if spdiameter_A > 0:
            g *= sphere_envelope(r_A, spdiameter_A)
        return g

    def _inverse_r(self, r_A: np.ndarray) -> np.ndarray:
        """1/r on the grid (0 at r = 0), kept for the last grid seen."""
        key = (r_A.size, float(r_A[0]), float(r_A[-1]))
        if self._grid_key != key:
            with np.errstate(divide="ignore"):
                self._inv_r = np.where(r_A > 0, 1.0 / np.where(r_A > 0, r_A, 1.0), 0.0)
            self._grid_key = key
        return self._inv_r


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
    import scipy.fft  # only a terminated G(r) needs it

    inner = np.concatenate([g[1:], np.zeros(g.size + 1)])
    spec = scipy.fft.dst(inner, type=1)
    q = np.pi * np.arange(1, inner.size + 1) / ((inner.size + 1) * dr)
    spec[q > qmax_invA] = 0.0
    out = scipy.fft.idst(spec, type=1)
    return np.concatenate([[0.0], out[: g.size - 1]])
