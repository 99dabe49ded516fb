r"""The forward model of :func:`xrdpdf.stages.refinement.refine`: y_calc from parameter values.

Peak widths follow :mod:`xrdpdf.physics.crystallite`: the instrument (resolution file, a stated
Gaussian width, or none) convolved with the size profile of spheres and with microstrain.
Parameter names: ``p{i}_scale``, ``p{i}_a`` … (free cell), ``p{i}_width`` (FWHM of the
sphere size profile, Å⁻¹), ``p{i}_strain``, ``p{i}_B_{El}``, ``p{i}_occ_{label}``,
``zero``, ``displ_mm``, ``transp_mm``, ``ka2_ratio``, ``kb_ratio``, ``bkg_{j}``,
``bkg_ref``, ``amor_amp``, ``amor_x0``, ``amor_fwhm``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from xrdpdf._core import units
from xrdpdf.physics.crystal import Phase, Reflections, q_from_cell, reflection_intensities
from xrdpdf.physics.crystallite import combined_fwhm_eta
from xrdpdf.physics.profiles import lp_bragg_brentano, pv_sum, tch_split
from xrdpdf.physics.resolution import Resolution

__all__: list[str] = []

_LN2 = math.log(2.0)
_CELL_KEYS = ("a", "b", "c", "alpha", "beta", "gamma")


class PhaseModel:
    """One phase: its reflections and the names of its parameters."""

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

    def cell(self, v: Mapping[str, float]) -> tuple[float, ...]:
        """The six cell parameters for the current values."""
        return self.phase.cell_from_free({k: v[self.prefix + k] for k in self.free_cell})

    def cell_sources(self) -> tuple[str | float, ...]:
        """Each of a, b, c, α, β, γ as the free parameter it follows, or its fixed value."""
        probe = {k: 1.0 + 0.1234567 * (j + 1) for j, k in enumerate(self.free_cell)}
        cell = self.phase.cell_from_free(probe)
        out: list[str | float] = []
        for j, val in enumerate(cell):
            name = next((k for k, p in probe.items() if abs(val - p) < 1e-12), None)
            out.append(self.prefix + name if name is not None else float(self.phase.cell[j]))
        return tuple(out)

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
        return q, inten / cell_volume(cell) ** 2


def cell_volume(cell: Sequence[float]) -> float:
    """Volume (Å³) of a cell (a, b, c, α, β, γ) in Å and degrees."""
    a, b, c, al, be, ga = cell
    ca, cb, cg = np.cos(np.radians([al, be, ga]))
    return float(a * b * c * np.sqrt(max(1 - ca**2 - cb**2 - cg**2 + 2 * ca * cb * cg, 0.0)))


def pv_matrix(x: np.ndarray, x0: np.ndarray, fw: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """(N, M) unit-area pseudo-Voigt profiles."""
    u2 = np.square((x[:, None] - x0[None, :]) / fw[None, :])
    g = np.exp(-4.0 * _LN2 * u2)
    g *= (2.0 * math.sqrt(_LN2 / math.pi)) * (1.0 - eta)[None, :] / fw[None, :]
    lor = (2.0 / math.pi) * (eta / fw)[None, :] / (1.0 + 4.0 * u2)
    return g + lor


def _deg_to_q(th: np.ndarray, wl: float) -> np.ndarray:
    """dQ/d(2θ) in Å⁻¹ per degree at Bragg angle θ (rad)."""
    return (2 * np.pi / wl) * np.cos(th) * np.radians(1.0)


class Model:
    """Everything needed to compute y_calc from an lmfit parameter dict.

    ``fwhm_inst`` is a fixed Gaussian instrument FWHM in the pattern's x unit (used when
    no ``resolution`` is given; 0 attributes all broadening to the sample).
    """

    def __init__(
        self,
        x: np.ndarray,
        unit: str,
        wavelength_A: float | None,
        phases: Sequence[Phase],
        *,
        resolution: Resolution | None,
        fwhm_inst: float,
        n_background: int,
        amorphous: bool,
        occ_refine: Sequence[Sequence[str]],
        reference: np.ndarray | None,
        lines: Sequence[tuple[float, float]],
        goniometer_radius_mm: float,
    ) -> None:
        self.x = x
        self.lines = tuple(lines)
        self.cuka = bool(self.lines)
        self.radius_mm = float(goniometer_radius_mm)
        self.reference = reference
        self.unit = unit
        self.wl = wavelength_A
        self.resolution = resolution
        self.fwhm_inst = float(fwhm_inst)
        self.amorphous = amorphous
        self.nb = n_background
        lo, hi = float(x.min()), float(x.max())
        self.cheb = np.polynomial.chebyshev.chebvander(
            2.0 * (x - lo) / (hi - lo) - 1.0, self.nb - 1
        )
        if self.cuka:
            wl_min = min(wl for wl, _ in self.lines)
            self.qgrid_max = float(units.tth_to_q(min(hi + 3.0, 179.0), wl_min))
        elif unit == units.TTH_DEG:
            self.qgrid_max = float(units.tth_to_q(hi + 1.0, wavelength_A))
        else:
            self.qgrid_max = hi
        # margin: cells may shrink by 6 %, and tails of peaks just beyond the range
        qmax = self.qgrid_max * 1.07 + 0.5
        self.phases = [PhaseModel(i, p, qmax, occ_refine[i]) for i, p in enumerate(phases)]

    # ---- widths
    def _inst_q(self, qh: np.ndarray, wl: float | None) -> tuple[np.ndarray, np.ndarray]:
        """Instrument (Γ_G, Γ_L) in Q at qh; ``wl`` the line for 2θ data."""
        if self.resolution is not None:
            if self.cuka:
                tth = units.q_to_tth(qh, wl)
                fw, eta = self.resolution.fwhm_eta_tth(tth, wl)
                fw = fw * _deg_to_q(np.radians(tth) / 2, wl)
            else:
                fw, eta = self.resolution.fwhm_eta_q(qh, self.wl)
            return tch_split(fw, eta)
        g = np.full(qh.shape, self.fwhm_inst)
        if self.unit == units.TTH_DEG:
            th = np.arcsin(np.clip(qh * wl / (4 * np.pi), 0, 1))
            g = g * _deg_to_q(th, wl)
        return g, np.zeros_like(qh)

    def _fwhm_eta_q(self, pm: PhaseModel, qh, v, wl) -> tuple[np.ndarray, np.ndarray]:
        ig, il = self._inst_q(qh, wl)
        width = v.get(pm.prefix + "width", 0.0)
        return combined_fwhm_eta(ig, il, width, v.get(pm.prefix + "strain", 0.0), qh)

    # ---- phase contributions
    def phase_peaks(self, pm: PhaseModel, v: Mapping[str, float]):
        """Peak positions (x unit), areas (y·x unit), FWHM (x unit), η, reflection index."""
        qh, i0 = pm.peaks_q(v)
        scale = v[pm.prefix + "scale"]
        zero = v.get("zero", 0.0)
        if not self.cuka:
            fw, eta = self._fwhm_eta_q(pm, qh, v, self.wl)
            area = scale * i0 / qh**2
            if self.unit == units.Q_A:
                return qh + zero, area, fw, eta, np.arange(qh.size)
            ok = qh * self.wl / (4 * np.pi) < 0.999
            qh, area, fw, eta = qh[ok], area[ok], fw[ok], eta[ok]
            th = np.arcsin(qh * self.wl / (4 * np.pi))
            dq = _deg_to_q(th, self.wl)
            # point values: the Q profile mapped to 2θ keeps its height
            return np.degrees(2 * th) + zero, area / dq, fw / dq, eta, np.flatnonzero(ok)
        parts = []
        ratios = (1.0, v.get("ka2_ratio", 0.5), v.get("kb_ratio", 0.0))
        for (wl, _), ratio in zip(self.lines, ratios, strict=False):
            ok = np.flatnonzero(qh * wl / (4 * np.pi) < 0.999)
            q = qh[ok]
            th = np.arcsin(q * wl / (4 * np.pi))
            tth = np.degrees(2 * th)
            fw, eta = self._fwhm_eta_q(pm, q, v, wl)
            dq = _deg_to_q(th, wl)
            area = ratio * scale * i0[ok] * lp_bragg_brentano(tth)
            parts.append((tth + zero + self.bb_shift_deg(th, v), area, fw / dq, eta, ok))
        return tuple(np.concatenate(col) for col in zip(*parts, strict=True))

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

    def phase_profile(self, pm: PhaseModel, v: Mapping[str, float], x=None) -> np.ndarray:
        """One phase's contribution on ``x`` (default: the data points)."""
        x = self.x if x is None else x
        x0, area, fw, eta, _ = self.phase_peaks(pm, v)
        # only peaks whose ±40 FWHM window touches the grid
        keep = (x0 + 40 * fw > x[0]) & (x0 - 40 * fw < x[-1]) & (fw > 0)
        if not np.any(keep):
            return np.zeros_like(x)
        return pv_sum(x, x0[keep], fw[keep], eta[keep], area[keep])

    def background(self, v: Mapping[str, float]) -> np.ndarray:
        """Chebyshev background, amorphous hump and background pattern."""
        y = self.cheb @ np.array([v[f"bkg_{j}"] for j in range(self.nb)])
        if self.amorphous:
            y = y + self.hump(v)
        if self.reference is not None:
            y = y + v["bkg_ref"] * self.reference
        return y

    def hump(self, v: Mapping[str, float]) -> np.ndarray:
        """The broad amorphous Gaussian."""
        fw = abs(v["amor_fwhm"]) + 1e-12
        return v["amor_amp"] * np.exp(-4 * _LN2 * ((self.x - v["amor_x0"]) / fw) ** 2)

    def calc(self, v: Mapping[str, float]) -> np.ndarray:
        """y_calc on the data points."""
        y = self.background(v)
        for pm in self.phases:
            y = y + self.phase_profile(pm, v)
        return y
