"""Figures of merit, verdict and results of :func:`xrdpdf.stages.refinement.refine`.

Formulas in the :mod:`xrdpdf.stages.refinement` module Notes (Toby 2006; Rietveld 1969).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf.physics.crystal import Phase
from xrdpdf.stages.refinement import _fractions as _fr
from xrdpdf.stages.refinement._fit import StagedFit
from xrdpdf.stages.refinement._model import Model, PhaseModel, pv_matrix
from xrdpdf.stages.refinement._results import PhaseResult
from xrdpdf.stages.refinement._setup import Options

__all__: list[str] = []


def esd(par) -> float | None:
    """A parameter's esd, None when lmfit has none (or it is not finite)."""
    e = par.stderr
    if e is None or not np.isfinite(e) or (e == 0 and par.expr is not None):
        return None
    return float(e)


def figures_of_merit(y, w, y_calc, n_par: int) -> dict[str, float]:
    """Rwp, Rp, Rexp, χ², GoF (background included in the denominators)."""
    dof = max(y.size - n_par, 1)
    sw = float(np.sum(w * y**2))
    ssr = float(np.sum(w * (y - y_calc) ** 2))
    return {
        "rwp": math.sqrt(ssr / sw) if sw > 0 else float("nan"),
        "rp": float(np.sum(np.abs(y - y_calc)) / np.sum(np.abs(y))),
        "rexp": math.sqrt(dof / sw) if sw > 0 else float("nan"),
        "chi2": ssr / dof,
        "gof": math.sqrt(ssr / dof),
    }


@dataclass
class Verdict:
    """Whether the refinement converged, why (not), and which phases were not detected."""

    converged: bool = True
    reasons: list[str] = field(default_factory=list)
    undetected: set[str] = field(default_factory=set)
    bound_notes: list[str] = field(default_factory=list)

    def fail(self, reason: str) -> None:
        """Record a reason for not converging."""
        self.converged = False
        self.reasons.append(reason)

    @property
    def message(self) -> str:
        """``"converged"`` or the reasons."""
        return "converged" if self.converged else "; ".join(self.reasons) or "did not converge"


def _at_bound(par, rel: float = 1e-4) -> bool:
    span = par.max - par.min
    return min(par.value - par.min, par.max - par.value) < rel * span


def judge(fit: StagedFit, model: Model, opts: Options, notes: list[str]) -> Verdict:
    """Convergence, detection of each phase, and cautions appended to ``notes``."""
    params, last = fit.params, fit.last
    out = Verdict()
    if not last.success:
        out.fail(f"least squares stopped: {last.message}")
    if not last.errorbars and not fit.absent:
        out.fail("no covariance matrix (singular or ill-conditioned problem)")
    for pm in model.phases:
        for k in pm.free_cell:
            par = params[pm.prefix + k]
            if _at_bound(par):
                out.fail(f"{pm.phase.name} {k} ran to its bound {par.value:.5g}")
    for pm in model.phases:
        sc = params[pm.prefix + "scale"]
        sc_e = esd(sc)
        if pm.prefix in fit.absent or (sc_e is not None and not sc.value > 3 * sc_e):
            out.undetected.add(pm.prefix)
            esd_txt = "" if sc_e is None else f" ± {sc_e:.2g}"
            notes.append(
                f"{pm.phase.name} is not detected (scale {sc.value:.3g}{esd_txt} is below "
                "3 esd): weight fraction 0, lattice and size undetermined"
            )
            continue
        for k in pm.free_cell:
            e = esd(params[pm.prefix + k])
            if (
                opts.refine_lattice
                and last.errorbars
                and (e is None or e > 0.01 * abs(params[pm.prefix + k].value))
            ):
                out.fail(f"{pm.phase.name} {k} is undetermined (esd {e})")
    for name, par in params.items():
        if par.vary and not np.isfinite(par.value):
            out.fail(f"{name} is not finite")
    if not out.converged:
        notes.insert(0, f"refinement did not converge: {out.message}")
    _cautions(fit, model, opts, out, notes)
    return out


