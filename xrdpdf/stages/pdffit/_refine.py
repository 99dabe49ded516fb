"""Least-squares refinement of a PDF model on lmfit (private to :mod:`xrdpdf.stages.pdffit`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf._core.results import Result
from xrdpdf.stages.pdffit._model import PdfModel, cell_from_free
from xrdpdf.stages.pdffit._phase import PhaseState, total_gr

if TYPE_CHECKING:
    import lmfit


def phase_fractions(
    scales, scale_esds, mean_f, atoms_per_cell, mean_mass
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Atom, cell and mass phase fractions and esds from the phase scales (PDFfit2).

    x_p = s_p/⟨f⟩²_p (atom), ÷ N_p (cell), × ⟨M⟩_p (mass); f_p = x_p/Σx with
    PDFfit2's esd propagation (``DataSet::getAtomPhaseFractions``).
    """
    s, ds = np.asarray(scales, float), np.asarray(scale_esds, float)
    base = 1.0 / np.asarray(mean_f, float) ** 2
    out = {}
    for key, factor in (("atom", 1.0), ("cell", 1.0 / np.asarray(atoms_per_cell, float)),
                        ("mass", np.asarray(mean_mass, float))):  # fmt: skip
        x, dx = s * base * factor, ds * base * factor
        xt = x.sum()
        if xt <= 0:
            out[key] = (np.zeros_like(x), np.zeros_like(x))
            continue
        var = (dx**2 * (xt**2 - 2 * xt * x) + x**2 * (dx**2).sum()) / xt**4
        out[key] = (x / xt, np.sqrt(np.maximum(var, 0)))
    return out


