"""The vectorised table formatter of the text writers equals per-value formatting."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf.io import PatternStackWriter, format_table


@pytest.mark.parametrize("spec", [" .10e", ".11g"])
def test_format_table_equals_per_value_format(spec):
    rng = np.random.default_rng(3)
    table = rng.normal(0.0, 1.0, (500, 3)) * 10.0 ** rng.integers(-30, 30, (500, 3))
    table[0] = [0.0, -0.0, 1.0]
    table[1] = [np.nan, np.inf, -np.inf]
    table[2] = [5e-324, 1.7976931348623157e308, -1e-5]
    expected = "\n".join(" ".join(format(v, spec) for v in row) for row in table)
    assert format_table(table, spec) == expected


def _per_value(table, spec=" .10e"):
    return "\n".join(" ".join(format(v, spec) for v in row) for row in table)


@pytest.mark.parametrize("kind", ["log_uniform", "decimal", "near_tie", "powers_of_ten", "counts"])
def test_default_spec_vectorised_equals_python(kind):
    # The default spec is formatted by numpy arithmetic; Python's correctly rounded
    # text is the truth.  The values near a rounding tie (the scaled fraction near
    # one half) are the ones the arithmetic cannot decide: they go to Python.
    from xrdpdf.io._write import _format_e10

    rng = np.random.default_rng(11)
    n = 40000
    sign = rng.choice([-1.0, 1.0], n)
    exp10 = rng.integers(-99, 99, n).astype(float)
    if kind == "log_uniform":
        x = sign * 10.0 ** rng.uniform(-99.0, 99.9, n)
    elif kind == "decimal":  # 11 significant digits exactly, as written by a file
        x = sign * rng.integers(10**10, 10**11, n) * 10.0 ** (exp10 - 10)
    elif kind == "near_tie":  # halfway between two 11-digit decimals
        x = sign * (rng.integers(10**10, 10**11, n) + 0.5) * 10.0 ** (exp10 - 10)
    elif kind == "powers_of_ten":  # where log10 and the carry to 1e11 can miss by one
        p = 10.0 ** np.arange(-99, 100)
        x = np.concatenate([p, np.nextafter(p, 0), np.nextafter(p, np.inf), 9.99999999995 * p])
        x = x[np.abs(x) < 9.99999999995e99]
    else:  # a pattern: counts, zeros and negative background-subtracted values
        x = np.concatenate([rng.poisson(800.0, n) * 1.37, np.zeros(10), -np.zeros(10)])
        x[::7] -= 900.0
    table = x[: x.size // 2 * 2].reshape(-1, 2)
    text = _format_e10(table)
    assert text is not None  # the vectorised path is the one under test
    assert text == _per_value(table)


def test_default_spec_falls_back_where_it_must():
    from xrdpdf.io._write import _format_e10

    for odd in (np.nan, np.inf, 1e100, 9.99999999996e99, 1e-100, 5e-324):
        table = np.array([[1.0, odd], [2.0, 3.0]])
        assert _format_e10(table) is None
        assert format_table(table) == _per_value(table)


def test_format_table_empty_and_single_column():
    assert format_table(np.zeros((0, 3))) == ""
    assert format_table(np.array([[1.5], [2.0]]), ".11g") == "1.5\n2"


def _pattern(x, y, sigma):
    return Pattern(
        x=np.asarray(x),
        y=np.asarray(y),
        unit=units.Q_A,
        wavelength_A=0.1173,
        sigma=np.asarray(sigma),
    )


def test_pattern_stack_rows_equal_the_patterns(tmp_path):
    x = np.linspace(0.5, 20.0, 7)
    path = tmp_path / "run.h5"
    with PatternStackWriter(path, x, units.Q_A, wavelength_A=0.1173, metadata={"npt": 7}) as w:
        w.append(_pattern(x, np.arange(7.0), np.full(7, 0.5)), "a.tif", 0)
        w.append(_pattern(x[1:], np.arange(6.0) + 10, np.full(6, 0.25)), "b.tif", 3)  # bin 0 empty
        assert not path.exists()  # written under a temporary name until closed
    with h5py.File(path) as h5:
        d = h5["entry/data"]
        np.testing.assert_array_equal(d["q"][()], x)
        np.testing.assert_array_equal(d["I"][0], np.arange(7.0))
        assert np.isnan(d["I"][1, 0]) and np.isnan(d["I_errors"][1, 0])
        np.testing.assert_array_equal(d["I"][1, 1:], np.arange(6.0) + 10)
        np.testing.assert_array_equal(d["I_errors"][1, 1:], np.full(6, 0.25))
        assert [s.decode() for s in d["source"][()]] == ["a.tif", "b.tif"]
        assert list(d["frame"][()]) == [0, 3]
        assert h5["entry/wavelength"][()] == 0.1173


def test_pattern_stack_failure_leaves_nothing(tmp_path):
    x = np.linspace(0.5, 20.0, 7)
    path = tmp_path / "run.h5"
    with pytest.raises(InputError, match="radial axis differs"):
        with PatternStackWriter(path, x, units.Q_A) as w:
            w.append(_pattern(x + 0.1, np.ones(7), np.ones(7)), "c.tif", 0)
    assert list(tmp_path.iterdir()) == []
    path.write_text("old")
    with pytest.raises(InputError):
        PatternStackWriter(path, x, units.Q_A)
    assert path.read_text() == "old"
