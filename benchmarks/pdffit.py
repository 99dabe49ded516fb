"""Benchmark: real-space G(r) evaluation and a full small-box fit, against PDFfit2.

Set-up (not timed): for a cubic (rocksalt NaTiO2, 12 atoms with Na/Ti sharing
4a), a tetragonal (anatase TiO2, 12 atoms) and a hexagonal cell (wurtzite CdSe,
4 atoms, anisotropic Uij), a model on r = 1–50 Å, step 0.01 Å, with Q_damp,
δ2 and U_iso; xrdpdf's neighbour list is built and numba compiled by one
warm-up call; PDFfit2 gets the same diffpy Structure and parameters.

Timed in-process, alternating the two programs so that a change of the load
from other processes hits both:

* one G(r) evaluation after a parameter change (xrdpdf:
  ``_phase.total_gr`` with the cached neighbour list; PDFfit2:
  ``PdfFit.calc()``), medians over ``--repeat`` rounds;
* one full fit of the model's own G(r) (isotropic U) plus noise on 1.5–30 Å,
  refining scale, lattice, δ2, U_iso per element and spdiameter from a
  1 %/20 % off start: :func:`xrdpdf.stages.pdffit.fit` (structure loading
  included) against ``PdfFit.refine()`` with the same constraints (structure
  and data loading not included).

Timed as whole processes (``--pairs`` alternating pairs, subprocesses timed from
outside, interpreter start and imports included): ``xrdpdf pdfcalc MODEL -o
OUT.gr`` against a plain PDFfit2 script writing the same G(r), and ``xrdpdf
pdffit DATA.gr MODEL --json`` against a plain PDFfit2 refinement script.

Usage::

    python benchmarks/pdffit.py [--repeat R] [--pairs P] [--json] [--smoke]

``--json`` keys per cell: ``ours_s_per_eval``, ``pdffit2_s_per_eval``, ``ratio``,
``ours_s_per_fit``, ``pdffit2_s_per_fit``, ``fit_ratio`` and ``whole_process``;
the top level repeats the first four for the cubic 12-atom cell.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# structure, U of the evaluation case ({} = the CIF's Uij), U_iso of the fit case
CASES = {
    "cubic": ('"NaTiO2"', "{ Na = 0.012, Ti = 0.007, O = 0.009 }",
              "{ Na = 0.012, Ti = 0.007, O = 0.009 }"),
    "tetragonal": ('"anatase"', "{ Ti = 0.006, O = 0.009 }", "{ Ti = 0.006, O = 0.009 }"),
    "hexagonal": (f'"{ROOT / "tests/data/pdffit/CdSe_wurtzite.cif"}"', "{}",
                  "{ Cd = 0.012, Se = 0.009 }"),
}  # fmt: skip
FIT_VARY = '["scale", "lattice", "delta2", "uiso", "spdiameter"]'


def _model_text(structure: str, uiso: str, rmin: float, rmax: float, extra: str = "") -> str:
    return (
        f"[data]\nqdamp = 0.04\nrmin = {rmin}\nrmax = {rmax}\nrstep = 0.01\n[[phase]]\n"
        f"structure = {structure}\ndelta2 = 2.0\nuiso = {uiso}\n{extra}"
    )


def _import_pdffit2():
    try:
        import diffpy.pdffit2 as pdffit2
    except ImportError:
        return None
    pdffit2.redirect_stdout(open(os.devnull, "w"))  # noqa: SIM115
    return pdffit2.PdfFit


def _structure(model):
    """The diffpy Structure PDFfit2 gets: our full cell, U as our model has it."""
    from diffpy.structure import Atom, Lattice, Structure

    from xrdpdf.stages.pdffit._phase import PhaseState

    ph = model.phases[0]
    st = PhaseState(ph, model)
    cr = st.crystal
    atoms = []
    for k, el in enumerate(cr.elements):
        a = Atom(el, cr.xyz[k], occupancy=cr.occupancy[k])
        a.anisotropy = True
        a.U = cr.u_cif[k]
        if el in st.uiso:
            a.anisotropy = False
            a.Uisoequiv = st.uiso[el]
        atoms.append(a)
    return Structure(atoms, lattice=Lattice(*st.cell))


# ------------------------------------------------------------------ in process: G(r)
def _eval_pair(model, rounds: int, per_round: int = 5) -> tuple[float, float | None]:
    """Seconds per G(r): ours (median of every call) and PDFfit2's, alternating."""
    from xrdpdf.stages.pdffit._phase import PhaseState, start_values, total_gr

    states = [PhaseState(ph, model) for ph in model.phases]
    r = model.rmin_A + 0.01 * np.arange(int(round((model.rmax_A - model.rmin_A) / 0.01)) + 1)
    values = [start_values(ph, model) for ph in model.phases]
    total_gr(states, values, model, r)  # warm-up: neighbour list, numba
    cell0 = states[0].cell
    pf = None
    cls = _import_pdffit2()
    if cls is not None:
        pf = cls()
        pf.add_structure(_structure(model))
        pf.alloc("X", 0.0, model.qdamp_invA, model.rmin_A, model.rmax_A, r.size)
    ours, theirs = [], []
    for k in range(rounds):
        for m in range(per_round):
            values[0]["delta2"] = 2.0 + 0.01 * m  # a changed parameter each call
            states[0].cell = tuple(v * (1 + 1e-4 * m) if i < 3 else v
                                   for i, v in enumerate(cell0))  # fmt: skip
            t = time.perf_counter()
            total_gr(states, values, model, r)
            ours.append(time.perf_counter() - t)
        if pf is not None:
            pf.setvar("delta2", 2.0 + 0.01 * k)
            t = time.perf_counter()
            pf.calc()
            theirs.append(time.perf_counter() - t)
    return statistics.median(ours), (statistics.median(theirs) if theirs else None)


