"""The series file: strict keys, safe names, globs; the volume-change arithmetic."""

import math
import typing

import pytest

from xrdpdf import InputError
from xrdpdf.workflows.series import DerivedSpec, derive, load_series

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
[labels]
cycle = "integer"
state = ["pristine", "sodiated", "desodiated"]
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
        (
            'state = "pristine"',
            'state = "charged"',
            "state must be one of pristine, sodiated, desodiated",
        ),
        ('images = "img_a.tif"', 'images = "nothing_*.tif"', "no image matches"),
        ('poni = "geo.poni"', 'poni = "missing.poni"', "poni 'missing.poni' not found"),
        ("cycle = 0", "cycle = 1.5", "cycle must be an integer"),
        ("[pdf]", "[pfd]", "unknown key 'pfd' in the top level"),
        # values are checked at load (by the same builders the run uses), not mid-run
        ("npt = 500", 'npt = "many"', r"\[integrate\] npt must be an integer"),
        ('qmax = "auto"', 'qmax = "lots"', "qmax must be a number"),
        ('composition = "TiO2"', 'composition = "Xx2O"', "unknown element.*'Xx'"),
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
        {"group": "c20", "state": "sodiated", "a_A": a_s, "a_esd_A": 1e-4},
        {"group": "c20", "state": "desodiated", "a_A": a_d, "a_esd_A": 1e-4},
        {"group": "c10", "state": "sodiated", "a_A": a_s, "a_esd_A": 1e-4},
        {"group": "c00", "state": "pristine", "a_A": float("nan")},
    ]
    spec = DerivedSpec(
        "volume_change_pct",
        "volume_change",
        "a_A",
        "state",
        "desodiated",
        "sodiated",
        "volume_change_esd_pct",
    )
    derive(rows, spec)
    assert rows[0]["volume_change_pct"] == pytest.approx(2.0, rel=1e-12)
    assert rows[1]["volume_change_pct"] == rows[0]["volume_change_pct"]
    # esd: 3·√2·(1e-4/4.2)·1.02·100 ≈ 0.0103 %
    assert rows[0]["volume_change_esd_pct"] == pytest.approx(
        3 * math.hypot(1e-4 / a_s, 1e-4 / a_d) * 1.02 * 100, rel=1e-12
    )
    assert "volume_change_pct" not in rows[2] and "volume_change_pct" not in rows[3]


@pytest.mark.parametrize(
    "kind, value, esd",
    [
        # x_to = 3.9, x_from = 3.8, σ = 0.01 and 0.02: closed forms of each kind
        ("difference", 0.1, math.hypot(0.01, 0.02)),
        ("ratio", 3.9 / 3.8, 3.9 / 3.8 * math.hypot(0.01 / 3.9, 0.02 / 3.8)),
        (
            "relative_change_pct",
            (3.9 / 3.8 - 1) * 100,
            100 * 3.9 / 3.8 * math.hypot(0.01 / 3.9, 0.02 / 3.8),
        ),
    ],
)
def test_derived_kinds_closed_form(kind, value, esd):
    rows = [
        {"group": "g", "temperature_K": 300, "xi_A": 3.8, "xi_esd_A": 0.02},
        {"group": "g", "temperature_K": 600, "xi_A": 3.9, "xi_esd_A": 0.01},
    ]
    derive(rows, DerivedSpec("d_A", kind, "xi_A", "temperature_K", 300, 600, "d_esd_A"))
    assert rows[0]["d_A"] == pytest.approx(value, rel=1e-12) and rows[1]["d_A"] == rows[0]["d_A"]
    assert rows[0]["d_esd_A"] == pytest.approx(esd, rel=1e-12)


TEMPERATURE = """
[series]
poni = "geo.poni"
composition = "TiO2"
[labels]
temperature_K = "number"
[[derived]]
name = "xi_change_A"
kind = "difference"
column = "xi_A"
label = "temperature_K"
from = 300
to = 600
[group.heating]
phases = ["anatase"]
pdf = { qmax = 20.0 }
[[sample]]
name = "t300"
group = "heating"
temperature_K = 300
images = "img_a.tif"
[[sample]]
name = "t600"
group = "heating"
temperature_K = 600.0
images = "img_b.tif"
pdf = { rmax = 40.0 }
"""


def test_labels_groups_and_derived_of_a_temperature_series(folder):
    f = folder / "t.toml"
    f.write_text(TEMPERATURE)
    cfg = load_series(f)
    a, b = cfg.samples
    assert a.labels == {"temperature_K": 300} and a.temperature_K == 300 and a.group == "heating"
    assert a.phases == ("anatase",)  # from the group
    assert a.pdf == {"qmax": 20.0} and b.pdf == {"qmax": 20.0, "rmax": 40.0}
    assert [d.name for d in cfg.derived] == ["xi_change_A"]
    assert cfg.derived[0].esd_name == "xi_change_esd_A"
    from xrdpdf.workflows.series import summary_columns

    cols = summary_columns(cfg)
    assert cols[:3] == ("name", "group", "temperature_K")
    assert "cycle" not in cols and "state" not in cols and "xi_change_esd_A" in cols


