"""Tests of the fast sparse-operator integration path (xrdpdf.stages._fastint).

The oracle is pyFAI itself: ``integrate1d`` with the ("bbox", "csr", "cython") engine
and the Poisson error model on the same frame, mask, dark, flat and polarization.  pyFAI
adds the products c·(raw − dark) and c²·max(raw, 1) in float64; the kernel forms them
in fused float32 multiply-adds over at most 8 of them per bin and lane, then adds in
float64, in another order: they agree to ~1e-7; the tolerance is 1e-6 relative on I
and σ.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from pyFAI.detectors import Detector
from pyFAI.integrator.azimuthal import AzimuthalIntegrator

from xrdpdf._core.errors import InputError
from xrdpdf.stages import _opcache
from xrdpdf.stages._fastint import SparseIntegrator, default_cache_dir
from xrdpdf.stages._scatter import simd_available

SHAPE = (512, 512)
NPT = 400
METHOD = ("bbox", "csr", "cython")
# float32 fused multiply-adds (ε = 6e-8), eight at a time (≤ 8ε on a sum of positive
# terms, 9ε with the rounded c²), then float64 in another order than pyFAI: measured ~8e-8
RTOL_I = 1e-6
RTOL_SIGMA = 1e-6


def make_ai(dummy=None, delta_dummy=None):
    """A 512² detector of 0.8 mm pixels at 350 mm: the angular range of 11-ID-C's."""
    det = Detector(pixel1=8e-4, pixel2=8e-4, max_shape=SHAPE)
    if dummy is not None:
        det.dummy = dummy
        det.delta_dummy = delta_dummy
    return AzimuthalIntegrator(
        dist=0.35, poni1=0.2, poni2=0.21, rot1=0.01, rot2=-0.02, detector=det, wavelength=0.1173e-10
    )


@pytest.fixture(scope="module")
def ai():
    return make_ai()


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(8)
    frame = rng.poisson(200.0, SHAPE).astype(np.float32)
    dark = rng.uniform(0.0, 5.0, SHAPE).astype(np.float32)
    flat = rng.uniform(0.9, 1.1, SHAPE).astype(np.float32)
    mask = np.zeros(SHAPE, dtype=bool)
    mask[200:260, 240:280] = True  # a beamstop-like block
    mask[:, 100] = True  # a dead column
    return {"frame": frame, "dark": dark, "flat": flat, "mask": mask}


def pyfai_ref(ai, frame, unit, *, mask=None, dark=None, flat=None, pol=None, solid=True):
    return ai.integrate1d(
        frame,
        NPT,
        unit=unit,
        method=METHOD,
        error_model="poisson",
        polarization_factor=pol,
        correctSolidAngle=solid,
        mask=mask,
        dark=dark,
        flat=flat,
    )


def assert_same(res, radial, intensity, sigma):
    np.testing.assert_array_equal(radial, res.radial)
    signal = res.count > 0  # bins that hold signal
    assert signal.sum() > 0.9 * NPT
    np.testing.assert_allclose(intensity[signal], res.intensity[signal], rtol=RTOL_I)
    np.testing.assert_allclose(sigma[signal], res.sigma[signal], rtol=RTOL_SIGMA)
    # empty bins: pyFAI's `empty` value (0) for both
    np.testing.assert_array_equal(intensity[~signal], res.intensity[~signal])
    np.testing.assert_array_equal(sigma[~signal], res.sigma[~signal])


@pytest.mark.parametrize("unit", ["q_A^-1", "2th_deg"])
@pytest.mark.parametrize("corrections", ["all", "none"])
def test_matches_pyfai(ai, images, unit, corrections, tmp_path):
    if corrections == "all":
        kw = {"mask": images["mask"], "flat": images["flat"], "pol": 0.99, "solid": True}
        dark = images["dark"]
    else:
        kw = {"mask": None, "flat": None, "pol": None, "solid": False}
        dark = None
    si = SparseIntegrator.from_pyfai(
        ai,
        SHAPE,
        NPT,
        unit,
        mask=kw["mask"],
        flat=kw["flat"],
        polarization_factor=kw["pol"],
        correct_solid_angle=kw["solid"],
        cache_dir=tmp_path,
    )
    res = pyfai_ref(ai, images["frame"], unit, dark=dark, **kw)
    assert si.unit == unit
    assert_same(res, *si.integrate(images["frame"], dark))


