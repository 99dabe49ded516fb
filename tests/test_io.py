"""Readers and writers: round trips and the file layouts users have."""

import os
from pathlib import Path

import numpy as np
import pytest

from xrdpdf import InputError, Pattern
from xrdpdf.io import atomic_path, read_pattern, write_pattern

DATA = Path(__file__).parent / "data"


@pytest.fixture
def pattern():
    rng = np.random.default_rng(1)
    q = np.linspace(0.5, 25.0, 300)
    y = 100 + 50 * np.exp(-((q - 3.0) ** 2) / 0.01) + rng.normal(0, 1, q.size)
    return Pattern(
        q,
        y,
        "q_A^-1",
        wavelength_A=0.1173,
        sigma=np.sqrt(np.abs(y)),
        metadata={"source": "sim", "npt": 300, "polarization": 0.99},
    )


@pytest.mark.parametrize("suffix", [".xye", ".chi", ".h5", ".iq", ".xy"])
def test_roundtrip(tmp_path, pattern, suffix):
    path = write_pattern(pattern, tmp_path / f"p{suffix}")
    back = read_pattern(path)
    assert back.unit == "q_A^-1"
    # text is written with 8-9 significant digits: relative round-off ≤ 1e-8
    np.testing.assert_allclose(back.x, pattern.x, rtol=1e-8)
    np.testing.assert_allclose(back.y, pattern.y, rtol=1e-8)
    if suffix != ".xy":
        np.testing.assert_allclose(back.sigma, pattern.sigma, rtol=1e-8)
    if suffix in (".xye", ".chi", ".h5", ".iq"):
        assert back.wavelength_A == pytest.approx(0.1173)


def test_roundtrip_tth_and_gr(tmp_path, pattern):
    tth = pattern.to_tth()
    back = read_pattern(write_pattern(tth, tmp_path / "t.xye"))
    assert back.unit == "2th_deg" and back.wavelength_A == pytest.approx(0.1173)
    np.testing.assert_allclose(back.q, pattern.x, rtol=1e-8)
    gr = Pattern(np.linspace(0, 10, 101), np.sin(np.linspace(0, 10, 101)), "r_A")
    back = read_pattern(write_pattern(gr, tmp_path / "x.gr", header={"qmax": 24.0}))
    assert back.unit == "r_A"
    assert back.metadata["header.qmax"] == "24.0"
    np.testing.assert_allclose(back.y, gr.y, atol=1e-9)


def test_srxgui_chi_real_data():
    p = read_pattern(DATA / "ni_xpd" / "Ni.chi")
    assert p.unit == "q_A^-1"
    assert p.wavelength_A == pytest.approx(0.1835957)
    assert p.sigma is not None
    # README: Q = 0–31.5 Å⁻¹ in 0.02 steps
    assert p.x[0] == pytest.approx(0.0) and p.x[-1] == pytest.approx(31.5, abs=0.02)
    assert np.allclose(np.diff(p.x), 0.02, atol=1e-6)


def test_pyfai_output_files(tmp_path):
    pyFAI = pytest.importorskip("pyFAI")
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    det = Detector(2e-4, 2e-4, max_shape=(128, 128))
    ai = AzimuthalIntegrator(
        dist=0.2, poni1=0.0128, poni2=0.0128, detector=det, wavelength=1.173e-11
    )
    img = np.random.default_rng(0).poisson(100, (128, 128)).astype(float)
    assert pyFAI is not None
    res = ai.integrate1d(img, 40, unit="2th_deg", filename=str(tmp_path / "a.dat"))
    p = read_pattern(tmp_path / "a.dat")
    assert p.unit == "2th_deg"
    assert p.wavelength_A == pytest.approx(0.1173)  # from the JSON PONI header (metres)
    np.testing.assert_allclose(p.x, res.radial, rtol=1e-6)
    np.testing.assert_allclose(p.y, res.intensity, rtol=1e-6)