# ------------------------------------------------------------------- in process: fit
def _fit_problem(structure: str, uiso: str):
    """Noisy data of the truth model and the 1 %/20 % off start model."""
    from xrdpdf._core.pattern import Pattern
    from xrdpdf.stages.pdffit import calculate
    from xrdpdf.stages.pdffit._model import parse_model
    from xrdpdf.stages.pdffit._phase import PhaseState

    truth = parse_model(_model_text(structure, uiso, 1.5, 30.0, "spdiameter = 30.0\n"))
    clean = calculate(truth)
    rng = np.random.default_rng(1)
    data = Pattern(clean.x, clean.y + rng.normal(0, 0.01, clean.x.size), "r_A", None,
                   sigma=np.full(clean.x.size, 0.01))  # fmt: skip
    cell = PhaseState(truth.phases[0], truth).cell
    start_cell = [v * 1.01 if i < 3 else v for i, v in enumerate(cell)]
    extra = f"scale = 0.8\nspdiameter = 36.0\nlattice = {start_cell}\nvary = {FIT_VARY}\n"
    start = parse_model(_model_text(structure, uiso, 1.5, 30.0, extra))
    return data, start, extra


def _ours_fit(data, start) -> tuple[float, int, float]:
    from xrdpdf.stages.pdffit import fit

    fit(data, start, max_nfev=5)  # warm-up
    t = time.perf_counter()
    res = fit(data, start)
    return time.perf_counter() - t, res.nfev, res.rw


def _pdffit2_setup(pf, stru, system: str, r, g, dg) -> None:
    """PDFfit2 refinement with the constraints of xrdpdf's ``vary`` list (numpy only)."""
    pf.add_structure(stru)
    pf.read_data_lists("X", 0.0, 0.04, list(r), list(g), list(dg))
    pf.pdfrange(1, float(r[0]), float(r[-1]))
    lat = stru.lattice
    pars = {1: lat.a, 3: 0.8, 4: 2.0, 5: 36.0}
    pf.constrain(pf.lat(1), "@1")
    pf.constrain(pf.lat(2), "@1")
    if system == "cubic":
        pf.constrain(pf.lat(3), "@1")
    else:  # a parameter that no variable uses would make PDFfit2's matrix singular
        pf.constrain(pf.lat(3), "@2")
        pars[2] = lat.c
    for name, p in (("pscale", 3), ("delta2", 4), ("spdiameter", 5)):
        pf.constrain(name, f"@{p}")
    # U_iso per element: every Uij its fixed multiple of U_iso (cell angles fixed)
    gstar = np.linalg.inv(lat.metrics)  # reciprocal metric; isotropic U_cif ∝ G*/a*_i a*_j
    shape = gstar / np.sqrt(np.outer(np.diag(gstar), np.diag(gstar)))
    comps = [(pf.u11, 0, 0), (pf.u22, 1, 1), (pf.u33, 2, 2), (pf.u12, 0, 1), (pf.u13, 0, 2),
             (pf.u23, 1, 2)]  # fmt: skip
    elements = list(dict.fromkeys(a.element for a in stru))
    for k, atom in enumerate(stru):
        p = 10 + elements.index(atom.element)
        pars[p] = atom.Uisoequiv
        for fn, i, j in comps:
            if abs(shape[i, j]) > 1e-12:
                pf.constrain(fn(k + 1), f"{shape[i, j]:.15g}*@{p}")
    for p, v in pars.items():
        pf.setpar(p, v)