def _bound_note(pm: PhaseModel, name: str, value: float) -> str | None:
    if name.startswith(pm.prefix + "B_"):
        el = name[len(pm.prefix) + 2 :]
        txt = f"{pm.phase.name} Biso({el}) ran to its bound {value:g} Å²"
    elif name.startswith(pm.prefix + "occ_"):
        lab = name[len(pm.prefix) + 4 :]
        txt = (
            f"{pm.phase.name} occupancy of {lab} ran to its bound {value:.4g} "
            "(empty, or the position full)"
        )
    else:
        return None
    return txt + ": fixed there, no esd"


def _cautions(fit: StagedFit, model: Model, opts: Options, verdict: Verdict, notes) -> None:
    params = fit.params
    for pm in model.phases:
        for n in fit.at_bound:
            txt = _bound_note(pm, n, float(params[n].value))
            if txt is not None:
                verdict.bound_notes.append(txt)
    notes += verdict.bound_notes
    sized = [
        pm.phase.name
        for pm in model.phases
        if params[pm.prefix + "width"].vary and pm.prefix not in verdict.undetected
    ]
    if sized and opts.size_is_lower_bound:
        notes.append(
            "no instrument resolution given: all peak broadening is attributed to the "
            f"crystallites, so the sizes of {', '.join(sized)} are lower bounds "
            "(size_is_lower_bound)"
        )


def correlations(params, limit: float = 0.8) -> list[tuple[str, str, float]]:
    """Pairs of varied parameters with |r| > ``limit``."""
    out = []
    names = [n for n, p in params.items() if p.vary]
    for i, a in enumerate(names):
        cor = params[a].correl or {}
        for b in names[i + 1 :]:
            r = cor.get(b)
            if r is not None and abs(r) > limit:
                out.append((a, b, float(r)))
    return out


def add_derived(fit: StagedFit, model: Model, opts: Options, verdict: Verdict) -> None:
    """Weight and crystalline fractions of the detected phases as ``expr`` parameters.

    Their esds (and those of every other ``expr`` parameter) come from lmfit's propagation
    of the last stage's covariance (:meth:`lmfit.Parameters.create_uvars`).
    """
    det = [pm for pm in model.phases if pm.prefix not in verdict.undetected]
    ref_atoms = None
    comp = opts.reference_composition
    if det and model.reference is not None and comp is not None and model.unit == units.Q_A:
        ref_atoms = _fr.reference_atoms_per_scale(model.x, model.reference, _fr.parse_formula(comp))
    if not det:
        return
    _fr.add_fraction_params(fit.params, det, ref_atoms)
    if fit.last.covar is not None:
        fit.params.create_uvars(covar=fit.last.covar)


def refined_phase(pm: PhaseModel, v: Mapping[str, float]) -> Phase:
    """The phase with the refined cell, occupancies (clipped to 0…1) and Biso."""
    occ = {s.label: float(v.get(pm.prefix + "occ_" + s.label, s.occupancy)) for s in pm.phase.sites}
    biso = {s.label: float(v.get(pm.prefix + "B_" + s.symbol, s.biso_A2)) for s in pm.phase.sites}
    ph = pm.phase.with_sites(
        occupancy={k: min(max(val, 0.0), 1.0) for k, val in occ.items()}, biso_A2=biso
    )
    return ph.with_cell(**{k: v[pm.prefix + k] for k in pm.free_cell})


def _r_bragg(model: Model, pm: PhaseModel, v, x, ratio) -> tuple[float, np.ndarray]:
    """R_Bragg of one phase (Rietveld partition of y_o − y_b) and its y_calc."""
    x0, area, fw, eta, _ = model.phase_peaks(pm, v)
    inr = (x0 > x[0] - 3 * fw) & (x0 < x[-1] + 3 * fw)
    if not np.any(inr):
        return float("nan"), np.zeros_like(x)
    dxs = np.gradient(x)
    prof = pv_matrix(x, x0[inr], fw[inr], eta[inr]) * area[inr][None, :]
    ic = (prof * dxs[:, None]).sum(0)
    io = (prof * (ratio * dxs)[:, None]).sum(0)
    rb = float(np.sum(np.abs(io - ic)) / np.sum(np.abs(io))) if np.sum(io) else float("nan")
    return rb, prof.sum(1)


