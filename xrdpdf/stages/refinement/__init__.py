r"""Rietveld-lite whole-pattern refinement on lmfit.

One call, :func:`refine`, fits a powder pattern (I(Q) from the synchrotron, or
I(2θ) at any wavelength, or lab Cu Kα1/Kα2 Bragg–Brentano data) with one or
more crystal phases from :mod:`xrdpdf.physics`:

* per phase: scale, free cell parameters of its crystal system, Scherrer size
  (Lorentzian width 2πK/L in Q), optional microstrain (2εQ), Biso per element,
  occupancies (by default those sites that share a position, e.g. Na on the
  NaTiO2 4a site; vacancies allowed, or a sum constraint);
* global: zero offset, Chebyshev background (n terms), instrument Gaussian
  width (refined when no resolution file is given), optional broad amorphous
  hump (a Gaussian in x).

The release is staged: scale + background → (isotropic lattice search) →
lattice + zero → profile → Biso/occupancy, each stage a bounded Levenberg–
Marquardt least-squares fit (lmfit ``leastsq``) with weights 1/σ².

Notes
-----
Model (Q data; 2θ data without Cu Kα are the Q model evaluated at Q(2θ − zero)):

.. math::

    y_c(Q) = y_b(Q) + \sum_p S_p \sum_h \frac{m_h |F_h|^2}{V_p^2 Q_h^2}
             \,\mathrm{pV}(Q - Q_h - Z;\ \Gamma_h, \eta_h)

For lab Cu Kα data each reflection contributes a Kα1 and a Kα2 (½) line with
area :math:`S_p m|F|^2 L_p/V_p^2` and :math:`L_p=(1+\cos^2 2\theta)/(\sin^2\theta\cos\theta)`.
Widths: Gaussian Γ_G from the instrument, Lorentzian
:math:`\Gamma_L = \Gamma_{L,inst} + 2\pi K/L + 2\varepsilon Q` (in Q, mapped to
2θ by dQ/d2θ), combined by Thompson–Cox–Hastings.

Figures of merit (Toby 2006 [1]_), w = 1/σ², N points, P varied parameters;
the background is *included* in the denominators:

.. math::

    R_{wp} = \sqrt{\frac{\sum w(y_o-y_c)^2}{\sum w y_o^2}},\quad
    R_p = \frac{\sum|y_o-y_c|}{\sum y_o},\quad
    R_{exp} = \sqrt{\frac{N-P}{\sum w y_o^2}},\quad
    \chi^2 = \frac{\sum w(y_o-y_c)^2}{N-P},\quad \mathrm{GoF}=\sqrt{\chi^2}

:math:`R_{Bragg} = \sum_h |I_{o,h}-I_{c,h}|/\sum_h I_{o,h}` with the Rietveld
partition :math:`I_{o,h} = \sum_i c_{ih}(y_o-y_b)_i/(y_c-y_b)_i` [2]_.
Weight fractions (Hill & Howard 1987 [3]_): the scale multiplies
m|F|²/V², so it is proportional to the volume fraction and
:math:`w_p = S_p\rho_p/\sum_i S_i\rho_i`, ρ the crystallographic density.

Estimated standard deviations are lmfit's (covariance scaled by χ²).

References
----------
.. [1] B. H. Toby (2006). Powder Diffr. 21, 67. https://doi.org/10.1154/1.2179804
.. [2] H. M. Rietveld (1969). J. Appl. Cryst. 2, 65. https://doi.org/10.1107/S0021889869006558
.. [3] R. J. Hill & C. J. Howard (1987). J. Appl. Cryst. 20, 467.
       https://doi.org/10.1107/S0021889887086199
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf._core.results import Result
from xrdpdf.physics.cif import get_phase
from xrdpdf.physics.crystal import Phase, Reflections, q_from_cell, reflection_intensities
from xrdpdf.physics.profiles import lp_bragg_brentano, pv_sum, tch_fwhm_eta, tch_split
from xrdpdf.physics.resolution import Resolution, scherrer_size_definition
from xrdpdf.physics.scattering import anode_lines
from xrdpdf.stages.refinement import _fractions as _fr
from xrdpdf.stages.refinement import _sites

__all__ = ["refine", "RefinementResult", "PhaseResult", "RefinementWarning", "STAGES"]

#: Stage names, in release order.
STAGES = ("scale+background", "lattice+zero", "profile", "biso+occupancy")
_LN2 = math.log(2.0)


#: Goniometer radius (mm) assumed when none is given: the PANalytical X'Pert / Empyrean
#: and Bruker D8 standard circles are 240 and 250 mm (Philips PW1050: 173 mm).
DEFAULT_GONIOMETER_RADIUS_MM = 240.0


class RefinementWarning(UserWarning):
    """Issued when a refinement did not converge (the result says ``converged=False``)."""


# ------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class PhaseResult(Result):
    """Refined values of one phase (values with their esd; esd None if not refined).

    Attributes
    ----------
    name : str
    phase : Phase
        The phase with refined cell, occupancies and Biso.
    cell : dict
        Free cell parameter → (value, esd) (Å or degrees); empty when not detected.
    a_A, a_esd_A : float or None
        None when the phase is not detected.
    size_A, size_esd_A : float or None
        Scherrer size L = 2πK/Γ_L,size (Å) with the K given; ``None`` if not refined.
    strain, strain_esd : float or None
    scale, scale_esd : float
    weight_fraction, weight_fraction_esd : float
    r_bragg : float
    occupancy, occupancy_esd : dict
        Site label → value (esd None for fixed sites).
    biso_A2, biso_esd_A2 : dict
        Element → Biso (Å²).
    ticks : ndarray
        Reflection positions in the pattern's x unit (Kα1 for Cu Kα data).
    hkl : ndarray
        (M, 3) Miller indices of ``ticks``.
    y_calc : ndarray
        This phase's calculated contribution on the pattern grid.
    detected : bool
        False when the scale is not significant (< 3 esd): weight fraction 0, lattice,
        size and strain None.
    crystalline_fraction, crystalline_fraction_esd : float or None
        Fraction of the sample's atoms (coherent scattering in ⟨f²⟩ units) in this
        phase, from the phase and amorphous-reference scales
        (:mod:`xrdpdf.stages.refinement._fractions`); None without a reference and its composition.
    size_is_lower_bound : bool
        True when all broadening is attributed to size (no resolution, ``fwhm_inst=0``).
        Without either, a free Gaussian instrument width is refined and the size is
        not bounded.
    biso_at_bound, occupancy_at_bound : tuple of str
        Elements whose Biso, and site labels whose occupancy, ran to a bound: fixed
        there (esd None) and refined no further; the data do not determine them.
    """

    name: str
    phase: Phase
    cell: dict[str, tuple[float, float | None]]
    a_A: float | None
    a_esd_A: float | None
    size_A: float | None
    size_esd_A: float | None
    strain: float | None
    strain_esd: float | None
    scale: float
    scale_esd: float | None
    weight_fraction: float
    weight_fraction_esd: float | None
    r_bragg: float
    occupancy: dict[str, float]
    occupancy_esd: dict[str, float | None]
    biso_A2: dict[str, float]
    biso_esd_A2: dict[str, float | None]
    ticks: np.ndarray
    hkl: np.ndarray
    y_calc: np.ndarray
    detected: bool = True
    crystalline_fraction: float | None = None
    crystalline_fraction_esd: float | None = None
    size_is_lower_bound: bool = False
    biso_at_bound: tuple[str, ...] = ()
    occupancy_at_bound: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``name``, ``a_A``, ``size_A``, ``weight_fraction``, …)."""
        return {
            "name": self.name,
            "detected": self.detected,
            "crystalline_fraction": self.crystalline_fraction,
            "crystalline_fraction_esd": self.crystalline_fraction_esd,
            "size_is_lower_bound": self.size_is_lower_bound,
            "spacegroup": self.phase.spacegroup_symbol,
            "a_A": self.a_A,
            "a_esd_A": self.a_esd_A,
            "cell": {k: {"value": v, "esd": e} for k, (v, e) in self.cell.items()},
            "size_A": self.size_A,
            "size_esd_A": self.size_esd_A,
            "strain": self.strain,
            "strain_esd": self.strain_esd,
            "scale": self.scale,
            "scale_esd": self.scale_esd,
            "weight_fraction": self.weight_fraction,
            "weight_fraction_esd": self.weight_fraction_esd,
            "r_bragg": self.r_bragg,
            "occupancy": dict(self.occupancy),
            "occupancy_esd": dict(self.occupancy_esd),
            "biso_A2": dict(self.biso_A2),
            "biso_esd_A2": dict(self.biso_esd_A2),
            "biso_at_bound": list(self.biso_at_bound),
            "occupancy_at_bound": list(self.occupancy_at_bound),
            "density_g_cm3": self.phase.density_g_cm3,
        }


