"""The series file's [pdffit] table: a real-space model per sample or group, its columns."""

import pytest

from xrdpdf import InputError
from xrdpdf.stages.pdffit import calculate, parse_model
from xrdpdf.workflows.series import load_series, summary_columns

SERIES = """
[series]
poni = "geo.poni"
composition = "TiO2"
[pdffit]
model = "rs.toml"
[group.ana]
pdffit_model = "ana.toml"
[[sample]]
name = "s1"
images = "img.tif"
[[sample]]
name = "s2"
group = "ana"
images = "img.tif"
"""
MODEL = '[data]\nrmin = 1.5\nrmax = 12.0\nrstep = 0.02\n[[phase]]\nstructure = "{}"\n{}'


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "geo.poni").write_text("Distance: 0.35\n")
    (tmp_path / "img.tif").write_bytes(b"x")
    (tmp_path / "rs.toml").write_text(MODEL.format("NaTiO2", 'vary = ["scale", "lattice"]'))
    (tmp_path / "ana.toml").write_text(MODEL.format("anatase", 'vary = ["scale"]'))
    return tmp_path


def test_model_per_group_and_columns(folder):
    (folder / "s.toml").write_text(SERIES)
    cfg = load_series(folder / "s.toml")
    assert [s.pdffit_model.name for s in cfg.samples] == ["rs.toml", "ana.toml"]
    cols = summary_columns(cfg)
    assert "pdffit_a_A" in cols and "pdffit_spdiameter_esd_A" in cols
    assert "pdffit_a_A" not in summary_columns(
        load_series(_write(folder, SERIES.replace('[pdffit]\nmodel = "rs.toml"\n', "")
                           .replace('[group.ana]\npdffit_model = "ana.toml"\n', "[group.ana]\n")))
    )  # fmt: skip


def _write(folder, text):
    p = folder / "t.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "change, match",
    [
        (("model = ", "modell = "), "modell"),
        (('"ana.toml"', '"missing.toml"'), "missing.toml"),
        (('model = "rs.toml"', 'model = "rs.toml"\nphase = "rutile"'), "rutile"),
    ],
)
def test_bad_pdffit_settings_fail_at_load(folder, change, match):
    with pytest.raises(InputError, match=match):
        load_series(_write(folder, SERIES.replace(*change)))


def test_bad_model_file_fails_at_load(folder):
    (folder / "rs.toml").write_text(MODEL.format("NaTiO2", "delta3 = 1.0"))
    with pytest.raises(InputError, match="delta3"):
        load_series(_write(folder, SERIES))


def test_sample_row_gains_the_real_space_lattice(folder, tmp_path):
    from xrdpdf.workflows.series._sample import _pdffit_sample

    cfg = load_series(_write(folder, SERIES))
    truth = parse_model(MODEL.format("NaTiO2", "lattice = [4.19, 4.19, 4.19, 90, 90, 90]"))
    row = {"note": "", "error": ""}
    _pdffit_sample(cfg, cfg.samples[0], calculate(truth), tmp_path, row)
    assert abs(row["pdffit_a_A"] - 4.19) < 1e-6  # noise-free G(r): exact
    assert row["pdffit_fraction"] == 1.0 and row["pdffit_rw"] < 1e-6
    assert (tmp_path / "s1_pdffit.toml").is_file()