def test_fit2d_qspace_chi_is_nm(tmp_path):
    q_nm = np.linspace(1, 100, 50)
    text = "sample.chi: Q-Space Scan\nQ (nm-1)\nIntensity\n        50\n" + "\n".join(
        f"{q:.6e} {q * 2:.6e}" for q in q_nm
    )
    (tmp_path / "f.chi").write_text(text)
    p = read_pattern(tmp_path / "f.chi")
    assert p.unit == "q_A^-1"
    np.testing.assert_allclose(p.x, q_nm / 10, rtol=1e-6)  # 1 nm⁻¹ = 0.1 Å⁻¹; 7 digits written


def test_bare_two_column_needs_xtype(tmp_path):
    f = tmp_path / "bare.xy"
    f.write_text("1 10\n2 20\n3 30\n")
    with pytest.raises(InputError, match=r"bare\.xy.*xtype="):
        read_pattern(f)
    assert read_pattern(f, xtype="q").unit == "q_A^-1"
    np.testing.assert_allclose(read_pattern(f, xtype="qnm").x, [0.1, 0.2, 0.3])
    with pytest.raises(InputError, match="wavelength"):
        read_pattern(f, xtype="tth")
    p = read_pattern(f, xtype="tth", wavelength_A=1.54)
    assert p.unit == "2th_deg"


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "empty"),
        ("# only a header\n", "no numeric"),
        ("1 2\n2 nan\n", "non-numeric|NaN"),
        ("1 2\nabc def\n", "non-numeric"),
        ("1\n2\n", "non-numeric|two columns"),
    ],
)
def test_bad_text_files(tmp_path, content, match):
    f = tmp_path / "bad.xy"
    f.write_text(content)
    with pytest.raises(InputError, match=match) as err:
        read_pattern(f, xtype="q")
    assert "bad.xy" in str(err.value)


def test_missing_and_binary(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_pattern(tmp_path / "nope.xye")
    (tmp_path / "b.xy").write_bytes(b"II*\x00\x00\x00garbage")
    with pytest.raises(InputError, match="binary"):
        read_pattern(tmp_path / "b.xy")
    (tmp_path / "b.h5").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="HDF5"):
        read_pattern(tmp_path / "b.h5")


def test_atomic_write_leaves_nothing_on_error(tmp_path, pattern):
    target = tmp_path / "out.xye"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    write_pattern(pattern, target)
    with pytest.raises(InputError, match="exists"):
        write_pattern(pattern, target)
    write_pattern(pattern, target, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["out.xye"]


def test_hdf5_outputs_are_nxdata_for_silx(tmp_path):
    # an independent NeXus reader (silx) finds signal, axis and errors through @default
    h5py = pytest.importorskip("h5py")
    nxdata = pytest.importorskip("silx.io.nxdata")
    from xrdpdf._core import units
    from xrdpdf.io import PatternStackWriter

    x = np.linspace(1.0, 10.0, 50)
    pat = Pattern(x, x**2, units.Q_A, 0.1173, sigma=np.full(50, 0.5))
    write_pattern(pat, tmp_path / "one.h5")
    with PatternStackWriter(tmp_path / "stack.h5", x, units.Q_A, wavelength_A=0.1173) as w:
        w.append(pat, "a.tif", 0)
        w.append(pat, "b.tif", 1)
    for name, shape in (("one.h5", (50,)), ("stack.h5", (2, 50))):
        with h5py.File(tmp_path / name, "r") as h5:
            nx = nxdata.get_default(h5)
            assert nx is not None and nx.is_valid, name
            assert nx.signal.shape == shape
            np.testing.assert_array_equal(nx.axes[-1][()], x)
            assert nx.axes[-1].attrs["units"] == "1/angstrom"
            np.testing.assert_array_equal(nx.errors[-1] if len(shape) > 1 else nx.errors, 0.5)
            assert h5["entry/wavelength"][()] == pytest.approx(0.1173)


def test_xye_without_sigma_has_no_sigma_column(tmp_path):
    # a noise-free pattern has no σ; a column of zeros would read back as exact intensities
    x = np.linspace(1.0, 10.0, 50)
    path = write_pattern(Pattern(x, x**2, "q_A^-1", 0.1173), tmp_path / "p.xye")
    back = read_pattern(path)
    assert back.sigma is None
    np.testing.assert_allclose(back.y, x**2, rtol=1e-10)  # 11 significant digits written
