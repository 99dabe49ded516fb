"""Tests of xrdpdf.stages.size (Scherrer, Williamson–Hall) on simulated sphere peaks.

Truth: each simulated peak is the exact line of spheres of diameter D (the cosine
transform of the common-volume function, Stokes & Wilson 1942) convolved with a
Gaussian instrument and a Lorentzian microstrain of FWHM 2εQ, computed in Fourier
space here (``_sphere_line``), so D and ε are known; the code under test fits
pseudo-Voigts and deconvolves by TCH.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sphere_lines import sphere_line

from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf.stages.size import deconvolve_width, scherrer

A = 4.18
HKL = [(1, 1, 1), (2, 0, 0), (2, 2, 0), (3, 1, 1), (2, 2, 2), (4, 0, 0)]
AREAS = [0.55, 1.0, 0.75, 0.25, 0.2, 0.12]
INST = 0.03  # Gaussian instrument FWHM, Å⁻¹


def _sim(diameter_A, strain=0.0, inst=INST, seed=0, qmax=7.0):
    q = np.linspace(1.8, qmax, 3000)
    y = 200.0 + 10.0 * q
    qs = [2 * np.pi * np.sqrt(h * h + kk * kk + l * l) / A for h, kk, l in HKL]
    for q0, ar in zip(qs, AREAS, strict=True):
        sig = inst / (2 * np.sqrt(2 * np.log(2)))
        y += 4e3 * ar * sphere_line(q - q0, diameter_A, sig, strain * q0)
    rng = np.random.default_rng(seed)
    yn = rng.poisson(y).astype(float)
    return Pattern(q, yn, "q_A^-1", 0.1173, np.sqrt(yn)), np.array(qs)


@pytest.mark.parametrize("size", [30.0, 60.0, 100.0])
def test_scherrer_sizes(size):
    pat, qs = _sim(size)
    res = scherrer(pat, peaks=list(qs), inst_fwhm_invA=INST)
    # acceptance: sphere diameter within 10 % for 3–10 nm (pV fit of the sphere line: ~2 %)
    assert abs(res.diameter_A / size - 1) < 0.10, (res.diameter_A, [p.size_A for p in res.peaks])
    assert res.size_esd_A > 0 and "V^(1/3)" in res.size_definition
    # the Scherrer length for K = 0.9 of spheres is 0.9·D/1.10665 (exact profile's FWHM)
    assert res.size_A == pytest.approx(0.9 * res.diameter_A / 1.10665, rel=1e-12)
    assert not res.size_is_lower_bound
    assert len(res.peaks) == len(qs)


def test_rocksalt_in_amorphous_matrix():
    # The demo's cycle-20 electrode as a 1-D pattern: RS NaTiO2 Bragg peaks (V^1/3 = 30 Å,
    # K = 0.9) on the Debye scattering of an amorphous TiO2 matrix, over 0.3–28 Å⁻¹.  The
    # half-height start widths must use a local baseline: a far-away one once gave a 0.4 Å
    # "size" for the 222 peak.
    from xrdpdf.simulate import demo

    s = next(x for x in demo.demo_samples() if x.name == "c20_sod")
    q = np.linspace(0.3, 28.0, 3000)
    y = np.random.default_rng(0).poisson((demo.sample_intensity(s, q) + 5) * 2e3).astype(float)
    pat = Pattern(q, y, "q_A^-1", 0.1173, np.sqrt(y))
    res = scherrer(pat, peaks=[4.23, 5.98, 7.33], inst_fwhm_invA=demo.FWHM_INST_INVA)
    assert all(10.0 < p.size_A < 60.0 for p in res.peaks), [p.size_A for p in res.peaks]
    # 10 % as the acceptance for 3–10 nm grains
    assert abs(res.size_A / s.crystal_size_A - 1) < 0.10, res.size_A


def test_auto_peaks():
    pat, qs = _sim(60.0)
    res = scherrer(pat, inst_fwhm_invA=INST)
    found = np.array([p.q_invA for p in res.peaks])
    # every found peak sits on a simulated one (within a tenth of its width)
    assert all(np.min(np.abs(qs - f)) < 0.01 for f in found)
    assert abs(res.diameter_A / 60.0 - 1) < 0.10


def test_instrument_deconvolution_matters():
    # negative control: ignoring a 0.03 Å⁻¹ instrument at D = 100 Å biases the size low,
    # and the result says it is a lower bound
    pat, qs = _sim(100.0)
    with_inst = scherrer(pat, peaks=list(qs), inst_fwhm_invA=INST)
    without = scherrer(pat, peaks=list(qs))
    assert abs(with_inst.diameter_A / 100 - 1) < 0.10
    # (0.03 Å⁻¹ in quadrature with the 0.053 Å⁻¹ Gaussian part of the sphere line: +10 %)
    assert without.diameter_A < 0.95 * 100
    assert without.size_is_lower_bound and without.to_dict()["size_is_lower_bound"] is True


def test_deconvolve_rule():
    # pure Gaussians subtract in quadrature, pure Lorentzians linearly
    assert abs(deconvolve_width(0.05, 0.0, 0.03, 0.0) - 0.04) < 1e-9
    assert abs(deconvolve_width(0.05, 1.0, 0.03, 1.0) - 0.02) < 1e-9
    assert np.isnan(deconvolve_width(0.02, 0.0, 0.03, 0.0))


def test_k_changes_definition():
    pat, qs = _sim(60.0)
    res = scherrer(pat, peaks=list(qs), k_scherrer=1.107, inst_fwhm_invA=INST)
    assert res.size_definition.startswith("D ")
    assert abs(res.size_A / 60.0 - 1) < 0.10


def test_williamson_hall():
    pat, qs = _sim(150.0, strain=2e-3, qmax=9.0)
    res = scherrer(pat, peaks=list(qs), inst_fwhm_invA=INST)
    # six peaks over Q 2.6–6: intercept/slope to ~10–20 % at these counts
    assert abs(res.wh_strain / 2e-3 - 1) < 0.25, res.wh_strain
    assert abs(res.wh_size_A / (0.9 * 150 / 1.10665) - 1) < 0.25, res.wh_size_A
    # negative control: the Scherrer mean ignores strain (2εQ = 0.01–0.024 Å⁻¹ on a
    # 0.043 Å⁻¹ wide sphere line) and comes out ~15 % smaller
    assert res.diameter_A < 0.9 * 150


def test_no_peaks():
    rng = np.random.default_rng(2)
    q = np.linspace(1, 8, 1000)
    y = rng.poisson(500.0, q.size).astype(float)
    with pytest.raises(InputError, match="no peaks"):
        scherrer(Pattern(q, y, "q_A^-1", None, np.sqrt(y)))
    with pytest.raises(InputError, match="outside"):
        scherrer(Pattern(q, y, "q_A^-1", None, np.sqrt(y)), peaks=[20.0])


def test_cli_size(tmp_path, capsys):
    from xrdpdf.cli import _main
    from xrdpdf.io import write_pattern

    pat, qs = _sim(60.0)
    f = write_pattern(pat, tmp_path / "p.xye")
    arg = ",".join(f"{v:.4f}" for v in qs)
    rc = _main(["size", str(f), "--peaks", arg, "--inst-fwhm", str(INST), "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and abs(d["diameter_A"] / 60 - 1) < 0.1
    assert "size_esd_A" in d and len(d["peaks"]) == 6
    rc = _main(["size", str(tmp_path / "none.xye")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("xrdpdf: error:") and len(err.strip().splitlines()) == 1
    exe = Path(sys.executable).parent / "xrdpdf"
    out = subprocess.run(
        [str(exe), "size", str(f), "--inst-fwhm", str(INST), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert abs(json.loads(out.stdout)["diameter_A"] / 60 - 1) < 0.1


def test_cli_size_refuses_a_doublet(tmp_path, capsys):
    # a Kα1/Kα2 doublet fitted as one peak would give a size too small, silently
    from xrdpdf.cli import _main

    f = tmp_path / "lab.xy"
    x = np.linspace(20.0, 80.0, 600)
    np.savetxt(f, np.column_stack([x, 100 + np.exp(-((x - 40) ** 2))]))
    assert _main(["size", str(f), "--cuka"]) == 2
    assert "doublet" in capsys.readouterr().err
