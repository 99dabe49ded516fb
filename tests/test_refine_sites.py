"""Shared-site occupancies and displacement parameters at their bounds.

Truth: rocksalt patterns drawn here from the closed form F = 4(f_M ± f_O) (all-even /
all-odd h; f_M = o_Na f_Na + o_Ti f_Ti with xraydb's f0 and e^{−Bs²}), every h enumerated
(multiplicities from the enumeration), each line that of spheres (the cosine transform of
the common-volume function, Stokes & Wilson 1942) convolved with a Gaussian instrument,
computed in Fourier space here (``_sphere_line``). Synchrotron I(Q): area
∝ m|F|²/Q²; lab Cu Kα (Hölzer et al. 1997) Bragg–Brentano: area ∝ m|F|²(1 + cos²2θ)/(sin²θ
cosθ). Surface roughness of a lab sample lowers the low-angle intensity like a negative
Biso; drawn with B = −1 Å² the data ask for B < 0, which the refinement bounds at 0.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import xraydb
from sphere_lines import sphere_line

from xrdpdf._core.pattern import Pattern
from xrdpdf.cli import _main
from xrdpdf.physics import Resolution
from xrdpdf.stages.refinement import RefinementWarning, refine

A_RS = 4.20464
WL_A = 0.1173
KA1_A, KA2_A = 1.5405929, 1.5444274  # Hölzer et al. 1997, Phys. Rev. A 56, 4554
SYNC_FWHM_INVA, LAB_FWHM_DEG = 0.01, 0.03  # Gaussian instrument FWHM


def _rocksalt_lines(occ, biso, qmax):
    """(Q_h, m|F|²) of rocksalt (M on 4a, O on 4b) from the closed form."""
    n = int(qmax * A_RS / (2 * np.pi)) + 1
    r = np.arange(-n, n + 1)
    h, k, l = (v.ravel() for v in np.meshgrid(r, r, r, indexing="ij"))
    q = 2 * np.pi * np.sqrt(h * h + k * k + l * l) / A_RS
    sel = (q > 0) & (q < qmax)
    h, k, l, q = h[sel], k[sel], l[sel], q[sel]
    s = q / (4 * np.pi)
    f_m = sum(occ[el] * xraydb.f0(el, s) * np.exp(-biso[el] * s * s) for el in occ)
    f_o = xraydb.f0("O", s) * np.exp(-biso["O"] * s * s)
    even = (h % 2 == 0) & (k % 2 == 0) & (l % 2 == 0)
    odd = (h % 2 != 0) & (k % 2 != 0) & (l % 2 != 0)
    f = np.where(even, 4 * (f_m + f_o), np.where(odd, 4 * (f_m - f_o), 0.0))
    uq, inv = np.unique(np.round(q, 9), return_inverse=True)
    mf2 = np.bincount(inv, weights=f * f)
    keep = mf2 > 1e-6
    return uq[keep], mf2[keep]


def _poisson(x, y, unit, wl, seed):
    counts = np.random.default_rng(seed).poisson(y).astype(float)
    return Pattern(x, counts, unit, wl, np.sqrt(np.maximum(counts, 1.0)))


def _synchrotron(occ, biso, seed=3):
    q = np.linspace(1.5, 14.0, 3000)
    qh, mf2 = _rocksalt_lines(occ, biso, 17.0)
    sig = SYNC_FWHM_INVA / (2 * math.sqrt(2 * math.log(2)))  # Gaussian instrument
    d = 60.0 * 1.10665 / 0.9  # spheres of 60 Å Scherrer size (K = 0.9)
    y = sum(a * sphere_line(q - q0, d, sig) for q0, a in zip(qh, mf2 / qh**2, strict=True))
    return _poisson(q, 5e4 * y / y.max() + 300.0, "q_A^-1", WL_A, seed)


def _lab(biso, seed=5):
    tth = np.arange(25.0, 140.0, 0.03)
    qh, mf2 = _rocksalt_lines({"Na": 0.5, "Ti": 0.5}, biso, 4 * np.pi / KA2_A)
    y = np.zeros_like(tth)
    for lam, ratio in ((KA1_A, 1.0), (KA2_A, 0.5)):
        ok = qh * lam / (4 * np.pi) < math.sin(math.radians(72))
        th = np.arcsin(qh[ok] * lam / (4 * np.pi))
        lp = (1 + np.cos(2 * th) ** 2) / (np.sin(th) ** 2 * np.cos(th))
        dq = (2 * np.pi / lam) * np.cos(th) * np.pi / 180  # Å⁻¹ per degree 2θ
        d = 400.0 * 1.10665 / 0.9  # spheres of 400 Å Scherrer size (K = 0.9)
        sig = LAB_FWHM_DEG / (2 * math.sqrt(2 * math.log(2)))
        for t0, a, g in zip(np.degrees(2 * th), ratio * mf2[ok] * lp, dq, strict=True):
            y += a * g * sphere_line((tth - t0) * g, d, sig * g)
    return _poisson(tth, 3e4 * y / y.max() + 200.0, "2th_deg", KA1_A, seed)


BISO_TRUE = {"Na": 0.8, "Ti": 0.5, "O": 0.7}
# the drawn Gaussian instrument widths, given to the refinement as resolution files
SYNC_RESOLUTION = Resolution("poly", (SYNC_FWHM_INVA,), (0.0,), "q_A^-1")
LAB_RESOLUTION = Resolution("poly", (LAB_FWHM_DEG,), (0.0,), "2th_deg", KA1_A)


@pytest.fixture(scope="module")
def split_fit():
    pat = _synchrotron({"Na": 0.35, "Ti": 0.65}, BISO_TRUE)
    return refine(pat, "NaTiO2", resolution=SYNC_RESOLUTION)


def test_shared_site_split_refined_with_the_sum_kept(split_fit):
    p = split_fit.phases[0]
    assert split_fit.converged, split_fit.message
    occ, esd = p.occupancy, p.occupancy_esd
    # acceptance: the split within 0.05 of the truth, and within 4 esd
    assert abs(occ["Na1"] - 0.35) < 0.05 and abs(occ["Na1"] - 0.35) < 4 * esd["Na1"], occ
    # the sum equals the site (built-in start 0.5 + 0.5): exact up to round-off
    assert occ["Na1"] + occ["Ti1"] == pytest.approx(1.0, abs=1e-12)
    # Ti1 = 1 − Na1 is dependent: its esd is the propagated one, the same as Na1's
    assert esd["Ti1"] == pytest.approx(esd["Na1"], rel=1e-6)
    assert p.occupancy_at_bound == ()


def test_vacancy_model_keeps_the_site_at_most_full():
    # occupancy_sum=False (vacancies, e.g. desodiation): only Na1 refines, Ti1 stays 0.5; the
    # data (Na 0.35 + Ti 0.65) ask for more scattering on 4a than Na ≤ 0.5 can give, so Na1
    # ends at the room left on the site and is reported as at its bound, not as 0.63
    pat = _synchrotron({"Na": 0.35, "Ti": 0.65}, BISO_TRUE)
    with pytest.warns(RefinementWarning, match="Na1"):
        res = refine(pat, "NaTiO2", occupancy_sum=False, resolution=SYNC_RESOLUTION)
    p = res.phases[0]
    assert p.occupancy["Na1"] + p.occupancy["Ti1"] <= 1.0 + 1e-12
    assert p.occupancy_at_bound == ("Na1",) and p.occupancy_esd["Na1"] is None


def test_biso_at_its_bound_on_lab_data_is_reported(tmp_path, capsys):
    # surface roughness drawn as B = −1 Å² on every site: the refined Biso run to 0; through
    # the CLI, so the --json keys and the warning lines are checked too
    pat = _lab({"Na": -1.0, "Ti": -1.0, "O": -1.0})
    f = tmp_path / "rough.xy"
    np.savetxt(f, np.column_stack([pat.x, pat.y]))
    res_file = tmp_path / "lab_resolution.json"
    res_file.write_text(json.dumps(LAB_RESOLUTION.to_dict()))
    argv = ["refine", str(f), "--cuka", "--phase", "NaTiO2", "--resolution", str(res_file)]
    assert _main([*argv, "--json"]) == 0
    out, err = capsys.readouterr()
    d = json.loads(out)["phases"][0]
    assert sorted(d["biso_at_bound"]) == ["Na", "O", "Ti"]
    for el in d["biso_at_bound"]:
        assert d["biso_A2"][el] == 0.0 and d["biso_esd_A2"][el] is None  # fixed, no esd
    assert "xrdpdf: warning: NaTiO2 Biso(O) ran to its bound 0" in err
    # the split of the full 4a site is still refined, its sum kept
    assert d["occupancy"]["Na1"] + d["occupancy"]["Ti1"] == pytest.approx(1.0, abs=1e-12)


def test_biso_inside_bounds_not_flagged():
    # negative control: B = 0.8/0.5/0.7 Å² drawn, nothing at a bound, no warning
    pat = _lab(BISO_TRUE)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RefinementWarning)
        res = refine(
            pat, "NaTiO2", cuka=True, refine_occupancy={"NaTiO2": []}, resolution=LAB_RESOLUTION
        )
    assert res.phases[0].biso_at_bound == ()
