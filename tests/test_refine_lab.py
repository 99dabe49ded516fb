"""Lab Bragg–Brentano refinement on real data with another program's result.

``data/lab_cuka_y2o3``: the Y2O3 standard of the IUCr CPD size–strain round robin
(Balzar et al. 2004, J. Appl. Cryst. 37, 911), Philips Bragg–Brentano, Cu Kα with a small
Kβ.  MAUD's two published refinements of the same file give a = 10.6033 Å (2θ zero
offset only) and 10.6017 Å (angle-dependent correction); the interval between them,
widened by their 1e-4 Å rounding, is the acceptance range.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from xrdpdf.io import read_pattern
from xrdpdf.stages.refinement import refine

DATA = Path(__file__).parent / "data" / "lab_cuka_y2o3"


@pytest.fixture(scope="module")
def y2o3():
    pat = read_pattern(DATA / "CPD-Y2O3.PRN", xtype="tth", wavelength_A=1.5405929)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = refine(
            pat,
            str(DATA / "Y2O3.cif"),
            cuka=True,
            kbeta=True,
            xrange=(15.0, 150.0),  # MAUD tutorial's range
            n_background=8,
            size_start_A=1000.0,
            refine_biso=False,
            lattice_search=0.0,
        )
    return res


def test_y2o3_lattice_with_displacement(y2o3):
    p = y2o3.phases[0]
    assert y2o3.converged, y2o3.message
    assert y2o3.aberrations == ("displacement",)
    assert 10.6012 <= p.a_A <= 10.6038, p.a_A
    d = y2o3.to_dict()
    assert d["displacement_mm"] == y2o3.displacement_mm and d["displacement_esd_mm"] > 0
    # Kβ is modelled: its refined intensity is small and positive (filtered tube)
    kb = y2o3.parameters["kb_ratio"]
    assert kb["vary"] and 0 < kb["value"] < 0.1
    print(f"Y2O3 a = {p.a_A:.5f} ± {p.a_esd_A:.5f} Å, s = {y2o3.displacement_mm:.4f} mm")
