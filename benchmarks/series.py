"""Benchmark: a 20-image 2048² ex situ series end to end (integrate → refine → PDF → ξ).

Setup (not timed): the demo's TiO2-electrode samples are simulated as 2048² frames at
λ = 0.1173 Å, two frames per sample (10 samples × 2 = 20 images, summed per sample).
Timed: ``run_series`` on a ``distributed.LocalCluster`` (``--workers``, default 2), from an
empty output folder, including the cluster start, the figures and the report.  The peer
measured in the same run is the same work in one process without Dask (``--workers 0``), so
the ratio is the parallel speed-up.  One untimed warm-up run first fills the operator and
JIT caches for both.  On two cores the speed-up is small or below 1: the integration kernel
and the refinement's linear algebra already use both cores, and the cluster start costs
seconds; Dask pays off with more cores or a real cluster (``--scheduler``).

Usage::

    python benchmarks/series.py [--workers 2] [--json] [--smoke] [--skip-serial]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def setup(folder: Path, binning: int, n_samples: int) -> Path:
    from xrdpdf.simulate import demo

    samples = [s for s in demo.demo_samples() if not s.name.startswith("aTiO2")][:n_samples]
    series = demo.write_demo_series(folder, samples=samples, binning=binning)
    # a second frame per sample: copy (the sum doubles the counts; same physics)
    text = series.read_text()
    for s in samples:
        img = folder / "images" / f"{s.name}.tif"
        shutil.copyfile(img, folder / "images" / f"{s.name}_b.tif")
        text = text.replace(
            f'images = ["images/{s.name}.tif"]',
            f'images = ["images/{s.name}.tif", "images/{s.name}_b.tif"]',
        )
    series.write_text(text)
    return series


def timed(series: Path, out: Path, workers: int) -> float:
    from xrdpdf.workflows.series import load_series, run_series

    cfg = load_series(series)
    t0 = time.perf_counter()
    res = run_series(cfg, out, workers=workers, force=True)
    dt = time.perf_counter() - t0
    if res.failed:
        raise SystemExit(f"samples failed: {res.failed}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="2 samples on a 256² detector")
    ap.add_argument("--skip-serial", action="store_true", help="do not time the 1-process peer")
    args = ap.parse_args()
    binning, n = (8, 2) if args.smoke else (1, 10)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("XRDPDF_CACHE", str(tmp / "cache"))
        series = setup(tmp / "data", binning, n)
        # warm-up (not timed): builds the integration operator cache and numba's JIT cache,
        # which a beamline machine has after its first run, so both timings below are warm
        timed(series, tmp / "out_warm", 0)
        serial_s = None if args.skip_serial else timed(series, tmp / "out_serial", 0)
        dask_s = timed(series, tmp / "out_dask", args.workers)
    result = {
        "images": 2 * n,
        "detector": f"{2048 // binning}x{2048 // binning}",
        "workers": args.workers,
        "dask_s": dask_s,
        "serial_s": serial_s,
        "speedup": None if serial_s is None else serial_s / dask_s,
        "s_per_image": dask_s / (2 * n),
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['images']} images {result['detector']}: {dask_s:.1f} s with "
            f"{args.workers} Dask workers ({result['s_per_image']:.2f} s/image)"
        )
        if serial_s is not None:
            print(f"same work in one process: {serial_s:.1f} s (speed-up {result['speedup']:.2f}×)")


if __name__ == "__main__":
    main()