@pytest.mark.parametrize(
    ("npt", "width", "overflow"),
    [(400, 4, False), (800, 4, True), (1000, 8, False), (3000, 8, True)],
)
def test_operator_layouts_match_pyfai(ai, images, npt, width, overflow):
    # Finer bins make each pixel span more bins: the operator switches from 4 to 8
    # coefficients per pixel and puts the rest in its overflow list.  Every layout,
    # with NaN pixels and a dark, must still give pyFAI's numbers.
    si = SparseIntegrator.from_pyfai(
        ai, SHAPE, npt, "q_A^-1", mask=images["mask"], polarization_factor=0.99, cache_dir=False
    )
    assert si._op.width == width
    # the overflow list always holds the frame's last pixel (see _scatter.c)
    assert (np.count_nonzero(si._op.ov_pix < SHAPE[0] * SHAPE[1] - 1) > 0) == overflow
    bad = corrupted(images["frame"])
    res = ai.integrate1d(
        bad,
        npt,
        unit="q_A^-1",
        method=METHOD,
        error_model="poisson",
        polarization_factor=0.99,
        mask=images["mask"] | (bad < 0),
        dark=images["dark"],
    )
    radial, intensity, sigma = si.integrate(bad, images["dark"])
    np.testing.assert_array_equal(radial, res.radial)
    ok = res.count > 0
    np.testing.assert_allclose(intensity[ok], res.intensity[ok], rtol=RTOL_I)
    np.testing.assert_allclose(sigma[ok], res.sigma[ok], rtol=RTOL_SIGMA)
    np.testing.assert_array_equal(intensity[~ok], 0.0)


def test_uniform_scatterer_gives_constant(ai, images):
    # Independent closed form: counts k·flat·Ω·P in every pixel integrate to I = k in
    # every bin (ratio of sums), whatever the coefficients.  Round-off only (float32 norm).
    si = SparseIntegrator.from_pyfai(
        ai,
        SHAPE,
        NPT,
        "q_A^-1",
        mask=images["mask"],
        flat=images["flat"],
        polarization_factor=0.99,
        cache_dir=False,
    )
    norm = images["flat"] * ai.polarization(SHAPE, 0.99) * ai.solidAngleArray(SHAPE)
    k = 1234.5
    _, intensity, sigma = si.integrate(k * norm)
    filled = intensity != 0
    assert filled.sum() > 0.9 * NPT
    np.testing.assert_allclose(intensity[filled], k, rtol=1e-5)
    assert np.all(sigma[filled] > 0)


def test_dtypes_agree(ai, images):
    # uint16 runs natively, other dtypes are cast to float32 like pyFAI does: integer
    # counts below 2**24 are exact in float32, so all agree to round-off.
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "2th_deg", cache_dir=False)
    ref = si.integrate(images["frame"])
    for dtype in (np.uint16, np.int32, np.float64, np.uint32):
        _, intensity, sigma = si.integrate(images["frame"].astype(dtype))
        np.testing.assert_allclose(intensity, ref[1], rtol=1e-12)
        np.testing.assert_allclose(sigma, ref[2], rtol=1e-12)


def corrupted(frame):
    bad = frame.copy()
    bad[10:20, 10:300] = np.nan
    bad[300:303, 10:300] = -5.0
    bad[400:404, 50:300] = 0.3  # below 1: Poisson variance max(raw, 1) = 1
    bad[450, 450] = np.inf
    return bad


