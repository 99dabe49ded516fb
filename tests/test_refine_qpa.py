"""Quantitative phase analysis: a three-phase lab Cu Kα mixture of known weight fractions.

Truth: a forward model written here, sharing no code with xrdpdf. Full unit cells are
written out from the International Tables Wyckoff positions (corundum R-3c: Al 12c, O 18e;
fluorite Fm-3m: Ca 4a, F 8c; zincite P6₃mc: Zn, O 2b); every h with d ≥ d_min is enumerated
(multiplicities come from the enumeration), F(h) = Σ f0(s) e^{−Bs²} e^{2πi h·x} with xraydb's
f0, Bragg–Brentano Lp = (1 + cos²2θ)/(sin²θ cosθ), Cu Kα1/Kα2 (Hölzer et al. 1997) at 2 : 1,
and a plain pseudo-Voigt whose FWHM follows Caglioti's U, V, W. Each phase's intensity is
S_p m|F|² Lp with the Hill & Howard (1987, J. Appl. Cryst. 20, 467) scale
S_p ∝ W_p / (Z M V)_p, so the drawn weight fractions are W_p = S_p(ZMV)_p / Σ S_i(ZMV)_i.
The refinement reads the phases from the CIFs in ``data/cif_qpa`` (zincite with the rounded
coordinates 0.3333/0.6667), with the instrument profile given as a resolution file.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import xraydb

from xrdpdf._core.pattern import Pattern
from xrdpdf.physics import Resolution
from xrdpdf.stages.refinement import refine

DATA = Path(__file__).parent / "data" / "cif_qpa"
KA1_A, KA2_A = 1.5405929, 1.5444274  # Hölzer et al. 1997, Phys. Rev. A 56, 4554
MASS_U = {"Zn": 65.38, "O": 15.999, "Al": 26.9815, "Ca": 40.078, "F": 18.998}  # IUPAC
U_DEG2, V_DEG2, W_DEG2, ETA = 0.010, -0.005, 0.004, 0.6  # Caglioti FWHM², pV mixing
TTH_RANGE = (20.0, 90.0, 0.03)  # degrees: start, stop, step
WEIGHT_TRUE = {"corundum": 0.40, "fluorite": 0.25, "zincite_rounded": 0.35}


def _translate(points, shifts):
    return [tuple(np.mod(np.add(p, t), 1.0)) for t in shifts for p in points]


def _cells():
    """name → (cell, {element: full-cell positions}, {element: B Å²}) by hand."""
    z_al, x_o = 0.35216, 0.30624
    rhomb = [(0, 0, 0), (2 / 3, 1 / 3, 1 / 3), (1 / 3, 2 / 3, 2 / 3)]
    al = [(0, 0, z_al), (0, 0, 0.5 - z_al), (0, 0, -z_al), (0, 0, 0.5 + z_al)]
    o18 = [(x_o, 0, 0.25), (0, x_o, 0.25), (-x_o, -x_o, 0.25)]
    o18 += [(-x_o, 0, 0.75), (0, -x_o, 0.75), (x_o, x_o, 0.75)]
    fcc = [(0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0)]
    u = 0.3819
    return {
        "corundum": (
            (4.7589, 4.7589, 12.991, 90.0, 90.0, 120.0),
            {"Al": _translate(al, rhomb), "O": _translate(o18, rhomb)},
            {"Al": 0.3, "O": 0.4},
        ),
        "fluorite": (
            (5.4626,) * 3 + (90.0,) * 3,
            {"Ca": fcc, "F": _translate([(0.25, 0.25, 0.25), (0.75, 0.75, 0.75)], fcc)},
            {"Ca": 0.5, "F": 0.7},
        ),
        "zincite_rounded": (
            (3.2498, 3.2498, 5.2066, 90.0, 90.0, 120.0),
            {
                "Zn": [(1 / 3, 2 / 3, 0), (2 / 3, 1 / 3, 0.5)],
                "O": [(1 / 3, 2 / 3, u), (2 / 3, 1 / 3, 0.5 + u)],
            },
            {"Zn": 0.6, "O": 0.8},
        ),
    }


def _metric(cell):
    a, b, c = cell[:3]
    ca, cb, cg = np.cos(np.radians(cell[3:]))
    return np.array(
        [
            [a * a, a * b * cg, a * c * cb],
            [a * b * cg, b * b, b * c * ca],
            [a * c * cb, b * c * ca, c * c],
        ]
    )


def _lines(cell, atoms, biso, d_min):
    """(d, m|F|²) of every distinct d ≥ d_min, from all h enumerated one by one."""
    g_inv = np.linalg.inv(_metric(cell))
    n = [int(np.ceil(length / d_min)) + 1 for length in cell[:3]]
    h = np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in n], indexing="ij"), -1).reshape(-1, 3)
    h = h[np.any(h != 0, axis=1)]
    dstar2 = np.einsum("ij,jk,ik->i", h, g_inv, h)
    h, dstar2 = h[dstar2 <= d_min**-2], dstar2[dstar2 <= d_min**-2]
    s = np.sqrt(dstar2) / 2  # sinθ/λ
    f = np.zeros(len(h), complex)
    for el, pos in atoms.items():
        f += (
            xraydb.f0(el, s)
            * np.exp(-biso[el] * s**2)
            * np.exp(2j * np.pi * h @ np.array(pos).T).sum(1)
        )
    d, idx = np.unique(np.round(dstar2**-0.5, 7), return_inverse=True)
    mf2 = np.bincount(idx, weights=np.abs(f) ** 2)
    keep = mf2 > 1e-8 * mf2.max()  # systematic absences
    return d[keep], mf2[keep]


def _pseudo_voigt(x, fwhm, eta):
    g = 2 / fwhm * np.sqrt(math.log(2) / np.pi) * np.exp(-4 * math.log(2) * (x / fwhm) ** 2)
    lor = 2 / (np.pi * fwhm) / (1 + 4 * (x / fwhm) ** 2)
    return eta * lor + (1 - eta) * g


def _volume(cell):
    return float(np.sqrt(np.linalg.det(_metric(cell))))


def _draw(seed=20260514):
    tth = np.arange(*TTH_RANGE)
    y = np.zeros_like(tth)
    hh_scale = {}
    d_min = KA2_A / (2 * np.sin(np.radians(TTH_RANGE[1] / 2 + 2)))
    for name, (cell, atoms, biso) in _cells().items():
        zm = sum(MASS_U[el] * len(pos) for el, pos in atoms.items())  # Z·M, u per cell
        hh_scale[name] = WEIGHT_TRUE[name] / (zm * _volume(cell))  # Hill & Howard
        d, mf2 = _lines(cell, atoms, biso, d_min)
        for lam, ratio in ((KA1_A, 1.0), (KA2_A, 0.5)):
            th = np.arcsin(np.clip(lam / (2 * d), 0, 1))
            lp = (1 + np.cos(2 * th) ** 2) / (np.sin(th) ** 2 * np.cos(th))
            fwhm = np.sqrt(U_DEG2 * np.tan(th) ** 2 + V_DEG2 * np.tan(th) + W_DEG2)
            area = ratio * hh_scale[name] * mf2 * lp
            prof = _pseudo_voigt(tth[:, None] - np.degrees(2 * th)[None, :], fwhm[None, :], ETA)
            y += prof @ area
    y = 2.0e4 * y / y.max() + 300.0 - 1.5 * (tth - tth[0])  # peak ≈ 2·10⁴ counts
    counts = np.random.default_rng(seed).poisson(y).astype(float)
    pat = Pattern(tth, counts, "2th_deg", KA1_A, np.sqrt(np.maximum(counts, 1.0)))
    return pat, hh_scale


@pytest.fixture(scope="module")
def qpa_fit():
    pat, hh_scale = _draw()
    resolution = Resolution("caglioti", (U_DEG2, V_DEG2, W_DEG2), (ETA,), "2th_deg", KA1_A)
    res = refine(
        pat,
        [DATA / f"{name}.cif" for name in WEIGHT_TRUE],
        cuka=True,
        resolution=resolution,
        refine_size=False,
        size_start_A=1e6,  # no sample broadening drawn: the profile is the instrument's
        lattice_search=0.0,  # cells start at their true values
    )
    return res, hh_scale


def test_three_phase_weight_fractions(qpa_fit):
    res, _ = qpa_fit
    assert res.converged, res.message
    assert 0.9 < res.gof < 1.2  # Poisson σ, same profile family drawn and fitted
    assert sum(p.weight_fraction for p in res.phases) == pytest.approx(1.0, abs=1e-12)
    for p in res.phases:
        true = WEIGHT_TRUE[p.name]
        # k = 4 esd, plus a systematic allowance of 0.2 wt%: the same fit of the noise-free
        # pattern is off by ≤ 0.03 wt% (profile tails beyond the refinement's ±40 FWHM
        # window, TCH split of the pV), and Biso is refined, which the esd includes
        assert p.weight_fraction_esd is not None and p.weight_fraction_esd < 0.005
        assert abs(p.weight_fraction - true) < 4 * p.weight_fraction_esd + 0.002, (
            p.name,
            p.weight_fraction,
            p.weight_fraction_esd,
            true,
        )


def test_scales_follow_hill_howard(qpa_fit):
    # the refined scale multiplies m|F|²Lp/V² (xrdpdf.phases Notes), so S_p/V_p² is the
    # Hill–Howard scale up to one common factor: ratios must match the drawn ones
    res, hh_scale = qpa_fit
    ref = res.phases[0]
    for p in res.phases[1:]:
        got = (p.scale / p.phase.volume_A3**2) / (ref.scale / ref.phase.volume_A3**2)
        want = hh_scale[p.name] / hh_scale[ref.name]
        rel_esd = math.hypot(p.scale_esd / p.scale, ref.scale_esd / ref.scale)
        assert abs(got / want - 1) < 4 * rel_esd + 0.005, (p.name, got, want, rel_esd)