def _ticks(model: Model, pm: PhaseModel, v) -> tuple[np.ndarray, np.ndarray]:
    """Reflection positions in the x unit (Kα1 only for lab data) and their hkl."""
    x0, _, _, _, idx = model.phase_peaks(pm, v)
    nfirst = x0.size
    if model.cuka:
        qh, _ = pm.peaks_q(v)
        nfirst = int(np.sum(qh * model.lines[0][0] / (4 * np.pi) < 0.999))
    ticks, hkl = x0[:nfirst], pm.refl.hkl[idx[:nfirst]]
    inside = (ticks >= model.x[0]) & (ticks <= model.x[-1])
    return ticks[inside], hkl[inside]


def _value(params, name: str, shown: bool) -> tuple[float | None, float | None]:
    if not shown or name not in params:
        return None, None
    return float(params[name].value), esd(params[name])


def phase_results(model: Model, fit: StagedFit, y, y_calc, y_bkg, opts, verdict):
    """One :class:`PhaseResult` per phase; undetected phases without lattice and size."""
    params = fit.params
    v = params.valuesdict()
    fixed = set(fit.at_bound)
    net_c = y_calc - y_bkg
    ok = net_c > 1e-9 * max(float(np.max(np.abs(net_c))), 1e-300)
    ratio = np.where(ok, (y - y_bkg) / np.where(ok, net_c, 1.0), 0.0)
    out = []
    for pm in model.phases:
        pre = pm.prefix
        seen = pre not in verdict.undetected
        rb, y_ph = _r_bragg(model, pm, v, model.x, ratio)
        sites = pm.phase.sites
        size_free = params[pre + "width"].vary and seen
        strain_free = params[pre + "strain"].vary and seen
        size, size_e = _value(params, pre + "size_A", size_free)
        diam, diam_e = _value(params, pre + "diameter_A", size_free)
        strain, strain_e = _value(params, pre + "strain", strain_free)
        wf, wf_e = _value(params, pre + "wf", seen)
        xf, xf_e = _value(params, pre + "xf", True)
        cell_vals = {k: (float(v[pre + k]), esd(params[pre + k])) for k in pm.free_cell}
        ticks, hkl = _ticks(model, pm, v)
        biso = {
            el: float(v.get(pre + "B_" + el, np.mean([s.biso_A2 for s in sites if s.symbol == el])))
            for el in pm.elements
        }
        out.append(
            PhaseResult(
                name=pm.phase.name,
                phase=refined_phase(pm, v),
                cell=cell_vals if seen else {},
                a_A=float(pm.cell(v)[0]) if seen else None,
                a_esd_A=cell_vals.get("a", (0, None))[1] if seen else None,
                size_A=size,
                size_esd_A=size_e,
                strain=strain,
                strain_esd=strain_e,
                scale=float(v[pre + "scale"]),
                scale_esd=esd(params[pre + "scale"]),
                weight_fraction=0.0 if wf is None else wf,
                weight_fraction_esd=wf_e,
                r_bragg=rb,
                occupancy={
                    s.label: float(v.get(pre + "occ_" + s.label, s.occupancy)) for s in sites
                },
                occupancy_esd={
                    s.label: _value(
                        params, pre + "occ_" + s.label, pre + "occ_" + s.label not in fixed
                    )[1]
                    for s in sites
                },
                biso_A2=biso,
                biso_esd_A2={
                    el: _value(params, pre + "B_" + el, pre + "B_" + el not in fixed)[1]
                    for el in pm.elements
                },
                ticks=ticks,
                hkl=hkl,
                y_calc=y_ph,
                detected=seen,
                crystalline_fraction=None if xf is None and not _has_xf(params) else (xf or 0.0),
                crystalline_fraction_esd=xf_e,
                size_is_lower_bound=opts.size_is_lower_bound and size_free,
                diameter_A=diam,
                diameter_esd_A=diam_e,
                biso_at_bound=tuple(el for el in pm.elements if pre + "B_" + el in fixed),
                occupancy_at_bound=tuple(s.label for s in sites if pre + "occ_" + s.label in fixed),
            )
        )
    return out


def _has_xf(params) -> bool:
    return any(n.endswith("_xf") for n in params)


def parameter_table(params) -> dict[str, dict[str, Any]]:
    """Every parameter → value, esd, vary, min, max (``expr`` for derived ones)."""
    out = {}
    for n, p in params.items():
        row = {
            "value": float(p.value),
            "esd": esd(p),
            "vary": bool(p.vary),
            "min": float(p.min),
            "max": float(p.max),
        }
        if p.expr is not None:
            row["expr"] = p.expr
        out[n] = row
    return out
