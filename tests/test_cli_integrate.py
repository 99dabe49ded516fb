"""``xrdpdf integrate`` from the command line: outputs, batches and bad inputs.

Truth: the API (itself checked against pyFAI in test_integrate.py) and the
files written by tifffile/h5py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from xrdpdf._core import units
from xrdpdf._core.pattern import Pattern
from xrdpdf.cli import _main
from xrdpdf.io import images, read_pattern
from xrdpdf.simulate.images import simulate_image
from xrdpdf.stages.integrate import IntegrationSettings, Integrator, load_poni

SHAPE = (120, 140)
PONI = """poni_version: 2.1
Detector: Detector
Detector_config: {{"pixel1": 0.0004, "pixel2": 0.0004, "max_shape": [120, 140], "orientation": 3}}
Distance: 0.2
Poni1: 0.0242
Poni2: 0.0278
Rot1: 0.0
Rot2: 0.0
Rot3: 0.0
{wl}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    poni = d / "g.poni"
    poni.write_text(PONI.format(wl="Wavelength: 1.173e-11"))
    ai = load_poni(poni)
    q = np.linspace(0, 15, 3001)
    y = 5 + 40 * np.exp(-0.5 * ((q - 3.0) / 0.08) ** 2) + 20 * np.exp(-0.5 * ((q - 5) / 0.08) ** 2)
    truth = Pattern(q, y, units.Q_A, 0.1173)
    frames = [
        simulate_image(truth, ai, scale=20.0 * (i + 1), dark_counts=10.0, seed=i).data
        for i in range(3)
    ]
    tifffile.imwrite(d / "a.tif", frames[0].astype(np.float32))
    tifffile.imwrite(d / "b.tif", frames[1].astype(np.float32))
    images.write_image(np.stack(frames), d / "stack.h5")
    tifffile.imwrite(d / "dark1.tif", np.full(SHAPE, 9.0, np.float32))
    tifffile.imwrite(d / "dark2.tif", np.full(SHAPE, 11.0, np.float32))
    return d, poni, ai, frames


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    """The fast engine's operator cache goes to a temporary folder, not ~/.cache."""
    monkeypatch.setenv("XRDPDF_CACHE", str(tmp_path / "cache"))


