"""Benchmark: single-phase Rietveld-lite refinement of a 4000-point I(Q) pattern (issue 5).

Set-up (not timed): a rocksalt NaTiO2 pattern, 3 nm grains, a = 4.18 Å, on 4000
points of Q = 1.5–14 Å⁻¹ with a background, a zero offset and Poisson noise; one
warm-up refinement (imports, numba compilation of the profile kernel).

Timed: :func:`xrdpdf.stages.refinement.refine` from a start 0.6 % off in a (the built-in
4.20464 Å), all four stages, default settings.  Printed: median and best wall time
of ``--repeat`` runs, function evaluations, the refined a and its error.  Goal:
under 0.5 s on the development machine.

Usage::

    python benchmarks/refine.py [--repeat R] [--json] [--smoke]

``--smoke`` runs one quick refinement (one repeat, no warm-up statistics).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np


def setup(npts: int = 4000, seed: int = 0):
    from xrdpdf import physics as phases
    from xrdpdf._core.pattern import Pattern

    ph = phases.get_phase("NaTiO2")
    q = np.linspace(1.5, 14.0, npts)
    y = phases.powder_pattern(ph.with_cell(a=4.18), q, size_A=30.0, fwhm_inst=0.02, zero=0.005)
    y = y / y.max() * 5e4 + 300.0 + 20.0 * q
    yn = np.random.default_rng(seed).poisson(y).astype(float)
    return Pattern(q, yn, "q_A^-1", 0.1173, np.sqrt(np.maximum(yn, 1.0))), ph


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)

    from xrdpdf.stages.refinement import refine

    pat, ph = setup()
    repeat = 1 if args.smoke else max(args.repeat, 1)
    t0 = time.perf_counter()
    res = refine(pat, ph)  # warm-up: imports, numba compilation
    warm = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        res = refine(pat, ph)
        times.append(time.perf_counter() - t)
    nfev = sum(s["nfev"] for s in res.stages)
    out = {
        "benchmark": "refine single phase, 4000 points",
        "median_s": statistics.median(times),
        "best_s": min(times),
        "repeat": repeat,
        "first_call_s": warm,
        "nfev": nfev,
        "a_A": res.phases[0].a_A,
        "a_error_A": res.phases[0].a_A - 4.18,
        "converged": res.converged,
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "ncpu": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"refine, 4000 points, 1 phase: median {out['median_s']:.3f} s, best "
            f"{out['best_s']:.3f} s over {repeat} runs ({nfev} evaluations; first call "
            f"{warm:.2f} s); a = {out['a_A']:.5f} Å (error {out['a_error_A']:+.1e}); "
            f"load {out['loadavg'][0]:.1f} on {out['ncpu']} CPUs"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
