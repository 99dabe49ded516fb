"""Fit2D ``.chi`` axis lines: the x unit is read from the header, not asked for.

Fit2D writes four header lines (title, axis label, ``Intensity``, point count); the
axis label names the unit ("Q (Inverse Nanometres)", "2-Theta Angle (Degrees)", ...).
Truth: the x values written into each file, converted by 1 nm⁻¹ = 0.1 Å⁻¹.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xrdpdf import InputError
from xrdpdf.io import read_pattern

DATA = Path(__file__).parent / "data"
X = np.linspace(1.0, 40.0, 30)


def _chi(tmp_path: Path, label: str) -> Path:
    body = "\n".join(f" {x:.7E}  {2 * x + 1:.7E}" for x in X)
    f = tmp_path / "scan.chi"
    f.write_text(f"/data/run/scan_0001.tif\n{label}\nIntensity\n{X.size:10d}\n{body}\n")
    return f


@pytest.mark.parametrize(
    ("label", "unit", "factor"),
    [
        ("Q (Inverse Nanometres)", "q_A^-1", 0.1),
        ("Q (Inverse Nanometers)", "q_A^-1", 0.1),
        ("Q (nm^-1)", "q_A^-1", 0.1),
        ("Q (Inverse Angstroms)", "q_A^-1", 1.0),
        ("Q (Angstrom^-1)", "q_A^-1", 1.0),
        ("Q (1/Å)", "q_A^-1", 1.0),
        ("2-Theta Angle (Degrees)", "2th_deg", 1.0),
    ],
)
def test_fit2d_axis_label_sets_unit(tmp_path, label, unit, factor):
    p = read_pattern(_chi(tmp_path, label), wavelength_A=0.1173)
    assert p.unit == unit
    # 8 significant digits written: relative round-off ≤ 5e-8
    np.testing.assert_allclose(p.x, X * factor, rtol=1e-7)
    np.testing.assert_allclose(p.y, 2 * X + 1, rtol=1e-7)


@pytest.mark.parametrize(
    ("label", "match"),
    [
        ("2-Theta Angle (Radians)", "radians"),
        ("D-spacing (Angstroms)", "not Q or 2θ"),
        ("Radial Distance (mm)", "not Q or 2θ"),
    ],
)
def test_fit2d_axis_that_is_not_q_or_tth_is_refused(tmp_path, label, match):
    with pytest.raises(InputError, match=match):
        read_pattern(_chi(tmp_path, label), wavelength_A=0.1173)


def test_header_unit_and_contradicting_xtype(tmp_path):
    f = _chi(tmp_path, "Q (Inverse Nanometres)")
    assert read_pattern(f, xtype="qnm").x[0] == pytest.approx(0.1)
    with pytest.raises(InputError, match="header says"):
        read_pattern(f, xtype="q")


def test_real_xpd_fit2d_chi_in_nanometres():
    """The TiO2 film file (Fit2D Q-space scan) reads without --xtype, in Å⁻¹."""
    f = DATA / "tio2_film_xpd" / "tio2-ito-glass-250.chi"
    auto = read_pattern(f)
    given = read_pattern(f, xtype="qnm")
    assert auto.unit == "q_A^-1"
    np.testing.assert_array_equal(auto.x, given.x)
    # the header's first point is 1.0816784E-01 nm⁻¹
    assert auto.x[0] == pytest.approx(0.010816784, rel=1e-9)
