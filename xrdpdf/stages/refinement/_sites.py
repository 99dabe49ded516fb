r"""Site parameters of the refinement: shared positions and parameters at their bounds.

Occupancies of sites that share a position (Na and Ti on 4a of rocksalt NaTiO2) are
constrained in one of two ways (the choice is ``occupancy_sum`` of
:func:`xrdpdf.stages.refinement.refine`):

* **exchange** (default): the sum on the position keeps its starting value; every site
  but the last is free (each at most :math:`\Sigma_0` less the fixed ones) and the last is
  the lmfit expression :math:`o_{last} = \Sigma_0 - \sum_{j \ne last} o_j`, so only the
  split is refined and the dependent site's esd follows by propagation (lmfit evaluates
  the expression's uncertainty from the covariance);
* **vacancies**: the free occupancies are refined alone, each bounded by the room left on
  the position, :math:`o_j \le 1 - \sum_{k\ \mathrm{fixed}} o_k`, so the sum cannot exceed
  a full site.

A displacement parameter (Biso) or an occupancy that ends on one of its bounds is not
determined by the data (Biso on lab data absorbs surface roughness and absorption, and
goes to 0): :func:`fix_at_bounds` fixes it there, the fit is repeated without it, and the
result reports it as fixed (no esd) instead of publishing the bound as a value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xrdpdf.physics.crystal import Phase

__all__: list[str] = []

#: Sites whose fractional coordinates agree to this are on one position (the CIF reader
#: has already moved sites onto their special positions).
SAME_POSITION = 1e-6

#: A parameter within this fraction of its bound span from a bound is at the bound.
AT_BOUND_REL = 1e-4


def shared_positions(phase: Phase) -> list[list[int]]:
    """Groups (≥ 2) of site indices that share a position, in site order."""
    sites = phase.sites
    done: set[int] = set()
    groups = []
    for i, s in enumerate(sites):
        if i in done:
            continue
        group = [
            j
            for j, t in enumerate(sites)
            if j not in done and np.allclose(t.xyz, s.xyz, atol=SAME_POSITION)
        ]
        done.update(group)
        if len(group) > 1:
            groups.append(group)
    return groups


def default_free_occupancies(phase: Phase) -> list[str]:
    """Labels refined by default: every site of a shared position but the last (Na1 of NaTiO2)."""
    return [phase.sites[j].label for g in shared_positions(phase) for j in g[:-1]]


def add_occupancy_constraints(params, prefix: str, phase: Phase, exchange: bool) -> None:
    """Constrain the ``{prefix}occ_{label}`` parameters already in ``params``.

    Parameters
    ----------
    params : lmfit.Parameters
        Holds the free occupancies (``{prefix}occ_{label}``, bounds 0…1).
    prefix : str
        The phase's parameter prefix.
    phase : Phase
        Its sites.
    exchange : bool
        True: the last site of each shared position is ``Σ₀ − Σ others`` (an ``expr``
        parameter, added or replaced).  False: each free occupancy is bounded above by
        ``1 − Σ fixed others``.
    """
    sites = phase.sites
    for group in shared_positions(phase):
        names = [prefix + "occ_" + sites[j].label for j in group]
        free = [n for n in names[:-1] if n in params and params[n].expr is None]
        if exchange:
            if not free:
                continue
            total = sum(sites[j].occupancy for j in group)
            fixed = sum(
                sites[j].occupancy
                for j, n in zip(group[:-1], names[:-1], strict=True)
                if n not in free
            )
            expr = f"{total - fixed!r} - " + " - ".join(free)
            for n in free:  # the dependent site cannot go below 0
                params[n].set(max=min(float(params[n].max), max(total - fixed, 1e-6)))
            if names[-1] in params:
                params[names[-1]].set(expr=expr)
            else:
                params.add(names[-1], expr=expr)
            continue
        for j, n in zip(group, names, strict=True):
            if n not in params:
                continue
            others = sum(
                sites[k].occupancy
                for k, m in zip(group, names, strict=True)
                if k != j and m not in params
            )
            params[n].set(max=max(1.0 - others, 1e-6))
            if params[n].value > params[n].max:
                params[n].set(value=params[n].max)


def at_bound(par) -> bool:
    """True when a varied lmfit parameter sits on (within :data:`AT_BOUND_REL` of) a bound."""
    lo, hi = float(par.min), float(par.max)
    span = hi - lo if np.isfinite(hi - lo) else max(abs(par.value), 1.0)
    tol = AT_BOUND_REL * span
    return bool(par.vary) and (
        (np.isfinite(lo) and par.value - lo <= tol) or (np.isfinite(hi) and hi - par.value <= tol)
    )


def fix_at_bounds(params, names: Sequence[str]) -> list[str]:
    """Fix the parameters of ``names`` that ended on a bound; return their names.

    Each is set exactly to the bound it reached and no longer varies, so a following fit
    gives the other parameters' esds without it and the result reports it as fixed.
    """
    fixed = []
    for n in names:
        par = params.get(n)
        if par is None or par.expr is not None or not at_bound(par):
            continue
        bound = par.min if abs(par.value - par.min) <= abs(par.max - par.value) else par.max
        par.set(value=float(bound), vary=False)
        fixed.append(n)
    return fixed
