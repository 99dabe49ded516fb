"""Benchmark: real-space G(r) evaluation and a full small-box fit, against PDFfit2.

Set-up (not timed): for a cubic (rocksalt NaTiO2, 12 atoms with Na/Ti sharing
4a), a tetragonal (anatase TiO2, 12 atoms) and a hexagonal cell (wurtzite CdSe,
4 atoms, anisotropic Uij), a model on r = 1–50 Å, step 0.01 Å, with Q_damp,
δ2 and U_iso; xrdpdf's neighbour list is built and numba compiled by one
warm-up call; PDFfit2 gets the same diffpy Structure and parameters.

Timed, in-process: one G(r) evaluation after a parameter change (xrdpdf:
:func:`xrdpdf.stages.pdffit._phase.total_gr` with the cached neighbour list; PDFfit2:
``PdfFit.calc()``), median of ``--repeat`` calls; and one full
:func:`xrdpdf.stages.pdffit.fit` (scale, lattice, δ2, U_iso, spdiameter from a 1 %/20 %
off start) of the model's own G(r) plus noise on 1.5–30 Å.

Usage::

    python benchmarks/pdffit.py [--repeat R] [--json] [--smoke]

``--json`` keys per cell: ``ours_s_per_eval``, ``pdffit2_s_per_eval``, ``ratio``,
``ours_s_per_fit``; the top level repeats them for the cubic 12-atom cell.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "cubic": ('"NaTiO2"', "{ Na = 0.012, Ti = 0.007, O = 0.009 }"),
    "tetragonal": ('"anatase"', "{ Ti = 0.006, O = 0.009 }"),
    "hexagonal": (f'"{ROOT / "tests/data/pdffit/CdSe_wurtzite.cif"}"', "{}"),
}


def _model_text(structure: str, uiso: str, rmin: float, rmax: float, extra: str = "") -> str:
    return (
        f"[data]\nqdamp = 0.04\nrmin = {rmin}\nrmax = {rmax}\nrstep = 0.01\n[[phase]]\n"
        f"structure = {structure}\ndelta2 = 2.0\nuiso = {uiso}\n{extra}"
    )


def _ours_eval(model, repeat: int) -> float:
    from xrdpdf.stages.pdffit._phase import PhaseState, start_values, total_gr

    states = [PhaseState(ph, model) for ph in model.phases]
    r = model.rmin_A + 0.01 * np.arange(int(round((model.rmax_A - model.rmin_A) / 0.01)) + 1)
    values = [start_values(ph, model) for ph in model.phases]
    total_gr(states, values, model, r)  # warm-up: neighbour list, numba
    times = []
    for k in range(repeat):
        values[0]["delta2"] = 2.0 + 0.01 * k  # a changed parameter each call
        states[0].cell = tuple(v * (1 + 1e-4 * k) if i < 3 else v
                               for i, v in enumerate(states[0].cell))  # fmt: skip
        t = time.perf_counter()
        total_gr(states, values, model, r)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _pdffit2(model, repeat: int) -> float | None:
    try:
        import diffpy.pdffit2 as pdffit2
    except ImportError:
        return None
    pdffit2.redirect_stdout(open(os.devnull, "w"))  # noqa: SIM115
    from diffpy.pdffit2 import PdfFit
    from diffpy.structure import Atom, Lattice, Structure

    from xrdpdf.stages.pdffit._phase import PhaseState

    ph = model.phases[0]
    cr = PhaseState(ph, model).crystal
    atoms = []
    for k, el in enumerate(cr.elements):
        a = Atom(el, cr.xyz[k], occupancy=cr.occupancy[k])
        a.anisotropy = True
        a.U = cr.u_cif[k]
        if el in ph.uiso_A2:
            a.anisotropy = False
            a.Uisoequiv = ph.uiso_A2[el]
        atoms.append(a)
    stru = Structure(atoms, lattice=Lattice(*cr.cell))
    pf = PdfFit()
    pf.add_structure(stru)
    npts = int(round((model.rmax_A - model.rmin_A) / 0.01)) + 1
    pf.alloc("X", 0.0, model.qdamp_invA, model.rmin_A, model.rmax_A, npts)
    times = []
    for k in range(repeat):
        pf.setvar("delta2", 2.0 + 0.01 * k)
        t = time.perf_counter()
        pf.calc()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _ours_fit(structure: str, uiso: str) -> tuple[float, int, float]:
    from xrdpdf._core.pattern import Pattern
    from xrdpdf.stages.pdffit import calculate, fit
    from xrdpdf.stages.pdffit._model import parse_model

    truth = parse_model(_model_text(structure, uiso, 1.5, 30.0, "spdiameter = 30.0\n"))
    clean = calculate(truth)
    rng = np.random.default_rng(1)
    data = Pattern(clean.x, clean.y + rng.normal(0, 0.01, clean.x.size), "r_A", None,
                   sigma=np.full(clean.x.size, 0.01))  # fmt: skip
    from xrdpdf.stages.pdffit._phase import PhaseState

    cell = PhaseState(truth.phases[0], truth).cell
    start_cell = [v * 1.01 if i < 3 else v for i, v in enumerate(cell)]
    vary = '["scale", "lattice", "delta2", "uiso", "spdiameter"]'
    start = parse_model(_model_text(structure, uiso, 1.5, 30.0,
                                    f"scale = 0.8\nspdiameter = 36.0\nlattice = {start_cell}\n"
                                    f"vary = {vary}\n"))  # fmt: skip
    fit(data, start, max_nfev=5)  # warm-up
    t = time.perf_counter()
    res = fit(data, start)
    return time.perf_counter() - t, res.nfev, res.rw


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    from xrdpdf.stages.pdffit._model import parse_model

    repeat = 1 if args.smoke else max(args.repeat, 1)
    out: dict = {"benchmark": "pdffit", "host": platform.node(), "cpu": platform.processor(),
                 "ncpu": os.cpu_count(), "rmax_A": 50.0, "rstep_A": 0.01, "cells": {}}  # fmt: skip
    for name, (structure, uiso) in CASES.items():
        model = parse_model(_model_text(structure, uiso, 1.0, 50.0))
        ours = _ours_eval(model, repeat)
        theirs = _pdffit2(model, 1 if args.smoke else min(repeat, 3))
        fit_s, nfev, rw = _ours_fit(structure, uiso)
        row = {"ours_s_per_eval": ours, "pdffit2_s_per_eval": theirs,
               "ratio": None if theirs is None else theirs / ours,
               "ours_s_per_fit": fit_s, "fit_nfev": nfev, "fit_rw": rw}  # fmt: skip
        out["cells"][name] = row
        if not args.json:
            peer = "PDFfit2 absent" if theirs is None else (
                f"PDFfit2 {theirs * 1e3:.0f} ms, ratio {theirs / ours:.0f}")
            print(f"{name:10s} G(r) {ours * 1e3:6.2f} ms/eval ({peer}); fit {fit_s:.2f} s "
                  f"({nfev} evals, Rw {rw:.4f})")  # fmt: skip
    out.update({k: out["cells"]["cubic"][k]
                for k in ("ours_s_per_eval", "pdffit2_s_per_eval", "ratio", "ours_s_per_fit")})
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
