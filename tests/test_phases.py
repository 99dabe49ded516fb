"""Tests of xrdpdf.physics: structures, reflections, structure factors, powder patterns.

Truths: the rocksalt closed form F = 4(f_M ± f_O) with xraydb's f0 called here
directly; Bragg's law; Fm-3m / I4₁/amd multiplicities from the International
Tables; numerical integrals of the profile functions.
"""

from __future__ import annotations

import numpy as np
import pytest
import xraydb

from xrdpdf import physics as phases
from xrdpdf._core.errors import InputError
from xrdpdf.physics.cif import get_phase

A_RS = 4.20464


def _f(el: str, q: np.ndarray, b: float) -> np.ndarray:
    s = q / (4 * np.pi)
    return xraydb.f0(el, s) * np.exp(-b * s**2)


def test_rocksalt_structure_factor_closed_form():
    ph = get_phase("NaTiO2").with_sites(biso_A2={"Na1": 1.1, "Ti1": 0.4, "O1": 0.7})
    hkl = np.array(
        [[1, 1, 1], [2, 0, 0], [2, 2, 0], [3, 1, 1], [2, 2, 2], [4, 0, 0], [3, 3, 1], [5, 1, 1]]
    )
    q = 2 * np.pi * np.sqrt((hkl**2).sum(1)) / A_RS
    f_m = 0.5 * (_f("Na", q, 1.1) + _f("Ti", q, 0.4))
    f_o = _f("O", q, 0.7)
    even = (hkl % 2 == 0).all(1)
    expected = np.where(even, 4 * (f_m + f_o), 4 * (f_m - f_o))
    got = phases.structure_factors(ph, hkl)
    # round-off only: same f0 values, sums of 12 unit phasors
    np.testing.assert_allclose(got.real, expected, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(got.imag, 0.0, atol=1e-9)
    # mixed parity: F-centring absence
    mixed = phases.structure_factors(ph, [[1, 0, 0], [2, 1, 0], [1, 1, 0]])
    np.testing.assert_allclose(np.abs(mixed), 0.0, atol=1e-9)


def test_rocksalt_occupancy_enters_linearly():
    # desodiated: Na 0.3 on 4a → f_M = 0.3 f_Na + 0.5 f_Ti
    ph = get_phase("rocksalt").with_sites(
        occupancy={"Na1": 0.3}, biso_A2={"Na": 0, "Ti": 0, "O": 0}
    )
    q = np.array([2 * np.pi * np.sqrt(3) / A_RS])
    expected = 4 * (0.3 * _f("Na", q, 0) + 0.5 * _f("Ti", q, 0) - _f("O", q, 0))
    got = phases.structure_factors(ph, [[1, 1, 1]])
    np.testing.assert_allclose(got.real, expected, rtol=1e-10)


def test_reflection_list_rocksalt():
    refl = get_phase("natio2").reflections(6.2)
    hkl = [tuple(h) for h in refl.hkl]
    assert hkl == [(1, 1, 1), (2, 0, 0), (2, 2, 0), (3, 1, 1), (2, 2, 2), (4, 0, 0)]
    # International Tables multiplicities of m-3m: {111} 8, {100} 6, {110} 12, {hkk} 24
    assert list(refl.multiplicity) == [8, 6, 12, 24, 8, 6]
    # Q = 2π√(h²+k²+l²)/a for a = 4.20464 Å: 111 2.588, 200 2.989, 220 4.227 Å⁻¹ (to 1e-3)
    np.testing.assert_allclose(refl.q_invA[:3], [2.588, 2.989, 4.227], atol=6e-4)
    # Cu Kα1 2θ 37.00/42.99/62.42° (rounded to 0.01°)
    np.testing.assert_allclose(refl.tth_deg(phases.CU_KA1_A)[:3], [37.00, 42.99, 62.42], atol=6e-3)
    # Bragg's law closed form for the whole list
    np.testing.assert_allclose(refl.d_A, A_RS / np.sqrt((refl.hkl**2).sum(1)), rtol=1e-12)
    # f2 equals |F|² from the closed form with xraydb.f0; f2 uses the tabulated f0 (within
    # ~1e-6 of f0(0), physics.scattering._S_GRID), so |F|² agrees to twice that
    f = phases.structure_factors(get_phase("natio2"), refl.hkl)
    np.testing.assert_allclose(refl.f2, np.abs(f) ** 2, rtol=3e-6)


def test_reflection_list_anatase():
    ph = get_phase("TiO2")
    assert ph.spacegroup_symbol == "I41/amd" and ph.crystal_system == "tetragonal"
    assert ph.free_cell_parameters == ("a", "c")
    refl = ph.reflections(4.0)
    got = {tuple(h): int(m) for h, m in zip(refl.hkl, refl.multiplicity, strict=True)}
    # 4/mmm multiplicities: (h0l) 8, (00l) 2, (h00) 4, (hhl) 8; (100), (001), (110) absent
    assert got[(1, 0, 1)] == 8 and got[(0, 0, 4)] == 2 and got[(2, 0, 0)] == 4
    assert got[(1, 1, 2)] == 8
    assert (0, 0, 2) not in got and (1, 1, 0) not in got and (1, 0, 0) not in got
    # anatase (101) at d = 3.52 Å (PDF 21-1272: 3.52)
    assert abs(refl.d_A[0] - 3.516) < 0.005 and tuple(refl.hkl[0]) == (1, 0, 1)


def test_multiplicities_sum_to_sphere_count():
    # Σ m over all (present + absent) orbits = number of lattice points in the sphere;
    # for a primitive cubic Pm-3m phase every h is present (LaB6).
    ph = get_phase("LaB6")
    qmax = 7.0
    refl = ph.reflections(qmax)
    n = int(np.floor(qmax * ph.a_A / (2 * np.pi))) + 1
    r = np.arange(-n, n + 1)
    h, k, l = np.meshgrid(r, r, r, indexing="ij")
    q = 2 * np.pi * np.sqrt(h**2 + k**2 + l**2) / ph.a_A
    assert refl.multiplicity.sum() == int(((q > 0) & (q <= qmax)).sum())


NI_CIF = """data_Ni
_cell_length_a 3.5200
_cell_length_b 3.5200
_cell_length_c 3.5200
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'F m -3 m'
_symmetry_Int_Tables_number 225
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_B_iso_or_equiv
_atom_site_occupancy
Ni1 Ni 0.0 0.0 0.0 0.1 1.0
"""


def test_cif_and_structure(tmp_path):
    cif = tmp_path / "Ni.cif"
    cif.write_text(NI_CIF)
    ph = get_phase(cif)
    assert ph.name == "Ni" and ph.crystal_system == "cubic" and abs(ph.a_A - 3.52) < 1e-9
    assert len(ph.structure) == 4  # fcc: 4 atoms per cell
    assert abs(ph.sites[0].biso_A2 - 0.1) < 1e-12
    # same F as the built-in Ni at the CIF's cell and Biso (round-off)
    ref = get_phase("Ni").with_cell(a=3.52).with_sites(biso_A2={"Ni": 0.1})
    hkl = [[1, 1, 1], [2, 0, 0], [3, 1, 1]]
    np.testing.assert_allclose(
        phases.structure_factors(ph, hkl), phases.structure_factors(ref, hkl), rtol=1e-12
    )


def test_structure_full_cell_and_mass():
    ph = get_phase("NaTiO2")
    st = ph.structure
    assert len(st) == 12  # 4 Na + 4 Ti (shared 4a) + 4 O
    # Z = 4 NaTiO2 at ½ occupancy each cation: 4·(½Na + ½Ti + O)
    m = 4 * (
        0.5 * xraydb.atomic_mass("Na") + 0.5 * xraydb.atomic_mass("Ti") + xraydb.atomic_mass("O")
    )
    assert abs(ph.cell_mass_amu - m) < 1e-9
    assert ph.with_cell(a=4.1).cell == (4.1, 4.1, 4.1, 90.0, 90.0, 90.0)


def test_bad_inputs():
    with pytest.raises(InputError, match="unknown phase"):
        get_phase("unobtainium")
    with pytest.raises(InputError, match="not found"):
        get_phase("/nonexistent/x.cif")
    with pytest.raises(InputError, match="not free"):
        get_phase("Ni").with_cell(c=3.0)
    with pytest.raises(InputError, match="occupancy"):
        get_phase("NaTiO2").with_sites(occupancy={"Na1": 1.5})


def test_corrupt_cif(tmp_path):
    p = tmp_path / "bad.cif"
    p.write_text("data_x\n_cell_length_a 3\nloop_\n_atom_site_label\n")
    with pytest.raises(InputError, match="bad.cif"):
        get_phase(p)


def test_pseudo_voigt_unit_area_and_fwhm():
    x = np.linspace(-400, 400, 800001)
    for eta in (0.0, 0.3, 1.0):
        y = phases.pseudo_voigt(x, 0.0, 1.3, eta)
        # Lorentzian tails beyond ±400Γ hold 2/(π·615) ≈ 1e-3 of the area
        assert abs(np.trapezoid(y, x) - 1.0) < 1.2e-3 * eta + 1e-6
        half = y.max() / 2
        above = x[y >= half]
        assert abs((above[-1] - above[0]) - 1.3) < 2e-3  # grid step 1e-3


def test_tch_split_roundtrip():
    rng = np.random.default_rng(1)
    g = rng.uniform(0.0, 1.0, 50)
    lo = rng.uniform(0.0, 1.0, 50)
    fw, eta = phases.tch_fwhm_eta(g, lo)
    g2, l2 = phases.tch_split(fw, eta)
    # bisection to 2^-60; η(r) cubic is monotone → unique inverse
    np.testing.assert_allclose(g2, g, atol=1e-9)
    np.testing.assert_allclose(l2, lo, atol=1e-9)


def test_powder_pattern_peak_area_in_q():
    # an isolated narrow Ni (111): ∫y dQ = m|F|²/(V² Q²) (module Notes), checked by quadrature
    ph = get_phase("Ni")
    q = np.linspace(2.6, 3.4, 40001)
    y = phases.powder_pattern(ph, q, fwhm_inst=0.01, eta_inst=0.0)
    refl = ph.reflections(3.2)
    area = refl.intensity[0] / (ph.volume_A3**2 * refl.q_invA[0] ** 2)
    lo, hi = refl.q_invA[0] - 0.1, refl.q_invA[0] + 0.1
    sel = (q > lo) & (q < hi)
    # Gaussian with FWHM 0.01: window ±10 FWHM holds all of it; 200 (at 3.56) is outside
    assert abs(np.trapezoid(y[sel], q[sel]) / area - 1) < 1e-6
    # negative control: the 1/Q² factor matters at this precision
    assert abs(np.trapezoid(y[sel], q[sel]) * refl.q_invA[0] ** 2 / area - 1) > 0.1


def test_powder_pattern_cuka_doublet():
    ph = get_phase("NaTiO2")
    tth = np.linspace(60.0, 65.0, 20001)
    y = phases.powder_pattern(ph, tth, unit="2th_deg", cuka=True, fwhm_inst=0.02)
    # two maxima: Kα1 (220) at 62.42° and Kα2 at the Bragg angle for λ = 1.544390 Å
    t2 = np.degrees(2 * np.arcsin(1.544390 / (2 * A_RS / np.sqrt(8))))
    i1 = np.argmax(y)
    assert abs(tth[i1] - 62.42) < 0.01
    win = np.abs(tth - t2) < 0.05
    j = np.argmax(np.where(win, y, 0))
    assert abs(tth[j] - t2) < 0.005  # grid 2.5e-4°, overlap shifts the maximum by < 0.005°
    # Kα2 area is half of Kα1 → peak height ~0.5 (equal widths up to cosθ)
    assert 0.45 < y[j] / y[i1] < 0.56


def test_powder_pattern_2theta_is_q_model_at_q_of_2theta():
    ph = get_phase("CeO2")
    wl = 0.1173
    tth = np.linspace(1.0, 6.0, 3001)
    q = 4 * np.pi * np.sin(np.radians(tth) / 2) / wl
    y_t = phases.powder_pattern(ph, tth, unit="2th_deg", wavelength_A=wl, size_A=200.0)
    y_q = phases.powder_pattern(ph, q, size_A=200.0)
    np.testing.assert_allclose(y_t, y_q, rtol=1e-10)
    with pytest.raises(InputError, match="wavelength"):
        phases.powder_pattern(ph, tth, unit="2th_deg", size_A=200.0)
    with pytest.raises(InputError, match="size_A"):
        phases.powder_pattern(ph, q)


def test_size_profile_is_the_sphere_profile():
    # pure size broadening of spheres: the line is the cosine transform of the common-volume
    # function A(L) = 1 − 3L/2D + L³/2D³ (Stokes & Wilson 1942), written out here by
    # quadrature; size_A = 300 Å with K = 0.9 (FWHM) means D = 1.10665·300/0.9 (ALGORITHMS §5)
    from scipy.integrate import quad

    ph = get_phase("Ni")
    q0 = ph.reflections(3.1).q_invA[0]
    q = np.linspace(q0 - 0.08, q0 + 0.08, 801)
    y = phases.powder_pattern(ph, q, size_A=300.0, k_scherrer=0.9)
    d = 1.10665 * 300.0 / 0.9
    exact = np.array(
        [
            quad(
                lambda L, x=x: (1 - 1.5 * L / d + 0.5 * (L / d) ** 3) * np.cos(x * L),
                0,
                d,
                limit=400,
            )[0]
            for x in q - q0
        ]
    )
    scale = np.sum(y * exact) / np.sum(exact**2)  # the area of the reflection
    # one pseudo-Voigt stands for the sphere profile, weighted towards the tails as a
    # Poisson fit is (xrdpdf.physics.crystallite): rms misfit ~1 %, at most ~4 % of the
    # peak height (at the top)
    diff = y - scale * exact
    assert np.sqrt(np.mean(diff**2)) < 0.015 * y.max()
    assert np.max(np.abs(diff)) < 0.05 * y.max()
    half = exact >= exact.max() / 2
    fwhm_exact = q[half][-1] - q[half][0]
    # the exact profile's FWHM is the Scherrer one, 2πK/L (to the grid step, 2e-4 Å⁻¹)
    assert abs(fwhm_exact - 2 * np.pi * 0.9 / 300.0) < 4e-4


def test_resolution_json(tmp_path):
    import json

    p = tmp_path / "res.json"
    p.write_text(
        json.dumps(
            {"model": "poly", "unit": "q_A^-1", "fwhm_coeffs": [0.02, 0.001], "eta_coeffs": [0.3]}
        )
    )
    res = phases.load_resolution(p)
    fw, eta = res.fwhm_eta_q(np.array([0.0, 10.0]))
    np.testing.assert_allclose(fw, [0.02, 0.03])
    np.testing.assert_allclose(eta, 0.3)
    # Caglioti in 2θ: FWHM² = U tan²θ + V tanθ + W (deg²)
    r2 = phases.Resolution("caglioti", (0.01, -0.002, 0.003), (0.5,), "2th_deg", 1.540562)
    fw, _ = r2.fwhm_eta_tth(np.array([40.0]), 1.540562)
    t = np.tan(np.radians(20.0))
    np.testing.assert_allclose(fw, np.sqrt(0.01 * t * t - 0.002 * t + 0.003))
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(InputError, match="bad.json"):
        phases.load_resolution(bad)


@pytest.mark.parametrize("element", ["H", "O", "Na", "Ti", "Zr", "La", "U", "O2-", "Ti4+"])
def test_structure_factor_f0_equals_xraydb(element):
    # the refinement's table look-up against xraydb.f0 itself at 5000 random s in 0…6 Å⁻¹;
    # linear interpolation on a 0.0005 Å⁻¹ grid: max|f0''|·h²/8 ≤ 5e-5 electrons (U)
    import xraydb

    from xrdpdf.physics.scattering import _f0_fast

    s = np.random.default_rng(1).uniform(0.0, 6.0, 5000)
    np.testing.assert_allclose(_f0_fast(element, s), xraydb.f0(element, s), rtol=0, atol=6e-5)
