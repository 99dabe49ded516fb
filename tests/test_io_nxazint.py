"""NXazint1d output: pyFAI's writer, the definition's required fields, read back, re-binned.

Truths: the NXazint1d application definition (NeXus definitions v2025.11; its
required fields as DAWN's generated ``NXazint1dValidator`` checks them), pyFAI's
own integrate1d at the coarser binning for the re-binned accumulators.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pyFAI
import pytest
import tifffile
from conftest import SMALL_PONI as PONI
from conftest import SMALL_SHAPE as SHAPE

from xrdpdf.cli import _main
from xrdpdf.io import read_pattern, read_patterns, rebin_accumulators, write_nxazint1d
from xrdpdf.stages.integrate import IntegrationSettings, integrator_from_files


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "g.poni").write_text(PONI)
    rng = np.random.default_rng(5)
    yy, xx = np.indices(SHAPE)
    r = np.hypot(yy - 100.5, xx - 109.5)
    image = rng.poisson(40 + 300 * np.exp(-0.5 * ((r - 70) / 1.5) ** 2)).astype(np.float32)
    tifffile.imwrite(tmp_path / "img.tif", image)
    return tmp_path, image


def _text(v) -> str:
    v = v[()] if hasattr(v, "shape") else v
    return v.decode() if isinstance(v, bytes) else str(v)


def _check_required(entry) -> None:
    """The NXazint1d definition's required fields, groups and attributes."""
    assert _text(entry["definition"]) == "NXazint1d"
    for name in ("solid_angle_applied", "polarization_applied", "normalization_applied"):
        assert entry[name].dtype == bool
    inst = entry["instrument"]
    assert _text(inst.attrs["NX_class"]) == "NXinstrument" and "name" in inst
    mono = inst["monochromator"]
    assert _text(mono["wavelength"].attrs["units"]) == "angstrom"
    assert _text(mono["energy"].attrs["units"]) == "keV"
    src = inst["source"]
    assert _text(src["type"]) == "Synchrotron X-ray Source"
    assert _text(src["probe"]) == "x-ray" and "name" in src
    red = entry["reduction"]
    assert _text(red.attrs["NX_class"]) == "NXprocess"
    for name in ("program", "version", "date", "reference"):
        assert name in red
    assert _text(red["input"].attrs["NX_class"]) == "NXparameters"
    data = entry["data"]
    assert _text(data.attrs["signal"]) == "I"
    assert [_text(a) for a in data.attrs["axes"]] == [".", "radial_axis"]
    assert _text(data.attrs["interpretation"]) == "spectrum"
    assert data["I"].ndim == 2 and data["I"].shape[1] == data["radial_axis"].shape[0]
    assert _text(data["I"].attrs["long_name"]) == "intensity"
    assert _text(data["I"].attrs["units"]) == "arbitrary units"
    assert _text(data["radial_axis"].attrs["long_name"]) in ("q", "2theta")
    assert _text(data["radial_axis"].attrs["units"]) in ("1/angstrom", "degrees")
    assert _text(data["I_errors"].attrs["long_name"]) == "estimated intensity error"
    assert _text(data["norm"].attrs["long_name"]) == (
        "effective number of pixels contributing to the corresponding bin"
    )


def test_integrate_writes_nxazint1d_with_the_required_fields(setup, capsys):
    d, image = setup
    argv = ["integrate", str(d / "img.tif"), "--poni", str(d / "g.poni"), "-o", str(d / "o")]
    assert _main([*argv, "--format", "nxazint1d", "--npt", "400", "--json"]) in (0, None)
    summary = json.loads(capsys.readouterr().out)
    path = summary["written"][0]["path"]
    assert path.endswith("img.nxs")
    with h5py.File(path) as h5:
        _check_required(h5["entry"])
        cfg = json.loads(_text(h5["entry/reduction/input/config"]))
        assert cfg["nbpt_rad"] == 400
        for name in ("sum_signal", "sum_normalization", "sum_variance", "count"):
            assert h5[f"entry/data/{name}"].shape == (1, 400)
    # read back: the pattern pyFAI integrated, empty bins dropped, λ from the monochromator
    back = read_pattern(path)
    ai = pyFAI.load(str(d / "g.poni"))
    settings = IntegrationSettings(npt=400, method="pyfai")
    ref = integrator_from_files(d / "g.poni", settings).integrate(image)
    assert back.unit == "q_A^-1" and back.wavelength_A == pytest.approx(0.1173, rel=1e-12)
    np.testing.assert_allclose(back.x, ref.x, rtol=1e-12)
    np.testing.assert_allclose(back.y, ref.y, rtol=1e-6)  # float32 storage of I
    np.testing.assert_allclose(back.sigma, ref.sigma, rtol=1e-6)
    assert ai.wavelength == pytest.approx(1.173e-11)


