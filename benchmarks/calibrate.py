"""Benchmark: one headless calibration of a 2048² CeO2 frame (issue 4).

Setup (not timed): a CeO2 image of the 11-ID-C case (λ = 0.1173 Å, PerkinElmer 2048², 200 µm,
~350 mm, tilted 0.57°/1.15°) is simulated with Poisson noise, a beamstop with its arm, hot and
dead pixels.  Timed: ``xrdpdf.stages.calibrate.calibrate`` from a guess 15 mm and 20 px off (and, in
a second timing, with no guess at all), then ``instrument_resolution``.  Printed: wall times,
the errors of the refined geometry against the simulated truth, host and load.

Usage::

    python benchmarks/calibrate.py [--json] [--smoke]

``--smoke`` runs a 512² case once (seconds) to check that the script works.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

WL_A = 0.1173


def simulate(shape, pixel_m, dist_m, cx, cy, rot1, rot2, seed=0):
    """CeO2 rings (pseudo-Voigt, FWHM² = 4e-5 Q² + 0.05²) on a background, Poisson noise."""
    from pyFAI.calibrant import get_calibrant
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    det = Detector(pixel_m, pixel_m, max_shape=shape)
    ai = AzimuthalIntegrator(detector=det, wavelength=WL_A * 1e-10)
    ai.setFit2D(dist_m * 1e3, cx, cy)
    ai.rot1, ai.rot2 = rot1, rot2
    cal = get_calibrant("CeO2")
    cal.wavelength = WL_A * 1e-10
    q = ai.array_from_unit(shape, "center", "q_A^-1", scale=True)
    qg = np.linspace(max(q.min() - 0.05, 0), q.max() + 0.05, 40000)
    prof = np.zeros_like(qg)
    refl = cal.config.reflections if cal.config else None
    for i, d in enumerate(cal.dspacing):
        qi = 2 * np.pi / d
        if qi > qg[-1] + 0.5:
            break
        amp = refl[i].intensity / 100 if refl and refl[i].intensity else 0.3
        f = math.sqrt(4e-5 * qi**2 + 0.05**2)
        z = (qg - qi) / f
        g = np.exp(-4 * math.log(2) * z * z)
        lor = 1 / (1 + 4 * z * z)
        prof += amp * (0.3 * lor + 0.7 * g)
    img = 40.0 * (1 + 2 * np.exp(-q / 2)) + 3000.0 * np.interp(q, qg, prof)
    rng = np.random.default_rng(seed)
    f2d = ai.getFit2D()
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    bs = (xx - f2d["centerX"]) ** 2 + (yy - f2d["centerY"]) ** 2 < 40**2
    bs |= (np.abs(yy - f2d["centerY"]) < 10) & (xx > f2d["centerX"])
    img[bs] = 3.0
    img = rng.poisson(img).astype(np.float64)
    idx = rng.choice(img.size, 200, replace=False)
    img.flat[idx[:100]] = 60000.0
    img.flat[idx[100:]] = 0.0
    return ai, det, img


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--smoke", action="store_true", help="a quick 512² run")
    args = ap.parse_args(argv)
    from xrdpdf.stages.calibrate import calibrate, instrument_resolution

    if args.smoke:
        shape, dist = (512, 512), 0.35
    else:
        shape, dist = (2048, 2048), 0.35
    n = shape[0]
    ai, det, img = simulate(shape, 200e-6, dist, n / 2 + 37, n / 2 - 52, 0.01, -0.02)
    f2d = ai.getFit2D()
    d_true, cx, cy = f2d["directDist"] * 1e-3, f2d["centerX"], f2d["centerY"]

    t0 = time.perf_counter()
    res = calibrate(
        img,
        calibrant="CeO2",
        wavelength_A=WL_A,
        detector=det,
        distance_guess_m=d_true + 0.015,
        center_guess_px=(cx + 20, cy - 20),
    )
    t_guess = time.perf_counter() - t0
    t0 = time.perf_counter()
    reso = instrument_resolution(img, res)
    t_res = time.perf_counter() - t0
    t_noguess = None
    if not args.smoke:
        t0 = time.perf_counter()
        calibrate(img, calibrant="CeO2", wavelength_A=WL_A, detector=det)
        t_noguess = time.perf_counter() - t0
    out = {
        "benchmark": "calibrate",
        "shape": list(shape),
        "wall_s_calibrate_with_guess": t_guess,
        "wall_s_calibrate_no_guess": t_noguess,
        "wall_s_resolution": t_res,
        "err_distance_mm": (res.direct_distance_m - d_true) * 1e3,
        "err_center_px": [res.beam_center_px[0] - cx, res.beam_center_px[1] - cy],
        "err_rot1_rad": res.rot1_rad - ai.rot1,
        "err_rot2_rad": res.rot2_rad - ai.rot2,
        "rms_2theta_deg": res.rms_2theta_deg,
        "n_rings": res.n_rings,
        "n_points": res.n_points,
        "resolution_peaks": len(reso.peaks),
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "ncpu": os.cpu_count(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:30s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
