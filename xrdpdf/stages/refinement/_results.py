"""Result containers of :func:`xrdpdf.stages.refinement.refine`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xrdpdf._core.pattern import Pattern
from xrdpdf._core.results import Result
from xrdpdf.physics.crystal import Phase

__all__ = ["PhaseResult", "RefinementResult"]


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
        Scherrer length L = K·D/1.10665 (Å) of the refined spheres for the K given
        (:func:`xrdpdf.physics.crystallite.scherrer_length`); ``None`` if not refined.
    diameter_A, diameter_esd_A : float or None
        Sphere diameter D (Å) of the size broadening (:mod:`xrdpdf.physics.crystallite`);
        ``None`` if not refined.
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
    biso_at_bound, occupancy_at_bound : tuple of str
        Elements whose Biso, and site labels whose occupancy, ran to a bound: fixed
        there (esd None) and refined no further; the data do not determine them.
    size_is_lower_bound : bool
        True when no instrument information was given (no resolution, no or zero
        ``fwhm_inst``): all broadening is attributed to the crystallites, so D and L are
        lower bounds of the true sizes.
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
    diameter_A: float | None = None
    diameter_esd_A: float | None = None
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
            "diameter_A": self.diameter_A,
            "diameter_esd_A": self.diameter_esd_A,
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
            "diameter_A": first.diameter_A,
            "diameter_esd_A": first.diameter_esd_A,
            "size_is_lower_bound": first.size_is_lower_bound,
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