def test_nan_kept_out_negative_kept_like_pyfai(ai, images):
    # mask_negative=False: pyFAI's own behaviour without dummy (NaN/inf masked,
    # negative values integrated with variance 1).
    bad = corrupted(images["frame"])
    si = SparseIntegrator.from_pyfai(
        ai,
        SHAPE,
        NPT,
        "q_A^-1",
        mask=images["mask"],
        flat=images["flat"],
        polarization_factor=0.99,
        cache_dir=False,
        mask_negative=False,
    )
    res = pyfai_ref(
        ai, bad, "q_A^-1", mask=images["mask"], dark=images["dark"], flat=images["flat"], pol=0.99
    )
    assert_same(res, *si.integrate(bad, images["dark"]))


def test_negative_masked_by_default(ai, images):
    # Default (xrdpdf convention): negative raw pixels are invalid, i.e. pyFAI with
    # them added to the mask of that frame.
    bad = corrupted(images["frame"])
    si = SparseIntegrator.from_pyfai(
        ai,
        SHAPE,
        NPT,
        "q_A^-1",
        mask=images["mask"],
        flat=images["flat"],
        polarization_factor=0.99,
        cache_dir=False,
    )
    frame_mask = images["mask"] | (bad < 0)
    res = pyfai_ref(
        ai, bad, "q_A^-1", mask=frame_mask, dark=images["dark"], flat=images["flat"], pol=0.99
    )
    out = si.integrate(bad, images["dark"])
    assert_same(res, *out)
    # negative control: pyFAI *without* those pixels masked differs
    res_kept = pyfai_ref(
        ai, bad, "q_A^-1", mask=images["mask"], dark=images["dark"], flat=images["flat"], pol=0.99
    )
    assert (
        np.max(np.abs(out[1] / np.where(res_kept.intensity == 0, 1, res_kept.intensity) - 1)) > 1e-3
    )


def test_bins_emptied_by_nan_are_empty(ai, images):
    # A ring of NaN wide enough that some bins keep no valid pixel: pyFAI gives them
    # `empty` (0) for I and σ, and so must we; the other bins still match.
    q = ai.array_from_unit(SHAPE, "center", "q_A^-1", scale=True)
    bad = images["frame"].copy()
    bad[(q > 10.0) & (q < 12.0)] = np.nan
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)
    res = pyfai_ref(ai, bad, "q_A^-1")
    radial, intensity, sigma = si.integrate(bad)
    emptied = (res.count == 0) & (radial > 10.0) & (radial < 12.0)
    assert emptied.sum() >= 5
    assert np.all(intensity[emptied] == 0) and np.all(sigma[emptied] == 0)
    assert_same(res, radial, intensity, sigma)


@pytest.mark.parametrize("dark_dtype", [np.float32, np.float64])
def test_nan_dark_pixels_left_out_like_pyfai(ai, images, dark_dtype):
    dark = images["dark"].astype(dark_dtype)
    dark[60:70, :] = np.nan
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)
    res = pyfai_ref(ai, images["frame"], "q_A^-1", dark=dark)
    assert_same(res, *si.integrate(images["frame"], dark))


def test_detector_dummy_like_pyfai(images):
    # pyFAI's dynamic mask: pixels within delta_dummy of the detector's dummy value.
    ai = make_ai(dummy=-2, delta_dummy=0.5)
    frame = images["frame"].astype(np.int32)
    frame[100:110, :] = -2
    frame[120:125, :] = -1  # not a dummy (|−1 − (−2)| > 0.5): kept with mask_negative=False
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False, mask_negative=False)
    res = pyfai_ref(ai, frame, "q_A^-1")
    assert_same(res, *si.integrate(frame))


def test_all_invalid_frame_gives_empty(ai):
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)
    _, intensity, sigma = si.integrate(np.full(SHAPE, np.nan, dtype=np.float32))
    assert np.all(intensity == 0) and np.all(sigma == 0)


def test_zero_flat_pixels_dropped_like_pyfai(ai, images):
    flat = images["flat"].copy()
    flat[30:40, :] = 0.0  # pyFAI masks pixels whose normalization is 0
    flat[50, 50] = np.nan
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", flat=flat, cache_dir=False)
    res = pyfai_ref(ai, images["frame"], "q_A^-1", flat=flat)
    assert_same(res, *si.integrate(images["frame"]))


