"""The staged least squares of :func:`xrdpdf.stages.refinement.refine`.

A weighted linear least-squares start of the amplitudes (scales, background), a grid
search of each size width, an isotropic lattice search, a test for phases whose scale is
not significant, then one bounded Levenberg–Marquardt fit (lmfit ``leastsq``) per stage
of :data:`STAGES`, each freeing more parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf.stages.refinement import _sites
from xrdpdf.stages.refinement._model import Model
from xrdpdf.stages.refinement._setup import STAGES, Options

__all__: list[str] = []


@dataclass
class StagedFit:
    """The outcome of :func:`staged_fit`."""

    params: Any
    last: Any
    stages: list[dict[str, Any]]
    absent: set[str]
    at_bound: list[str]


def _linear_columns(model: Model, v: Mapping[str, float], sel: slice = slice(None)) -> list:
    """Columns of the part of the model that is linear in its amplitudes, on ``model.x[sel]``.

    Order: each phase at unit scale, the Chebyshev terms, the amorphous hump at unit
    amplitude, the background pattern.  Shared by the linear start, the absent-phase test
    and the lattice search, so that all three see the same background.
    """
    x = model.x[sel]
    cols = []
    for pm in model.phases:
        cols.append(model.phase_profile(pm, {**v, pm.prefix + "scale": 1.0}, x))
    cols += [model.cheb[sel, j] for j in range(model.nb)]
    if model.amorphous:
        cols.append(model.hump({**v, "amor_amp": 1.0})[sel])
    if model.reference is not None:
        cols.append(model.reference[sel])
    return cols


def linear_start(params, model: Model, y: np.ndarray, w: np.ndarray) -> None:
    """Scales, background (and hump amplitude) by weighted linear least squares."""
    cols = _linear_columns(model, params.valuesdict())
    a = np.stack(cols, axis=1)
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(a * sw[:, None], y * sw, rcond=None)
    k = 0
    for pm in model.phases:
        norm = float(np.max(np.abs(cols[k]))) or 1.0
        params[pm.prefix + "scale"].set(value=max(float(coef[k]), 1e-6 / norm))
        k += 1
    for j in range(model.nb):
        params[f"bkg_{j}"].set(value=float(coef[k]))
        k += 1
    # a start exactly on the lower bound 0 has zero gradient in lmfit's bounded
    # transform and never moves: keep amplitudes a little above it
    ymax = float(np.max(np.abs(y))) or 1.0
    if model.amorphous:
        norm = float(np.max(np.abs(cols[k]))) or 1.0
        params["amor_amp"].set(value=max(float(coef[k]), 1e-3 * ymax / norm))
        k += 1
    if model.reference is not None:
        norm = float(np.max(np.abs(cols[k]))) or 1.0
        params["bkg_ref"].set(value=max(float(coef[k]), 1e-2 * ymax / norm))


def absent_phases(params, model: Model, y, w) -> set[str]:
    """Prefixes of phases whose scale is below 3σ in a linear fit at the current values."""
    cols = _linear_columns(model, params.valuesdict())
    a = np.stack(cols, axis=1) * np.sqrt(w)[:, None]
    b = y * np.sqrt(w)
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    dof = max(y.size - a.shape[1], 1)
    chi2 = float(np.sum((b - a @ coef) ** 2)) / dof
    try:
        cov = np.linalg.pinv(a.T @ a) * chi2
    except np.linalg.LinAlgError:
        return set()
    out = set()
    for i, pm in enumerate(model.phases):
        esd = math.sqrt(max(cov[i, i], 0.0))
        if not coef[i] > 3 * esd:
            out.add(pm.prefix)
    return out


def _scaled_cells(model: Model, v0: Mapping[str, float], f: float) -> dict[str, float]:
    vv = dict(v0)
    for pm in model.phases:
        for k in pm.free_cell:
            if k in "abc":
                vv[pm.prefix + k] = v0[pm.prefix + k] * f
    return vv


def lattice_search(params, model: Model, y, w, rel: float) -> None:
    """Scan an isotropic scale factor of every cell; keep the best linear fit."""
    v0 = params.valuesdict()
    widths = [
        float(np.median(fw))
        for fw in (model.phase_peaks(pm, v0)[2] for pm in model.phases)
        if fw.size
    ]
    if not widths:
        return
    xmax = float(np.max(np.abs(model.x)))
    if model.unit == units.TTH_DEG:  # relative shift of d ↔ Δ2θ ≈ tanθ·rel·2 (rad)
        xmax = float(np.degrees(2 * np.tan(np.radians(min(xmax, 170.0) / 2))))
    step = max(min(widths) / (3.0 * xmax), 2e-4)
    n = int(min(math.ceil(rel / step), 150))
    factors = np.unique(np.concatenate([np.linspace(1 - rel, 1 + rel, 2 * n + 1), [1.0]]))
    # subsample the grid when peaks are broad enough
    stride = max(1, int(min(widths) / (4 * np.median(np.diff(model.x)))))
    stride = min(stride, max(1, model.x.size // 500))
    sel = slice(None, None, stride)
    ys, sw = y[sel], np.sqrt(w[sel])
    nph = len(model.phases)
    best = (np.inf, 1.0)
    for f in factors:
        a = np.stack(_linear_columns(model, _scaled_cells(model, v0, f), sel), axis=1)
        coef, *_ = np.linalg.lstsq(a * sw[:, None], ys * sw, rcond=None)
        coef[:nph] = np.maximum(coef[:nph], 0)
        chi = float(np.sum((sw * (ys - a @ coef)) ** 2))
        if chi < best[0]:
            best = (chi, float(f))
    if best[1] != 1.0:
        for name, val in _scaled_cells(model, v0, best[1]).items():
            if val != v0[name]:
                params[name].set(value=val)
        linear_start(params, model, y, w)


def width_search(params, model: Model, y, w, free: set[str]) -> None:
    """Scale the free size widths by the best common factor of a grid (×¼ … ×4).

    A start far from the true width (a 50 Å guess for 3 nm grains) lets the first stage
    put peak intensity into the background and its reference pattern; each trial costs
    one linear least squares of the amplitudes.  One factor for all phases, as the
    lattice search, so that a phase absent from the data cannot turn into background.
    """
    names = [pm.prefix + "width" for pm in model.phases if pm.prefix + "width" in free]
    if not names:
        return
    sw = np.sqrt(w)
    v0 = params.valuesdict()
    best = (np.inf, 1.0)
    for f in np.geomspace(0.25, 4.0, 17):
        trial = {n: min(max(v0[n] * f, params[n].min), params[n].max) for n in names}
        a = np.stack(_linear_columns(model, {**v0, **trial}), axis=1)
        coef, *_ = np.linalg.lstsq(a * sw[:, None], y * sw, rcond=None)
        chi = float(np.sum((sw * (y - a @ coef)) ** 2))
        if chi < best[0]:
            best = (chi, float(f))
    for n in names:
        params[n].set(value=min(max(v0[n] * best[1], params[n].min), params[n].max))
    linear_start(params, model, y, w)


def staged_fit(
    params, groups: Mapping[str, list[str]], model: Model, y, w, opts: Options
) -> StagedFit:
    """Release the parameter groups stage by stage (module docstring).

    A phase whose scale is not significant in the linear fit before the lattice stage
    keeps all but its scale fixed from then on: its other parameters are undefined.
    Biso and occupancies that end on a bound are fixed there and the fit repeated
    (:func:`xrdpdf.stages.refinement._sites.fix_at_bounds`).
    """
    import lmfit

    sw = np.sqrt(w)

    def resid(p):
        return (y - model.calc(p.valuesdict())) * sw

    linear_start(params, model, y, w)
    if opts.refine_size:
        width_search(params, model, y, w, set(groups["profile"]))
    log: list[dict[str, Any]] = []
    released: list[str] = []
    absent: set[str] = set()
    last = None
    for stage in STAGES:
        if stage == "lattice+zero":
            if opts.lattice_search > 0 and opts.refine_lattice:
                lattice_search(params, model, y, w, opts.lattice_search)
            absent = absent_phases(params, model, y, w)
        released += [n for n in groups[stage] if n in params]
        if not groups[stage] and last is not None:
            continue
        for n in released:
            params[n].vary = not any(
                n.startswith(pre) and not n.endswith("_scale") for pre in absent
            )
        last = _minimize(lmfit, resid, params, opts, stage, log)
        params = last.params
    site_pars = [pm.prefix + "B_" + el for pm in model.phases for el in pm.elements]
    site_pars += [pm.prefix + "occ_" + s.label for pm in model.phases for s in pm.phase.sites]
    at_bound = _sites.fix_at_bounds(params, site_pars)
    if at_bound:
        last = _minimize(lmfit, resid, params, opts, "fixed at bounds: " + ", ".join(at_bound), log)
        params = last.params
    return StagedFit(params, last, log, absent, at_bound)


def _minimize(lmfit, resid, params, opts: Options, stage: str, log: list) -> Any:
    """One bounded Levenberg–Marquardt fit, logged under ``stage``."""
    last = lmfit.Minimizer(resid, params, nan_policy="raise").minimize(
        method="leastsq", max_nfev=opts.max_nfev
    )
    log.append(
        {
            "stage": stage,
            "nfev": int(last.nfev),
            "chi2": float(last.redchi),
            "success": bool(last.success),
        }
    )
    return last