@dataclass(frozen=True, eq=False)
class PdfFitResult(Result):
    """Refined model, agreement and per-phase values (see :meth:`to_dict`)."""

    model: PdfModel
    rw: float
    chi2_red: float
    gof: float
    converged: bool
    nfev: int
    values: Mapping[str, float]
    esds: Mapping[str, float]
    phases: tuple[Mapping[str, Any], ...]
    fit: Pattern
    observed: Pattern

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary: rw, chi2_red, converged, qdamp, qbroad, phases, …"""
        out: dict[str, Any] = {"rw": self.rw, "chi2_red": self.chi2_red, "gof": self.gof,
                               "converged": self.converged, "nfev": self.nfev,
                               "esd_scaling": "lmfit stderr, scaled by sqrt(chi2_red)"}  # fmt: skip
        for key in ("qdamp", "qbroad"):
            out[key] = self.values[key]
            if key in self.model.vary:
                out[f"{key}_esd"] = self.esds.get(key)
        out["phases"] = [dict(p) for p in self.phases]
        return out

    def row(self, prefix: str = "pdffit_") -> dict[str, Any]:
        """Flat columns for a per-sample table: Rw, χ²ν and per phase the cell
        edges, spdiameter, δ2 and fraction with esds (``pdffit_<phase>_a_A`` …)."""
        out: dict[str, Any] = {f"{prefix}rw": self.rw, f"{prefix}chi2_red": self.chi2_red,
                               f"{prefix}converged": self.converged}  # fmt: skip
        for p in self.phases:
            pre = f"{prefix}{p['name']}_"
            for key in ("a_A", "c_A", "spdiameter_A", "delta2_A2", "scale", "fraction"):
                if key in p:
                    out[pre + key] = p[key]
                    out[pre + key + "_esd"] = p[key + "_esd"]
        return out

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{p['name']}</td><td>{p['a_A']:.5f}</td><td>{p['scale']:.4g}</td>"
            f"<td>{p['spdiameter_A']:.1f}</td></tr>"
            for p in self.phases
        )
        return (
            f"<p>Rw = {self.rw:.4f}, χ²ν = {self.chi2_red:.4g}</p><table><tr><th>phase"
            f"</th><th>a (Å)</th><th>scale</th><th>spdiameter (Å)</th></tr>{rows}</table>"
        )


_CELL = ("a", "b", "c", "alpha", "beta", "gamma")


def _parameters(states: list[PhaseState], model: PdfModel) -> lmfit.Parameters:
    import lmfit  # imported when a fit runs: pdfcalc does without it

    pars = lmfit.Parameters()
    for key in ("qdamp", "qbroad"):
        pars.add(key, value=getattr(model, f"{key}_invA"), vary=key in model.vary, min=0.0)
    for k, st in enumerate(states):
        ph, vary = st.model, st.model.vary
        pre = f"p{k}_"
        pars.add(pre + "scale", value=ph.scale, vary="scale" in vary, min=0.0)
        pars.add(pre + "delta1", value=ph.delta1_A, vary="delta1" in vary)
        pars.add(pre + "delta2", value=ph.delta2_A2, vary="delta2" in vary)
        pars.add(pre + "spdiameter", value=ph.spdiameter_A, vary="spdiameter" in vary, min=0.0)
        cell = dict(zip(_CELL, st.cell, strict=True))
        for name in st.cell_names:
            pars.add(pre + name, value=cell[name], vary="lattice" in vary, min=0.5 * cell[name])
        for name, v in zip(st.pos.names, st.pos_values, strict=True):
            free = "xyz" in vary and name not in st.pos.fixed
            pars.add(pre + "xyz_" + name, value=v, vary=free)
        for el, u in st.uiso.items():
            pars.add(pre + "uiso_" + el, value=u, vary="uiso" in vary, min=1e-6)
        for label, occ in zip(st.site_labels, st.site_occ, strict=True):
            pars.add(pre + "occ_" + label, value=occ, vary="occupancy" in vary, min=0.0, max=1.0)
    return pars


def _apply(states: list[PhaseState], values) -> list[dict[str, float]]:
    out = []
    for k, st in enumerate(states):
        pre = f"p{k}_"
        st.cell = cell_from_free(st.system, st.cell, {n: values[pre + n] for n in st.cell_names})
        st.pos_values = np.array([values[pre + "xyz_" + n] for n in st.pos.names])
        st.uiso = {el: values[pre + "uiso_" + el] for el in st.uiso}
        st.site_occ = np.array([values[pre + "occ_" + s] for s in st.site_labels])
        v = {n: values[pre + n] for n in ("scale", "delta1", "delta2", "spdiameter")}
        v.update(qdamp=values["qdamp"], qbroad=values["qbroad"])
        out.append(v)
    return out


def _phase_summary(k: int, st: PhaseState, pars: lmfit.Parameters) -> dict:
    pre = f"p{k}_"

    def esd(name: str) -> float:
        p = pars.get(pre + name)
        return 0.0 if p is None or not p.vary or p.stderr is None else float(p.stderr)

    cell_esd = {n: esd(n) for n in st.cell_names}
    tied = {"b": "a", "c": "a"} if st.system.lower() == "cubic" else {"b": "a"}
    d: dict = {"name": st.model.name}
    for n, key in zip(_CELL, ("a_A", "b_A", "c_A", "alpha_deg", "beta_deg", "gamma_deg"),
                      strict=True):  # fmt: skip
        d[key] = float(st.cell[_CELL.index(n)])
        src = n if n in cell_esd else tied.get(n)
        d[key + "_esd"] = cell_esd.get(src, 0.0) if src else 0.0
    for n, key in (("scale", "scale"), ("delta1", "delta1_A"), ("delta2", "delta2_A2"),
                   ("spdiameter", "spdiameter_A")):  # fmt: skip
        d[key] = float(pars[pre + n].value)
        d[key + "_esd"] = esd(n)
    d["uiso_A2"] = {el: float(u) for el, u in st.uiso.items()}
    d["uiso_A2_esd"] = {el: esd("uiso_" + el) for el in st.uiso}
    d["xyz"] = {n: float(v) for n, v in zip(st.pos.names, st.pos_values, strict=True)}
    d["xyz_esd"] = {n: esd("xyz_" + n) for n in st.pos.names}
    d["occupancy"] = {s: float(o) for s, o in zip(st.site_labels, st.site_occ, strict=True)}
    return d


def fit(data: Pattern, model: PdfModel, *, max_nfev: int = 2000) -> PdfFitResult:
    """Refine ``model`` against the observed G(r) ``data`` on [rmin, rmax] of ``[data]``.

    Parameters
    ----------
    data : Pattern
        Observed G(r), unit ``"r_A"``, on a uniform grid; σ used as weights if given.
    model : PdfModel
        Start model; its ``vary`` lists say what is refined.
    max_nfev : int
        Limit on model evaluations.

    Returns
    -------
    PdfFitResult
        Esds are lmfit's, scaled by the reduced χ².

    Raises
    ------
    InputError
        Data not G(r), rmin/rmax outside the data, nothing to refine.
    """
    if data.unit != "r_A":
        raise InputError(f"pdffit needs G(r) data (unit r_A), got {data.unit!r}")
    r, g = np.asarray(data.x), np.asarray(data.y)
    tol = 0.5 * (r[1] - r[0]) if r.size > 1 else 0.0
    if model.rmax_A > r[-1] + tol or model.rmin_A < r[0] - tol:
        raise InputError(
            f"{model.source}: [data] rmin..rmax = {model.rmin_A:g}..{model.rmax_A:g} Å lies "
            f"beyond the data ({r[0]:g}..{r[-1]:g} Å)"
        )
    sel = (r >= model.rmin_A - 1e-9) & (r <= model.rmax_A + 1e-9)
    rf, gf = r[sel], g[sel]
    sigma = np.asarray(data.sigma)[sel] if data.sigma is not None else np.ones_like(gf)
    if np.any(sigma <= 0):
        raise InputError("pdffit: the data's σ must be > 0")
    states = [PhaseState(ph, model) for ph in model.phases]
    pars = _parameters(states, model)
    nvary = sum(p.vary for p in pars.values())
    if nvary == 0:
        raise InputError(f"{model.source}: nothing to refine (every vary list is empty)")

    def residual(p: lmfit.Parameters) -> np.ndarray:
        return (gf - total_gr(states, _apply(states, p.valuesdict()), model, rf)) / sigma

    import lmfit

    res = lmfit.minimize(residual, pars, method="leastsq", max_nfev=max_nfev, scale_covar=True)
    values = _apply(states, res.params.valuesdict())
    gc = total_gr(states, values, model, rf)
    w = 1.0 / sigma**2
    rw = float(np.sqrt(np.sum(w * (gf - gc) ** 2) / np.sum(w * gf**2)))
    chi2_red = float(res.redchi)
    phases = [_phase_summary(k, st, res.params) for k, st in enumerate(states)]
    if len(states) > 1:
        scales = [p["scale"] for p in phases]
        fr = phase_fractions(scales, [p["scale_esd"] for p in phases],
                             [st.mean_z() for st in states],
                             [st.occupancy().sum() for st in states],
                             [float((st.occupancy() * st.mass).sum() / st.occupancy().sum())
                              for st in states])  # fmt: skip
        for k, p in enumerate(phases):
            p["fraction"], p["fraction_esd"] = float(fr["mass"][0][k]), float(fr["mass"][1][k])
            for key, (f, df) in fr.items():
                p[f"fraction_{key}"], p[f"fraction_{key}_esd"] = float(f[k]), float(df[k])
    new_phases = []
    for st, p in zip(states, phases, strict=True):
        structure = st.model.structure
        if (Path(st.model.base_dir) / structure).is_file():
            structure = str((Path(st.model.base_dir) / structure).resolve())
        new_phases.append(dataclasses.replace(
            st.model, structure=structure, scale=p["scale"], delta1_A=p["delta1_A"],
            delta2_A2=p["delta2_A2"],
            spdiameter_A=p["spdiameter_A"], uiso_A2=dict(st.uiso), lattice=tuple(st.cell),
            xyz=p["xyz"], occupancy=p["occupancy"] if "occupancy" in st.model.vary
            or st.model.occupancy else {},
        ))  # fmt: skip
    qd, qb = values[0]["qdamp"], values[0]["qbroad"]
    refined = dataclasses.replace(model, phases=tuple(new_phases), qdamp_invA=qd, qbroad_invA=qb)
    esds = {k: float(p.stderr) for k, p in res.params.items() if p.vary and p.stderr is not None}
    vals = {k: float(p.value) for k, p in res.params.items()}
    converged = bool(res.success) and res.errorbars
    return PdfFitResult(
        model=refined, rw=rw, chi2_red=chi2_red, gof=float(np.sqrt(chi2_red)),
        converged=converged, nfev=int(res.nfev), values=vals, esds=esds,
        phases=tuple(phases),
        fit=Pattern(rf, gc, "r_A", None, metadata={"source": "xrdpdf pdffit"}),
        observed=Pattern(rf, gf, "r_A", None),
    )  # fmt: skip