def test_cache_roundtrip(ai, images, tmp_path):
    kw = {
        "mask": images["mask"],
        "flat": images["flat"],
        "polarization_factor": 0.99,
        "cache_dir": tmp_path,
    }
    first = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", **kw)
    assert not first.loaded_from_cache
    assert first.cache_path is not None and first.cache_path.parent == tmp_path
    second = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", **kw)
    assert second.loaded_from_cache and second.cache_path == first.cache_path
    a = first.integrate(images["frame"])
    b = second.integrate(images["frame"])
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert second.nbytes == first.nbytes
    # no temporary file left behind by the atomic write
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".op"]
    # the loaded operator is mapped from the file, not copied into memory
    assert isinstance(second._op.coef, np.memmap)


@pytest.mark.parametrize("change", ["polarization", "mask", "flat", "npt", "unit", "distance"])
def test_cache_key_changes_with_settings(images, tmp_path, change):
    ai = make_ai()
    kw = {"mask": images["mask"], "flat": images["flat"], "polarization_factor": 0.99}
    npt, unit = NPT, "q_A^-1"
    base = SparseIntegrator.from_pyfai(ai, SHAPE, npt, unit, cache_dir=tmp_path, **kw)
    if change == "polarization":
        kw["polarization_factor"] = 0.95
    elif change == "mask":
        kw["mask"] = images["mask"].copy()
        kw["mask"][0, 0] = True
    elif change == "flat":
        kw["flat"] = images["flat"] * 1.01
    elif change == "npt":
        npt = NPT + 1
    elif change == "unit":
        unit = "2th_deg"
    else:
        ai.dist = 0.36
    other = SparseIntegrator.from_pyfai(ai, SHAPE, npt, unit, cache_dir=tmp_path, **kw)
    assert not other.loaded_from_cache
    assert other.cache_path != base.cache_path


def test_corrupt_cache_is_rebuilt(ai, images, tmp_path):
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=tmp_path)
    si.cache_path.write_bytes(b"not an operator file")
    again = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=tmp_path)
    assert not again.loaded_from_cache
    np.testing.assert_array_equal(
        again.integrate(images["frame"])[1], si.integrate(images["frame"])[1]
    )
    assert SparseIntegrator.from_pyfai(
        ai, SHAPE, NPT, "q_A^-1", cache_dir=tmp_path
    ).loaded_from_cache


def test_default_cache_dir_from_env(monkeypatch, tmp_path, ai):
    monkeypatch.setenv("XRDPDF_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1")
    assert si.cache_path.parent == tmp_path / "c" and si.cache_path.exists()
    monkeypatch.delenv("XRDPDF_CACHE")
    assert default_cache_dir().parts[-2:] == (".cache", "xrdpdf")


def test_no_cache(ai, tmp_path, monkeypatch):
    monkeypatch.setenv("XRDPDF_CACHE", str(tmp_path))
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)
    assert si.cache_path is None and not si.loaded_from_cache
    assert list(tmp_path.iterdir()) == []


def test_nbytes(ai):
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)
    # padded coefficients (4 float32 per pixel), first bin, pixel norm: ~22 B/pixel.
    # 40 B/pixel would still be 168 MB for 2048², far under the 1 GB limit.
    assert 0 < si.nbytes < 40 * SHAPE[0] * SHAPE[1]
    assert si.nnz > SHAPE[0] * SHAPE[1]  # bbox splitting: each pixel spans > 1 bin


def test_stack_matches_single_frames(ai, images):
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", mask=images["mask"], cache_dir=False)
    rng = np.random.default_rng(3)
    frames = [rng.poisson(50.0 * (i + 1), SHAPE).astype(np.uint16) for i in range(5)]
    reader_threads = set()

    def reader():
        for f in frames:
            reader_threads.add(threading.current_thread().name)
            yield f

    out = list(si.integrate_stack(reader(), dark=images["dark"], prefetch=2))
    assert len(out) == len(frames)
    assert reader_threads == {"xrdpdf-prefetch"}  # frames were read in the thread
    for f, (_, intensity, sigma) in zip(frames, out, strict=True):
        _, i1, s1 = si.integrate(f, images["dark"])
        np.testing.assert_array_equal(intensity, i1)
        np.testing.assert_array_equal(sigma, s1)


