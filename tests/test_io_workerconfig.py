"""pyFAI integration configs (WorkerConfig JSON) as geometry and settings, and written back.

Truth: pyFAI itself — a config made by pyFAI's own ``WorkerConfig`` must give the
integration the PONI + flags give, and the config xrdpdf writes must let plain
pyFAI ``integrate1d`` redo the reduction.
"""

from __future__ import annotations

import json

import fabio
import numpy as np
import pyFAI
import pytest
from conftest import SMALL_PONI as PONI
from conftest import SMALL_SHAPE as SHAPE
from pyFAI.io.integration_config import WorkerConfig

from xrdpdf._core.errors import InputError
from xrdpdf.io import is_worker_config
from xrdpdf.stages.integrate import IntegrationSettings, integrator_from_files, worker_config


@pytest.fixture
def files(tmp_path):
    poni = tmp_path / "g.poni"
    poni.write_text(PONI)
    rng = np.random.default_rng(3)
    yy, xx = np.indices(SHAPE)
    r = np.hypot(yy - 100.5, xx - 109.5)
    image = rng.poisson(50 + 400 * np.exp(-0.5 * ((r - 60) / 1.5) ** 2)).astype(np.float32)
    mask = np.zeros(SHAPE, np.int8)
    mask[:, :12] = 1
    fabio.edfimage.EdfImage(data=mask).write(str(tmp_path / "mask.edf"))
    return poni, image, tmp_path / "mask.edf"


def _pyfai_config(tmp_path, poni, mask, npt=400) -> str:
    ai = pyFAI.load(str(poni))
    cfg = WorkerConfig(
        poni=ai.get_config(),
        nbpt_rad=npt,
        unit="q_A^-1",
        polarization_description=(0.99, 0),
        mask_file=str(mask),
        correct_solid_angle=True,
        error_model="poisson",
    )
    path = tmp_path / "integration.json"
    cfg.save(str(path))
    return str(path)


@pytest.mark.parametrize("method", ["pyfai", "fast"])
def test_pyfai_config_reproduces_the_poni_integration(tmp_path, files, method):
    poni, image, mask = files
    cfg = _pyfai_config(tmp_path, poni, mask)
    assert is_worker_config(cfg) and not is_worker_config(poni)
    a = integrator_from_files(cfg, overrides={"method": method}).integrate(image)
    settings = IntegrationSettings(npt=400, unit="q_A^-1", polarization_factor=0.99, method=method)
    b = integrator_from_files(poni, settings, mask=mask).integrate(image)
    assert a.x.size == b.x.size > 300
    # same engine, same inputs: agreement to float32 round-off of the accumulators
    np.testing.assert_allclose(a.x, b.x, rtol=1e-6)
    np.testing.assert_allclose(a.y, b.y, rtol=1e-6)
    np.testing.assert_allclose(a.sigma, b.sigma, rtol=1e-6)
    assert a.wavelength_A == b.wavelength_A == 0.1173


def test_explicit_settings_win_over_the_config(tmp_path, files):
    poni, image, mask = files
    cfg = _pyfai_config(tmp_path, poni, mask)
    integ = integrator_from_files(cfg, overrides={"npt": 150, "polarization_factor": None})
    assert integ.settings.npt == 150 and integ.settings.polarization_factor is None
    assert integ.provenance["mask"] == str(mask)


def test_written_config_lets_pyfai_redo_the_reduction(tmp_path, files):
    poni, image, mask = files
    settings = IntegrationSettings(
        npt=300, unit="2th_deg", polarization_factor=0.95, method="pyfai"
    )
    ours = integrator_from_files(poni, settings, mask=mask)
    (tmp_path / "w.json").write_text(json.dumps(worker_config(ours)))
    cfg = WorkerConfig.from_file(str(tmp_path / "w.json"))  # pyFAI parses what we wrote
    ai = pyFAI.load(cfg.poni.as_dict())
    res = ai.integrate1d(
        image,
        cfg.nbpt_rad,
        unit=str(cfg.unit),
        polarization_factor=cfg.polarization_factor,
        correctSolidAngle=cfg.correct_solid_angle,
        mask=fabio.open(cfg.mask_file).data,
        method=tuple(cfg.method),
        error_model=cfg.error_model.name.lower(),
    )
    pat = ours.integrate(image)
    keep = np.isin(res.radial, pat.x)
    np.testing.assert_allclose(res.intensity[keep], pat.y, rtol=1e-6)
    np.testing.assert_allclose(res.sigma[keep], pat.sigma, rtol=1e-6)
    # and xrdpdf reads its own config back to the same integration
    again = integrator_from_files(tmp_path / "w.json").integrate(image)
    np.testing.assert_allclose(again.y, pat.y, rtol=1e-6)


