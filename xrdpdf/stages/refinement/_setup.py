"""Settings, data points and parameters of :func:`xrdpdf.stages.refinement.refine`.

:func:`check_options` validates the keyword arguments into :class:`Options`;
:func:`fit_points` selects the points; :func:`build_model` and :func:`build_parameters`
make the forward model and its lmfit parameters, each assigned to the stage that frees it.
Constraints (occupancy sums, derived sizes) are ``expr`` parameters added here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf.physics.cif import get_phase
from xrdpdf.physics.crystal import Phase
from xrdpdf.physics.crystallite import SPHERE_K_FWHM, SPHERE_PV_FWHM, diameter_from_scherrer
from xrdpdf.physics.resolution import Resolution
from xrdpdf.physics.scattering import anode_lines
from xrdpdf.stages.refinement import _sites
from xrdpdf.stages.refinement._model import Model, PhaseModel

__all__: list[str] = []

#: Stage names, in release order.
STAGES = ("scale+background", "lattice+zero", "profile", "biso+occupancy")


@dataclass(frozen=True)
class Options:
    """The validated settings of one refinement (names as in :func:`~.refine`)."""

    lines: tuple[tuple[float, float], ...]
    resolution: Resolution | None
    kbeta: bool
    displacement: bool
    transparency: bool
    goniometer_radius_mm: float
    refine_zero: bool
    refine_ka2_ratio: bool
    fwhm_inst: float | None
    n_background: int
    k_scherrer: float
    size_start_A: tuple[float, ...]
    refine_size: bool
    refine_lattice: bool
    refine_strain: bool
    refine_biso: bool
    refine_occupancy: tuple[tuple[str, ...], ...]
    occupancy_sum: bool
    amorphous: bool
    amorphous_start: tuple[float, float] | None
    lattice_search: float
    max_nfev: int
    reference_composition: str | Mapping[str, float] | None

    @property
    def is_lab(self) -> bool:
        """Lab Bragg–Brentano data with an anode's lines."""
        return bool(self.lines)

    @property
    def size_is_lower_bound(self) -> bool:
        """No instrument information: all broadening is attributed to the crystallites."""
        return self.resolution is None and not self.fwhm_inst


def as_phases(phases) -> list[Phase]:
    """Phases from a Phase, a name, a CIF path or a sequence of them."""
    if isinstance(phases, Phase | str):
        phases = [phases]
    out = [get_phase(p) for p in phases]
    if not out:
        raise InputError("refine needs at least one phase")
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise InputError(f"phase names must differ, got {names}")
    return out


def _occupancy_choice(plist: list[Phase], given) -> tuple[tuple[str, ...], ...]:
    occ_map = dict(given or {})
    names = [p.name for p in plist]
    for name in occ_map:
        if name not in names:
            raise InputError(f"refine_occupancy: no phase {name!r}")
    out = []
    for p in plist:
        labs = tuple(occ_map.get(p.name, _sites.default_free_occupancies(p)))
        for lab in labs:
            if lab not in [s.label for s in p.sites]:
                raise InputError(f"refine_occupancy: {p.name} has no site {lab!r}")
        out.append(labs)
    return tuple(out)