def test_stack_reader_error_propagates(ai, images):
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)

    def reader():
        yield images["frame"]
        raise InputError("frame 2 unreadable")

    gen = si.integrate_stack(reader())
    next(gen)
    with pytest.raises(InputError, match="frame 2 unreadable"):
        next(gen)


def test_stack_early_stop_joins_thread(ai, images):
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)
    endless = (images["frame"] for _ in iter(int, 1))
    gen = si.integrate_stack(endless, prefetch=1)
    next(gen)
    gen.close()  # must not hang: the reader thread stops and is joined
    assert not any(t.name == "xrdpdf-prefetch" for t in threading.enumerate())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"unit": "r_mm"}, "unit"),
        ({"npt": 0}, "npt"),
        ({"mask": np.zeros((4, 4), bool)}, "mask shape"),
        ({"flat": np.ones((4, 4))}, "flat shape"),
        ({"polarization_factor": 1.5}, "polarization"),
    ],
)
def test_bad_build_input(ai, kwargs, match):
    args = {"unit": "q_A^-1", "npt": NPT, **kwargs}
    with pytest.raises(InputError, match=match):
        SparseIntegrator.from_pyfai(
            ai, SHAPE, args.pop("npt"), args.pop("unit"), cache_dir=False, **args
        )


def test_bad_frame_input(ai, images):
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)
    with pytest.raises(InputError, match="shape"):
        si.integrate(np.zeros((10, 10)))
    with pytest.raises(InputError, match="dtype"):
        si.integrate(np.zeros(SHAPE, dtype=complex))
    with pytest.raises(InputError, match="dark shape"):
        si.integrate(images["frame"], np.zeros((3, 3)))
    with pytest.raises(InputError, match="prefetch"):
        next(si.integrate_stack([images["frame"]], prefetch=0))


def test_concurrent_calls_agree(ai, images):
    # Several Python threads may share one integrator; each call has its own sums.
    from concurrent.futures import ThreadPoolExecutor

    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)
    rng = np.random.default_rng(5)
    frames = [rng.poisson(80.0, SHAPE).astype(np.float32) for _ in range(6)]
    serial = [si.integrate(f)[1] for f in frames]
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = list(pool.map(lambda f: si.integrate(f)[1], frames))
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)


def test_result_does_not_depend_on_threads(ai, images, monkeypatch):
    # Each block of pixels has its own sums, added in block order: one thread and
    # three threads (taking blocks in any order) give the same bits.
    out = {}
    for n in ("1", "3"):
        monkeypatch.setenv("XRDPDF_NUM_THREADS", n)
        si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)
        assert si._nthread == int(n)
        out[n] = si.integrate(images["frame"], images["dark"])
    for a, b in zip(out["1"], out["3"], strict=True):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setenv("XRDPDF_NUM_THREADS", "zero")
    with pytest.raises(InputError, match="XRDPDF_NUM_THREADS"):
        SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)


def _integrate_in_child(si, frame, queue):
    queue.put(si.integrate(frame)[1])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork start method only")
def test_forked_worker_integrates(ai, images, monkeypatch):
    # a forked Dask/multiprocessing worker inherits the helper-thread pool without its
    # threads; it must make its own rather than wait forever for the parent's
    import multiprocessing

    monkeypatch.setenv("XRDPDF_NUM_THREADS", "2")
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)
    want = si.integrate(images["frame"])[1]  # the parent's pool now exists
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_integrate_in_child, args=(si, images["frame"], queue))
    child.start()
    try:
        got = queue.get(timeout=60)  # the kernel takes milliseconds; a hang never returns
    finally:
        child.join(5)
        if child.is_alive():
            child.kill()
    np.testing.assert_array_equal(got, want)


