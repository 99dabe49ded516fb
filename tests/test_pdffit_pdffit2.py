"""G(r) of xrdpdf.stages.pdffit against PDFfit2 1.5.1 itself (the dev extra installs it on 3.11).

Every case builds one diffpy Structure and gives it to both programs, so the
comparison is of the G(r) models only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pdffit2 = pytest.importorskip(
    "diffpy.pdffit2", reason="diffpy.pdffit2 (the oracle) has wheels only up to Python 3.11"
)

from xrdpdf.stages.pdffit import calculate, phase_fractions  # noqa: E402
from xrdpdf.stages.pdffit._model import parse_model  # noqa: E402

DATA = Path(__file__).parent / "data" / "pdffit"
CDSE = str(DATA / "CdSe_wurtzite.cif")
RMIN, RSTEP = 1.0, 0.01


@pytest.fixture(scope="module")
def pdffit_cls():
    pdffit2.redirect_stdout(open(os.devnull, "w"))  # noqa: SIM115 - PDFfit2 keeps the stream
    from diffpy.pdffit2 import PdfFit

    return PdfFit


def _model(phases: list[dict], rmax: float, qmax=0.0, qdamp=0.0, qbroad=0.0):
    lines = [f"[data]\nqmax = {qmax}\nqdamp = {qdamp}\nqbroad = {qbroad}",
             f"rmin = {RMIN}\nrmax = {rmax}\nrstep = {RSTEP}"]  # fmt: skip
    for ph in phases:
        lines.append("[[phase]]")
        for k, v in ph.items():
            if isinstance(v, dict):
                v = "{ " + ", ".join(f"{a} = {b}" for a, b in v.items()) + " }"
            elif isinstance(v, str):
                v = f'"{v}"'
            lines.append(f"{k} = {v}")
    return parse_model("\n".join(lines))


def _structure(phase_model, model):
    """The diffpy Structure both programs see (full cell, our U values)."""
    from diffpy.structure import Atom, Lattice, Structure

    from xrdpdf.stages.pdffit._phase import PhaseState

    st = PhaseState(phase_model, model)
    cr = st.crystal
    atoms = []
    for k, el in enumerate(cr.elements):
        a = Atom(el, cr.xyz[k], occupancy=cr.occupancy[k])
        a.anisotropy = True  # else diffpy writes U11 as U_iso into the PDFfit2 input
        a.U = cr.u_cif[k]
        if el in phase_model.uiso_A2:
            a.anisotropy = False
            a.Uisoequiv = phase_model.uiso_A2[el]
        atoms.append(a)
    return Structure(atoms, lattice=Lattice(*cr.cell))


def _pdffit2_gr(PdfFit, model):
    pf = PdfFit()
    for ph in model.phases:
        pf.add_structure(_structure(ph, model))
    npts = int(round((model.rmax_A - RMIN) / RSTEP)) + 1
    pf.alloc("X", model.qmax_invA, model.qdamp_invA, RMIN, model.rmax_A, npts)
    pf.setvar("qbroad", model.qbroad_invA)
    for k, ph in enumerate(model.phases):
        pf.setphase(k + 1)
        pf.setvar("pscale", ph.scale)
        pf.setvar("delta1", ph.delta1_A)
        pf.setvar("delta2", ph.delta2_A2)
        pf.setvar("spdiameter", ph.spdiameter_A)
    pf.calc()
    return np.array(pf.getR()), np.array(pf.getpdf_fit()), pf


def _rw(g, ref):
    return float(np.sqrt(np.sum((g - ref) ** 2) / np.sum(ref**2)))


STRUCTURES = {
    "Ni": {"structure": "Ni", "uiso": {"Ni": 0.006}},
    "NaTiO2": {"structure": "NaTiO2", "uiso": {"Na": 0.012, "Ti": 0.006, "O": 0.009}},
    "anatase": {"structure": "anatase"},  # the built-in's Biso
    "CdSe": {"structure": CDSE},  # anisotropic Uij from the CIF
}
EFFECTS = {
    "none": ({}, {}),
    "delta1": ({"delta1": 0.8}, {}),
    "delta2": ({"delta2": 2.5}, {}),
    "qbroad": ({}, {"qbroad": 0.03}),
    "qdamp": ({}, {"qdamp": 0.06}),
    "spdiameter": ({"spdiameter": 14.0}, {}),
}


@pytest.mark.parametrize("effect", list(EFFECTS))
@pytest.mark.parametrize("name", list(STRUCTURES))
def test_gr_equals_pdffit2(pdffit_cls, name, effect):
    phase_kw, data_kw = EFFECTS[effect]
    model = _model([{**STRUCTURES[name], **phase_kw}], rmax=16.0, **data_kw)
    r2, g2, _ = _pdffit2_gr(pdffit_cls, model)
    ours = calculate(model)
    np.testing.assert_allclose(ours.x, r2, atol=1e-9)
    # the bound; both sum the same Gaussians, differences are round-off and
    # PDFfit2's nearest-point ±5σ window ends (~1e-6 of the peak)
    assert _rw(ours.y, g2) < 1e-3


def test_two_phase_equals_pdffit2_and_fractions(pdffit_cls):
    model = _model(
        [{**STRUCTURES["NaTiO2"], "scale": 0.7, "delta2": 1.5, "spdiameter": 20.0},
         {**STRUCTURES["anatase"], "scale": 0.3, "delta1": 0.4}],
        rmax=15.0, qdamp=0.04,
    )  # fmt: skip
    r2, g2, pf = _pdffit2_gr(pdffit_cls, model)
    ours = calculate(model)
    assert _rw(ours.y, g2) < 1e-3
    # phase fractions from the scales: PDFfit2's own numbers (esd 0: no refinement)
    from xrdpdf.stages.pdffit._phase import PhaseState

    states = [PhaseState(ph, model) for ph in model.phases]
    mean_f = [s.mean_z() for s in states]
    natoms = [s.occupancy().sum() for s in states]
    mass = [float((s.occupancy() * s.mass).sum() / s.occupancy().sum()) for s in states]
    ours_fr = phase_fractions([0.7, 0.3], [0.0, 0.0], mean_f, natoms, mass)
    theirs = pf.phase_fractions()
    for key in ("atom", "cell", "mass"):
        # atomic masses: PDFfit2's table vs xraydb's differ in the 4th digit
        np.testing.assert_allclose(ours_fr[key][0], theirs[key], rtol=2e-4)


def test_termination_against_pdffit2(pdffit_cls):
    model = _model([{**STRUCTURES["Ni"], "delta2": 1.0}], rmax=46.0, qmax=22.0, qdamp=0.03)
    r2, g2, _ = _pdffit2_gr(pdffit_cls, model)
    ours = calculate(model)
    sel = (r2 >= 3.0) & (r2 <= 45.0)
    # the bound: PDFfit2 filters on [rmin, rmax + 6·2π/qmax] without odd extension
    assert _rw(ours.y[sel], g2[sel]) < 2e-2
    # and the termination matters at this level: the unterminated G(r) is far off
    bare = calculate(_model([{**STRUCTURES["Ni"], "delta2": 1.0}], rmax=46.0, qdamp=0.03))
    assert _rw(bare.y[sel], g2[sel]) > 5 * _rw(ours.y[sel], g2[sel])