@dataclass(frozen=True, eq=False)
class RefinementResult(Result):
    """Outcome of :func:`refine`.

    Attributes
    ----------
    pattern : Pattern
        The data points used (points with σ ≤ 0 or outside the range removed).
    y_calc, y_background : (N,) ndarray
        Total calculation and background (Chebyshev + amorphous hump).
    phases : tuple of PhaseResult
    zero, zero_esd : float
        Zero offset in the pattern's x unit.
    rwp, rp, rexp, chi2, gof : float
        Figures of merit (module Notes); background included in denominators.
    n_points, n_params : int
    converged : bool
        False when the least squares stopped without converging, gave no
        covariance, or left a lattice parameter at its bound.
    message : str
        Why it did or did not converge.
    warnings : tuple of str
        Plain-language cautions (also issued as :class:`RefinementWarning` when
        not converged).
    correlations : list of (str, str, float)
        Parameter pairs with |r| > 0.8.
    parameters : dict
        Every parameter → {"value", "esd", "vary", "min", "max"}.
    stages : list of dict
        Per stage: name, nfev, chi2, success.
    k_scherrer : float
    size_definition : str
    unit : str
    displacement_mm, displacement_esd_mm : float or None
        Refined Bragg–Brentano sample displacement s (mm); None when not refined.
    aberrations : tuple of str
        The 2θ aberration terms refined (``"zero"``, ``"displacement"``, ``"transparency"``).
    """

    pattern: Pattern
    y_calc: np.ndarray
    y_background: np.ndarray
    phases: tuple[PhaseResult, ...]
    zero: float
    zero_esd: float | None
    rwp: float
    rp: float
    rexp: float
    chi2: float
    gof: float
    n_points: int
    n_params: int
    converged: bool
    message: str
    warnings: tuple[str, ...]
    correlations: list[tuple[str, str, float]]
    parameters: dict[str, dict[str, Any]]
    stages: list[dict[str, Any]]
    k_scherrer: float
    size_definition: str
    unit: str
    background_coeffs: tuple[float, ...] = field(default=())
    displacement_mm: float | None = None
    displacement_esd_mm: float | None = None
    aberrations: tuple[str, ...] = ()

    @property
    def x(self) -> np.ndarray:
        """Radial values of the fitted points."""
        return self.pattern.x

    @property
    def y_obs(self) -> np.ndarray:
        """Observed intensities."""
        return self.pattern.y

    @property
    def difference(self) -> np.ndarray:
        """y_obs − y_calc."""
        return self.pattern.y - self.y_calc

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary; top-level ``a_A`` etc. are the first phase's."""
        first = self.phases[0]
        return {
            "a_A": first.a_A,
            "a_esd_A": first.a_esd_A,
            "size_A": first.size_A,
            "size_esd_A": first.size_esd_A,
            "size_definition": self.size_definition,
            "k_scherrer": self.k_scherrer,
            "rwp": self.rwp,
            "rp": self.rp,
            "rexp": self.rexp,
            "chi2": self.chi2,
            "gof": self.gof,
            "converged": self.converged,
            "message": self.message,
            "warnings": list(self.warnings),
            "zero": self.zero,
            "zero_esd": self.zero_esd,
            "displacement_mm": self.displacement_mm,
            "displacement_esd_mm": self.displacement_esd_mm,
            "aberrations": list(self.aberrations),
            "unit": self.unit,
            "n_points": self.n_points,
            "n_params": self.n_params,
            "phases": [p.to_dict() | {"occupancy": dict(p.occupancy)} for p in self.phases],
            "correlations": [{"a": a, "b": b, "r": r} for a, b, r in self.correlations],
            "stages": list(self.stages),
        }

    def __repr__(self) -> str:
        ph = ", ".join(
            f"{p.name}: a={p.a_A:.5f} Å" if p.detected else f"{p.name}: not detected"
            for p in self.phases
        )
        return (
            f"RefinementResult({ph}; Rwp={self.rwp:.4f}, GoF={self.gof:.3g}, "
            f"converged={self.converged})"
        )


size_definition = scherrer_size_definition


