"""Benchmark: a 3000-point I(Q) → 3000-point G(r) PDF transform (issue 6; goal < 5 ms).

Setup (not timed): a 3000-point I(Q) of TiO2 on Q = 0.5–30 Å⁻¹ with σ, the
configuration (qmax 28 Å⁻¹, rpoly 0.9, r = 0.01–30 Å step 0.01 → 3000 points) and
one warm-up call (imports, form-factor coefficients, chirp-z plans).  Timed: the whole
:func:`xrdpdf.stages.pdf.transform` call (normalisation, polynomial, F(Q), G(r) and σ_G(r),
four output Patterns), and separately the bare sine transform of G and σ_G.

Usage::

    python benchmarks/pdf.py [--repeat N] [--json] [--smoke]

Timings on a shared machine are noisy: the best and the median of N calls are printed,
with the host, CPU count and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np


def setup(npt: int = 3000):
    from xrdpdf import Pattern
    from xrdpdf.stages.pdf import PdfConfig, composition_factors

    rng = np.random.default_rng(0)
    q = np.linspace(0.5, 30.0, npt)
    f2, _ = composition_factors("TiO2", q)
    clean = 1e3 * (f2 + 20 * np.sin(2.4 * q) * np.exp(-0.01 * q * q) + 0.05 * q * q)
    sig = np.sqrt(clean)
    pattern = Pattern(q, clean + rng.normal(0, 1, q.size) * sig, "q_A^-1", sigma=sig)
    config = PdfConfig("TiO2", qmax_invA=28.0, rpoly_A=0.9, rmin_A=0.01, rmax_A=30.0, rstep_A=0.01)
    return pattern, config


def _time(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--smoke", action="store_true", help="run once, quickly")
    args = ap.parse_args(argv)
    repeat = 3 if args.smoke else max(1, args.repeat)

    from xrdpdf.stages.pdf import sine_transform, transform

    pattern, config = setup()
    res = transform(pattern, config)  # warm-up
    m = res.fq.x <= config.qmax_invA
    q, f, s, r = res.fq.x[m], res.fq.y[m], res.fq.sigma[m], res.gr.x
    t_full = _time(lambda: transform(pattern, config), repeat)
    t_sine = _time(lambda: sine_transform(q, f, r, sigma=s), repeat)
    result = {
        "benchmark": "pdf.transform",
        "n_q": int(pattern.x.size),
        "n_r": int(res.gr.x.size),
        "repeat": repeat,
        "transform_best_ms": 1e3 * min(t_full),
        "transform_median_ms": 1e3 * statistics.median(t_full),
        "sine_best_ms": 1e3 * min(t_sine),
        "sine_median_ms": 1e3 * statistics.median(t_sine),
        "goal_ms": 5.0,
        "host": platform.node(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "gpu": None,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"pdf.transform {result['n_q']} Q → {result['n_r']} r points: "
            f"best {result['transform_best_ms']:.2f} ms, median "
            f"{result['transform_median_ms']:.2f} ms (goal < 5 ms); bare G+σ_G sine transform "
            f"best {result['sine_best_ms']:.2f} ms; host {result['host']} "
            f"({result['cpus']} CPUs, load {result['loadavg']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
