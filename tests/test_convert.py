"""``xrdpdf convert``: every writable format round-trips x, y, σ and λ."""

import json
from pathlib import Path

import numpy as np
import pytest

from xrdpdf import Pattern
from xrdpdf.cli import _main
from xrdpdf.io import read_pattern, write_pattern

DATA = Path(__file__).parent / "data" / "formats"


def _pattern(unit: str) -> Pattern:
    rng = np.random.default_rng(7)
    x = np.sort(rng.uniform(0.5, 30.0, 400))
    y = rng.uniform(-5.0, 1e5, x.size)
    return Pattern(x, y, unit, 0.1173, sigma=rng.uniform(0.1, 300.0, x.size), metadata={})


@pytest.mark.parametrize(
    ("fmt", "unit"),
    [("xye", "q_A^-1"), ("chi", "2th_deg"), ("h5", "q_A^-1"), ("gr", "r_A"), ("iq", "q_A^-1")],
)
def test_round_trip_every_writable_format(tmp_path, capsys, fmt, unit):
    src = write_pattern(_pattern(unit), tmp_path / "in.xye")
    rc = _main(["convert", str(src), "-o", str(tmp_path / "out"), "--format", fmt, "--json"])
    assert rc in (0, None)
    rec = json.loads(capsys.readouterr().out)["written"][0]
    assert rec["x_unit"] == unit and rec["n_points"] == 400 and rec["wavelength_A"] == 0.1173
    back, orig = read_pattern(rec["path"]), _pattern(unit)
    # 11 significant digits in text: relative round-off ≤ 5e-11, well inside 1e-9
    for a, b in ((back.x, orig.x), (back.y, orig.y), (back.sigma, orig.sigma)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=0)
    if fmt != "gr":  # G(r) carries no wavelength
        assert back.wavelength_A == pytest.approx(orig.wavelength_A, rel=1e-9)


def test_ranges_named_stem_rN_and_xy(tmp_path, capsys):
    rc = _main(
        ["convert", str(DATA / "format1.raw"), "-o", str(tmp_path), "--format", "xy", "--json"]
    )
    assert rc in (0, None)
    out = json.loads(capsys.readouterr().out)["written"]
    assert [Path(w["path"]).name for w in out] == [f"format1_r{k}.xy" for k in (1, 2, 3)]
    assert {w["anode"] for w in out} == {"Cu"}
    back = read_pattern(out[1]["path"])
    assert back.unit == "2th_deg" and back.wavelength_A == 1.5406 and back.x.size == 26


def test_refuses_mismatched_format_and_existing_output(tmp_path, capsys):
    src = write_pattern(_pattern("q_A^-1"), tmp_path / "in.xye")
    assert _main(["convert", str(src), "-o", str(tmp_path / "o"), "--format", "gr"]) == 2
    assert "needs G(r)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert _main(["convert", str(src), "-o", str(tmp_path)]) == 2  # in.xye exists
    assert "exists" in capsys.readouterr().err
