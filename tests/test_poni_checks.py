"""PONI plausibility: values pyFAI accepts silently but that give wrong Q."""

from __future__ import annotations

from pathlib import Path

import pytest

from xrdpdf._core.errors import InputError, InputWarning
from xrdpdf.cli import _main
from xrdpdf.stages.integrate import load_poni

GOOD = {
    "poni_version": "2.1",
    "Detector": "Perkin",
    "Detector_config": '{"orientation": 3}',
    "Distance": "0.35",
    "Poni1": "0.2050",
    "Poni2": "0.2046",
    "Rot1": "0.0",
    "Rot2": "0.0",
    "Rot3": "0.0",
    "Wavelength": "1.173e-11",
}


def _poni(tmp_path: Path, drop: tuple[str, ...] = (), extra: str = "", **values: str) -> Path:
    keys = {**GOOD, **values}
    text = "".join(f"{k}: {v}\n" for k, v in keys.items() if k not in drop) + extra
    path = tmp_path / "geom.poni"
    path.write_text(text)
    return path


def test_good_poni_loads(tmp_path):
    ai = load_poni(_poni(tmp_path))
    assert ai.dist == pytest.approx(0.35)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"Wavelength": "0.1173"}, "looks like Å"),  # Å typed where metres are meant
        ({"Wavelength": "1.173e-14"}, "outside 0.01–5 Å"),
        ({"Distance": "350"}, "looks like mm"),
        ({"Distance": "1e-4"}, "outside 1 mm–20 m"),
        ({"Rot1": "5"}, "beyond ±π/2"),  # degrees typed where radians are meant
        ({"Poni1": "205", "Poni2": "204.6"}, "ten detector sizes"),  # mm for metres
        ({"Detector_config": "{orientation: 3"}, "Detector_config is not valid JSON"),
    ],
)
def test_implausible_values_refused(tmp_path, values, fragment):
    with pytest.raises(InputError, match=fragment):
        load_poni(_poni(tmp_path, **values))


def test_missing_distance_refused(tmp_path):
    with pytest.raises(InputError, match="no 'Distance' line"):
        load_poni(_poni(tmp_path, drop=("Distance",)))


def test_duplicate_key_refused(tmp_path):
    with pytest.raises(InputError, match=r"'Distance' appears twice \(lines 4 and 11\)"):
        load_poni(_poni(tmp_path, extra="Distance: 0.5\n"))


def test_missing_rotation_warns(tmp_path):
    with pytest.warns(InputWarning, match="Rot3"):
        load_poni(_poni(tmp_path, drop=("Rot3",)))


def test_beam_outside_detector_warns(tmp_path):
    # 0.5 m is off a 0.41 m panel but plausible for a detector set at high angle.
    with pytest.warns(InputWarning, match="outside the detector"):
        load_poni(_poni(tmp_path, Poni1="0.5"))


def test_cli_one_line_exit_2_and_no_pyfai_traceback(tmp_path, capsys):
    poni = _poni(tmp_path, Detector_config="{not json")
    img = tmp_path / "f.npy"
    img.write_bytes(b"")
    rc = _main(["integrate", str(img), "--poni", str(poni), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("xrdpdf: error: ")
    assert "Detector_config" in err
    assert not (tmp_path / "out").exists()
