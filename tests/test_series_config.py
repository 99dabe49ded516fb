"""The series file: strict keys, safe names, globs; the volume-change arithmetic."""

import math

import pytest

from xrdpdf import InputError
from xrdpdf.series import load_series, volume_changes

GOOD = """
[series]
poni = "geo.poni"
composition = "TiO2"
[integrate]
npt = 500
[pdf]
qmax = "auto"
[refine]
phases = ["NaTiO2"]
[[sample]]
name = "c20_sod"
cycle = 20
state = "sodiated"
images = ["img_*.tif"]
[[sample]]
name = "c0"
cycle = 0
state = "pristine"
images = "img_a.tif"
phases = ["anatase"]
"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "geo.poni").write_text("Distance: 0.35\n")
    for n in ("img_a.tif", "img_b.tif"):
        (tmp_path / n).write_bytes(b"x")
    return tmp_path


def test_good_file(folder):
    f = folder / "s.toml"
    f.write_text(GOOD)
    cfg = load_series(f)
    assert [s.name for s in cfg.samples] == ["c20_sod", "c0"]
    assert [p.name for p in cfg.samples[0].images] == ["img_a.tif", "img_b.tif"]  # sorted glob
    assert cfg.samples[0].phases == ("NaTiO2",) and cfg.samples[1].phases == ("anatase",)
    assert cfg.poni == folder / "geo.poni"
    assert cfg.pdf["qmax"] == "auto"


@pytest.mark.parametrize(
    "old, new, match",
    [
        ("npt = 500", "nptt = 500", r"unknown key 'nptt' in \[integrate\]"),
        ('state = "pristine"', 'state = "pristine"\ncylce = 1', "unknown key 'cylce'"),
        ('name = "c0"', 'name = "../c0"', "not a safe file name"),
        ('name = "c0"', 'name = "a/b"', "not a safe file name"),
        ('name = "c0"', 'name = "c20_sod"', "repeated"),
        ('state = "pristine"', 'state = "charged"', "state must be one of"),
        ('images = "img_a.tif"', 'images = "nothing_*.tif"', "no image matches"),
        ('poni = "geo.poni"', 'poni = "missing.poni"', "poni 'missing.poni' not found"),
        ("cycle = 0", "cycle = -1", "cycle must be an integer"),
        ("[pdf]", "[pfd]", "unknown key 'pfd' in the top level"),
        # values are checked at load (by the same builders the run uses), not mid-run
        ("npt = 500", 'npt = "many"', r"\[integrate\] npt must be a number"),
        ('qmax = "auto"', 'qmax = "lots"', "qmax must be a number"),
        ('composition = "TiO2"', 'composition = "Xx2O"', "unknown element 'Xx'"),
        ('phases = ["NaTiO2"]', 'phases = ["NaTiO2"]\nfit_range = 3', "fit_range must be"),
        ('phases = ["NaTiO2"]', 'phases = ["Unobtainium"]', "Unobtainium"),
        (
            'phases = ["NaTiO2"]',
            'phases = ["NaTiO2"]\namorphous_reference = "c99"',
            "amorphous_reference 'c99' is not the name of a sample",
        ),
    ],
)
def test_bad_files_name_key_and_file(folder, old, new, match):
    f = folder / "s.toml"
    assert old in GOOD
    f.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(InputError, match=match) as err:
        load_series(f)
    assert str(f) in str(err.value)


def test_toml_is_data_not_code(folder):
    f = folder / "s.toml"
    f.write_text(GOOD.replace('composition = "TiO2"', 'composition = __import__("os")'))
    with pytest.raises(InputError, match="not valid TOML"):
        load_series(f)


def test_volume_change_closed_form():
    # ΔV/V = (a_s/a_d)^3 − 1; a_d chosen so that the volume is exactly 2 % smaller
    a_s = 4.20464
    a_d = a_s * (1 / 1.02) ** (1 / 3)
    rows = [
        {"cycle": 20, "state": "sodiated", "a_A": a_s, "a_esd_A": 1e-4},
        {"cycle": 20, "state": "desodiated", "a_A": a_d, "a_esd_A": 1e-4},
        {"cycle": 10, "state": "sodiated", "a_A": a_s, "a_esd_A": 1e-4},
        {"cycle": 0, "state": "pristine", "a_A": float("nan")},
    ]
    volume_changes(rows)
    assert rows[0]["volume_change_pct"] == pytest.approx(2.0, rel=1e-12)
    assert rows[1]["volume_change_pct"] == rows[0]["volume_change_pct"]
    # esd: 3·√2·(1e-4/4.2)·1.02·100 ≈ 0.0103 %
    assert rows[0]["volume_change_esd_pct"] == pytest.approx(
        3 * math.hypot(1e-4 / a_s, 1e-4 / a_d) * 1.02 * 100, rel=1e-12
    )
    assert "volume_change_pct" not in rows[2] and "volume_change_pct" not in rows[3]


def test_documented_example_is_valid(tmp_path):
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "series.toml"
    (tmp_path / "series.toml").write_text(example.read_text())
    for name in (
        "geometry.poni",
        "mask.edf",
        "dark.tif",
        "c00_a.tif",
        "c01_sod_a.tif",
        "c20_sod_a.tif",
        "c20_sod_b.tif",
        "c20_desod_a.tif",
    ):
        (tmp_path / name).write_bytes(b"x")
    cfg = load_series(tmp_path / "series.toml")
    assert [s.name for s in cfg.samples] == ["c00_pristine", "c01_sod", "c20_sod", "c20_desod"]
    assert len(cfg.samples[2].images) == 2 and cfg.samples[2].phases == ("NaTiO2",)
    assert cfg.samples[1].phases == () and cfg.refine["fit_range"] == [1.5, 24.0]
