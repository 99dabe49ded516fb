"""One reduction path: series, watch and integrate give the same I(Q) for the same frames.

Truth: (1) a flat exposure of known mean (2.0 counts/pixel, Poisson) on a dark
of 100 ± 3 counts (Gaussian read noise, independent in the frame and the dark
file): the dark-corrected intensity must average 2.0 (4.0 for two frames
summed); (2) the ``integrate`` command's own numbers, which the series and the
watcher must reproduce bit for bit.  Geometry: a generic 256 × 256 detector of
200 µm pixels at 0.1 m, λ = 0.1173 Å.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from xrdpdf.io import read_pattern
from xrdpdf.stages.integrate import IntegrationSettings
from xrdpdf.workflows.reduce import Reducer

SHAPE = (256, 256)
MEAN_COUNTS = 2.0  # true signal, counts/pixel
DARK_COUNTS, READ_NOISE = 100.0, 3.0


@pytest.fixture(scope="module")
def low(tmp_path_factory):
    """PONI, mask, a dark file and two low-count frames (seeded)."""
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    d = tmp_path_factory.mktemp("low")
    poni = d / "g.poni"
    AzimuthalIntegrator(
        dist=0.1,
        poni1=0.0251,
        poni2=0.0262,
        detector=Detector(2e-4, 2e-4, max_shape=SHAPE),
        wavelength=1.173e-11,
    ).write(str(poni))
    rng = np.random.default_rng(13)

    def dark_frame():  # a detector reads whole counts
        return np.rint(DARK_COUNTS + rng.normal(0.0, READ_NOISE, SHAPE))

    dark = dark_frame().astype(np.int32)
    frames = [(dark_frame() + rng.poisson(MEAN_COUNTS, SHAPE)).astype(np.int32) for _ in range(2)]
    tifffile.imwrite(d / "dark.tif", dark)
    for i, f in enumerate(frames):
        tifffile.imwrite(d / f"img{i}.tif", f)
    tifffile.imwrite(d / "stack.tif", np.stack(frames))
    mask = np.zeros(SHAPE, np.uint8)
    mask[120:136, :128] = 1
    tifffile.imwrite(d / "mask.tif", mask)
    return d, poni


def _mean_intensity(pattern) -> tuple[float, float]:
    """Pixel-weighted mean of I and its standard error over the bins (σ from pyFAI)."""
    w = 1.0 / pattern.sigma**2
    return float(np.sum(w * pattern.y) / np.sum(w)), float(1.0 / np.sqrt(np.sum(w)))


@pytest.mark.parametrize("names, expected", [(["img0.tif"], 1), (["img0.tif", "img1.tif"], 2)])
def test_dark_goes_to_pyfai(low, names, expected):
    """2.0 counts/pixel on a dark of 100 ± 3 reads 2.0 (one frame) and 4.0 (two summed)."""
    d, poni = low
    settings = IntegrationSettings(npt=200, polarization_factor=None, correct_solid_angle=False)
    red = Reducer(poni, settings, mask=d / "mask.tif", darks=[d / "dark.tif"])
    iq = red.reduce_summed([d / n for n in names]).iq
    mean, err = _mean_intensity(iq)
    # the weights come from the same counts, so the estimate is biased by ~ var/mean per
    # pixel over the pixel count (< 1e-3 here); 5 standard errors cover the rest
    assert abs(mean - expected * MEAN_COUNTS) < 5 * err + 1e-3, (mean, err)
    # the same dark frame was in every pixel: subtracting it before pyFAI drops the
    # negative pixels and gives ≈ 3.5; the truth is far from that
    assert err < 0.05


def _data_lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]


def test_series_watch_integrate_identical(low, tmp_path):
    """Same frames, dark and mask → the same I(Q), bit for bit, on all three paths."""
    from xrdpdf.cli._commands.integrate import run_integrate
    from xrdpdf.workflows.series import load_series, run_series
    from xrdpdf.workflows.watch import ImageReducer

    d, poni = low
    integ = run_integrate(
        [d / "img0.tif"],
        poni=poni,
        outdir=tmp_path / "int",
        mask=d / "mask.tif",
        darks=[d / "dark.tif"],
        npt=400,
    )
    assert not integ["failed"]
    watch_dir = tmp_path / "watch"
    rows = ImageReducer(
        poni,
        watch_dir,
        mask=d / "mask.tif",
        darks=[d / "dark.tif"],
        settings=IntegrationSettings(npt=400),
    ).reduce(d / "img0.tif")
    assert rows and not rows[0]["error"]
    toml = tmp_path / "s.toml"
    toml.write_text(
        f'[series]\nponi = "{poni}"\nmask = "{d / "mask.tif"}"\n'
        "[integrate]\nnpt = 400\n"
        f'[[sample]]\nname = "img0"\nimages = ["{d / "img0.tif"}"]\ndark = "{d / "dark.tif"}"\n'
    )
    res = run_series(load_series(toml), tmp_path / "series", workers=0)
    # no composition: the PDF stage is refused, the integration is not
    assert res.rows[0]["error"].startswith("pdf: ") and "composition" in res.rows[0]["error"]
    files = [
        tmp_path / "int" / "img0.xye",
        watch_dir / "img0.xye",
        tmp_path / "series/img0/img0.xye",
    ]
    pats = [read_pattern(f) for f in files]
    for p in pats[1:]:
        for key in ("x", "y", "sigma"):
            assert getattr(p, key).tobytes() == getattr(pats[0], key).tobytes()
    assert _data_lines(files[1]) == _data_lines(files[0]) == _data_lines(files[2])


def test_summed_stack_equals_summed_files(low, tmp_path):
    """``integrate --sum`` of a two-frame stack = the series' sum of the two files (2 darks)."""
    from xrdpdf.cli._commands.integrate import run_integrate
    from xrdpdf.workflows.series import load_series, run_series

    d, poni = low
    run_integrate(
        [d / "stack.tif"],
        poni=poni,
        outdir=tmp_path / "int",
        darks=[d / "dark.tif"],
        npt=300,
        sum_frames=True,
    )
    toml = tmp_path / "s.toml"
    toml.write_text(
        f'[series]\nponi = "{poni}"\n[integrate]\nnpt = 300\n'
        f'[[sample]]\nname = "both"\nimages = ["{d}/img*.tif"]\ndark = "{d / "dark.tif"}"\n'
    )
    run_series(load_series(toml), tmp_path / "series", workers=0)
    a = read_pattern(tmp_path / "int" / "stack.xye")
    b = read_pattern(tmp_path / "series" / "both" / "both.xye")
    # whole counts sum exactly in either dtype: the two sums are the same numbers
    assert a.y.tobytes() == b.y.tobytes() and a.sigma.tobytes() == b.sigma.tobytes()
