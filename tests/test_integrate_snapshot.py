"""The cached geometry snapshot: a run whose operator is cached starts without pyFAI.

The oracle is the run that built everything through pyFAI (same inputs, fresh
cache) and pyFAI's own ``integrate1d``: a restored integrator must give the same
numbers, and must be refused whenever an input changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile
from pyFAI.detectors import Detector
from pyFAI.integrator.azimuthal import AzimuthalIntegrator

from xrdpdf.stages import integrate
from xrdpdf.stages.integrate import GeometrySnapshot, IntegrationSettings, integrator_from_files
from xrdpdf.workflows.reduce import Reducer

SHAPE = (256, 256)
NPT = 300


@pytest.fixture()
def files(tmp_path):
    det = Detector(pixel1=1.6e-3, pixel2=1.6e-3, max_shape=SHAPE)
    ai = AzimuthalIntegrator(
        dist=0.35, poni1=0.2, poni2=0.21, rot1=0.01, rot2=-0.02, detector=det, wavelength=1.173e-11
    )
    poni = tmp_path / "geom.poni"
    ai.write(str(poni))
    rng = np.random.default_rng(18)
    frame = rng.poisson(300.0, SHAPE).astype(np.uint16)
    tifffile.imwrite(tmp_path / "frame.tif", frame)
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[100:140, 110:150] = 1
    tifffile.imwrite(tmp_path / "mask.tif", mask)
    dark = rng.uniform(0.0, 5.0, SHAPE).astype(np.float32)
    tifffile.imwrite(tmp_path / "dark.tif", dark)
    return {
        "poni": poni,
        "frame": frame,
        "tif": tmp_path / "frame.tif",
        "mask": tmp_path / "mask.tif",
        "dark": tmp_path / "dark.tif",
        "cache": tmp_path / "cache",
        "ai": ai,
        "mask_arr": mask.astype(bool),
        "dark_arr": dark,
    }


def build(f, **kw):
    settings = kw.pop("settings", IntegrationSettings(npt=NPT, polarization_factor=0.99))
    return integrator_from_files(
        f["poni"], settings, mask=f["mask"], darks=[f["dark"]], cache_dir=f["cache"], **kw
    )


def test_second_build_is_restored_and_equal(files):
    first = build(files)
    assert not isinstance(first.ai, GeometrySnapshot)
    a = first.integrate(files["frame"])  # builds the operator and writes the snapshot
    assert list(files["cache"].glob("geom_*.op"))
    second = build(files)
    assert isinstance(second.ai, GeometrySnapshot)
    b = second.integrate(files["frame"])
    np.testing.assert_array_equal(b.x, a.x)  # the same operator file: identical numbers
    np.testing.assert_array_equal(b.y, a.y)
    np.testing.assert_array_equal(b.sigma, a.sigma)
    assert b.metadata["pyfai_version"] == a.metadata["pyfai_version"]
    assert b.metadata["corrections"] == a.metadata["corrections"]
    assert integrate.worker_config(second) == integrate.worker_config(first)
    # and both are pyFAI's integration of the same frame, mask and dark
    ref = files["ai"].integrate1d(
        files["frame"],
        NPT,
        unit="q_A^-1",
        method=("bbox", "csr", "cython"),
        error_model="poisson",
        polarization_factor=0.99,
        mask=files["mask_arr"],
        dark=files["dark_arr"],
    )
    keep = ref.count > 0
    # float32 coefficients summed in float64 in another order than pyFAI: a few ε
    np.testing.assert_allclose(b.y, ref.intensity[keep], rtol=1e-6)
    np.testing.assert_allclose(b.sigma, ref.sigma[keep], rtol=1e-6)


@pytest.mark.parametrize("change", ["mask_file", "poni", "npt", "dark_arg", "pyfai_method"])
def test_changed_input_is_not_restored(files, change):
    build(files).integrate(files["frame"])
    kw = {}
    if change == "mask_file":
        m = np.zeros(SHAPE, dtype=np.uint8)
        m[10:20, 10:20] = 1
        tifffile.imwrite(files["mask"], m)
        st = files["mask"].stat()
        os.utime(files["mask"], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    elif change == "poni":
        text = files["poni"].read_text().replace("Distance: 0.35", "Distance: 0.36")
        files["poni"].write_text(text)
    elif change == "npt":
        kw["settings"] = IntegrationSettings(npt=NPT + 1, polarization_factor=0.99)
    elif change == "dark_arg":
        kw["darks"] = None
    else:
        kw["settings"] = IntegrationSettings(npt=NPT, polarization_factor=0.99, method="pyfai")
    if "darks" in kw:
        again = integrator_from_files(
            files["poni"], IntegrationSettings(npt=NPT, polarization_factor=0.99),
            mask=files["mask"], cache_dir=files["cache"],
        )  # fmt: skip
    else:
        again = build(files, **kw)
    assert not isinstance(again.ai, GeometrySnapshot)


def test_evicted_operator_is_rebuilt_through_pyfai(files):
    a = build(files).integrate(files["frame"])
    for op in files["cache"].glob("fastint_*.op"):
        op.unlink()
    again = build(files)
    assert isinstance(again.ai, GeometrySnapshot)
    b = again.integrate(files["frame"])
    np.testing.assert_array_equal(b.y, a.y)
    assert list(files["cache"].glob("fastint_*.op"))  # rebuilt and cached again


def test_restored_integrator_falls_back_to_pyfai_for_pyfai_results(files):
    build(files).integrate(files["frame"])
    again = build(files)
    res = again.integrate_result(files["frame"])  # pyFAI's own result: loads the geometry
    keep = res.count > 0
    pat = again.integrate(files["frame"])
    np.testing.assert_allclose(pat.y, res.intensity[keep], rtol=1e-6)


def test_no_snapshot_without_cache(files):
    integ = integrator_from_files(files["poni"], IntegrationSettings(npt=NPT), cache_dir=False)
    integ.integrate(files["frame"])
    again = integrator_from_files(files["poni"], IntegrationSettings(npt=NPT), cache_dir=False)
    assert not isinstance(again.ai, GeometrySnapshot)


def test_cached_run_never_imports_pyfai(files, tmp_path, monkeypatch):
    """A fresh process with the cache warm integrates and writes without importing pyFAI."""
    env = dict(os.environ, XRDPDF_CACHE=str(files["cache"]))
    code = textwrap.dedent(
        f"""
        import sys
        from xrdpdf.cli import _main
        rc = _main(["integrate", {str(files["tif"])!r}, "--poni", {str(files["poni"])!r},
                    "--mask", {str(files["mask"])!r}, "--npt", "{NPT}", "-o", sys.argv[1],
                    "--overwrite"])
        print(rc, "pyFAI" in sys.modules, "scipy.signal" in sys.modules)
        """
    )

    def run(out: Path) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", code, str(out)], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    from xrdpdf.cli import _main

    monkeypatch.setenv("XRDPDF_CACHE", str(files["cache"]))
    args = ["integrate", str(files["tif"]), "--poni", str(files["poni"])]
    args += ["--mask", str(files["mask"]), "--npt", str(NPT), "-o", str(tmp_path / "o1")]
    assert _main(args) == 0  # this process: the operator and the snapshot are built
    assert run(tmp_path / "o2") == ["0", "False", "False"]
    a = (tmp_path / "o1" / "frame.xye").read_text()
    b = (tmp_path / "o2" / "frame.xye").read_text()
    assert a == b
    assert (tmp_path / "o1" / "integration.json").read_text() == (
        tmp_path / "o2" / "integration.json"
    ).read_text()


def test_reducer_uses_the_snapshot(files, monkeypatch):
    monkeypatch.setenv("XRDPDF_CACHE", str(files["cache"]))
    settings = IntegrationSettings(npt=NPT)
    first = Reducer(files["poni"], settings, mask=files["mask"])
    a = next(first.iter_frames([files["tif"]]))
    red = Reducer(files["poni"], settings, mask=files["mask"])
    assert isinstance(red.integrator().ai, GeometrySnapshot)
    assert red.wavelength_A == pytest.approx(0.1173, rel=1e-12)
    b = next(red.iter_frames([files["tif"]]))
    np.testing.assert_array_equal(b.pattern.y, a.pattern.y)


def test_relative_mask_from_another_folder_is_not_restored(files, tmp_path, monkeypatch):
    """``--mask mask.tif`` in another working directory is another file: no snapshot."""
    for name, rows in (("a", slice(0, 30)), ("b", slice(200, 256))):
        (tmp_path / name).mkdir()
        m = np.zeros(SHAPE, dtype=np.uint8)
        m[rows, :] = 1
        tifffile.imwrite(tmp_path / name / "m.tif", m)
    settings = IntegrationSettings(npt=NPT)
    results = []
    for name in ("a", "b"):
        monkeypatch.chdir(tmp_path / name)
        integ = integrator_from_files(
            files["poni"], settings, mask="m.tif", cache_dir=files["cache"]
        )
        results.append((integ, integ.integrate(files["frame"])))
    (_, a), (second, b) = results
    assert not isinstance(second.ai, GeometrySnapshot)
    assert a.metadata["corrections"]["mask_pixels"] != b.metadata["corrections"]["mask_pixels"]
