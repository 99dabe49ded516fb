"""``xrdpdf watch`` on the files a detector or a user really leaves: names that are not
UTF-8, the same folder reached through a link, a multi-page TIFF that gains pages.

Truth: the bytes on disk (names, outputs) and, for frames, the same frame integrated on its
own by ``xrdpdf integrate``; tifffile's own page reader for the frames of a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf.cli import _main
from xrdpdf.io import images, read_pattern
from xrdpdf.simulate.images import simulate_image
from xrdpdf.stages.integrate import load_poni
from xrdpdf.workflows.watch import STATE_NAME, ImageReducer, Watcher

SHAPE = (96, 96)


@pytest.fixture(scope="module")
def geo(tmp_path_factory):
    """A PONI and three different simulated frames (seeded)."""
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    d = tmp_path_factory.mktemp("geo")
    poni = d / "g.poni"
    AzimuthalIntegrator(
        dist=0.1, poni1=0.0097, poni2=0.0098, detector=Detector(2e-4, 2e-4, max_shape=SHAPE),
        wavelength=1.173e-11,
    ).write(str(poni))  # fmt: skip
    q = np.linspace(0, 20, 4001)
    y = 5 + sum(40 * np.exp(-0.5 * ((q - q0) / 0.2) ** 2) for q0 in (3.0, 5.0))
    ai = load_poni(poni)
    frames = [
        simulate_image(Pattern(q, y, units.Q_A, 0.1173), ai, scale=10.0 * (i + 1), seed=i)
        .data.astype(np.float32)
        for i in range(3)
    ]  # fmt: skip
    return poni, frames


def _once(folder: Path, poni: Path, out: Path):
    reducer = ImageReducer(poni, out)
    return Watcher(folder, reducer, poll_s=0.05, stable_s=0.05).run(once=True, handle_signals=False)


def test_name_that_is_not_utf8_is_reduced_and_remembered(geo, tmp_path):
    poni, frames = geo
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    name = os.fsdecode(b"run\xff01.tif")  # Latin-1 'ÿ' from an old acquisition PC
    try:
        tifffile.imwrite(incoming / name, frames[0])
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    first = _once(incoming, poni, out)
    assert first.failed == [] and len(first.processed) == 1
    assert os.listdir(os.fsencode(out)).count(b"run\xff01.xye") == 1  # the same raw bytes
    # the state keeps the name losslessly: a restart recognises the file
    again = _once(incoming, poni, out)
    assert again.processed == [] and again.failed == [] and again.skipped == 1
    keys = json.loads((out / STATE_NAME).read_text(encoding="utf-8"))["files"]
    assert any(k.startswith(os.path.realpath(incoming / name)) for k in keys)
    (out / "summary.csv").read_bytes().decode("utf-8")  # valid UTF-8, the name escaped
    assert "run\\udcff01" in (out / "summary.csv").read_text(encoding="utf-8")


def test_integrate_names_a_file_that_is_not_utf8(geo, tmp_path, capsys):
    poni, frames = geo
    name = os.fsdecode(b"run\xff02.tif")
    try:
        tifffile.imwrite(tmp_path / name, frames[0])
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    rc = _main(["integrate", str(tmp_path / name), "--poni", str(poni), "-o", str(tmp_path / "o")])
    assert rc == 0, capsys.readouterr().err
    assert read_pattern(tmp_path / "o" / os.fsdecode(b"run\xff02.xye")).x.size > 0


def test_state_is_keyed_by_real_path(geo, tmp_path):
    """The same folder through a symbolic link is the same files: nothing is redone."""
    poni, frames = geo
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    tifffile.imwrite(incoming / "a.tif", frames[0])
    (tmp_path / "alias").symlink_to(incoming)
    assert len(_once(tmp_path / "alias", poni, out).processed) == 1
    again = _once(incoming, poni, out)
    assert again.processed == [] and again.failed == [] and again.skipped == 1


def test_pages_appended_one_by_one_are_frames(geo, tmp_path):
    """tifffile's append (one series per write) is read page by page, as tifffile reads it."""
    _, frames = geo
    path = tmp_path / "stack.tif"
    for i, f in enumerate(frames):
        tifffile.imwrite(path, f, append=i > 0)
    assert len(tifffile.TiffFile(path).series) == 3  # three series of one page each
    assert images.frame_count(path) == 3
    for k, fr in enumerate(images.iter_frames(path)):
        np.testing.assert_array_equal(fr.data, tifffile.imread(path, key=k))
    assert [fr.index for fr in images.iter_frames(path)] == [0, 1, 2]


def test_pages_of_different_shapes_are_refused(geo, tmp_path):
    _, frames = geo
    path = tmp_path / "mixed.tif"
    tifffile.imwrite(path, frames[0])
    tifffile.imwrite(path, frames[1][:50], append=True)
    with pytest.raises(InputError, match="different shapes"):
        images.frame_count(path)


def test_growing_multipage_tiff_is_reduced_again(geo, tmp_path, capsys):
    """A TIFF that gains pages after its first reduction: every page, each like integrate."""
    poni, frames = geo
    incoming, out, ref = tmp_path / "in", tmp_path / "out", tmp_path / "ref"
    incoming.mkdir()
    path = incoming / "run.tif"
    tifffile.imwrite(path, frames[0])
    assert len(_once(incoming, poni, out).processed) == 1
    assert (out / "run.xye").is_file()
    for f in frames[1:]:
        tifffile.imwrite(path, f, append=True)
    grown = _once(incoming, poni, out)
    assert grown.failed == [] and len(grown.processed) == 1
    names = sorted(p.name for p in out.glob("*.xye"))
    assert names == ["run_f0000.xye", "run_f0001.xye", "run_f0002.xye"]  # run.xye superseded
    with open(out / "summary.csv", encoding="utf-8") as fh:
        assert [ln.split(",")[0] for ln in fh.read().splitlines()[1:]] == [
            "run_f0000", "run_f0001", "run_f0002",
        ]  # fmt: skip
    # each frame as ``integrate`` gives it from a one-page file of that frame
    for k, f in enumerate(frames):
        single = tmp_path / f"single{k}.tif"
        tifffile.imwrite(single, f)
        assert _main(["integrate", str(single), "--poni", str(poni), "-o", str(ref)]) == 0
        mine, theirs = read_pattern(out / f"run_f{k:04d}.xye"), read_pattern(ref / f"single{k}.xye")
        np.testing.assert_array_equal(mine.y, theirs.y)
    capsys.readouterr()