def test_integer_frames_read_as_pyfai_does(ai, images):
    # int32 and uint32 frames go to the kernel without a copy; it reads them through
    # float32 as pyFAI's preprocessing does, so the result equals the float32 frame's.
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)
    raw = np.asarray(images["frame"], dtype=np.float64)
    big = (raw * 1000.0 + 2.0**24 + 1.0).astype(np.int64)  # beyond float32's 24-bit mantissa
    ref = si.integrate(big.astype(np.float32))
    for dtype in (np.int32, np.uint32, np.dtype(">i4")):
        got = si.integrate(big.astype(dtype))
        for a, b in zip(ref, got, strict=True):
            np.testing.assert_array_equal(a, b)


def _touch(path, mtime):
    os.utime(path, (mtime, mtime))


def test_cache_evicts_least_recently_used_beyond_cap(ai, tmp_path, monkeypatch):
    sizes = {}
    for npt in (NPT, NPT + 1, NPT + 2):
        si = SparseIntegrator.from_pyfai(ai, SHAPE, npt, "q_A^-1", cache_dir=tmp_path)
        sizes[npt] = si.cache_path
    # ages: NPT oldest, then NPT+1, then NPT+2; each file is about the same size
    for age, npt in enumerate((NPT, NPT + 1, NPT + 2)):
        _touch(sizes[npt], 1e9 + age)
    one = sizes[NPT].stat().st_size
    # loading NPT marks it as used: NPT+1 becomes the least recently used
    again = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=tmp_path)
    assert again.loaded_from_cache
    monkeypatch.setenv("XRDPDF_CACHE_MAX_MB", str(2.5 * one / 1e6))
    new = SparseIntegrator.from_pyfai(ai, SHAPE, NPT + 3, "q_A^-1", cache_dir=tmp_path)
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {sizes[NPT].name, new.cache_path.name}
    # a cap below one file keeps the file just written
    monkeypatch.setenv("XRDPDF_CACHE_MAX_MB", "0")
    last = SparseIntegrator.from_pyfai(ai, SHAPE, NPT + 4, "q_A^-1", cache_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [last.cache_path.name]


def test_cache_cap_from_env(monkeypatch):
    monkeypatch.setenv("XRDPDF_CACHE_MAX_MB", "12.5")
    assert _opcache.max_bytes() == 12_500_000
    monkeypatch.setenv("XRDPDF_CACHE_MAX_MB", "lots")
    assert _opcache.max_bytes() == _opcache.DEFAULT_MAX_MB * 1_000_000
    monkeypatch.delenv("XRDPDF_CACHE_MAX_MB")
    assert _opcache.max_bytes() == _opcache.DEFAULT_MAX_MB * 1_000_000


def test_truncated_cache_file_is_rebuilt(ai, images, tmp_path):
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=tmp_path)
    data = si.cache_path.read_bytes()
    si.cache_path.write_bytes(data[: len(data) // 2])
    again = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=tmp_path)
    assert not again.loaded_from_cache


@pytest.mark.parametrize("field", ["ov_bin", "ov_pix", "batches", "off"])
def test_cache_with_an_index_out_of_range_is_rebuilt(ai, tmp_path, field):
    # the C kernel does not check pixel places per entry: a readable cache file with an
    # overflow bin or pixel, a batch or a pixel place outside the arrays is not used
    from xrdpdf.stages import _opcache

    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=tmp_path)
    arrays = {k: np.array(v) for k, v in si._op.arrays().items()}
    _opcache.save(arrays, si.cache_path)  # unchanged: used
    assert SparseIntegrator.from_pyfai(
        ai, SHAPE, NPT, "q_A^-1", cache_dir=tmp_path
    ).loaded_from_cache
    if field == "ov_bin":
        arrays["ov_bin"][0] = NPT
    elif field == "ov_pix":
        arrays["ov_pix"][-1] = SHAPE[0] * SHAPE[1]
    elif field == "batches":
        arrays["batches"][-1, 0] = 16 * (NPT // 16 + 1)  # a batch of bins beyond the last
    else:
        arrays["off"][-1, :] = np.iinfo(np.uint16).max  # beyond the last strip's end
    _opcache.save(arrays, si.cache_path)
    again = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=tmp_path)
    assert not again.loaded_from_cache


