"""A phase's crystal, constraints and parameter values; the model's total G(r).

Private part of :mod:`xrdpdf.stages.pdffit`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from xrdpdf._core.errors import InputError
from xrdpdf.stages.pdffit import _calc as calc
from xrdpdf.stages.pdffit._model import (
    PdfModel,
    PhaseModel,
    cell_from_free,
    free_cell_names,
    load_crystal,
    positions,
    sites,
)


class PhaseState:
    """A phase's crystal, constraints and current parameter values."""

    def __init__(self, ph: PhaseModel, model: PdfModel) -> None:
        import xraydb

        self.model = ph
        cr = base = load_crystal(ph.structure, ph.base_dir)
        where = f"{model.source} phase {ph.name!r}"
        if ph.lattice is not None:
            calc.lattice_matrix(ph.lattice)  # validates the angles
            cr = dataclasses.replace(cr, cell=tuple(ph.lattice))
        self.system = str(cr.spacegroup.crystal_system)
        self.cell_names = free_cell_names(self.system, cr.cell)
        # the space-group constraints depend on the coordinates only: computed once
        # per loaded file, whatever lattice the model sets
        self.pos = positions(base)
        self.pos_values = self.pos.values.copy()
        for k, v in ph.xyz.items():
            if k not in self.pos.names:
                raise InputError(
                    f"{where}: xyz key {k!r} is not a free coordinate; free: "
                    f"{', '.join(self.pos.names) or 'none'}"
                )
            self.pos_values[self.pos.names.index(k)] = v
        self.site_labels, self.site_of_atom = sites(base)
        occ = np.array([cr.occupancy[self.site_of_atom == s][0]
                        for s in range(len(self.site_labels))])  # fmt: skip
        for k, v in ph.occupancy.items():
            if k not in self.site_labels:
                raise InputError(
                    f"{where}: occupancy key {k!r} is not a site; sites: "
                    f"{', '.join(self.site_labels)}"
                )
            occ[self.site_labels.index(k)] = v
        self.site_occ = occ
        self.elements = tuple(dict.fromkeys(cr.elements))
        for el in ph.uiso_A2:
            if el not in self.elements:
                raise InputError(f"{where}: uiso key {el!r} is not an element of the structure")
        if "xyz" in ph.vary and len(self.pos.names) == len(self.pos.fixed):
            raise InputError(f"{where}: vary 'xyz' but the structure has no free coordinate")
        z = np.array([xraydb.atomic_number(e) for e in cr.elements], float)
        mass = np.array([xraydb.atomic_mass(e) for e in cr.elements], float)
        self.z, self.mass = z, mass
        self.ueq = {el: float(np.mean([_ueq(cr.u_cif[k], cr.cell) for k in
                                       range(len(cr.elements)) if cr.elements[k] == el]))
                    for el in self.elements}  # fmt: skip
        self.uiso = dict(ph.uiso_A2)
        if "uiso" in ph.vary:
            for el in self.elements:
                self.uiso.setdefault(el, self.ueq[el])
        self.crystal = cr
        self.cell = tuple(cr.cell)
        self._calculators: dict[float, calc.PhaseCalculator] = {}

    def generic(self, rng: np.random.Generator):
        free = {n: v * (1 + 0.02 * rng.uniform(-1, 1)) for n, v in
                zip(("a", "b", "c", "alpha", "beta", "gamma"), self.cell, strict=True)
                if n in self.cell_names}  # fmt: skip
        cell = cell_from_free(self.system, self.cell, free)
        p = self.pos_values + 0.01 * rng.uniform(-1, 1, self.pos_values.size)
        return cell, self.pos.xyz(p)

    def calculator(self, rmax_A: float) -> calc.PhaseCalculator:
        key = round(rmax_A, 6)
        if key not in self._calculators:
            cr = dataclasses.replace(self.crystal, cell=self.cell,
                                     xyz=self.pos.xyz(self.pos_values))  # fmt: skip
            self._calculators[key] = calc.PhaseCalculator(
                cr, rmax_A, self.generic, self.site_of_atom
            )
        return self._calculators[key]

    def occupancy(self) -> np.ndarray:
        return self.site_occ[self.site_of_atom]

    def mean_z(self) -> float:
        occ = self.occupancy()
        return float((occ * self.z).sum() / occ.sum())

    def gr(self, r_A, scale, d1, d2, spd, qdamp, qbroad) -> np.ndarray:
        occ = self.occupancy()
        iso = np.array([self.uiso.get(e, np.nan) for e in self.crystal.elements])
        return scale * self.calculator(float(r_A[-1])).gr(
            r_A, cell=self.cell, xyz=self.pos.xyz(self.pos_values), occupancy=occ,
            u_cif=self.crystal.u_cif, isotropic_u=iso, weights=self.z / self.mean_z(),
            delta1_A=d1, delta2_A2=d2, qbroad_invA=qbroad, qdamp_invA=qdamp,
            spdiameter_A=spd,
        )  # fmt: skip


def _ueq(u_cif: np.ndarray, cell) -> float:
    m = calc.lattice_matrix(cell)
    g = m @ m.T
    ar = np.sqrt(np.diag(np.linalg.inv(g)))
    return float(np.sum(u_cif * np.outer(ar, ar) * g) / 3.0)


def _check_grid(r_A: np.ndarray) -> float:
    if r_A.ndim != 1 or r_A.size < 2:
        raise InputError("the r grid needs at least two points")
    step = r_A[1:] - r_A[:-1]
    lo, hi = step.min(), step.max()
    mean = (r_A[-1] - r_A[0]) / (r_A.size - 1)
    if lo <= 0 or hi - lo > 1e-6 * max(mean, 1e-12) + 1e-9:
        raise InputError("the r grid must be uniform and increasing")
    return float(mean)


def total_gr(states, values, model: PdfModel, r_A: np.ndarray) -> np.ndarray:
    """Sum of the phases' G(r) on the uniform grid r_A, terminated at Q_max."""
    dr = _check_grid(r_A)
    qmax = model.qmax_invA
    if qmax > 0:
        rext = r_A[-1] + 6 * 2 * np.pi / qmax
        grid = np.arange(0, int(np.ceil(rext / dr)) + 1) * dr
    else:
        grid = r_A
    g = np.zeros_like(grid)
    for st, v in zip(states, values, strict=True):
        g += st.gr(grid, v["scale"], v["delta1"], v["delta2"], v["spdiameter"],
                   v["qdamp"], v["qbroad"])  # fmt: skip
    if qmax <= 0:
        return g
    g = calc.terminate(grid, g, qmax)
    k = np.round(r_A / dr).astype(int)
    if np.allclose(k * dr, r_A, atol=1e-9 * dr + 1e-12):
        return g[k]
    from scipy.interpolate import CubicSpline

    return CubicSpline(grid, g)(r_A)


def start_values(ph: PhaseModel, model: PdfModel) -> dict[str, float]:
    return {"scale": ph.scale, "delta1": ph.delta1_A, "delta2": ph.delta2_A2,
            "spdiameter": ph.spdiameter_A, "qdamp": model.qdamp_invA,
            "qbroad": model.qbroad_invA}  # fmt: skip
