"""The vectorised table formatter of the text writers equals per-value formatting."""

from __future__ import annotations

import numpy as np
import pytest

from xrdpdf.io._write import format_table


@pytest.mark.parametrize("spec", [" .10e", ".11g"])
def test_format_table_equals_per_value_format(spec):
    rng = np.random.default_rng(3)
    table = rng.normal(0.0, 1.0, (500, 3)) * 10.0 ** rng.integers(-30, 30, (500, 3))
    table[0] = [0.0, -0.0, 1.0]
    table[1] = [np.nan, np.inf, -np.inf]
    table[2] = [5e-324, 1.7976931348623157e308, -1e-5]
    expected = "\n".join(" ".join(format(v, spec) for v in row) for row in table)
    assert format_table(table, spec) == expected


def test_format_table_empty_and_single_column():
    assert format_table(np.zeros((0, 3))) == ""
    assert format_table(np.array([[1.5], [2.0]]), ".11g") == "1.5\n2"