def check_options(pattern: Pattern, plist: list[Phase], kw: Mapping[str, Any]) -> Options:
    """Validate the keyword arguments of :func:`~.refine` (InputError when bad)."""
    anode = kw["anode"] or ("Cu" if kw["cuka"] else None)
    if kw["kbeta"] and anode is None:
        raise InputError("kbeta needs lab data (cuka=True or anode=…)")
    lines = anode_lines(anode, kbeta=kw["kbeta"]) if anode is not None else ()
    displacement = bool(lines) if kw["displacement"] is None else bool(kw["displacement"])
    if (displacement or kw["transparency"]) and not lines:
        raise InputError(
            "sample displacement and transparency are Bragg–Brentano terms: give cuka or anode"
        )
    radius = kw["goniometer_radius_mm"]
    if not (10.0 <= radius <= 1000.0):
        raise InputError(f"goniometer_radius_mm must be 10…1000 mm, got {radius}")
    if not 1 <= kw["n_background"] <= 30:
        raise InputError(f"n_background must be 1…30, got {kw['n_background']}")
    if not (0 < kw["k_scherrer"] < 5):
        raise InputError(f"k_scherrer must be in (0, 5), got {kw['k_scherrer']}")
    fwhm_inst = kw["fwhm_inst"]
    if fwhm_inst is not None and not (math.isfinite(fwhm_inst) and fwhm_inst >= 0):
        raise InputError(f"fwhm_inst must be ≥ 0 (pattern's x unit), got {fwhm_inst}")
    if pattern.unit not in (units.Q_A, units.TTH_DEG):
        raise InputError(f"{pattern.source}: cannot refine {pattern.unit} data (need Q or 2θ)")
    if lines and pattern.unit != units.TTH_DEG:
        raise InputError(f"{pattern.source}: lab (cuka/anode) data must be 2θ (got {pattern.unit})")
    if pattern.unit == units.TTH_DEG and not lines:
        units.check_wavelength(pattern.wavelength_A, f"{pattern.source}: 2θ refinement")
    s0 = kw["size_start_A"]
    sizes = tuple(s0) if isinstance(s0, Sequence) else (s0,) * len(plist)
    if len(sizes) != len(plist):
        raise InputError("size_start_A: give one value or one per phase")
    if not all(math.isfinite(float(s)) and float(s) > 0 for s in sizes):
        raise InputError(f"size_start_A must be > 0 Å, got {s0!r}")
    refine_zero = kw["refine_zero"]
    if refine_zero is None:
        refine_zero = not (displacement or kw["transparency"])
    return Options(
        lines=lines,
        resolution=kw["resolution"],
        kbeta=bool(kw["kbeta"]),
        displacement=displacement,
        transparency=bool(kw["transparency"]),
        goniometer_radius_mm=float(radius),
        refine_zero=bool(refine_zero),
        refine_ka2_ratio=bool(kw["refine_ka2_ratio"]),
        fwhm_inst=None if fwhm_inst is None else float(fwhm_inst),
        n_background=int(kw["n_background"]),
        k_scherrer=float(kw["k_scherrer"]),
        size_start_A=tuple(float(s) for s in sizes),
        refine_size=bool(kw["refine_size"]),
        refine_lattice=bool(kw["refine_lattice"]),
        refine_strain=bool(kw["refine_strain"]),
        refine_biso=bool(kw["refine_biso"]),
        refine_occupancy=_occupancy_choice(plist, kw["refine_occupancy"]),
        occupancy_sum=bool(kw["occupancy_sum"]),
        amorphous=bool(kw["amorphous"]),
        amorphous_start=kw["amorphous_start"],
        lattice_search=float(kw["lattice_search"]),
        max_nfev=int(kw["max_nfev"]),
        reference_composition=kw["reference_composition"],
    )


def fit_points(pattern: Pattern, xrange, notes: list[str]) -> Pattern:
    """The points fitted: inside ``xrange`` and with σ > 0 (Poisson σ when none)."""
    pat = pattern if xrange is None else pattern.crop(*xrange)
    if pat.sigma is None:
        sigma = np.sqrt(np.maximum(pat.y, 1.0))
        notes.append("no uncertainties in the pattern: Poisson σ = √y assumed")
    else:
        sigma = pat.sigma
    good = sigma > 0
    if good.sum() < 10:
        raise InputError(f"{pattern.source}: fewer than 10 points with σ > 0")
    return Pattern(
        pat.x[good], pat.y[good], pat.unit, pat.wavelength_A, sigma[good], dict(pat.metadata)
    )