# -------------------------------------------------------------------------- model
class _PhaseModel:
    def __init__(self, idx: int, phase: Phase, qmax: float, occ_refine: Sequence[str]) -> None:
        self.i = idx
        self.phase = phase
        self.prefix = f"p{idx}_"
        self.refl: Reflections = phase.reflections(qmax)
        self.labels = [s.label for s in phase.sites]
        self.elements = list(phase.elements)
        self.site_el = [s.symbol for s in phase.sites]
        self.occ_refine = list(occ_refine)
        self.free_cell = phase.free_cell_parameters
        self.rho = phase.cell_mass_amu / phase.volume_A3

    def cell(self, v: Mapping[str, float]) -> tuple[float, ...]:
        return self.phase.cell_from_free({k: v[self.prefix + k] for k in self.free_cell})

    def peaks_q(self, v: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(Q_h, m|F|²/V²) for the current parameter values."""
        cell = self.cell(v)
        q = q_from_cell(self.refl.hkl, cell)
        occ = [
            v.get(self.prefix + "occ_" + lab, s.occupancy)
            for lab, s in zip(self.labels, self.phase.sites, strict=True)
        ]
        biso = [
            v.get(self.prefix + "B_" + el, s.biso_A2)
            for el, s in zip(self.site_el, self.phase.sites, strict=True)
        ]
        inten = reflection_intensities(self.refl, q, occ, biso)
        vol = _volume(cell)
        return q, inten / vol**2


def _volume(cell) -> float:
    a, b, c, al, be, ga = cell
    ca, cb, cg = np.cos(np.radians([al, be, ga]))
    return float(a * b * c * np.sqrt(max(1 - ca**2 - cb**2 - cg**2 + 2 * ca * cb * cg, 0.0)))


def _pv_matrix(x: np.ndarray, x0: np.ndarray, fw: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """(N, M) unit-area pseudo-Voigt profiles."""
    u2 = np.square((x[:, None] - x0[None, :]) / fw[None, :])
    g = np.exp(-4.0 * _LN2 * u2)
    g *= (2.0 * math.sqrt(_LN2 / math.pi)) * (1.0 - eta)[None, :] / fw[None, :]
    lor = (2.0 / math.pi) * (eta / fw)[None, :] / (1.0 + 4.0 * u2)
    return g + lor


class _Model:
    """Everything needed to compute y_calc from an lmfit parameter dict."""

    def __init__(
        self,
        x: np.ndarray,
        unit: str,
        wavelength_A: float | None,
        phases: Sequence[Phase],
        *,
        cuka: bool,
        resolution: Resolution | None,
        n_background: int,
        k_scherrer: float,
        amorphous: bool,
        occ_refine: Sequence[Sequence[str]],
        reference: np.ndarray | None = None,
        lines: Sequence[tuple[float, float]] = (),
        goniometer_radius_mm: float = DEFAULT_GONIOMETER_RADIUS_MM,
    ) -> None:
        self.x = x
        self.lines = tuple(lines)
        self.radius_mm = float(goniometer_radius_mm)
        self.reference = reference
        self.unit = unit
        self.wl = wavelength_A
        self.cuka = cuka
        self.resolution = resolution
        self.k = k_scherrer
        self.amorphous = amorphous
        self.nb = n_background
        lo, hi = float(x.min()), float(x.max())
        xt = 2.0 * (x - lo) / (hi - lo) - 1.0
        self.cheb = np.polynomial.chebyshev.chebvander(xt, n_background - 1)
        if cuka:
            wl_min = min(wl for wl, _ in self.lines)
            self.qgrid_max = float(units.tth_to_q(min(hi + 3.0, 179.0), wl_min))
        elif unit == units.TTH_DEG:
            self.qgrid_max = float(units.tth_to_q(hi + 1.0, wavelength_A))
        else:
            self.qgrid_max = hi
        # margin: cells may shrink by 6 %, and tails of peaks just beyond the range
        qmax = self.qgrid_max * 1.07 + 0.5
        self.phases = [_PhaseModel(i, p, qmax, occ_refine[i]) for i, p in enumerate(phases)]

    # ---- widths
    def _inst_q(self, qh: np.ndarray, v: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Instrument (Γ_G, Γ_L) in Q at qh for the Q or synchrotron-2θ case."""
        if self.resolution is not None:
            fw, eta = self.resolution.fwhm_eta_q(qh, self.wl)
            return tch_split(fw, eta)
        g = abs(v.get("inst_g", 0.0))
        if self.unit == units.TTH_DEG:
            th = np.arcsin(np.clip(qh * self.wl / (4 * np.pi), 0, 1))
            g = g * (2 * np.pi / self.wl) * np.cos(th) * np.radians(1.0)
        return np.broadcast_to(g, qh.shape), np.zeros_like(qh)

    def _lorentz_q(self, pm: _PhaseModel, qh: np.ndarray, v: Mapping[str, float]) -> np.ndarray:
        w = abs(v.get(pm.prefix + "width", 0.0))
        eps = abs(v.get(pm.prefix + "strain", 0.0))
        return w + 2.0 * eps * qh

    # ---- phase contributions
    def phase_peaks(self, pm: _PhaseModel, v: Mapping[str, float]):
        """Peak positions (x unit), areas (y·x unit), FWHM (x unit), η for one phase."""
        qh, i0 = pm.peaks_q(v)
        scale = v[pm.prefix + "scale"]
        zero = v.get("zero", 0.0)
        if not self.cuka:
            ig, il = self._inst_q(qh, v)
            fw, eta = tch_fwhm_eta(ig, il + self._lorentz_q(pm, qh, v))
            area = scale * i0 / qh**2
            if self.unit == units.Q_A:
                return qh + zero, area, fw, eta, np.arange(qh.size)
            ok = qh * self.wl / (4 * np.pi) < 0.999
            qh, area, fw, eta = qh[ok], area[ok], fw[ok], eta[ok]
            th = np.arcsin(qh * self.wl / (4 * np.pi))
            dq = (2 * np.pi / self.wl) * np.cos(th) * np.radians(1.0)  # Å⁻¹ per degree
            # point values: the Q profile mapped to 2θ keeps its height
            return np.degrees(2 * th) + zero, area / dq, fw / dq, eta, np.flatnonzero(ok)
        xs, areas, fws, etas, idx = [], [], [], [], []
        ratios = (1.0, v.get("ka2_ratio", 0.5), v.get("kb_ratio", 0.0))
        for (wl, _), ratio in zip(self.lines, ratios, strict=False):
            ok = qh * wl / (4 * np.pi) < 0.999
            q = qh[ok]
            th = np.arcsin(q * wl / (4 * np.pi))
            tth = np.degrees(2 * th)
            shift = self.bb_shift_deg(th, v)
            dq = (2 * np.pi / wl) * np.cos(th) * np.radians(1.0)
            if self.resolution is not None:
                fw_i, eta_i = self.resolution.fwhm_eta_tth(tth, wl)
                ig, il = tch_split(fw_i * dq, eta_i)
            else:
                ig, il = abs(v.get("inst_g", 0.0)) * dq, np.zeros_like(q)
            fw, eta = tch_fwhm_eta(ig, il + self._lorentz_q(pm, q, v))
            xs.append(tth + zero + shift)
            areas.append(ratio * scale * i0[ok] * lp_bragg_brentano(tth))
            fws.append(fw / dq)
            etas.append(eta)
            idx.append(np.flatnonzero(ok))
        return (
            np.concatenate(xs),
            np.concatenate(areas),
            np.concatenate(fws),
            np.concatenate(etas),
            np.concatenate(idx),
        )

    def bb_shift_deg(self, th: np.ndarray, v: Mapping[str, float]) -> np.ndarray:
        r"""Bragg–Brentano peak shift (degrees 2θ) of sample displacement and transparency.

        .. math::  \Delta 2\theta = -\frac{2 s\cos\theta}{R} - \frac{t\sin 2\theta}{R}

        s the sample displacement (mm, positive above the focusing circle), t = 1/(2μ)
        the transparency length (mm), R the goniometer radius (mm); Klug & Alexander
        (1974), *X-ray Diffraction Procedures*, 2nd ed., Wiley, §5.2.
        """
        s_mm = v.get("displ_mm", 0.0)
        t_mm = v.get("transp_mm", 0.0)
        return np.degrees(-(2 * s_mm * np.cos(th) + t_mm * np.sin(2 * th)) / self.radius_mm)

    def phase_profile(self, pm: _PhaseModel, v: Mapping[str, float], x=None) -> np.ndarray:
        x = self.x if x is None else x
        x0, area, fw, eta, _ = self.phase_peaks(pm, v)
        # only peaks whose ±40 FWHM window touches the grid
        keep = (x0 + 40 * fw > x[0]) & (x0 - 40 * fw < x[-1]) & (fw > 0)
        if not np.any(keep):
            return np.zeros_like(x)
        return pv_sum(x, x0[keep], fw[keep], eta[keep], area[keep])

    def background(self, v: Mapping[str, float]) -> np.ndarray:
        coeffs = np.array([v[f"bkg_{j}"] for j in range(self.nb)])
        y = self.cheb @ coeffs
        if self.amorphous:
            y = y + self.hump(v)
        if self.reference is not None:
            y = y + v["bkg_ref"] * self.reference
        return y

    def hump(self, v: Mapping[str, float]) -> np.ndarray:
        fw = abs(v["amor_fwhm"]) + 1e-12
        return v["amor_amp"] * np.exp(-4 * _LN2 * ((self.x - v["amor_x0"]) / fw) ** 2)

    def calc(self, v: Mapping[str, float]) -> np.ndarray:
        y = self.background(v)
        for pm in self.phases:
            y = y + self.phase_profile(pm, v)
        return y


# ------------------------------------------------------------------------ refine
def _as_phases(phases) -> list[Phase]:
    if isinstance(phases, Phase | str):
        phases = [phases]
    out = [get_phase(p) for p in phases]
    if not out:
        raise InputError("refine needs at least one phase")
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise InputError(f"phase names must differ, got {names}")
    return out


def refine(
    pattern: Pattern,
    phases: Phase | str | Sequence[Phase | str],
    *,
    cuka: bool = False,
    resolution: Resolution | None = None,
    anode: str | None = None,
    kbeta: bool = False,
    displacement: bool | None = None,
    transparency: bool = False,
    goniometer_radius_mm: float = DEFAULT_GONIOMETER_RADIUS_MM,
    refine_zero: bool | None = None,
    refine_ka2_ratio: bool = False,
    fwhm_inst: float | None = None,
    n_background: int = 6,
    k_scherrer: float = 0.9,
    size_start_A: float | Sequence[float] = 50.0,
    refine_size: bool = True,
    refine_lattice: bool = True,
    refine_strain: bool = False,
    refine_biso: bool = True,
    refine_occupancy: Mapping[str, Sequence[str]] | None = None,
    occupancy_sum: bool = True,
    amorphous: bool = False,
    amorphous_start: tuple[float, float] | None = None,
    background_pattern: Pattern | None = None,
    lattice_search: float = 0.03,
    xrange: tuple[float | None, float | None] | None = None,
    max_nfev: int = 2000,
    reference_composition: str | Mapping[str, float] | None = None,
) -> RefinementResult:
    r"""Refine crystal phases against a powder pattern.

    Parameters
    ----------
    pattern : Pattern
        I(Q) (``"q_A^-1"``) or I(2θ) (``"2th_deg"``, with its wavelength; for
        ``cuka`` the wavelength is ignored).  Points with σ ≤ 0 are dropped;
        without σ, Poisson σ = √max(y, 1) is used and a warning says so.
    phases : Phase, str or sequence
        Phases or built-in names / CIF paths (:func:`xrdpdf.physics.cif.get_phase`).
    cuka : bool
        Lab Cu Kα1 + Kα2 Bragg–Brentano data in 2θ (same as ``anode="Cu"``).
    anode : str, optional
        Lab tube anode (``"Cu"``, ``"Mo"``, ``"Co"``, ``"Ag"``, ``"Cr"``): Bragg–Brentano
        2θ data with its Kα1/Kα2 doublet (:func:`xrdpdf.physics.scattering.anode_lines`).
    kbeta : bool
        Add the Kβ1,3 line with a refined intensity (lab data only).
    displacement : bool, optional
        Refine the sample displacement s (mm; 2θ shift −2s cosθ/R).  Default: refined
        for lab (Bragg–Brentano) data, absent (zero) for Debye–Scherrer/transmission data.
    transparency : bool
        Also refine the transparency length t = 1/(2μ) (mm; shift −t sin2θ/R), lab only.
    goniometer_radius_mm : float
        Goniometer radius R (mm) that converts the shifts to s and t; default
        :data:`DEFAULT_GONIOMETER_RADIUS_MM`.
    refine_zero : bool, optional
        Refine the 2θ (or Q) zero offset.  Default: yes, except when displacement or
        transparency is refined (a zero offset and s cosθ are nearly collinear; the
        zero of a Bragg–Brentano goniometer is set by its alignment).
    refine_ka2_ratio : bool
        Refine the Kα2/Kα1 intensity ratio (start 0.5, bounds 0.3–0.7); it is only
        determined where the doublet is resolved (sharp peaks, high angles).
    resolution : Resolution, optional
        Instrument FWHM/η model; without it a constant Gaussian instrument
        width (in x units) is refined.
    fwhm_inst : float, optional
        Fixed Gaussian instrument FWHM in the pattern's x unit (instead of
        refining it); ignored with ``resolution``.
    n_background : int
        Chebyshev background terms (≥ 1).
    k_scherrer : float
        Scherrer K (FWHM).  0.9 ⇒ size ≈ V^⅓; 1.107 ⇒ sphere diameter D.
    size_start_A : float or sequence
        Start value of the size per phase (Å).
    refine_size, refine_strain, refine_biso : bool
        Free flags of these parameter groups.
    refine_lattice : bool
        Free the cell parameters (default); False keeps every cell as given (and skips
        the isotropic lattice search).
    refine_occupancy : mapping, optional
        Phase name → site labels whose occupancy is refined.  Default: on each shared
        position every site but the last (Na1 of NaTiO2).
    occupancy_sum : bool
        True (default): the occupancies on a shared position keep their starting sum,
        the split is refined and the last site is dependent (exchange, Ti1 = 1 − Na1,
        its esd propagated).  False: vacancies allowed, each free occupancy bounded so
        the position is at most full (desodiation: Na leaves, Ti stays).
        (:mod:`xrdpdf.stages.refinement._sites`).
    amorphous : bool
        Add a broad Gaussian hump (amplitude ≥ 0, centre, FWHM refined).
    background_pattern : Pattern, optional
        A measured pattern added to the background with a refined scale ≥ 0, e.g. the
        fully amorphous electrode as the reference for the amorphous matrix of a
        partly crystalline one.  It must be in the same unit as ``pattern`` and cover
        the fitted range; it is interpolated linearly onto the data points.
    amorphous_start : (centre, fwhm), optional
        In x units; default Q = 2.0, FWHM 1.5 Å⁻¹ (converted for 2θ).
    lattice_search : float
        Before the lattice least squares, scan an isotropic scale of all cells
        over ±``lattice_search`` (relative) and start from the best; 0 to skip.
    xrange : (xmin, xmax), optional
        Fit range in x units.
    max_nfev : int
        Function evaluations allowed per stage.
    reference_composition : str or mapping, optional
        Composition of the amorphous reference (``"TiO2"``); with ``background_pattern``
        on Q data it gives each phase's ``crystalline_fraction``
        (:mod:`xrdpdf.stages.refinement._fractions`).

    Returns
    -------
    RefinementResult

    Raises
    ------
    InputError
        Bad pattern, phase, unit, wavelength or settings.

    Warns
    -----
    RefinementWarning
        When the refinement did not converge (``converged`` is False).
    """
    import lmfit

    plist = _as_phases(phases)
    if anode is None and cuka:
        anode = "Cu"
    is_lab = anode is not None
    lines = anode_lines(anode, kbeta=kbeta) if is_lab else ()
    cuka = is_lab
    if kbeta and not is_lab:
        raise InputError("kbeta needs lab data (cuka=True or anode=…)")
    if displacement is None:
        displacement = is_lab
    if (displacement or transparency) and not is_lab:
        raise InputError(
            "sample displacement and transparency are Bragg–Brentano terms: give cuka or anode"
        )
    if not (10.0 <= goniometer_radius_mm <= 1000.0):
        raise InputError(f"goniometer_radius_mm must be 10…1000 mm, got {goniometer_radius_mm}")
    if n_background < 1 or n_background > 30:
        raise InputError(f"n_background must be 1…30, got {n_background}")
    if not (0 < k_scherrer < 5):
        raise InputError(f"k_scherrer must be in (0, 5), got {k_scherrer}")
    if pattern.unit not in (units.Q_A, units.TTH_DEG):
        raise InputError(f"{pattern.source}: cannot refine {pattern.unit} data (need Q or 2θ)")
    if cuka and pattern.unit != units.TTH_DEG:
        raise InputError(f"{pattern.source}: lab (cuka/anode) data must be 2θ (got {pattern.unit})")
    wl = None if cuka else pattern.wavelength_A
    if pattern.unit == units.TTH_DEG and not cuka:
        wl = units.check_wavelength(pattern.wavelength_A, f"{pattern.source}: 2θ refinement")
    notes: list[str] = []

    pat = pattern
    if xrange is not None:
        pat = pat.crop(*xrange)
    if pat.sigma is None:
        sigma = np.sqrt(np.maximum(pat.y, 1.0))
        notes.append("no uncertainties in the pattern: Poisson σ = √y assumed")
    else:
        sigma = pat.sigma
    good = sigma > 0
    if good.sum() < 10:
        raise InputError(f"{pattern.source}: fewer than 10 points with σ > 0")
    pat = Pattern(
        pat.x[good], pat.y[good], pat.unit, pat.wavelength_A, sigma[good], dict(pat.metadata)
    )
    x, y, sig = pat.x, pat.y, pat.sigma
    w = 1.0 / sig**2
    sizes0 = size_start_A if isinstance(size_start_A, Sequence) else [size_start_A] * len(plist)
    if len(sizes0) != len(plist):
        raise InputError("size_start_A: give one value or one per phase")

    occ_map = dict(refine_occupancy or {})
    for name in occ_map:
        if name not in [p.name for p in plist]:
            raise InputError(f"refine_occupancy: no phase {name!r}")
    occ_refine = [list(occ_map.get(p.name, _sites.default_free_occupancies(p))) for p in plist]
    for p, labs in zip(plist, occ_refine, strict=True):
        for lab in labs:
            if lab not in [s.label for s in p.sites]:
                raise InputError(f"refine_occupancy: {p.name} has no site {lab!r}")

    reference = None
    if background_pattern is not None:
        reference = _reference_on(background_pattern, pat)
    model = _Model(
        x,
        pat.unit,
        wl,
        plist,
        cuka=cuka,
        resolution=resolution,
        n_background=n_background,
        k_scherrer=k_scherrer,
        amorphous=amorphous,
        occ_refine=occ_refine,
        reference=reference,
        lines=lines,
        goniometer_radius_mm=goniometer_radius_mm,
    )

    # ------------------------------------------------------------- parameters
    params = lmfit.Parameters()
    groups: dict[str, list[str]] = {s: [] for s in STAGES}
    dx = float(x[-1] - x[0])
    params.add("zero", value=0.0, min=-0.02 * dx, max=0.02 * dx, vary=False)
    if refine_zero is None:
        refine_zero = not (displacement or transparency)
    if refine_zero:
        groups["lattice+zero"].append("zero")
    if displacement:
        params.add("displ_mm", value=0.0, min=-3.0, max=3.0, vary=False)
        groups["lattice+zero"].append("displ_mm")
    if transparency:
        params.add("transp_mm", value=0.05, min=0.0, max=3.0, vary=False)
        groups["lattice+zero"].append("transp_mm")
    if is_lab:
        params.add("ka2_ratio", value=lines[1][1], min=0.3, max=0.7, vary=False)
        if refine_ka2_ratio:
            groups["profile"].append("ka2_ratio")
        if kbeta:
            params.add("kb_ratio", value=lines[2][1], min=0.0, max=0.5, vary=False)
            groups["profile"].append("kb_ratio")
    for j in range(n_background):
        params.add(f"bkg_{j}", value=0.0, vary=False)
        groups["scale+background"].append(f"bkg_{j}")
    if reference is not None:
        params.add("bkg_ref", value=0.0, min=0.0, vary=False)
        groups["scale+background"].append("bkg_ref")
    if resolution is None:
        if fwhm_inst is not None:
            params.add("inst_g", value=float(fwhm_inst), vary=False)
        else:
            g0 = 0.05 if pat.unit == units.TTH_DEG else 0.01
            params.add("inst_g", value=g0, min=0.0, max=0.2 * dx, vary=False)
            groups["profile"].append("inst_g")
            notes.append(
                "no resolution file: a constant Gaussian instrument width was refined "
                "(size is then a lower bound if the instrument has Lorentzian broadening)"
            )
    if amorphous:
        if amorphous_start is None:
            c0, f0 = 2.0, 1.5
            if pat.unit == units.TTH_DEG:
                wl_h = lines[0][0] if cuka else wl
                c0 = float(units.q_to_tth(c0, wl_h))
                f0 = float(units.q_to_tth(3.5, wl_h)) - float(units.q_to_tth(2.0, wl_h))
        else:
            c0, f0 = (float(v) for v in amorphous_start)
        params.add("amor_amp", value=0.0, min=0.0, vary=False)
        params.add("amor_x0", value=c0, min=x[0] - dx, max=x[-1], vary=False)
        params.add("amor_fwhm", value=f0, min=0.01 * dx, max=2 * dx, vary=False)
        groups["scale+background"].append("amor_amp")
        groups["profile"] += ["amor_x0", "amor_fwhm"]
    for pm, s0 in zip(model.phases, sizes0, strict=True):
        pre = pm.prefix
        params.add(pre + "scale", value=1.0, min=0.0, vary=False)
        groups["scale+background"].append(pre + "scale")
        for k in pm.free_cell:
            v0 = pm.phase.cell[("a", "b", "c", "alpha", "beta", "gamma").index(k)]
            rel = 0.06 if k in "abc" else 0.03
            params.add(pre + k, value=v0, min=v0 * (1 - rel), max=v0 * (1 + rel), vary=False)
            if refine_lattice:
                groups["lattice+zero"].append(pre + k)
        w0 = 2 * math.pi * k_scherrer / float(s0)
        params.add(pre + "width", value=w0, min=1e-5, max=5.0, vary=False)
        if refine_size:
            groups["profile"].append(pre + "width")
        params.add(pre + "strain", value=0.0, min=0.0, max=0.05, vary=False)
        if refine_strain:
            params[pre + "strain"].set(value=1e-3)
            groups["profile"].append(pre + "strain")
        if refine_biso:
            for el in pm.elements:
                b0 = float(np.mean([s.biso_A2 for s in pm.phase.sites if s.symbol == el]))
                params.add(pre + "B_" + el, value=b0, min=0.0, max=5.0, vary=False)
                groups["biso+occupancy"].append(pre + "B_" + el)
        for lab in pm.occ_refine:
            s = next(t for t in pm.phase.sites if t.label == lab)
            params.add(pre + "occ_" + lab, value=s.occupancy, min=0.0, max=1.0, vary=False)
            groups["biso+occupancy"].append(pre + "occ_" + lab)
        _sites.add_occupancy_constraints(params, pm.prefix, pm.phase, exchange=occupancy_sum)

    def resid(p):
        v = p.valuesdict()
        return (y - model.calc(v)) * np.sqrt(w)

    # ------------------------------------------------ stage 1: linear start
    _linear_start(params, model, y, w)
    stage_log: list[dict[str, Any]] = []
    released: list[str] = []
    absent: set[str] = set()
    last = None
    for stage in STAGES:
        if stage == "lattice+zero":
            if lattice_search > 0 and refine_lattice:
                _lattice_search(params, model, y, w, lattice_search)
            # a phase whose scale is not significant (linear fit, 3σ) keeps all but its
            # scale fixed from now on: its other parameters are undefined
            absent = _absent_phases(params, model, y, w)
        released += [n for n in groups[stage] if n in params]
        if not groups[stage] and last is not None:
            continue
        for n in released:
            params[n].vary = not any(
                n.startswith(pre) and not n.endswith("_scale") for pre in absent
            )
        mini = lmfit.Minimizer(resid, params, nan_policy="raise")
        last = mini.minimize(method="leastsq", max_nfev=max_nfev)
        params = last.params
        stage_log.append(
            {
                "stage": stage,
                "nfev": int(last.nfev),
                "chi2": float(last.redchi),
                "success": bool(last.success),
            }
        )
    assert last is not None
    # Biso and occupancies that ended on a bound are fixed there and the fit repeated
    site_pars = [pm.prefix + "B_" + el for pm in model.phases for el in pm.elements]
    site_pars += [pm.prefix + "occ_" + s.label for pm in model.phases for s in pm.phase.sites]
    at_bound = _sites.fix_at_bounds(params, site_pars)
    if at_bound:
        last = lmfit.Minimizer(resid, params, nan_policy="raise").minimize(
            method="leastsq", max_nfev=max_nfev
        )
        params = last.params
        stage_log.append(
            {
                "stage": "fixed at bounds: " + ", ".join(at_bound),
                "nfev": int(last.nfev),
                "chi2": float(last.redchi),
                "success": bool(last.success),
            }
        )

    # ------------------------------------------------------------ outcome
    v = params.valuesdict()
    y_calc = model.calc(v)
    y_bkg = model.background(v)
    n_par = int(last.nvarys)
    npts = int(y.size)
    dof = max(npts - n_par, 1)
    sw = float(np.sum(w * y**2))
    ssr = float(np.sum(w * (y - y_calc) ** 2))
    rwp = math.sqrt(ssr / sw) if sw > 0 else float("nan")
    rp = float(np.sum(np.abs(y - y_calc)) / np.sum(np.abs(y)))
    rexp = math.sqrt(dof / sw) if sw > 0 else float("nan")
    chi2 = ssr / dof
    gof = math.sqrt(chi2)

    converged = bool(last.success)
    reasons = []
    if not last.success:
        reasons.append(f"least squares stopped: {last.message}")
    if not last.errorbars and not absent:
        converged = False
        reasons.append("no covariance matrix (singular or ill-conditioned problem)")
    for pm in model.phases:
        for k in pm.free_cell:
            par = params[pm.prefix + k]
            span = par.max - par.min
            if min(par.value - par.min, par.max - par.value) < 1e-4 * span:
                converged = False
                reasons.append(f"{pm.phase.name} {k} ran to its bound {par.value:.5g}")
    undetected: set[str] = set()
    for pm in model.phases:
        sc = params[pm.prefix + "scale"]
        sc_e = _esd(sc)
        if pm.prefix in absent or (sc_e is not None and not sc.value > 3 * sc_e):
            undetected.add(pm.prefix)
            esd_txt = "" if sc_e is None else f" ± {sc_e:.2g}"
            notes.append(
                f"{pm.phase.name} is not detected (scale {sc.value:.3g}{esd_txt} is below "
                "3 esd): weight fraction 0, lattice and size undetermined"
            )
            continue
        for k in pm.free_cell:
            e = _esd(params[pm.prefix + k])
            undetermined = e is None or e > 0.01 * abs(params[pm.prefix + k].value)
            if refine_lattice and last.errorbars and undetermined:
                converged = False
                reasons.append(f"{pm.phase.name} {k} is undetermined (esd {e})")
    for name, par in params.items():
        if par.vary and not np.isfinite(par.value):
            converged = False
            reasons.append(f"{name} is not finite")
    message = "converged" if converged else "; ".join(reasons) or "did not converge"
    if not converged:
        notes.insert(0, f"refinement did not converge: {message}")
    bound_notes = []
    for pm in model.phases:
        for n in at_bound:
            if n.startswith(pm.prefix + "B_"):
                el = n[len(pm.prefix) + 2 :]
                txt = f"{pm.phase.name} Biso({el}) ran to its bound {params[n].value:g} Å²"
            elif n.startswith(pm.prefix + "occ_"):
                lab = n[len(pm.prefix) + 4 :]
                txt = (
                    f"{pm.phase.name} occupancy of {lab} ran to its bound {params[n].value:.4g} "
                    "(empty, or the position full)"
                )
            else:
                continue
            bound_notes.append(txt + ": fixed there, no esd")
    notes += bound_notes

    correlations = []
    names = [n for n, p in params.items() if p.vary]
    for i, a in enumerate(names):
        cor = params[a].correl or {}
        for b in names[i + 1 :]:
            r = cor.get(b)
            if r is not None and abs(r) > 0.8:
                correlations.append((a, b, float(r)))

    fr = _fractions(model, params, last, undetected, w, reference_composition)
    all_size = resolution is None and fwhm_inst == 0.0
    phase_results = _phase_results(
        model,
        params,
        x,
        y,
        y_calc,
        y_bkg,
        fr,
        undetected,
        size_lower_bound=all_size,
        at_bound=set(at_bound),
    )
    aberr = tuple(
        t
        for t, n in (("zero", "zero"), ("displacement", "displ_mm"), ("transparency", "transp_mm"))
        if n in params and params[n].vary
    )
    result = RefinementResult(
        pattern=pat,
        y_calc=y_calc,
        y_background=y_bkg,
        phases=tuple(phase_results),
        zero=float(v["zero"]),
        zero_esd=_esd(params["zero"]),
        rwp=rwp,
        rp=rp,
        rexp=rexp,
        chi2=chi2,
        gof=gof,
        n_points=npts,
        n_params=n_par,
        converged=converged,
        message=message,
        warnings=tuple(notes),
        correlations=correlations,
        parameters={
            n: {
                "value": float(p.value),
                "esd": _esd(p),
                "vary": bool(p.vary),
                "min": float(p.min),
                "max": float(p.max),
            }
            for n, p in params.items()
        },
        stages=stage_log,
        k_scherrer=k_scherrer,
        size_definition=size_definition(k_scherrer),
        unit=pat.unit,
        background_coeffs=tuple(float(v[f"bkg_{j}"]) for j in range(n_background)),
        displacement_mm=float(v["displ_mm"]) if "displ_mm" in v else None,
        displacement_esd_mm=_esd(params["displ_mm"]) if "displ_mm" in params else None,
        aberrations=aberr,
    )
    if not converged:
        warnings.warn(f"refinement did not converge: {message}", RefinementWarning, stacklevel=2)
    for txt in bound_notes:
        warnings.warn(txt, RefinementWarning, stacklevel=2)
    return result


def _esd(par) -> float | None:
    e = par.stderr
    if e is None or not np.isfinite(e):
        return None
    return float(e)


def _refined_phase(pm: _PhaseModel, v: Mapping[str, float]) -> Phase:
    """The phase with the refined cell, occupancies (clipped to 0…1) and Biso."""
    occ = {s.label: float(v.get(pm.prefix + "occ_" + s.label, s.occupancy)) for s in pm.phase.sites}
    biso = {s.label: float(v.get(pm.prefix + "B_" + s.symbol, s.biso_A2)) for s in pm.phase.sites}
    ph = pm.phase.with_sites(
        occupancy={k: min(max(val, 0.0), 1.0) for k, val in occ.items()}, biso_A2=biso
    )
    return ph.with_cell(**{k: v[pm.prefix + k] for k in pm.free_cell})


def _fractions(model: _Model, params, fit, undetected: set[str], w, composition) -> dict:
    """Weight fractions (undetected phases 0) and crystalline fractions, with esds."""
    v = params.valuesdict()
    det = [pm for pm in model.phases if pm.prefix not in undetected]
    refined = {pm.prefix: _refined_phase(pm, v) for pm in det}
    s = np.array([v[pm.prefix + "scale"] for pm in det])
    rho = np.array([refined[pm.prefix].cell_mass_amu / refined[pm.prefix].volume_A3 for pm in det])
    names = [pm.prefix + "scale" for pm in det]
    wf, wf_e = _fr.weight_fractions(s, rho, _fr.covariance_of(fit, names))
    out = {
        pm.prefix: {"wf": 0.0, "wf_esd": None, "xf": None, "xf_esd": None} for pm in model.phases
    }
    for pm, f, e in zip(det, wf, wf_e, strict=True):
        out[pm.prefix].update(wf=f, wf_esd=e)
    if model.reference is None or composition is None or model.unit != units.Q_A:
        return out
    c_ref = _fr.reference_atoms_per_scale(model.x, model.reference, _fr.parse_formula(composition))
    if c_ref is None:
        return out
    atoms = np.array([_fr.atoms_per_scale(refined[pm.prefix]) for pm in det])
    cov = _fr.covariance_of(fit, [*names, "bkg_ref"])
    xf, xf_e = _fr.crystalline_fractions(s, atoms, v["bkg_ref"], c_ref, cov)
    for pm in model.phases:
        out[pm.prefix].update(xf=0.0, xf_esd=None)
    for pm, f, e in zip(det, xf, xf_e, strict=True):
        out[pm.prefix].update(xf=f, xf_esd=e)
    return out


def _reference_on(reference: Pattern, pat: Pattern) -> np.ndarray:
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


def _linear_columns(model: _Model, v: Mapping[str, float], sel: slice = slice(None)) -> list:
    """Columns of the part of the model that is linear in its amplitudes, on ``model.x[sel]``.

    Order: each phase at unit scale, the Chebyshev terms, the amorphous hump at unit
    amplitude, the background pattern.  Shared by the linear start, the absent-phase test
    and the lattice search, so that all three see the same background.
    """
    x = model.x[sel]
    cols = []
    for pm in model.phases:
        vv = dict(v)
        vv[pm.prefix + "scale"] = 1.0
        cols.append(model.phase_profile(pm, vv, x))
    cols += [model.cheb[sel, j] for j in range(model.nb)]
    if model.amorphous:
        vv = dict(v)
        vv["amor_amp"] = 1.0
        cols.append(model.hump(vv)[sel])
    if model.reference is not None:
        cols.append(model.reference[sel])
    return cols


def _linear_start(params, model: _Model, y: np.ndarray, w: np.ndarray) -> None:
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


def _absent_phases(params, model: _Model, y, w) -> set[str]:
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


def _lattice_search(params, model: _Model, y, w, rel: float) -> None:
    """Scan an isotropic scale factor of every cell; keep the best linear fit."""
    v0 = params.valuesdict()
    widths = []
    for pm in model.phases:
        _, _, fw, _, _ = model.phase_peaks(pm, v0)
        if fw.size:
            widths.append(float(np.median(fw)))
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
        vv = dict(v0)
        for pm in model.phases:
            for k in pm.free_cell:
                if k in "abc":
                    vv[pm.prefix + k] = v0[pm.prefix + k] * f
        a = np.stack(_linear_columns(model, vv, sel), axis=1)
        coef, *_ = np.linalg.lstsq(a * sw[:, None], ys * sw, rcond=None)
        if np.any(coef[:nph] < 0):
            coef[:nph] = np.maximum(coef[:nph], 0)
        chi = float(np.sum((sw * (ys - a @ coef)) ** 2))
        if chi < best[0]:
            best = (chi, float(f))
    f = best[1]
    if f != 1.0:
        for pm in model.phases:
            for k in pm.free_cell:
                if k in "abc":
                    params[pm.prefix + k].set(value=v0[pm.prefix + k] * f)
        _linear_start(params, model, y, w)


def _phase_results(
    model: _Model,
    params,
    x,
    y,
    y_calc,
    y_bkg,
    fr,
    undetected,
    *,
    size_lower_bound: bool,
    at_bound: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[PhaseResult]:
    v = params.valuesdict()
    out = []
    net_c = y_calc - y_bkg
    net_o = y - y_bkg
    ok = net_c > 1e-9 * max(float(np.max(np.abs(net_c))), 1e-300)
    ratio = np.where(ok, net_o / np.where(ok, net_c, 1.0), 0.0)
    dxs = np.gradient(x)
    for pm in model.phases:
        pre = pm.prefix
        x0, area, fw, eta, idx = model.phase_peaks(pm, v)
        inr = (x0 > x[0] - 3 * fw) & (x0 < x[-1] + 3 * fw)
        if np.any(inr):
            prof = _pv_matrix(x, x0[inr], fw[inr], eta[inr]) * area[inr][None, :]
            ic = (prof * dxs[:, None]).sum(0)
            io = (prof * (ratio * dxs)[:, None]).sum(0)
            rb = float(np.sum(np.abs(io - ic)) / np.sum(np.abs(io))) if np.sum(io) else np.nan
            y_ph = prof.sum(1)
        else:
            rb, y_ph = float("nan"), np.zeros_like(x)
        cell_vals = {k: (float(v[pre + k]), _esd(params[pre + k])) for k in pm.free_cell}
        cell = pm.cell(v)
        occ = {s.label: float(v.get(pre + "occ_" + s.label, s.occupancy)) for s in pm.phase.sites}
        occ_e = {
            s.label: (
                _esd(params[pre + "occ_" + s.label])
                if pre + "occ_" + s.label in params and pre + "occ_" + s.label not in at_bound
                else None
            )
            for s in pm.phase.sites
        }
        biso = {
            el: float(
                v.get(
                    pre + "B_" + el, np.mean([s.biso_A2 for s in pm.phase.sites if s.symbol == el])
                )
            )
            for el in pm.elements
        }
        biso_e = {
            el: (
                _esd(params[pre + "B_" + el])
                if pre + "B_" + el in params and pre + "B_" + el not in at_bound
                else None
            )
            for el in pm.elements
        }
        refined = _refined_phase(pm, v)
        seen = pre not in undetected
        wpar = params[pre + "width"]
        size_val = 2 * math.pi * model.k / wpar.value  # L = 2πK/Γ_L,size
        w_e = _esd(wpar)
        size_e = None if w_e is None else size_val * w_e / wpar.value
        size_free = params[pre + "width"].vary and seen
        strain_free = params[pre + "strain"].vary and seen
        # ticks: first line only (Kα1), positions in x unit
        if model.cuka:
            qh, _ = pm.peaks_q(v)
            nfirst = int(np.sum(qh * model.lines[0][0] / (4 * np.pi) < 0.999))
        else:
            nfirst = x0.size
        ticks = x0[:nfirst]
        hkl = pm.refl.hkl[idx[: ticks.size]]
        in_range = (ticks >= x[0]) & (ticks <= x[-1])
        out.append(
            PhaseResult(
                name=pm.phase.name,
                phase=refined,
                cell=cell_vals if seen else {},
                a_A=float(cell[0]) if seen else None,
                a_esd_A=cell_vals.get("a", (0, None))[1] if seen else None,
                size_A=float(size_val) if size_free else None,
                size_esd_A=size_e if size_free else None,
                strain=float(v[pre + "strain"]) if strain_free else None,
                strain_esd=_esd(params[pre + "strain"]) if strain_free else None,
                scale=float(v[pre + "scale"]),
                scale_esd=_esd(params[pre + "scale"]),
                weight_fraction=fr[pre]["wf"],
                weight_fraction_esd=fr[pre]["wf_esd"],
                r_bragg=rb,
                occupancy=occ,
                occupancy_esd=occ_e,
                biso_A2=biso,
                biso_esd_A2=biso_e,
                ticks=ticks[in_range],
                hkl=hkl[in_range],
                y_calc=y_ph,
                detected=seen,
                crystalline_fraction=fr[pre]["xf"],
                crystalline_fraction_esd=fr[pre]["xf_esd"],
                size_is_lower_bound=size_lower_bound and size_free,
                biso_at_bound=tuple(el for el in pm.elements if pre + "B_" + el in at_bound),
                occupancy_at_bound=tuple(
                    s.label for s in pm.phase.sites if pre + "occ_" + s.label in at_bound
                ),
            )
        )
    return out
