"""A series of another experiment: a temperature series, no cycles, no sodiation states.

Truth: the derived quantity the file declares (ξ(600 K) − ξ(300 K), esd
√(σ₆₀₀² + σ₃₀₀²)) recomputed here from the two rows the run reports, and the
demo's simulated amorphous electrodes (clusters of 8 and 13 Å: ξ grows).  One
sample refines a rocksalt phase it does not contain: that is a result (a note),
not an error.
"""

from __future__ import annotations

import math

import pytest

from xrdpdf.simulate import demo
from xrdpdf.workflows.series import load_series, run_series

IMAGES = ("aTiO2_c00", "aTiO2_c20")  # simulated amorphous clusters of 8 and 13 Å


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("temperature")
    samples = [s for s in demo.demo_samples() if s.name in IMAGES]
    demo.write_demo_series(out, samples=samples, binning=4)
    return out


def _toml(folder, phases: str) -> str:
    comp = next(s.composition for s in demo.demo_samples() if s.name == IMAGES[0])
    return f"""
[series]
title = "heating run"
poni = "{folder}/geometry.poni"
mask = "{folder}/mask.tif"
composition = "{comp}"
[integrate]
npt = 1500
[pdf]
qmin = 0.8
qmax = 24.0
qmaxinst = 26.0
[labels]
temperature_K = "number"
[figures]
x = "temperature_K"
[[derived]]
name = "xi_growth_A"
kind = "difference"
column = "xi_A"
label = "temperature_K"
from = 300
to = 600
[group.heating]
phases = {phases}
[[sample]]
name = "T300"
group = "heating"
temperature_K = 300
images = ["{folder}/images/{IMAGES[0]}.tif"]
dark = "{folder}/dark.tif"
[[sample]]
name = "T600"
group = "heating"
temperature_K = 600
images = ["{folder}/images/{IMAGES[1]}.tif"]
dark = "{folder}/dark.tif"
"""


def test_temperature_series_reports_its_derived_quantity(folder, tmp_path):
    f = tmp_path / "heating.toml"
    f.write_text(_toml(folder, "[]"))
    res = run_series(load_series(f), tmp_path / "out", workers=0)
    a, b = res.rows
    assert a["error"] == "" and b["error"] == "", (a["error"], b["error"])
    assert "cycle" not in res.columns and "state" not in res.columns
    assert res.columns[:3] == ("name", "group", "temperature_K")
    assert b["xi_A"] > a["xi_A"]  # 13 Å clusters against 8 Å
    assert a["xi_growth_A"] == b["xi_growth_A"] == b["xi_A"] - a["xi_A"]
    assert a["xi_growth_esd_A"] == pytest.approx(math.hypot(a["xi_esd_A"], b["xi_esd_A"]))
    header = (tmp_path / "out" / "summary.csv").read_text().splitlines()[0].split(",")
    assert "xi_growth_A" in header and "xi_growth_esd_A" in header
    # the figures come from the patterns in memory, one per sample
    assert set(res.patterns) == set(res.grs) == {"T300", "T600"}
    assert (tmp_path / "out" / "corrlen.png").stat().st_size > 5000


def test_absent_phase_is_a_note_not_an_error(folder, tmp_path):
    """Amorphous samples refined with rocksalt NaTiO2: no error, a note, no lattice."""
    f = tmp_path / "heating.toml"
    text = _toml(folder, '["NaTiO2"]')
    f.write_text(text.replace("[labels]", '[refine]\nfraction_phase = "NaTiO2"\n[labels]'))
    res = run_series(load_series(f), tmp_path / "out", workers=0)
    for row in res.rows:
        assert row["error"] == "", row["error"]
        assert row["note"] != ""
        assert row["phase"] == "NaTiO2" and math.isnan(row["a_A"])
        assert math.isnan(row["rs_fraction"]) or abs(row["rs_fraction"]) < 0.05


def test_undetermined_quantity_is_a_note_not_an_error():
    from xrdpdf._core.errors import InputError, NotDeterminedError
    from xrdpdf.workflows.series._sample import _attempt

    def undetermined():
        raise NotDeterminedError("the data do not determine the correlation length")

    def bad():
        raise InputError("x.gr: not a G(r)")

    row = {"note": "", "error": ""}
    assert _attempt(row, "corrlen", undetermined) is None
    assert row == {"note": "corrlen: the data do not determine the correlation length", "error": ""}
    _attempt(row, "pdf", bad)
    assert row["error"] == "pdf: x.gr: not a G(r)"