@pytest.mark.parametrize("split", ["no", "bbox"])
def test_accumulators_rebin_to_pyfai_coarse_integration(setup, tmp_path, split):
    d, image = setup
    ai = pyFAI.load(str(d / "g.poni"))
    kw = dict(
        unit="q_A^-1",
        error_model="poisson",
        method=(split, "csr", "cython"),
        radial_range=(0.5, 6.5),
        polarization_factor=0.99,
    )
    fine = ai.integrate1d(image, 600, **kw)
    write_nxazint1d([fine, fine], tmp_path / "two.nxs")
    assert len(read_patterns(tmp_path / "two.nxs")) == 2  # one range per frame
    with h5py.File(tmp_path / "two.nxs") as h5:
        data = h5["entry/data"]
        acc = {k: data[k][0] for k in ("sum_signal", "sum_normalization", "sum_variance")}
        radial = data["radial_axis"][()]
    x, y, s = rebin_accumulators(radial, acc, 3)
    coarse = ai.integrate1d(image, 200, **kw)
    # equal-width bins over the same range: 3 fine bins are one coarse bin and Σs, Σn add;
    # pyFAI returns I and σ as float32 (relative round-off 6e-8; 2e-6 leaves room for the
    # accumulation order).  The two boundary bins are left out: pyFAI clips the pixels
    # that straddle the range limits at a bin-width-dependent point.
    np.testing.assert_allclose(x, coarse.radial, rtol=1e-12)
    inner = slice(1, -1)
    np.testing.assert_allclose(y[inner], coarse.intensity[inner], rtol=2e-6)
    if split == "no":  # each pixel in one bin: the variances add too
        np.testing.assert_allclose(s[inner], coarse.sigma[inner], rtol=2e-6)
    else:  # split pixels are correlated between fine bins: the merged σ is a lower bound
        assert np.all(s[inner] < coarse.sigma[inner])
    # negative control: merging pairs instead of triples does not give the coarse pattern
    x2, y2, _ = rebin_accumulators(radial, acc, 2)
    assert x2.size == 300
    assert not np.allclose(np.interp(coarse.radial, x2, y2), coarse.intensity, rtol=2e-6)


def _series(d, extra: str = "") -> object:
    from xrdpdf.workflows.series import load_series

    (d / "s.toml").write_text(
        f'[series]\nponi = "g.poni"\n{extra}\n[[sample]]\nname = "s1"\nimages = ["img.tif"]\n'
    )
    return load_series(d / "s.toml")


def _pyfai_of(d, image, npt):
    ai = pyFAI.load(str(d / "g.poni"))
    return ai.integrate1d(
        image,
        npt,
        unit="q_A^-1",
        method=("bbox", "csr", "cython"),
        error_model="poisson",
        polarization_factor=0.99,
    )


def test_watch_writes_nxazint1d(setup, capsys):
    """``watch --format nxazint1d``: STEM.nxs with the required fields, pyFAI's own numbers."""
    d, image = setup
    (d / "in").mkdir()
    tifffile.imwrite(d / "in" / "a.tif", image)
    argv = ["watch", str(d / "in"), "--poni", str(d / "g.poni"), "-o", str(d / "w")]
    assert _main([*argv, "--npt", "400", "--once", "--format", "nxazint1d"]) == 0
    path = d / "w" / "a.nxs"
    ref = _pyfai_of(d, image, 400)
    with h5py.File(path) as h5:
        _check_required(h5["entry"])
        cfg = json.loads(_text(h5["entry/reduction/input/config"]))
        assert cfg["nbpt_rad"] == 400
        data = h5["entry/data"]
        # pyFAI's own accumulators of the frame, stored in float64: its numbers exactly
        np.testing.assert_allclose(data["sum_signal"][0], ref.sum_signal, rtol=1e-12)
        np.testing.assert_allclose(data["count"][0], ref.count, rtol=1e-12)
    back = read_pattern(path)
    keep = ref.count > 0
    np.testing.assert_allclose(back.y, ref.intensity[keep], rtol=1e-6)  # float32 storage of I
    assert not (d / "w" / "a.xye").exists()
    rows = (d / "w" / "summary.csv").read_text()
    assert "a.nxs" in rows


def test_watch_refuses_an_unknown_format(setup, capsys):
    d, _ = setup
    (d / "in").mkdir()
    argv = ["watch", str(d / "in"), "--poni", str(d / "g.poni"), "-o", str(d / "w"), "--once"]
    assert _main([*argv, "--format", "nexus"]) == 2
    err = capsys.readouterr().err
    assert "xrdpdf: error: format must be one of" in err and "nexus" in err


def test_series_writes_nxazint1d(setup):
    """``[integrate] format = "nxazint1d"``: <sample>.nxs beside the .xye, pyFAI's numbers."""
    from xrdpdf.workflows.series import run_series

    d, image = setup
    cfg = _series(d, '[integrate]\nnpt = 300\nformat = "nxazint1d"\n')
    run_series(cfg, d / "out", workers=0)
    path = d / "out" / "s1" / "s1.nxs"
    ref = _pyfai_of(d, image, 300)
    with h5py.File(path) as h5:
        _check_required(h5["entry"])
        np.testing.assert_allclose(h5["entry/data/sum_signal"][0], ref.sum_signal, rtol=1e-12)
    keep = ref.count > 0
    np.testing.assert_allclose(read_pattern(path).y, ref.intensity[keep], rtol=1e-6)
    # the .xye the later stages read is still there: the fast engine, pyFAI's numbers
    xye = read_pattern(d / "out" / "s1" / "s1.xye")
    np.testing.assert_allclose(xye.y, ref.intensity[keep], rtol=1e-6)


def test_series_format_flag_and_bad_format(setup, capsys):
    d, _ = setup
    _series(d)
    argv = ["series", str(d / "s.toml"), "-o", str(d / "out"), "--workers", "0"]
    assert _main([*argv, "--format", "nxazint1d"]) == 0
    assert (d / "out" / "s1" / "s1.nxs").is_file()
    capsys.readouterr()
    assert _main([*argv, "--format", "gsas"]) == 2
    assert "[integrate] format must be one of xye, nxazint1d" in capsys.readouterr().err