def test_cake_config_refused(tmp_path, files):
    poni, _, mask = files
    ai = pyFAI.load(str(poni))
    WorkerConfig(poni=ai.get_config(), nbpt_rad=100, nbpt_azim=36, unit="q_A^-1").save(
        str(tmp_path / "cake.json")
    )
    with pytest.raises(InputError, match="2-D"):
        integrator_from_files(tmp_path / "cake.json")


def test_cli_takes_a_config_and_writes_one(tmp_path, files, capsys):
    import tifffile

    from xrdpdf.cli import _main

    poni, image, mask = files
    cfg = _pyfai_config(tmp_path, poni, mask, npt=400)
    tifffile.imwrite(tmp_path / "f.tif", image)
    argv = ["integrate", str(tmp_path / "f.tif"), "--poni", cfg, "-o", str(tmp_path / "o")]
    assert _main([*argv, "--npt", "250", "--json", "--method", "pyfai"]) in (0, None)
    summary = json.loads(capsys.readouterr().out)
    assert summary["npt"] == 250  # the flag wins; the rest comes from the config
    written = WorkerConfig.from_file(summary["pyfai_config"])
    assert written.nbpt_rad == 250 and written.polarization_factor == 0.99
    assert written.mask_file == str(mask)


def test_watch_takes_a_config(tmp_path, files):
    """``watch --poni CONFIG``: the config's npt, polarization and mask; a flag given wins."""
    import tifffile

    from xrdpdf.cli import _main
    from xrdpdf.io import read_pattern

    poni, image, mask = files
    cfg = _pyfai_config(tmp_path, poni, mask, npt=350)
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "f.tif", image)
    base = ["watch", str(tmp_path / "in"), "--poni", cfg, "--once"]
    assert _main([*base, "-o", str(tmp_path / "w1")]) == 0
    settings = IntegrationSettings(npt=350, unit="q_A^-1", polarization_factor=0.99)
    ref = integrator_from_files(poni, settings, mask=mask).integrate(image)
    got = read_pattern(tmp_path / "w1" / "f.xye")
    # the same settings and engine: the same numbers, to the 10 digits written
    np.testing.assert_allclose(got.x, ref.x, rtol=1e-9)
    np.testing.assert_allclose(got.y, ref.y, rtol=1e-9)
    assert _main([*base, "-o", str(tmp_path / "w2"), "--npt", "200"]) == 0
    assert read_pattern(tmp_path / "w2" / "f.xye").metadata["integration"]["npt"] == 200


def test_series_takes_a_config(tmp_path, files):
    """``[series] poni = CONFIG``: the config's settings and mask; ``[integrate]`` keys win."""
    import tifffile

    from xrdpdf.io import read_pattern
    from xrdpdf.workflows.series import load_series, run_series

    poni, image, mask = files
    cfg = _pyfai_config(tmp_path, poni, mask, npt=350)
    tifffile.imwrite(tmp_path / "f.tif", image)
    sample = '[[sample]]\nname = "s1"\nimages = ["f.tif"]\n'
    for name, extra, npt in (("a", "", 350), ("b", "[integrate]\nnpt = 250\n", 250)):
        (tmp_path / f"{name}.toml").write_text(f'[series]\nponi = "{cfg}"\n{extra}{sample}')
        run_series(load_series(tmp_path / f"{name}.toml"), tmp_path / name, workers=0)
        got = read_pattern(tmp_path / name / "s1" / "s1.xye")
        settings = IntegrationSettings(npt=npt, unit="q_A^-1", polarization_factor=0.99)
        ref = integrator_from_files(poni, settings, mask=mask).integrate(image)
        np.testing.assert_allclose(got.x, ref.x, rtol=1e-9)  # 10 significant digits written
        np.testing.assert_allclose(got.y, ref.y, rtol=1e-9)
        assert got.metadata["mask"] == str(mask)
