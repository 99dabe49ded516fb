"""Integration to I(Q) (xrdpdf.stages.integrate).

Truths: (1) plain pyFAI ``integrate1d`` on the same image — our oracle;
(2) images simulated (xrdpdf.simulate.images, which never calls xrdpdf.stages.integrate)
from a 1-D pattern of Gaussian peaks with known centres and areas.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pyFAI
import pytest
from scipy.optimize import curve_fit

from xrdpdf._core import units
from xrdpdf._core.errors import InputError, InputWarning
from xrdpdf._core.pattern import Pattern
from xrdpdf.io import images
from xrdpdf.simulate.images import Beamstop, simulate_image
from xrdpdf.stages.integrate import (
    IntegrationSettings,
    Integrator,
    integrate_frames,
    integrate_image,
    load_poni,
)

SHAPE = (400, 440)
WL_A = 0.1173
# 200 µm pixels at 350 mm, beam near the centre: full rings to Q ≈ 6, corners ≈ 9.3 Å⁻¹
PONI = """poni_version: 2.1
Detector: Detector
Detector_config: {{"pixel1": 0.0002, "pixel2": 0.0002, "max_shape": [400, 440], "orientation": 3}}
Distance: 0.35
Poni1: 0.0403
Poni2: 0.0437
Rot1: 0.004
Rot2: -0.003
Rot3: 0.0
{wl}
"""
PEAKS = [(2.0, 100.0), (3.1, 50.0), (4.5, 80.0), (5.6, 30.0)]  # (centre Å⁻¹, area·100)
WIDTH = 0.03  # Gaussian σ in Å⁻¹ (FWHM ≈ 2.3 pixels in Q)
BASE = 10.0


def truth_pattern() -> Pattern:
    q = np.linspace(0.0, 10.0, 10001)
    y = np.full_like(q, BASE)
    for c, a in PEAKS:
        y += a / (WIDTH * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((q - c) / WIDTH) ** 2) / 100
    return Pattern(q, y, units.Q_A, WL_A)


@pytest.fixture(scope="module")
def poni(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("geo") / "small.poni"
    path.write_text(PONI.format(wl="Wavelength: 1.173e-11"))
    return path


@pytest.fixture(scope="module")
def ai(poni):
    return load_poni(poni)


def gauss_line(q, a, c, s, b0, b1):
    return a / (s * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((q - c) / s) ** 2) + b0 + b1 * (q - c)


def fit_peaks(p: Pattern, scale: float):
    out = []
    for c, a in PEAKS:
        sel = np.abs(p.x - c) < 0.25
        popt, _ = curve_fit(
            gauss_line,
            p.x[sel],
            p.y[sel],
            p0=[scale * a / 100, c, 0.04, scale * BASE, 0.0],
            sigma=p.sigma[sel] if p.sigma is not None else None,
        )
        out.append(popt)
    return np.array(out)


# ------------------------------------------------------------------- geometry
def test_load_poni_errors(tmp_path):
    with pytest.raises(InputError, match="nope.poni: PONI file not found"):
        load_poni(tmp_path / "nope.poni")
    nowl = tmp_path / "nowl.poni"
    nowl.write_text(PONI.format(wl=""))
    with pytest.raises(InputError, match="nowl.poni: PONI file has no wavelength"):
        load_poni(nowl)
    bad = tmp_path / "bad.poni"
    bad.write_text("Distance: banana\nthis is not a poni\n")
    with pytest.raises(InputError, match="bad.poni"):
        load_poni(bad)


def test_default_11idc_geometry():
    root = Path(__file__).resolve().parents[1]
    ai = load_poni(root / "calib" / "11idc_default.poni")
    assert ai.wavelength * 1e10 == pytest.approx(0.1173, abs=1e-12)
    assert tuple(ai.detector.shape) == (2048, 2048)
    assert (ai.detector.pixel1, ai.detector.pixel2) == pytest.approx((200e-6, 200e-6))
    f2d = ai.getFit2D()
    assert f2d["directDist"] == pytest.approx(350.0, rel=0.05)  # "~350 mm"
    assert abs(f2d["centerX"] - 1024) < 20 and abs(f2d["centerY"] - 1024) < 20  # near centre


# ------------------------------------------------------------ vs plain pyFAI
def test_equals_plain_pyfai_with_all_corrections(ai):
    rng = np.random.default_rng(7)
    sim = simulate_image(truth_pattern(), ai, scale=40.0, dark_counts=50.0, read_noise=2.0, seed=3)
    dark = np.full(SHAPE, 50.0)
    flat = rng.uniform(0.9, 1.1, SHAPE)
    mask = np.zeros(SHAPE, bool)
    mask[:, 200:205] = True  # a module gap
    s = IntegrationSettings(npt=700, polarization_factor=0.95, method="pyfai")
    got = Integrator(ai, SHAPE, s, mask=mask, dark=dark, flat=flat).integrate(sim.data)
    ref = pyFAI.load(ai.get_config())  # an independent integrator object
    res = ref.integrate1d(
        sim.data,
        700,
        unit="q_A^-1",
        method=("bbox", "csr", "cython"),
        error_model="poisson",
        polarization_factor=0.95,
        correctSolidAngle=True,
        mask=mask,
        dark=dark,
        flat=flat,
    )
    keep = res.count > 0
    np.testing.assert_allclose(got.x, res.radial[keep], rtol=1e-12)
    # same engine and inputs: only the float32 round-off of the corrections (ε = 6e-8) remains
    np.testing.assert_allclose(got.y, res.intensity[keep], rtol=1e-6)
    np.testing.assert_allclose(got.sigma, res.sigma[keep], rtol=1e-6)
    assert got.wavelength_A == pytest.approx(WL_A)
    assert got.metadata["integration"]["polarization_factor"] == 0.95


def test_two_theta_unit_and_sigma_clip_match_pyfai(ai):
    sim = simulate_image(truth_pattern(), ai, scale=40.0, seed=4)
    got = integrate_image(sim.data, ai, npt=500, unit="2th", method="pyfai")
    res = ai.integrate1d(
        sim.data, 500, unit="2th_deg", error_model="poisson", polarization_factor=0.99
    )
    keep = res.count > 0
    assert got.unit == units.TTH_DEG
    np.testing.assert_allclose(got.y, res.intensity[keep], rtol=1e-6)  # pyFAI is the oracle
    clipped = integrate_image(sim.data, ai, npt=500, sigma_clip=True, method="pyfai")
    ref = ai.sigma_clip_ng(
        sim.data,
        500,
        unit="q_A^-1",
        method=("no", "csr", "cython"),
        error_model="poisson",
        polarization_factor=0.99,
        thres=5.0,
        max_iter=5,
        mask=np.zeros(SHAPE, bool),
    )
    sel = np.isin(ref.radial, clipped.x)
    np.testing.assert_allclose(clipped.y, ref.intensity[sel], rtol=1e-6)


# ----------------------------------------------------- vs known 1-D pattern
def test_simulated_image_integrates_back_to_its_pattern(ai):
    truth = truth_pattern()
    sim = simulate_image(truth, ai, scale=200.0, seed=11)
    p = Integrator(ai, SHAPE, IntegrationSettings(npt=1500, method="pyfai")).integrate(sim.data)
    fits = fit_peaks(p, 200.0)
    centres = np.array([c for c, _ in PEAKS])
    # acceptance: peak positions within 0.002 Å⁻¹ (bin width 0.005; pixel ≈ 0.03 Å⁻¹)
    assert np.max(np.abs(fits[:, 1] - centres)) < 0.002
    areas = fits[:, 0] / fits[0, 0]
    true_areas = np.array([a for _, a in PEAKS]) / PEAKS[0][1]
    # acceptance: relative intensities within 2 %
    np.testing.assert_allclose(areas, true_areas, rtol=0.02)
    # background level: Poisson σ of a 5-bin mean of ~2000 counts ≈ 0.3 % → 1.5 % is > 4σ
    flat_region = (p.x > 6.0) & (p.x < 6.5)
    assert np.mean(p.y[flat_region]) == pytest.approx(200.0 * BASE, rel=0.015)
    # negative control: a peak moved by 0.01 Å⁻¹ is detected
    assert np.max(np.abs(fits[:, 1] - (centres + 0.01))) > 0.002


def test_masked_beamstop_does_not_bias(ai):
    truth = truth_pattern()
    stop = Beamstop(radius_px=25, arm_width_px=14, arm_angle_deg=30)
    sim = simulate_image(truth, ai, scale=100.0, beamstop=stop, seed=5)
    # a fixed radial range, so that masked and unmasked runs share their bins
    s = IntegrationSettings(npt=600, method="pyfai", radial_range=(0.5, 9.0))
    masked = Integrator(ai, SHAPE, s, mask=sim.beamstop).integrate(sim.data)
    expect = Integrator(ai, SHAPE, s).integrate(sim.expected)  # noise-free, no shadow
    common = np.isin(expect.x, masked.x)
    r = (masked.y - expect.y[common]) / masked.sigma
    # unbiased: mean normalised residual within 4 standard errors of 0
    assert abs(r.mean()) < 4 / np.sqrt(r.size)
    assert np.std(r) < 1.5  # σ is an honest Poisson error (≈1; splitting correlates bins)
    unmasked = Integrator(ai, SHAPE, s).integrate(sim.data)
    # negative control: leaving the shadow in biases the bins the arm crosses
    low = unmasked.y[np.isin(unmasked.x, expect.x)] / expect.y[np.isin(expect.x, unmasked.x)]
    assert low.min() < 0.9


def test_dark_and_flat_corrections(ai):
    truth = truth_pattern()
    rng = np.random.default_rng(2)
    flat = rng.uniform(0.8, 1.2, SHAPE)
    sim = simulate_image(
        truth, ai, scale=200.0, dark_counts=300.0, read_noise=0.0, flat=flat, seed=8
    )
    s = IntegrationSettings(npt=600, method="pyfai")
    ok = Integrator(ai, SHAPE, s, dark=sim.dark, flat=flat).integrate(sim.data)
    expect = Integrator(ai, SHAPE, s).integrate(sim.expected / flat)
    common = np.isin(expect.x, ok.x)
    r = (ok.y - expect.y[common]) / ok.sigma
    assert abs(r.mean()) < 4 / np.sqrt(r.size)  # unbiased within 4 standard errors
    no_dark = Integrator(ai, SHAPE, s, flat=flat).integrate(sim.data)
    assert np.median(no_dark.y / ok.y) > 1.1  # negative control: dark left in adds ~1.5 units
    no_flat = Integrator(ai, SHAPE, s, dark=sim.dark).integrate(sim.data)
    r2 = (no_flat.y - expect.y[np.isin(expect.x, no_flat.x)]) / no_flat.sigma
    assert np.sqrt(np.mean(r2**2)) > 2  # negative control: without the flat, excess scatter


def test_nan_negative_pixels_are_masked_not_errors(ai):
    sim = simulate_image(truth_pattern(), ai, scale=50.0, seed=9)
    data = sim.data.copy()
    data[100:110, :] = -1  # a gap row band, as Pilatus-style detectors mark it
    data[:, 300:303] = np.nan
    s = IntegrationSettings(npt=500, method="pyfai")
    got = Integrator(ai, SHAPE, s).integrate(data)
    mask = images.invalid_pixels(data)
    ref = Integrator(ai, SHAPE, s, mask=mask).integrate(sim.data)
    np.testing.assert_allclose(got.y, ref.y, rtol=1e-6)  # same pixels, same sums
    assert got.metadata["invalid_pixels"] == int(mask.sum())


def test_bad_frames(ai):
    s = IntegrationSettings(npt=300, method="pyfai")
    integ = Integrator(ai, SHAPE, s)
    with pytest.raises(InputError, match=r"x.tif: image shape \(10, 10\)"):
        integ.integrate(np.ones((10, 10)), source="x.tif")
    with pytest.raises(InputError, match="y.tif: no valid pixel"):
        integ.integrate(np.full(SHAPE, np.nan), source="y.tif")
    with pytest.raises(InputError, match="no valid pixel"):
        integ.integrate(-np.ones(SHAPE), source="z.tif")
    with pytest.raises(InputError, match="m.tif: every pixel is masked"):
        Integrator(ai, SHAPE, s, mask=np.ones(SHAPE, bool), provenance={"mask": "m.tif"})
    with pytest.raises(InputError, match="detector shape"):
        Integrator(ai, (100, 100), s)
    with pytest.raises(InputError, match="unit"):
        IntegrationSettings(unit="d")
    with pytest.raises(InputError, match="polarization"):
        IntegrationSettings(polarization_factor=1.5)


def test_integrate_frames_batch(ai, tmp_path):
    truth = truth_pattern()
    stack = np.stack([simulate_image(truth, ai, scale=s, seed=s).data for s in (10, 20, 30)])
    images.write_image(stack, tmp_path / "stack.h5")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00junk")
    integ = Integrator(ai, SHAPE, IntegrationSettings(npt=400, method="pyfai"))
    items = images.iter_many([tmp_path / "stack.h5", tmp_path / "bad.tif"])
    results = list(integrate_frames(integ, items))
    assert [r.ok for r in results] == [True, True, True, False]
    assert [r.index for r in results[:3]] == [0, 1, 2]
    assert "bad.tif" in results[3].error
    # intensities scale with the simulated scale 10:20:30 (Poisson noise ≪ 5 %)
    means = [r.pattern.y.mean() for r in results[:3]]
    np.testing.assert_allclose(np.array(means) / means[0], [1, 2, 3], rtol=0.05)
    direct = integ.integrate(stack[1].astype(np.float32).astype(float))
    np.testing.assert_allclose(results[1].pattern.y, direct.y, rtol=1e-6)  # same frame, same sums
    assert results[1].pattern.metadata["frame"] == 1


def test_fast_engine_matches_pyfai(ai, tmp_path):
    rng = np.random.default_rng(12)
    sim = simulate_image(truth_pattern(), ai, scale=80.0, dark_counts=20.0, seed=12)
    mask = sim.bad.copy()
    mask[5:9, :] = True
    flat = rng.uniform(0.9, 1.1, SHAPE)
    data = sim.data.copy()
    data[200:203, :] = np.nan  # per-frame invalid pixels, dropped by both engines
    data[:, 50] = -1
    kw = dict(mask=mask, dark=sim.dark, flat=flat, cache_dir=tmp_path)
    fast = Integrator(ai, SHAPE, IntegrationSettings(npt=600, method="fast"), **kw)
    slow = Integrator(ai, SHAPE, IntegrationSettings(npt=600, method="pyfai"), **kw)
    a, b = fast.integrate(data), slow.integrate(data)
    assert a.metadata["engine"] == "fast"
    np.testing.assert_allclose(a.x, b.x, rtol=1e-9)
    # pyFAI's float32 coefficients summed in float64 in another order: a few ε (6e-8)
    np.testing.assert_allclose(a.y, b.y, rtol=1e-6)
    np.testing.assert_allclose(a.sigma, b.sigma, rtol=1e-6)


def test_writes_overlap_the_next_frame_and_keep_order():
    from types import SimpleNamespace

    from xrdpdf.cli._commands.integrate import _written_behind

    produced_second = threading.Event()

    def results():
        yield SimpleNamespace(ok=True, name="a")
        produced_second.set()  # frame 1 is integrated while frame 0 is being written
        yield SimpleNamespace(ok=False, name="b")
        yield SimpleNamespace(ok=True, name="c")

    def write(res):
        if res.name == "a":
            # not a timing: a guard against a deadlock if the write were not overlapped
            assert produced_second.wait(timeout=30)
        if res.name == "c":
            raise InputError("c: output exists; use --overwrite")

    out = [(r.name, err) for r, err in _written_behind(results(), write)]
    assert out == [("a", None), ("b", None), ("c", "c: output exists; use --overwrite")]


@pytest.mark.parametrize("npt", [1, 10**10, 2.5])
def test_npt_out_of_range_is_an_input_error(npt):
    # 10**10 bins overflowed pyFAI's C integer (a traceback) before this check.
    with pytest.raises(InputError, match="npt must be an integer in 2–100000"):
        IntegrationSettings(npt=npt)


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float32])
def test_frames_in_their_own_dtype_integrate_as_float64(ai, tmp_path, dtype):
    """``keep_dtype`` frames (no float64 copy) give the float64 frames' numbers exactly."""
    import tifffile

    rng = np.random.default_rng(21)
    counts = rng.poisson(500.0, SHAPE).astype(dtype)
    counts[5, 7] = dtype(0) if dtype == np.uint16 else dtype(-2)  # a gap marker where signed
    if dtype == np.int32:
        counts[200, 300] = 2**25 + 1  # a count float32 cannot hold: it must stay exact
    tifffile.imwrite(tmp_path / "f.tif", counts)
    native = next(images.iter_frames(tmp_path / "f.tif", keep_dtype=True))
    as_f64 = next(images.iter_frames(tmp_path / "f.tif"))
    assert native.data.dtype == dtype and as_f64.data.dtype == np.float64
    integ = Integrator(ai, settings=IntegrationSettings(npt=300), cache_dir=tmp_path / "c")
    a, b = integ.integrate(native), integ.integrate(as_f64)
    # the same float64 value of every pixel enters the same sums in the same order
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.sigma, b.sigma)
    summed = next(images.iter_frames(tmp_path / "f.tif", sum_frames=True, keep_dtype=True))
    assert summed.data.dtype == np.float64  # a sum never wraps around in a small integer type


def test_dark_above_the_frame_warns_once(ai):
    # frame and dark swapped: the dark's median (300 counts plus signal) exceeds the frame's
    sim = simulate_image(truth_pattern(), ai, scale=200.0, dark_counts=300.0, read_noise=0.0,
                         seed=8)  # fmt: skip
    s = IntegrationSettings(npt=600, method="pyfai")
    integ = Integrator(ai, SHAPE, s, dark=sim.data)
    with pytest.warns(InputWarning, match="dark's median .* exceeds the frame's"):
        integ.integrate(sim.dark)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        integ.integrate(sim.dark)  # said once per integrator, not per frame
        Integrator(ai, SHAPE, s, dark=sim.dark).integrate(sim.data)  # the right way round: quiet
