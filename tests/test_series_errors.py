"""A series never writes outside OUTDIR, never replaces another series' results by surprise,
redoes what was deleted, and exits 2 when no sample produced a pattern.

Truth: the files on disk (what exists where, byte for byte) and the exit codes the
README promises; the images are simulated on a small detector so that a run takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf.cli import _main
from xrdpdf.workflows.series import OWNER_FILE, load_series, run_series

SHAPE = (96, 96)
SERIES = """
[series]
poni = "g.poni"
composition = "TiO2"
[integrate]
npt = 150
[[sample]]
name = "s1"
images = ["a0.tif"]
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A PONI, two simulated frames (seeded) and a one-sample series file."""
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    from xrdpdf._core.pattern import Pattern
    from xrdpdf.simulate.images import simulate_image
    from xrdpdf.stages.integrate import load_poni

    d = tmp_path_factory.mktemp("series")
    AzimuthalIntegrator(
        dist=0.1, poni1=0.0097, poni2=0.0098, detector=Detector(2e-4, 2e-4, max_shape=SHAPE),
        wavelength=1.173e-11,
    ).write(str(d / "g.poni"))  # fmt: skip
    q = np.linspace(0, 20, 4001)
    y = 5 + sum(40 * np.exp(-0.5 * ((q - q0) / 0.2) ** 2) for q0 in (3.0, 5.0))
    ai = load_poni(d / "g.poni")
    for i in range(2):
        img = simulate_image(Pattern(q, y, units.Q_A, 0.1173), ai, scale=20.0, seed=i)
        tifffile.imwrite(d / f"a{i}.tif", img.data.astype(np.float32))
    (d / "s.toml").write_text(SERIES)
    return d


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_symlink_at_sample_folder_is_refused_before_work(folder, tmp_path, capsys):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "s1").symlink_to(elsewhere)
    rc = _main(["series", str(folder / "s.toml"), "-o", str(out), "--workers", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "symbolic link" in err[0] and "s1" in err[0]
    assert list(elsewhere.iterdir()) == [] and sorted(p.name for p in out.iterdir()) == ["s1"]


def test_other_series_refused_then_overwrite_and_rerun_redoes_deleted(folder, tmp_path, capsys):
    out = tmp_path / "out"
    cfg = load_series(folder / "s.toml")
    first = run_series(cfg, out, workers=0)
    assert first.failed == [] and first.n_ok == 1
    owner = json.loads((out / OWNER_FILE).read_text())
    assert owner["series_file"] == str(cfg.path)
    # a rerun of the same series skips the unchanged sample ...
    assert run_series(cfg, out, workers=0).skipped == ["s1"]
    # ... unless one of its outputs was deleted: then it is done again, and identically
    gr = out / "s1" / "s1.gr"
    before = gr.read_bytes()
    gr.unlink()
    again = run_series(cfg, out, workers=0)
    assert again.skipped == [] and gr.read_bytes() == before
    # a second series file into the same OUTDIR: refused, nothing touched
    other = folder / "other.toml"
    other.write_text(SERIES.replace('"a0.tif"', '"a1.tif"'))
    snapshot = _tree(out)
    rc = _main(["series", str(other), "-o", str(out), "--workers", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and str(cfg.path) in err[0] and "--overwrite" in err[0]
    assert _tree(out) == snapshot
    # with --overwrite it takes the folder over
    rc = _main(["series", str(other), "-o", str(out), "--workers", "0", "--overwrite"])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((out / OWNER_FILE).read_text())["series_file"] == str(other.resolve())
    assert (out / "s1" / "s1.gr").read_bytes() != before  # the other image's G(r)


def test_results_without_owner_are_not_replaced(folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("name\nsomething else\n")
    with pytest.raises(InputError, match="another or an earlier series"):
        run_series(load_series(folder / "s.toml"), out, workers=0)
    assert (out / "summary.csv").read_text() == "name\nsomething else\n"


def test_outdir_that_is_a_file(folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("not a folder")
    rc = _main(["series", str(folder / "s.toml"), "-o", str(out), "--workers", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "not a folder" in err[0]


def test_bad_scheduler_address_is_one_line_before_any_output(folder, tmp_path, capsys):
    out = tmp_path / "out"
    rc = _main(["series", str(folder / "s.toml"), "-o", str(out), "--scheduler", "foo://bar"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "'foo://bar'" in err[0] and "xrdpdf: error:" in err[0]
    assert not out.exists()


def test_dask_run_whose_only_sample_failed_exits_2(folder, tmp_path, capsys, monkeypatch):
    """A task that raises on the worker: the sample is failed, not counted as done."""
    from distributed import LocalCluster

    import xrdpdf.workflows.series.run as run

    def broken(*args, **kwargs):
        raise RuntimeError("worker lost its disk")

    monkeypatch.setattr(run, "process_sample", broken)
    out = tmp_path / "out"
    with LocalCluster(
        n_workers=1, processes=False, dashboard_address=None, silence_logs=40
    ) as cluster:
        argv = ["series", str(folder / "s.toml"), "-o", str(out), "--json"]
        rc = _main([*argv, "--scheduler", cluster.scheduler_address])
    captured = capsys.readouterr()
    assert rc == 2
    summary = json.loads(captured.out)
    assert summary["failed"] == ["s1"]
    assert summary["samples"][0]["error"].startswith("worker: RuntimeError: worker lost its disk")
    assert "s1: worker: RuntimeError" in captured.err
