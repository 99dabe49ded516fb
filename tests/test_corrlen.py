"""Tests of xrdpdf.corrlen: closed-form envelopes, Debye spheres, the corrlen command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xrdpdf import ConvergenceError, InputError, Pattern
from xrdpdf.cli import _main
from xrdpdf.corrlen import correlation_length, noise_length, sphere_envelope
from xrdpdf.debye import debye_iq, sphere_cluster
from xrdpdf.io import write_pattern
from xrdpdf.pdf import PdfConfig, transform
from xrdpdf.phases import get_phase

XRDPDF = Path(sys.executable).parent / "xrdpdf"


def _bulk(r, seed=3):
    """A flat-envelope 'bulk' G(r): 200 random sinusoids (RMS ≈ 1)."""
    rng = np.random.default_rng(seed)
    qj = rng.uniform(2, 20, 200)
    aj = rng.normal(0, 1, 200)
    ph = rng.uniform(0, 2 * np.pi, 200)
    return np.sin(np.outer(r, qj) + ph) @ aj / 10.0


def test_sphere_envelope_closed_form():
    d = 20.0
    r = np.array([0.0, 10.0, 20.0, 25.0])
    np.testing.assert_allclose(sphere_envelope(r, d), [1.0, 1 - 0.75 + 0.0625, 0.0, 0.0])


@pytest.mark.parametrize("d", [10.0, 20.0, 35.0, 60.0])
def test_recovers_diameter_of_enveloped_bulk(d):
    r = np.arange(0.01, 80, 0.02)
    res = correlation_length(Pattern(r, sphere_envelope(r, d) * _bulk(r), "r_A"))
    # window scatter of a finite random bulk: measured |error| <= 3.5 %; 3 esd or 6 %
    assert abs(res.xi_A - d) < max(3 * res.xi_esd_A, 0.06 * d)
    assert 0 < res.xi_esd_A < 0.1 * d


def test_noise_length_and_sigma():
    rng = np.random.default_rng(11)
    r = np.arange(0.01, 80, 0.02)
    d, sig = 20.0, 0.05
    bulk = _bulk(r)
    g = sphere_envelope(r, d) * bulk + rng.normal(0, sig, r.size)
    p = Pattern(r, g, "r_A", sigma=np.full(r.size, sig))
    rn, sn = noise_length(p)
    assert sn == pytest.approx(sig)
    # truth: the ±0.5 Å RMS of γ0·bulk equals 3σ where γ0·rms(bulk) ≈ 3σ
    target = np.sqrt(9 * sig**2 - sig**2) / np.sqrt(np.mean(bulk**2))
    rr = np.linspace(0, d, 20001)
    r_true = rr[np.argmin(np.abs(sphere_envelope(rr, d) - target))]
    assert abs(rn - r_true) < 2.0  # window scatter of the random bulk
    res = correlation_length(p)
    assert abs(res.xi_A - d) < max(3 * res.xi_esd_A, 0.06 * d)
    # negative control: pure noise has no correlation length
    with pytest.raises(ConvergenceError):
        correlation_length(Pattern(r, rng.normal(0, 1, r.size), "r_A"))


def test_qdamp_is_divided_out():
    r = np.arange(0.01, 80, 0.02)
    qd = 0.04
    g = sphere_envelope(r, 40.0) * np.exp(-0.5 * (qd * r) ** 2) * _bulk(r)
    plain = correlation_length(Pattern(r, g, "r_A"))
    damped = correlation_length(Pattern(r, g, "r_A"), qdamp_invA=qd)
    assert abs(damped.xi_A - 40.0) < 0.06 * 40.0
    assert plain.xi_A < damped.xi_A  # ignoring the damping underestimates D
    assert damped.method.endswith("qdamp")


@pytest.fixture(scope="module")
def debye_grs():
    """G(r) of Debye-equation rocksalt NaTiO2 spheres through the PDF transform."""
    ph = get_phase("NaTiO2")
    q = np.arange(1.0, 25.0 + 1e-9, 0.02)
    out = {}
    for d in (10.0, 16.0, 27.0, 50.0):
        c = sphere_cluster(ph, d, seed=1)
        comp = " ".join(f"{k}{v}" for k, v in c.composition.items())
        iq = debye_iq(c, q, uiso_A2=0.005)
        out[d] = transform(iq, PdfConfig(comp, qmin_invA=1.0, qmax_invA=25.0, rmax_A=80.0,
                                         rstep_A=0.02)).gr
    return out


def test_debye_spheres_sizes_and_order(debye_grs):
    """Acceptance: D = 10, 16, 27, 50 Å within 15 % and in the right order."""
    xi = []
    for d, gr in debye_grs.items():
        res = correlation_length(gr)
        # measured −3…+10 %; the acceptance band is 15 %
        assert abs(res.xi_A / d - 1) < 0.15, (d, res.xi_A)
        xi.append(res.xi_A)
    assert xi == sorted(xi)


def test_bad_inputs():
    r = np.arange(0.01, 10, 0.02)
    with pytest.raises(InputError):
        correlation_length(Pattern(r, np.sin(r), "q_A^-1"))
    with pytest.raises(InputError):
        correlation_length(Pattern(r, np.sin(r), "r_A"), rmin_A=5, rmax_A=4)
    with pytest.raises(InputError):
        correlation_length(Pattern(r, np.sin(r), "r_A"), rmin_A=3, rmax_A=8, window_A=2)


def test_cli_corrlen(tmp_path, capsys, debye_grs):
    path = write_pattern(debye_grs[27.0], tmp_path / "s27.gr")
    assert _main(["corrlen", str(path), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert {"xi_A", "xi_esd_A", "r_noise_A", "method"} <= set(js)
    assert abs(js["xi_A"] / 27 - 1) < 0.15
    assert _main(["corrlen", str(tmp_path / "missing.gr")]) == 2
    assert capsys.readouterr().err.startswith("xrdpdf: error:")
    proc = subprocess.run([str(XRDPDF), "corrlen", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "xi_A" in proc.stdout