def _pdffit2_fit(data, start) -> tuple[float, float] | None:
    cls = _import_pdffit2()
    if cls is None:
        return None
    from xrdpdf.stages.pdffit._phase import PhaseState

    system = PhaseState(start.phases[0], start).system.lower()
    pf = cls()
    _pdffit2_setup(pf, _structure(start), system, data.x, data.y, data.sigma)
    t = time.perf_counter()
    pf.refine()
    return time.perf_counter() - t, float(pf.getrw())


# ------------------------------------------------------------------- whole process
PLAIN_CALC = """\
import sys
import numpy as np
import diffpy.pdffit2 as pdffit2
pdffit2.redirect_stdout(open("/dev/null", "w"))
from diffpy.pdffit2 import PdfFit
pf = PdfFit()
pf.read_struct(sys.argv[1])
pf.alloc("X", 0.0, 0.04, 1.0, 50.0, 4901)
pf.setvar("delta2", 2.0)
pf.calc()
np.savetxt(sys.argv[2], np.c_[pf.getR(), pf.getpdf_fit()])
"""

PLAIN_FIT = """\
import sys
import numpy as np
import diffpy.pdffit2 as pdffit2
pdffit2.redirect_stdout(open("/dev/null", "w"))
from diffpy.pdffit2 import PdfFit
from diffpy.structure import loadStructure
sys.path.insert(0, sys.argv[4])
from pdffit import _pdffit2_setup
r, g, dg = np.loadtxt(sys.argv[2], unpack=True)
pf = PdfFit()
_pdffit2_setup(pf, loadStructure(sys.argv[1]), sys.argv[3], r, g, dg)
pf.refine()
print(pf.getrw())
"""


def _xrdpdf_command() -> list[str]:
    exe = Path(sys.executable).with_name("xrdpdf")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("xrdpdf")
    if found is None:
        raise SystemExit("pdffit.py: error: the xrdpdf command is not installed")
    return [found]


def _timed(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"pdffit.py: error: {cmd[:2]} failed: {proc.stderr.decode()[-400:]}")
    return dt