def test_eviction_deletes_operators_of_the_old_layout(ai, tmp_path):
    old = tmp_path / "fastint_0123456789abcdef0123456789abcdef.npz"
    old.write_bytes(b"x" * 100)
    other = tmp_path / "notes.txt"  # not an operator: never touched
    other.write_text("keep")
    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([si.cache_path.name, "notes.txt"])


@pytest.mark.skipif(not simd_available(), reason="the CPU has no AVX-512")
@pytest.mark.parametrize("npt", [NPT, 3000])  # 4 coefficients per pixel; 8 and overflow
@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float32, np.float64])
def test_avx512_and_portable_kernels_agree_bit_for_bit(ai, images, npt, dtype):
    # Both do the same float32 products and the same additions in the same order: the
    # numbers do not depend on the CPU.  Invalid pixels (NaN, negative, below 1), a
    # dark with NaN and the detector's dummy go through both.
    frame = corrupted(images["frame"]) if np.dtype(dtype).kind == "f" else images["frame"]
    frame = np.nan_to_num(frame, nan=7.0).astype(dtype) if np.dtype(dtype).kind != "f" else frame
    frame = frame.astype(dtype)
    dark = images["dark"].copy()
    dark[60:62, :] = np.nan
    si = SparseIntegrator.from_pyfai(ai, SHAPE, npt, "q_A^-1", mask=images["mask"], cache_dir=False)
    prepared = si.prepare_dark(dark)
    out = {}
    for simd in (True, False):
        si._simd = simd
        out[simd] = si.integrate(frame, dark)
        out[simd, "prepared"] = si.integrate(frame, prepared)
    for key in (False, (True, "prepared"), (False, "prepared")):
        for a, b in zip(out[True], out[key], strict=True):
            np.testing.assert_array_equal(a, b)
    assert np.count_nonzero(out[True][1]) > 0.9 * npt


@pytest.mark.parametrize("npt", [NPT, 3000])  # 4 coefficients per pixel; 8 and overflow
def test_prepared_dark_gives_the_same_bits(ai, images, npt):
    # The dark laid out in step order once, read in order: the same values as the
    # gathered dark, NaN pixels left out alike, so the same numbers bit for bit.
    dark = images["dark"].astype(np.float64)
    dark[60:62, :] = np.nan
    si = SparseIntegrator.from_pyfai(ai, SHAPE, npt, "q_A^-1", mask=images["mask"], cache_dir=False)
    prepared = si.prepare_dark(dark)
    bad = corrupted(images["frame"])
    want = si.integrate(bad, dark)
    dark[:] = 0.0  # prepare_dark copied it
    for a, b in zip(want, si.integrate(bad, prepared), strict=True):
        np.testing.assert_array_equal(a, b)
    stack = list(si.integrate_stack([bad, bad], dark=prepared))
    np.testing.assert_array_equal(stack[1][1], want[1])
    other = SparseIntegrator.from_pyfai(ai, SHAPE, npt, "q_A^-1", cache_dir=False)
    with pytest.raises(InputError, match="another integrator"):
        other.integrate(bad, prepared)


def test_kernel_refuses_a_bad_dark_in_step_order(ai, images):
    from xrdpdf.stages._scatter import scatter

    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)
    op, frame = si._op, images["frame"].reshape(-1)
    dark = images["dark"].reshape(-1)
    steps = si.prepare_dark(images["dark"]).steps

    def call(d, d_steps):
        acc = np.empty(op.acc_size)
        counter = np.zeros(1, np.int64)
        tables = (op.off, op.coef, op.batches, op.blocks, op.ov_pix, op.ov_bin, op.ov_coef)
        flags = (True, False, 0.0, 0.0, True)  # mask_negative, check_dummy, dummy, delta, simd
        scatter(*tables, frame, d, d_steps, op.pixel_norm, acc, counter, None, *flags)

    call(dark, steps)  # the control: accepted
    with pytest.raises(ValueError, match="16 float32 per step"):
        call(dark, steps[:-16])
    with pytest.raises(ValueError, match="needs the dark"):
        call(None, steps)
    with pytest.raises(TypeError, match="dark_steps"):
        call(dark, steps.astype(np.float64))