def reference_on(reference: Pattern, pat: Pattern) -> np.ndarray:
    """A background pattern interpolated onto the data points (same unit required)."""
    if reference.unit != pat.unit:
        raise InputError(
            f"{reference.source}: background pattern is in {reference.unit}, data in {pat.unit}"
        )
    if reference.x[0] > pat.x[0] + 1e-9 or reference.x[-1] < pat.x[-1] - 1e-9:
        raise InputError(
            f"{reference.source}: background pattern covers {reference.x[0]:.4g}–"
            f"{reference.x[-1]:.4g}, the fit needs {pat.x[0]:.4g}–{pat.x[-1]:.4g} {pat.unit}"
        )
    # Poisson noise in a regressor biases its scale towards 0 (errors in variables): the
    # broad amorphous reference is smoothed first (Savitzky & Golay 1964, Anal. Chem. 36,
    # 1627; cubic, window 1 % of its points), which keeps features wider than that
    from scipy.signal import savgol_filter

    n = reference.x.size
    win = max(7, (n // 100) | 1)
    y_ref = savgol_filter(reference.y, win, 3) if n > win else reference.y
    return np.interp(pat.x, reference.x, y_ref)


def build_model(pat: Pattern, plist: list[Phase], opts: Options, background_pattern) -> Model:
    """The forward model on the fitted points."""
    return Model(
        pat.x,
        pat.unit,
        None if opts.is_lab else pat.wavelength_A,
        plist,
        resolution=opts.resolution,
        fwhm_inst=0.0 if opts.fwhm_inst is None else opts.fwhm_inst,
        n_background=opts.n_background,
        amorphous=opts.amorphous,
        occ_refine=opts.refine_occupancy,
        reference=None if background_pattern is None else reference_on(background_pattern, pat),
        lines=opts.lines,
        goniometer_radius_mm=opts.goniometer_radius_mm,
    )


class _Builder:
    """lmfit Parameters with the stage that frees each (all start fixed)."""

    def __init__(self) -> None:
        import lmfit

        self.params = lmfit.Parameters()
        self.groups: dict[str, list[str]] = {s: [] for s in STAGES}

    def add(self, name: str, value: float, stage: str | None = None, **bounds: float) -> None:
        self.params.add(name, value=value, vary=False, **bounds)
        if stage is not None:
            self.groups[stage].append(name)


def build_parameters(model: Model, opts: Options) -> tuple[Any, dict[str, list[str]]]:
    """lmfit Parameters of ``model`` and the names freed at each stage (:data:`STAGES`)."""
    b = _Builder()
    x = model.x
    dx = float(x[-1] - x[0])
    b.add("zero", 0.0, "lattice+zero" if opts.refine_zero else None, min=-0.02 * dx, max=0.02 * dx)
    if opts.displacement:
        b.add("displ_mm", 0.0, "lattice+zero", min=-3.0, max=3.0)
    if opts.transparency:
        b.add("transp_mm", 0.05, "lattice+zero", min=0.0, max=3.0)
    if opts.is_lab:
        b.add(
            "ka2_ratio",
            opts.lines[1][1],
            "profile" if opts.refine_ka2_ratio else None,
            min=0.3,
            max=0.7,
        )
        if opts.kbeta:
            b.add("kb_ratio", opts.lines[2][1], "profile", min=0.0, max=0.5)
    for j in range(model.nb):
        b.add(f"bkg_{j}", 0.0, "scale+background")
    if model.reference is not None:
        b.add("bkg_ref", 0.0, "scale+background", min=0.0)
    if model.amorphous:
        _add_hump(b, model, opts)
    for pm, s0 in zip(model.phases, opts.size_start_A, strict=True):
        _add_phase(b, pm, s0, opts)
    return b.params, b.groups


def _add_hump(b: _Builder, model: Model, opts: Options) -> None:
    x = model.x
    dx = float(x[-1] - x[0])
    if opts.amorphous_start is None:
        c0, f0 = 2.0, 1.5  # Å⁻¹
        if model.unit == units.TTH_DEG:
            wl = opts.lines[0][0] if opts.is_lab else model.wl
            c0 = float(units.q_to_tth(c0, wl))
            f0 = float(units.q_to_tth(3.5, wl)) - float(units.q_to_tth(2.0, wl))
    else:
        c0, f0 = (float(v) for v in opts.amorphous_start)
    b.add("amor_amp", 0.0, "scale+background", min=0.0)
    b.add("amor_x0", c0, "profile", min=x[0] - dx, max=x[-1])
    b.add("amor_fwhm", f0, "profile", min=0.01 * dx, max=2 * dx)


def _add_phase(b: _Builder, pm: PhaseModel, size0_A: float, opts: Options) -> None:
    pre = pm.prefix
    b.add(pre + "scale", 1.0, "scale+background", min=0.0)
    for k in pm.free_cell:
        v0 = pm.phase.cell[("a", "b", "c", "alpha", "beta", "gamma").index(k)]
        rel = 0.06 if k in "abc" else 0.03
        stage = "lattice+zero" if opts.refine_lattice else None
        b.add(pre + k, v0, stage, min=v0 * (1 - rel), max=v0 * (1 + rel))
    _add_size(b, pm, size0_A, opts)
    b.add(
        pre + "strain",
        1e-3 if opts.refine_strain else 0.0,
        "profile" if opts.refine_strain else None,
        min=0.0,
        max=0.05,
    )
    if opts.refine_biso:
        for el in pm.elements:
            b0 = float(np.mean([s.biso_A2 for s in pm.phase.sites if s.symbol == el]))
            b.add(pre + "B_" + el, b0, "biso+occupancy", min=0.0, max=5.0)
    for lab in pm.occ_refine:
        s = next(t for t in pm.phase.sites if t.label == lab)
        b.add(pre + "occ_" + lab, s.occupancy, "biso+occupancy", min=0.0, max=1.0)
    _sites.add_occupancy_constraints(b.params, pre, pm.phase, exchange=opts.occupancy_sum)


def _add_size(b: _Builder, pm: PhaseModel, size0_A: float, opts: Options) -> None:
    r"""The sphere size: the refined width and the derived D and Scherrer length (``expr``).

    ``width`` is the FWHM (Å⁻¹) of the sphere size profile as a pseudo-Voigt,
    2π·1.0286/D (:mod:`xrdpdf.physics.crystallite`); ``diameter_A`` = D and ``size_A`` = K·D/1.10665
    follow from it, so that lmfit propagates their esds.
    """
    pre = pm.prefix
    d0 = float(diameter_from_scherrer(size0_A, opts.k_scherrer))
    b.add(
        pre + "width",
        2 * math.pi * SPHERE_PV_FWHM / d0,
        "profile" if opts.refine_size else None,
        min=1e-5,
        max=5.0,
    )
    b.params.add(pre + "diameter_A", expr=f"2*pi*{SPHERE_PV_FWHM!r}/{pre}width")
    b.params.add(pre + "size_A", expr=f"{opts.k_scherrer / SPHERE_K_FWHM!r}*{pre}diameter_A")
