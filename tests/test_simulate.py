"""Simulated patterns and detector images (xrdpdf.simulate.images), the demo and its plot.

Truths: closed forms of flat-detector geometry (Q of a pixel, cos³ solid angle,
the polarization factor), Poisson statistics, the cell parameters of the
phases, and counting pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyFAI
import pytest

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf.cli import _main
from xrdpdf.io import images, read_pattern
from xrdpdf.physics.cif import get_phase
from xrdpdf.simulate.images import Beamstop, simulate_dark, simulate_image, simulate_pattern

SHAPE = (150, 170)
WL_A = 0.1173
PIX_M = 0.0003
DIST_M = 0.25
PONI1_M, PONI2_M = 0.0226, 0.0251  # not on a pixel edge
PONI = f"""poni_version: 2.1
Detector: Detector
Detector_config: {{"pixel1": {PIX_M}, "pixel2": {PIX_M}, "max_shape": [150, 170], "orientation": 3}}
Distance: {DIST_M}
Poni1: {PONI1_M}
Poni2: {PONI2_M}
Rot1: 0.0
Rot2: 0.0
Rot3: 0.0
Wavelength: 1.173e-11
"""


@pytest.fixture(scope="module")
def poni(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "g.poni"
    path.write_text(PONI)
    return path


@pytest.fixture(scope="module")
def ai(poni):
    return pyFAI.load(str(poni))


def flat_pattern(value=1.0, qmax=20.0):
    q = np.linspace(0, qmax, 2001)
    return Pattern(q, np.full_like(q, value), units.Q_A, WL_A)


def closed_form_tth():
    """2θ of each pixel centre of the untilted detector: tan 2θ = r / D."""
    rows, cols = np.indices(SHAPE, dtype=float)
    y = (rows + 0.5) * PIX_M - PONI1_M
    x = (cols + 0.5) * PIX_M - PONI2_M
    return np.arctan2(np.hypot(x, y), DIST_M)


def test_pixel_q_is_the_closed_form(ai):
    q = np.linspace(0, 20, 20001)
    lin = Pattern(q, q, units.Q_A, WL_A)  # I(Q) = Q reads the pixel Q back
    sim = simulate_image(lin, ai, noise=False, polarization_factor=None, correct_solid_angle=False)
    expect = 4 * np.pi * np.sin(closed_form_tth() / 2) / WL_A
    # linear interpolation of a linear function is exact; round-off only
    np.testing.assert_allclose(sim.data, expect, rtol=1e-6)
    np.testing.assert_allclose(sim.q_invA, expect, rtol=1e-6)


def test_solid_angle_and_polarization_closed_forms(ai):
    tth = closed_form_tth()
    sa = simulate_image(flat_pattern(), ai, noise=False, polarization_factor=None)
    # untilted flat detector: Ω ∝ cos³(2θ), normalised to 1 at the PONI (float32 in pyFAI)
    np.testing.assert_allclose(sa.expected, np.cos(tth) ** 3, rtol=1e-5)
    f = 0.9
    pol = simulate_image(
        flat_pattern(), ai, noise=False, polarization_factor=f, correct_solid_angle=False
    )
    rows, cols = np.indices(SHAPE, dtype=float)
    y = (rows + 0.5) * PIX_M - PONI1_M
    x = (cols + 0.5) * PIX_M - PONI2_M
    cos2chi = (x**2 - y**2) / (x**2 + y**2)  # χ from the horizontal (column) axis
    c2 = np.cos(tth) ** 2
    expect = 0.5 * (1 + c2 - f * cos2chi * (1 - c2))
    np.testing.assert_allclose(pol.expected, expect, rtol=1e-5)
    # negative control: the opposite polarization plane is distinguishable
    assert not np.allclose(pol.expected, 0.5 * (1 + c2 + f * cos2chi * (1 - c2)), rtol=1e-3)


def test_poisson_noise_dark_and_seed(ai):
    kw = dict(polarization_factor=None, correct_solid_angle=False)
    sim = simulate_image(flat_pattern(50.0), ai, seed=1, **kw)
    counts = sim.data
    n = counts.size
    # mean and variance of Poisson(50) over 25 500 pixels: standard errors 0.044 and ~0.45
    assert abs(counts.mean() - 50) < 4 * np.sqrt(50 / n)
    assert abs(counts.var() - 50) < 4 * 50 * np.sqrt(2 / n)
    again = simulate_image(flat_pattern(50.0), ai, seed=1, **kw)
    np.testing.assert_array_equal(again.data, counts)  # seeded: reproducible
    other = simulate_image(flat_pattern(50.0), ai, seed=2, **kw)
    assert not np.array_equal(other.data, counts)
    dark = simulate_image(flat_pattern(50.0), ai, seed=1, dark_counts=100.0, read_noise=3.0, **kw)
    extra = dark.data - counts  # same seed: same Poisson draw, then the dark on top
    assert abs(extra.mean() - 100) < 4 * 3 / np.sqrt(n)
    assert abs(extra.std() - 3) < 0.1  # σ of a sample std of 25 500 normals: 3/√(2n) = 0.013
    np.testing.assert_array_equal(dark.dark, 100.0)
    d = simulate_dark(SHAPE, 100.0, read_noise=3.0, seed=4)
    assert abs(d.mean() - 100) < 4 * 3 / np.sqrt(n)


def test_beamstop_dead_and_hot_pixels(ai):
    stop = Beamstop(radius_px=10, arm_width_px=6, arm_angle_deg=0.0)
    sim = simulate_image(
        flat_pattern(100.0),
        ai,
        beamstop=stop,
        dead_fraction=0.01,
        hot_fraction=0.002,
        hot_value=60000.0,
        seed=3,
    )
    cy, cx = PONI1_M / PIX_M, PONI2_M / PIX_M  # beam centre in pixels (no tilt)
    r, c = int(cy), int(cx)
    assert sim.beamstop[r, c]  # the disc
    assert sim.beamstop[r, c + 50] and sim.beamstop[r, SHAPE[1] - 1]  # the arm along +columns
    assert not sim.beamstop[r, c - 30] and not sim.beamstop[r + 30, c]
    disc = (np.indices(SHAPE)[0] + 0.5 - cy) ** 2 + (np.indices(SHAPE)[1] + 0.5 - cx) ** 2
    assert np.all(sim.beamstop[disc <= 100])
    shadow_only = sim.beamstop & ~sim.hot
    assert np.all(sim.data[shadow_only] == 0)  # opaque, no dark
    n = SHAPE[0] * SHAPE[1]
    assert sim.dead.sum() == round(0.01 * n) and sim.hot.sum() == round(0.002 * n)
    assert not (sim.dead & sim.hot).any()
    assert np.all(sim.data[sim.dead] == 0) and np.all(sim.data[sim.hot] == 60000.0)
    np.testing.assert_array_equal(sim.bad, sim.beamstop | sim.dead | sim.hot)
    # one detector: the same defect_seed gives the same bad pixels whatever the noise seed
    a = simulate_image(flat_pattern(5.0), ai, dead_fraction=0.01, seed=10, defect_seed=7)
    b = simulate_image(flat_pattern(9.0), ai, dead_fraction=0.01, seed=11, defect_seed=7)
    np.testing.assert_array_equal(a.dead, b.dead)


def test_simulate_image_errors(ai):
    neg = Pattern(np.linspace(0, 10, 11), -np.ones(11), units.Q_A, WL_A)
    with pytest.raises(InputError, match="≥ 0"):
        simulate_image(neg, ai)
    with pytest.raises(InputError, match="dead_fraction"):
        simulate_image(flat_pattern(), ai, dead_fraction=1.5)
    with pytest.raises(InputError, match="transmission"):
        Beamstop(transmission=2.0)


@pytest.mark.parametrize(("name", "hkl"), [("CeO2", (1, 1, 1)), ("anatase", (1, 0, 1))])
def test_simulate_pattern_strongest_peak(name, hkl):
    p = simulate_pattern(name, qmin_invA=0.5, qmax_invA=10.0, npt=9501, wavelength_A=WL_A)
    assert p.unit == units.Q_A and p.wavelength_A == WL_A
    assert p.y.max() == pytest.approx(105.0)  # peak_max 100 + background 5
    ph = get_phase(name)
    h, k, l = hkl
    q_hkl = 2 * np.pi * np.sqrt((h * h + k * k) / ph.a_A**2 + l * l / ph.c_A**2)  # cubic/tetragonal
    assert abs(p.x[np.argmax(p.y)] - q_hkl) <= 0.001  # grid step 0.001 Å⁻¹
    assert p.metadata["phase"]


def test_cli_simulate_pattern_and_image(poni, tmp_path, capsys):
    out = tmp_path / "ceo2.xye"
    rc = _main(["simulate", "pattern", "CeO2", "-o", str(out), "--qmax", "12", "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["written"] == [str(out)]
    assert read_pattern(out).x[-1] == pytest.approx(12.0)
    img = tmp_path / "ceo2.tif"
    rc = _main(
        [
            "simulate",
            "image",
            str(out),
            "--poni",
            str(poni),
            "-o",
            str(img),
            "--beamstop",
            "8",
            "--dead",
            "0.001",
            "--frames",
            "2",
            "--mask-out",
            str(tmp_path / "m.tif"),
            "--json",
        ]
    )
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["shape"] == [2, *SHAPE]
    assert images.frame_count(img) == 2
    mask = images.read_mask(tmp_path / "m.tif")
    assert mask.sum() == res["masked_pixels"] > 0
    rc = _main(["simulate", "image", str(out), "--poni", str(poni), "-o", str(img)])
    assert rc == 2 and "exists" in capsys.readouterr().err  # kept without --overwrite
    rc = _main(["simulate", "pattern", "unobtainium", "-o", str(tmp_path / "u.xye")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("xrdpdf: error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "u.xye").exists()


def test_plot_patterns(tmp_path):
    from xrdpdf.plot import save_figure
    from xrdpdf.plot.patterns import plot_image, plot_patterns

    p = flat_pattern(3.0)
    fig = plot_patterns([p, p.replace(y=p.y * 2)], ["a", "b"], models=[p, None])
    assert len(fig.axes[0].lines) == 3
    assert save_figure(fig, tmp_path / "p.png").stat().st_size > 1000
    fig = plot_image(np.arange(100.0).reshape(10, 10))
    assert save_figure(fig, tmp_path / "i.png").is_file()