def _whole_process(name: str, model_text: str, fit_case, pairs: int, tmp: Path) -> dict:
    """Installed ``xrdpdf pdfcalc``/``pdffit`` against plain PDFfit2 scripts, alternating."""
    from xrdpdf.io import write_pattern
    from xrdpdf.stages.pdffit._model import parse_model
    from xrdpdf.stages.pdffit._phase import PhaseState

    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    model = parse_model(model_text)
    (tmp / "calc.toml").write_text(model_text)
    _structure(model).write(str(tmp / "calc.stru"), "pdffit")
    (tmp / "plain_calc.py").write_text(PLAIN_CALC)
    data, start, extra = fit_case
    write_pattern(data, tmp / "data.gr")
    np.savetxt(tmp / "data.dat", np.c_[data.x, data.y, data.sigma])
    structure, _, uiso = CASES[name]
    (tmp / "fit.toml").write_text(_model_text(structure, uiso, 1.5, 30.0, extra))
    _structure(start).write(str(tmp / "fit.stru"), "pdffit")
    (tmp / "plain_fit.py").write_text(PLAIN_FIT)
    system = PhaseState(start.phases[0], start).system.lower()
    xrdpdf = _xrdpdf_command()
    cmds = {
        "calc": (xrdpdf + ["pdfcalc", str(tmp / "calc.toml"), "-o", str(tmp / "o.gr"),
                           "--overwrite"],
                 [sys.executable, str(tmp / "plain_calc.py"), str(tmp / "calc.stru"),
                  str(tmp / "p.gr")]),
        "fit": (xrdpdf + ["pdffit", str(tmp / "data.gr"), str(tmp / "fit.toml"), "--json"],
                [sys.executable, str(tmp / "plain_fit.py"), str(tmp / "fit.stru"),
                 str(tmp / "data.dat"), system, str(ROOT / "benchmarks")]),
    }  # fmt: skip
    out = {}
    for key, (ours_cmd, plain_cmd) in cmds.items():
        ours, plain = [], []
        _timed(ours_cmd, env)  # numba's on-disk cache, file-system caches
        for k in range(pairs):
            order = [(ours, ours_cmd), (plain, plain_cmd)]
            for sink, cmd in order if k % 2 == 0 else order[::-1]:
                sink.append(_timed(cmd, env))
        o, p = statistics.median(ours), statistics.median(plain)
        out[key] = {"ours_s": o, "pdffit2_s": p, "ratio": p / o}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9, help="alternating G(r) rounds")
    ap.add_argument("--pairs", type=int, default=3, help="whole-process pairs (0: skip)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    from xrdpdf.stages.pdffit._model import parse_model

    rounds = 1 if args.smoke else max(args.repeat, 1)
    pairs = 1 if args.smoke else max(args.pairs, 0)
    have_pdffit2 = _import_pdffit2() is not None
    out: dict = {"benchmark": "pdffit", "host": platform.node(), "cpu": platform.processor(),
                 "ncpu": os.cpu_count(), "rmax_A": 50.0, "rstep_A": 0.01, "cells": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmpdir:
        for name, (structure, uiso, fit_uiso) in CASES.items():
            load0 = os.getloadavg()[0]
            text = _model_text(structure, uiso, 1.0, 50.0)
            ours, theirs = _eval_pair(parse_model(text), rounds)
            fit_case = _fit_problem(structure, fit_uiso)
            fit_s, nfev, rw = _ours_fit(*fit_case[:2])
            peer_fit = _pdffit2_fit(*fit_case[:2])
            row = {"ours_s_per_eval": ours, "pdffit2_s_per_eval": theirs,
                   "ratio": None if theirs is None else theirs / ours,
                   "ours_s_per_fit": fit_s, "fit_nfev": nfev, "fit_rw": rw,
                   "pdffit2_s_per_fit": None if peer_fit is None else peer_fit[0],
                   "pdffit2_fit_rw": None if peer_fit is None else peer_fit[1],
                   "fit_ratio": None if peer_fit is None else peer_fit[0] / fit_s}  # fmt: skip
            if have_pdffit2 and pairs:
                tmp = Path(tmpdir) / name
                tmp.mkdir()
                row["whole_process"] = _whole_process(name, text, fit_case, pairs, tmp)
            row["loadavg_1min"] = [load0, os.getloadavg()[0]]
            out["cells"][name] = row
            if not args.json:
                _print_row(name, row)
    out.update(
        {
            k: out["cells"]["cubic"][k]
            for k in ("ours_s_per_eval", "pdffit2_s_per_eval", "ratio", "ours_s_per_fit")
        }
    )
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


def _print_row(name: str, row: dict) -> None:
    ours, theirs = row["ours_s_per_eval"], row["pdffit2_s_per_eval"]
    peer = "PDFfit2 absent" if theirs is None else (
        f"PDFfit2 {theirs * 1e3:.0f} ms, ratio {row['ratio']:.0f}")  # fmt: skip
    fit = f"fit {row['ours_s_per_fit']:.3f} s ({row['fit_nfev']} evals, Rw {row['fit_rw']:.4f})"
    if row["pdffit2_s_per_fit"] is not None:
        fit += (f"; PDFfit2 {row['pdffit2_s_per_fit']:.2f} s (Rw {row['pdffit2_fit_rw']:.4f}),"
                f" ratio {row['fit_ratio']:.1f}")  # fmt: skip
    print(f"{name:10s} G(r) {ours * 1e3:6.3f} ms/eval ({peer}); {fit}")
    for key, w in row.get("whole_process", {}).items():
        print(f"{'':10s} whole process {key}: xrdpdf {w['ours_s']:.2f} s, PDFfit2 script "
              f"{w['pdffit2_s']:.2f} s, ratio {w['ratio']:.2f}")  # fmt: skip
    print(f"{'':10s} load average {row['loadavg_1min'][0]:.2f} → {row['loadavg_1min'][1]:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