@pytest.mark.parametrize(
    "old, new, match",
    [
        ("temperature_K = 300\n", 'temperature_K = "warm"\n', "temperature_K must be a number"),
        (
            'group = "heating"\ntemperature_K = 300',
            'group = "cooling"\ntemperature_K = 300',
            "group 'cooling' is not a",
        ),
        ('label = "temperature_K"', 'label = "cycle"', "label 'cycle' is not declared"),
        ('kind = "difference"', 'kind = "integral"', "kind must be one of"),
        ('temperature_K = "number"', 'name = "number"', "not a free column name"),
        ("pdf = { rmax = 40.0 }", "pdf = { rmaxx = 40.0 }", "unknown key 'rmaxx'"),
    ],
)
def test_temperature_series_bad(folder, old, new, match):
    f = folder / "t.toml"
    assert old.replace("\\n", "\n") in TEMPERATURE
    f.write_text(TEMPERATURE.replace(old, new, 1))
    with pytest.raises(InputError, match=match) as err:
        load_series(f)
    assert str(f) in str(err.value)


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


def test_rs_fraction_is_refine_crystalline_fraction_of_the_named_phase():
    """The rs_fraction column maps the named phase's crystalline fraction, nothing else."""
    from types import SimpleNamespace

    from xrdpdf.workflows.series._sample import _fraction

    def phase(name, **kw):
        return SimpleNamespace(name=name, weight_fraction=1.0, **kw)

    res = SimpleNamespace(
        phases=[
            phase("anatase", crystalline_fraction=0.2, crystalline_fraction_esd=0.01),
            phase("NaTiO2", crystalline_fraction=0.7, crystalline_fraction_esd=0.03),
        ]
    )
    assert _fraction(res, "NaTiO2") == (0.7, 0.03, "")
    gone = SimpleNamespace(
        phases=[
            phase("NaTiO2", crystalline_fraction=0.0, crystalline_fraction_esd=None, detected=False)
        ]
    )
    value, esd, note = _fraction(gone, "NaTiO2")
    assert value == 0.0 and math.isnan(esd) and note == "NaTiO2 not detected"
    # undeterminable (None), not refined, or no phase named: an empty cell, not the weight
    # fraction among the refined phases (1.0 whenever one phase is refined)
    undetermined = SimpleNamespace(phases=[phase("NaTiO2", crystalline_fraction=None)])
    assert math.isnan(_fraction(undetermined, "NaTiO2")[0])
    assert math.isnan(_fraction(res, "CeO2")[0]) and math.isnan(_fraction(res, None)[0])


@pytest.mark.parametrize(
    "old, new, match",
    [
        # types and values of every table come from its schema (series/_schema.py)
        ('images = "img_a.tif"', "images = []", "images must be a list of text strings that is"),
        ('images = "img_a.tif"', "images = [1]", "images must be a list of text strings, got"),
        ('phases = ["NaTiO2"]', "phases = 5", r"\[refine\] phases must be a list of text"),
        ('qmax = "auto"', 'lorch = "false"', r"\[pdf\] lorch must be true or false, got 'false'"),
        ('qmax = "auto"', "lorch = 0", r"\[pdf\] lorch must be true or false, got 0"),
        ("npt = 500", "npt = 1", r"npt must be an integer in \[2, 100000\], got 1"),
        ("npt = 500", "npt = true", "npt must be an integer, got True"),
        ('qmax = "auto"', "rstep = -0.01", r"rstep must be a number > 0"),
        ('qmax = "auto"', 'qmax = "max"', "qmax must be a number or one of 'auto'"),
        ('phases = ["NaTiO2"]', "fit_range = [1]", "fit_range must be a list of numbers with 2"),
        ('phases = ["NaTiO2"]', "phases = [\"NaTiO2\"]\ncuka = 'no'", "cuka must be true or false"),
        ('state = "pristine"', 'state = "pristine"\ngroup = 3', "group must be a text string"),
        ('state = "pristine"', 'state = "pristine"\npdf = 3', "pdf must be a table, got 3"),
        # the same image twice would be summed twice (doubled intensities)
        ('images = "img_a.tif"', 'images = ["img_a.tif", "img_a.tif"]', "img_a.tif is listed "),
        ('images = "img_a.tif"', 'images = ["img_a.tif", "img_*"]', "listed twice .by 'img_a.tif'"),
        # names: short enough for every output's temporary name, not a series output
        ('name = "c0"', f'name = "{"x" * 250}"', "has 250 characters; at most 100"),
        ('name = "c0"', 'name = "summary.csv"', "is the name of a series output"),
        ('name = "c0"', 'name = "Report.HTML"', "is the name of a series output"),
    ],
)
def test_schema_errors_are_one_line_at_load(folder, old, new, match):
    f = folder / "s.toml"
    assert old in GOOD
    f.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(InputError, match=match) as err:
        load_series(f)
    msg = str(err.value)
    assert msg.startswith(f"{f}: ") and "\n" not in msg and len(msg) < 300


def test_schema_field_names_are_the_toml_keys():
    """The allowed keys of each table are exactly its dataclass's fields (from = from_)."""
    from xrdpdf.workflows.series import _schema

    assert _schema.table_keys(_schema.Derived) == (
        "name", "kind", "column", "label", "from", "to", "esd_name",
    )  # fmt: skip
    assert set(_schema.table_keys(_schema.Sample)) == {
        "name", "images", "group", "dark", "composition", "phases", "pdf",
        "amorphous_reference", "pdffit_model",
    }  # fmt: skip
    assert _schema.DERIVED_KINDS == typing.get_args(typing.get_type_hints(_schema.Derived)["kind"])
