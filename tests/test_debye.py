"""Tests of xrdpdf.simulate.debye against closed forms and a brute-force Debye sum."""

from __future__ import annotations

import numpy as np
import pytest
import xraydb

from xrdpdf import InputError
from xrdpdf.physics.cif import get_phase
from xrdpdf.simulate.debye import Cluster, debye_iq, pair_histogram, sphere_cluster
from xrdpdf.stages.pdf import PdfConfig, transform

A_NATIO2 = 4.20464


def _f(el, q):
    return xraydb.f0(el, q / (4 * np.pi))


def test_two_atoms_closed_form():
    d = 2.37
    c = Cluster(np.array([[0, 0, 0], [0, 0, d]]), ("Ti", "O"))
    q = np.linspace(0.5, 25, 400)
    iq = debye_iq(c, q, bin_A=1e-4).y
    ft, fo = _f("Ti", q), _f("O", q)
    exact = (ft**2 + fo**2 + 2 * ft * fo * np.sin(q * d) / (q * d)) / 2
    # one pair in one bin: its mean distance is exact -> round-off only
    np.testing.assert_allclose(iq, exact, rtol=1e-12)


def test_histogram_matches_brute_force():
    rng = np.random.default_rng(5)
    xyz = rng.uniform(-6, 6, (40, 3))
    els = tuple(rng.choice(["Na", "Ti", "O"], 40))
    c = Cluster(xyz, els)
    q = np.linspace(0.5, 25, 300)
    f = {e: _f(e, q) for e in set(els)}
    brute = np.zeros_like(q)
    for i in range(40):
        for j in range(40):
            if i == j:
                brute += f[els[i]] ** 2
            else:
                x = q * np.linalg.norm(xyz[i] - xyz[j])
                brute += f[els[i]] * f[els[j]] * np.sin(x) / x
    brute /= 40
    iq = debye_iq(c, q, bin_A=0.001).y
    # bin means replace exact distances: relative error <= (Q·δ)²/24 = 2.6e-5 per pair
    np.testing.assert_allclose(iq, brute, rtol=3e-5 * np.abs(brute).max() / np.abs(brute).min())
    h = pair_histogram(c, 0.001)
    assert sum(v.sum() for v in h.counts.values()) == 40 * 39  # ordered pairs


def test_sphere_cluster_natio2():
    ph = get_phase("NaTiO2")
    d = 27.0
    c = sphere_cluster(ph, d, seed=3)
    rho = 8 / A_NATIO2**3
    expected = rho * np.pi * d**3 / 6
    # surface: atoms within one shell of a/2 of the surface may fall either way,
    # ±(π d² · a/2 · ρ)/2 ≈ 6 % of N at D = 27 Å
    assert abs(c.natoms - expected) < 0.06 * expected
    r = np.linalg.norm(c.xyz_A, axis=1)
    assert r.max() <= d / 2 + 1e-9
    comp = c.composition
    metals = comp["Na"] + comp["Ti"]
    assert abs(metals - comp["O"]) < 0.1 * comp["O"]  # rocksalt 1:1, surface noise
    # Na/Ti drawn ½/½: binomial 4σ
    assert abs(comp["Na"] - metals / 2) < 4 * np.sqrt(metals / 4)
    # seeded: same seed, same cluster
    c2 = sphere_cluster(ph, d, seed=3)
    assert c2.elements == c.elements
    # nearest neighbour M-O = a/2
    h = pair_histogram(c)
    assert abs(min(h.r_A[("Na", "O")].min(), h.r_A[("O", "Ti")].min()) - A_NATIO2 / 2) < 1e-6


def test_uiso_damps_pair_terms():
    c = Cluster(np.array([[0, 0, 0], [0, 0, 2.0]]), ("O", "O"))
    q = np.linspace(1, 20, 50)
    u = 0.01
    iq = debye_iq(c, q, uiso_A2=u).y
    fo = _f("O", q)
    exact = fo**2 * (1 + np.exp(-u * q * q) * np.sin(2 * q) / (2 * q))
    np.testing.assert_allclose(iq, exact, rtol=1e-10)


def test_natio2_peak_positions_through_pdf():
    """Acceptance: G(r) of a Debye NaTiO2 sphere peaks at a/2 = 2.10 Å and a/√2 = 2.97 Å."""
    c = sphere_cluster(get_phase("NaTiO2"), 27.0, seed=1)
    q = np.arange(1.0, 25.0 + 1e-9, 0.01)
    iq = debye_iq(c, q, uiso_A2=0.003)
    comp = " ".join(f"{k}{v}" for k, v in c.composition.items())
    g = transform(
        iq, PdfConfig(comp, qmin_invA=1.0, qmax_invA=25.0, rmin_A=1.5, rmax_A=3.5, rstep_A=0.002)
    ).gr
    for lo, hi, true in ((1.9, 2.3, A_NATIO2 / 2), (2.8, 3.15, A_NATIO2 / np.sqrt(2))):
        m = np.nonzero((g.x > lo) & (g.x < hi))[0]
        i = m[np.argmax(g.y[m])]
        y0, y1, y2 = g.y[i - 1 : i + 2]
        peak = g.x[i] + 0.002 * 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
        assert abs(peak - true) < 0.01, (peak, true)


def test_bad_inputs():
    with pytest.raises(InputError):
        sphere_cluster(get_phase("NaTiO2"), -1.0)
    with pytest.raises(InputError):
        sphere_cluster(get_phase("NaTiO2"), 1.0)  # fewer than 2 atoms
    c = Cluster(np.zeros((2, 3)) + [[0, 0, 0], [0, 0, 1]], ("O", "O"))
    with pytest.raises(InputError):
        debye_iq(c, np.array([0.0, 1.0]))
    with pytest.raises(InputError):
        Cluster(np.zeros((3, 3)), ("O",))


def test_lattice_histogram_equals_pair_count():
    """The per-lattice-vector FFT count equals the direct pair count, bin by bin."""
    for name in ("NaTiO2", "anatase"):
        c = sphere_cluster(get_phase(name), 14.0, seed=2)
        assert c.cell_index is not None
        fast = pair_histogram(c, 0.002)
        plain = pair_histogram(Cluster(c.xyz_A, c.elements, c.diameter_A), 0.002)
        assert set(fast.r_A) == set(plain.r_A)
        for k in plain.r_A:
            np.testing.assert_array_equal(fast.counts[k], plain.counts[k])
            np.testing.assert_allclose(fast.r_A[k], plain.r_A[k], atol=1e-9)  # round-off