def test_kernel_adds_the_blocks_in_block_order(ai, images):
    # The kernel adds each block's sums into the result as the blocks come done, in
    # block order, whichever of several threads took them: the same bits as adding
    # the blocks' sums one after another here, block 0 first.
    from concurrent.futures import ThreadPoolExecutor

    from xrdpdf.stages._scatter import scatter

    si = SparseIntegrator.from_pyfai(ai, SHAPE, NPT, "q_A^-1", cache_dir=False)
    op, frame = si._op, images["frame"].reshape(-1)
    tables = (op.off, op.coef, op.batches, op.blocks, op.ov_pix, op.ov_bin, op.ov_coef)
    flags = (True, False, 0.0, 0.0, True)  # mask_negative, check_dummy, dummy, delta, simd
    nblock = op.blocks.shape[0]
    assert nblock >= 8  # enough blocks for the threads to finish out of order

    acc = np.empty(op.acc_size)
    scatter(*tables, frame, None, None, op.pixel_norm, acc, np.zeros(1, np.int64), None, *flags)
    want = np.zeros((4, si.npt))
    for *_, lo, n, a in op.blocks:  # the columns of _fastop._BLOCK_COLUMNS
        m = max(0, min(n, si.npt - lo))
        for r in range(4):
            want[r, lo : lo + m] += acc[a + r * n : a + r * n + m]

    for _ in range(3):
        acc = np.empty(op.acc_size)
        counter = np.zeros(3 + nblock, np.int64)
        out = np.zeros((4, si.npt))
        args = (*tables, frame, None, None, op.pixel_norm, acc, counter, out, *flags)
        with ThreadPoolExecutor(max_workers=6) as pool:
            for f in [pool.submit(scatter, *args) for _ in range(6)]:
                f.result()
        np.testing.assert_array_equal(out, want)
        assert counter[1] == nblock and counter[2] == 0 and np.all(counter[3:] == 1)

    # Blocks 4.. done first wait for block 0: nothing is added until it is done.
    acc = np.empty(op.acc_size)
    counter = np.zeros(3 + nblock, np.int64)
    out = np.zeros((4, si.npt))
    args = (*tables, frame, None, None, op.pixel_norm, acc, counter, out, *flags)
    counter[0] = 4
    scatter(*args)
    assert counter[1] == 0 and not out.any()
    counter[0] = 0  # blocks 0..3, then the waiting ones in order (4.. again, not added)
    scatter(*args)
    np.testing.assert_array_equal(out, want)

    with pytest.raises(ValueError, match="one per block"):
        scatter(*tables, frame, None, None, op.pixel_norm, acc, counter[:-1], out, *flags)


def test_odd_frame_shape_like_pyfai():
    # An odd number of pixels: the last pixel of a 16-bit frame is read on its own
    # (a 32-bit read would pass the end); strips of whole rows that do not divide it.
    shape = (301, 257)
    det = Detector(pixel1=8e-4, pixel2=8e-4, max_shape=shape)
    ai = AzimuthalIntegrator(dist=0.35, poni1=0.1, poni2=0.12, detector=det, wavelength=0.1173e-10)
    frame = np.random.default_rng(3).poisson(150.0, shape).astype(np.uint16)
    frame[-1, -1] = 60000  # the last pixel, heavy enough to show in its bins
    si = SparseIntegrator.from_pyfai(ai, shape, 300, "q_A^-1", cache_dir=False)
    res = ai.integrate1d(frame, 300, unit="q_A^-1", method=METHOD, error_model="poisson")
    _, intensity, sigma = si.integrate(frame)
    ok = res.count > 0
    np.testing.assert_allclose(intensity[ok], res.intensity[ok], rtol=RTOL_I)
    np.testing.assert_allclose(sigma[ok], res.sigma[ok], rtol=RTOL_SIGMA)