def run(argv, capsys):
    """``xrdpdf integrate ARGV...`` in-process: (exit code, stdout, stderr)."""
    rc = _main(["integrate", *(str(a) for a in argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_help_has_example(capsys):
    rc, out, _ = run(["--help"], capsys)
    assert rc == 0 and "Example:" in out


def test_batch_outputs_and_json(setup, tmp_path, capsys):
    d, poni, ai, frames = setup
    out_dir = tmp_path / "out"
    rc, out, err = run(
        [
            d / "a.tif",
            d / "b.tif",
            d / "stack.h5",
            "--poni",
            poni,
            "--dark",
            d / "dark1.tif",
            "--dark",
            d / "dark2.tif",
            "--npt",
            300,
            "-o",
            out_dir,
            "--json",
            "--method",
            "pyfai",
        ],
        capsys,
    )
    assert rc == 0, err
    summary = json.loads(out)
    names = sorted(Path(w["path"]).name for w in summary["written"])
    assert names == ["a.xye", "b.xye", "stack_f0000.xye", "stack_f0001.xye", "stack_f0002.xye"]
    assert summary["failed"] == [] and summary["unit"] == "q_A^-1"
    # nothing else (the run's pyFAI WorkerConfig beside them), no temp files
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([*names, "integration.json"])
    # the file equals the API on the same frame with the averaged dark (9+11)/2 = 10
    api = Integrator(
        ai, SHAPE, IntegrationSettings(npt=300, method="pyfai"), dark=np.full(SHAPE, 10.0)
    ).integrate(frames[0].astype(np.float32))
    got = read_pattern(out_dir / "a.xye")
    assert got.unit == units.Q_A and got.wavelength_A == pytest.approx(0.1173)
    np.testing.assert_allclose(got.x, api.x, rtol=1e-7)  # 9 significant digits written
    np.testing.assert_allclose(got.y, api.y, rtol=1e-7)
    np.testing.assert_allclose(got.sigma, api.sigma, rtol=1e-7)
    stack1 = read_pattern(out_dir / "stack_f0001.xye")
    np.testing.assert_allclose(stack1.y, read_pattern(out_dir / "b.xye").y, rtol=1e-7)


def test_sum_formats_and_units(setup, tmp_path, capsys):
    d, poni, ai, frames = setup
    rc, out, err = run(
        [
            d / "stack.h5",
            "--poni",
            poni,
            "--sum",
            "--npt",
            200,
            "--format",
            "h5",
            "--unit",
            "2th",
            "-o",
            tmp_path,
            "--json",
        ],
        capsys,
    )
    assert rc == 0, err
    got = read_pattern(tmp_path / "stack.h5")
    assert got.unit == units.TTH_DEG
    ref = Integrator(ai, SHAPE, IntegrationSettings(npt=200, unit="2th")).integrate(
        np.sum([f.astype(np.float32).astype(float) for f in frames], axis=0)
    )
    np.testing.assert_allclose(got.y, ref.y, rtol=1e-6)  # sum of the same float32 frames
    rc, _, err = run(
        [
            d / "a.tif",
            "--poni",
            poni,
            "--npt",
            200,
            "--format",
            "chi",
            "--polarization",
            "none",
            "--sigma-clip",
            "-o",
            tmp_path,
        ],
        capsys,
    )
    assert rc == 0, err
    assert read_pattern(tmp_path / "a.chi").x.size > 100


def test_existing_output_is_kept(setup, tmp_path, capsys):
    d, poni, _, _ = setup
    target = tmp_path / "a.xye"
    target.write_text("keep me\n")
    rc, _, err = run([d / "a.tif", "--poni", poni, "--npt", 100, "-o", tmp_path], capsys)
    assert rc == 2 and "exists" in err and "--overwrite" in err
    assert target.read_text() == "keep me\n"
    rc, _, err = run(
        [d / "a.tif", "--poni", poni, "--npt", 100, "-o", tmp_path, "--overwrite"], capsys
    )
    assert rc == 0, err
    assert read_pattern(target).x.size > 50  # replaced by a real pattern


def _bad_case(kind: str, d: Path, tmp: Path, poni: Path):
    """(argv extras, the file name the error must name)."""
    good = d / "a.tif"
    if kind == "missing":
        return [tmp / "missing.tif", "--poni", poni], "missing.tif"
    if kind == "truncated":
        raw = good.read_bytes()
        (tmp / "trunc.tif").write_bytes(raw[: len(raw) // 2])
        return [tmp / "trunc.tif", "--poni", poni], "trunc.tif"
    if kind == "corrupt":
        (tmp / "corrupt.tif").write_bytes(b"II*\x00" + b"\x13" * 500)
        return [tmp / "corrupt.tif", "--poni", poni], "corrupt.tif"
    if kind == "shape":
        tifffile.imwrite(tmp / "small.tif", np.ones((50, 60), np.float32))
        return [tmp / "small.tif", "--poni", poni], "small.tif"
    if kind == "no_wavelength":
        (tmp / "nowl.poni").write_text(PONI.format(wl=""))
        return [good, "--poni", tmp / "nowl.poni"], "nowl.poni"
    if kind == "all_nan":
        tifffile.imwrite(tmp / "nan.tif", np.full(SHAPE, np.nan, np.float32))
        return [tmp / "nan.tif", "--poni", poni], "nan.tif"
    if kind == "all_negative":
        tifffile.imwrite(tmp / "neg.tif", np.full(SHAPE, -1.0, np.float32))
        return [tmp / "neg.tif", "--poni", poni], "neg.tif"
    if kind == "all_masked":
        tifffile.imwrite(tmp / "full.tif", np.ones(SHAPE, np.uint8))
        return [good, "--poni", poni, "--mask", tmp / "full.tif"], "full.tif"
    if kind == "empty_mask":
        (tmp / "empty.edf").write_bytes(b"")
        return [good, "--poni", poni, "--mask", tmp / "empty.edf"], "empty.edf"
    raise AssertionError(kind)


BAD = [
    "missing",
    "truncated",
    "corrupt",
    "shape",
    "no_wavelength",
    "all_nan",
    "all_negative",
    "all_masked",
    "empty_mask",
]


@pytest.mark.parametrize("kind", BAD)
def test_bad_inputs_one_line_exit_2_no_output(setup, tmp_path, capsys, kind):
    d, poni, _, _ = setup
    extra, name = _bad_case(kind, d, tmp_path, poni)
    out_dir = tmp_path / "out"
    rc, out, err = run([*extra, "-o", out_dir], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("xrdpdf: error:") and name in lines[0]
    assert "Traceback" not in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_one_bad_image_in_a_batch(setup, tmp_path, capsys):
    d, poni, _, _ = setup
    (tmp_path / "bad.tif").write_bytes(b"not a tiff")
    rc, out, err = run(
        [
            d / "a.tif",
            tmp_path / "bad.tif",
            d / "b.tif",
            "--poni",
            poni,
            "--npt",
            100,
            "-o",
            tmp_path / "o",
            "--json",
        ],
        capsys,
    )
    assert rc == 0
    summary = json.loads(out)
    assert [Path(w["path"]).name for w in summary["written"]] == ["a.xye", "b.xye"]
    assert len(summary["failed"]) == 1 and "bad.tif" in summary["failed"][0]["error"]
    assert err.count("xrdpdf: error:") == 1 and "bad.tif" in err


def test_same_stem_twice_is_refused(setup, tmp_path, capsys):
    d, poni, _, frames = setup
    images.write_image(frames[0], tmp_path / "a.edf")
    rc, _, err = run(
        [d / "a.tif", tmp_path / "a.edf", "--poni", poni, "-o", tmp_path / "o"], capsys
    )
    assert rc == 2 and "same output name" in err


def test_installed_script(setup, tmp_path):
    d, poni, _, _ = setup
    exe = Path(sys.executable).parent / "xrdpdf"
    env = {**os.environ, "XRDPDF_CACHE": str(tmp_path / "cache")}
    missing = tmp_path / "nope.tif"
    proc = subprocess.run(
        [
            str(exe),
            "integrate",
            str(d / "a.tif"),
            str(missing),
            "--poni",
            str(poni),
            "--npt",
            "150",
            "-o",
            str(tmp_path / "out"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr  # one of two images worked
    summary = json.loads(proc.stdout)
    assert summary["schema_version"] == 1
    assert Path(summary["written"][0]["path"]).is_file()
    assert proc.stderr.strip() == f"xrdpdf: error: {missing}: image file not found"


def test_h5stack_rows_equal_the_per_frame_files(setup, tmp_path):
    import h5py

    d, poni, _, _ = setup
    inputs = [str(d / "a.tif"), str(d / "b.tif")]
    assert _main(["integrate", *inputs, "--poni", str(poni), "-o", str(tmp_path / "x")]) == 0
    out = tmp_path / "s"
    args = ["integrate", *inputs, "--poni", str(poni), "-o", str(out), "--format", "h5stack"]
    assert _main(args) == 0
    with h5py.File(out / "patterns.h5") as h5:
        data = h5["entry/data"]
        q, intensity, sigma = data["q"][()], data["I"][()], data["I_errors"][()]
        assert [s.decode() for s in data["source"][()]] == inputs
    for row, name in enumerate(("a", "b")):
        ref = read_pattern(tmp_path / "x" / f"{name}.xye")
        keep = np.isfinite(intensity[row])
        # the text file holds 11 significant digits
        np.testing.assert_allclose(q[keep], ref.x, rtol=1e-10)
        np.testing.assert_allclose(intensity[row, keep], ref.y, rtol=1e-10)
        np.testing.assert_allclose(sigma[row, keep], ref.sigma, rtol=1e-10)
    assert _main(args) == 2  # the stack exists: refused before any frame is integrated
