"""Units and the Pattern container, against closed forms."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xrdpdf import InputError, Pattern
from xrdpdf._core import units


def test_bragg_closed_form_si_111_cu_ka1():
    # NIST SRM 640 Si, a = 5.431020511 Å; d111 = a/√3; Cu Kα1 1.540562 Å → 2θ = 28.442°
    d = 5.431020511 / np.sqrt(3)
    tth = units.d_to_tth(d, 1.540562)
    assert tth == pytest.approx(2 * np.degrees(np.arcsin(1.540562 / (2 * d))), abs=1e-12)
    assert tth == pytest.approx(28.442, abs=0.001)  # the tabulated value is given to 0.001°


def test_q_of_rocksalt_111_at_11idc():
    # NaTiO2 a = 4.20464 Å, Q111 = 2π√3/a = 2.588 Å⁻¹, 2θ = 2.77° at 0.1173 Å
    q = units.d_to_q(4.20464 / np.sqrt(3))
    assert q == pytest.approx(2.588, abs=5e-4)
    assert units.q_to_tth(q, 0.1173) == pytest.approx(2.77, abs=5e-3)


@settings(max_examples=50, deadline=None)
@given(q=st.floats(0.01, 30.0), wl=st.floats(0.05, 2.0))
def test_q_tth_roundtrip(q, wl):
    if q * wl / (4 * np.pi) >= 1.0:
        return
    back = units.tth_to_q(units.q_to_tth(q, wl), wl)
    assert back == pytest.approx(q, rel=1e-10)


def test_q_beyond_limit_and_missing_wavelength():
    with pytest.raises(InputError, match="exceeds"):
        units.q_to_tth(20.0, 1.54)
    with pytest.raises(InputError, match="wavelength"):
        units.q_to_tth(1.0, None)
    with pytest.raises(InputError):
        units.tth_to_q(10.0, -1.0)


def test_energy_wavelength():
    # 11-ID-C: 0.1173 Å ↔ 105.70 keV (E = hc/λ, hc = 12.39842 keV Å)
    assert units.wavelength_A_to_energy_keV(0.1173) == pytest.approx(105.70, abs=0.01)
    assert units.energy_keV_to_wavelength_A(105.70) == pytest.approx(0.1173, abs=1e-5)


def test_pattern_validation():
    x = np.linspace(1, 10, 10)
    with pytest.raises(InputError, match="increasing"):
        Pattern(x[::-1], x, "q_A^-1")
    with pytest.raises(InputError, match="NaN"):
        Pattern(x, np.where(x > 5, np.nan, x), "q_A^-1")
    with pytest.raises(InputError, match="unit"):
        Pattern(x, x, "furlongs")
    with pytest.raises(InputError, match="wavelength"):
        Pattern(x, x, "2th_deg")
    with pytest.raises(InputError, match="length"):
        Pattern(x, x[:-1], "q_A^-1")


def test_pattern_is_immutable_and_converts():
    x = np.linspace(1, 10, 10)
    p = Pattern(x, x**2, "q_A^-1", wavelength_A=0.1173, metadata={"source": "a"})
    x = p.x
    with pytest.raises(ValueError):
        p.y[0] = 3.0
    with pytest.raises(TypeError):
        p.metadata["source"] = "b"  # type: ignore[index]
    t = p.to_tth()
    assert t.unit == "2th_deg"
    np.testing.assert_allclose(t.q, x, rtol=1e-12)
    np.testing.assert_allclose(p.d_A, 2 * np.pi / x)
    # a wavelength change goes through Q: same Q, different 2θ
    cu = p.crop(None, 8.0).to_tth(1.540562)
    x = x[x <= 8.0]
    np.testing.assert_allclose(cu.q, x, rtol=1e-12)
    assert cu.x[0] > t.x[0]
    with pytest.raises(InputError, match="exceeds"):
        p.to_tth(1.540562)  # Q = 10 Å⁻¹ is beyond 4π/λ for Cu Kα
    assert p.crop(2.5, 5.5).x.tolist() == [3.0, 4.0, 5.0]


def test_pattern_defaults_do_not_share_metadata():
    # STYLE.md §2: diffpy's shared mutable default must not happen here
    a = Pattern([1, 2], [1, 2], "q_A^-1")
    b = a.with_metadata(extra=1)
    c = Pattern([1, 2], [1, 2], "q_A^-1")
    assert "extra" in b.metadata and "extra" not in a.metadata and "extra" not in c.metadata
