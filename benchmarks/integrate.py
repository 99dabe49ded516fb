"""Benchmark: xrdpdf integrate against a plain fabio + pyFAI script, in process and as a whole.

Simulates N 2048² detector frames of an 11-ID-C-like set-up (λ = 0.1173 Å, 200 µm
pixels, 350 mm, 3000 bins in Q, polarization 0.99, solid angle, Poisson σ), writes
them as TIFF files (or, with ``--stack``, as one multi-frame HDF5 file) and measures,
in one run:

Whole process (what a user sees), each command a subprocess timed from outside,
alternating, median of ``--pairs`` pairs (at least 3 unless ``--smoke``):

(a) plain: ``pyFAI.load`` + per frame ``fabio.open`` and ``integrate1d(...,
    method=("bbox", "csr", "cython"), error_model="poisson", filename=...)``, one
    output file per frame;
(b) ours: the installed ``xrdpdf integrate FRAMES --poni P --npt 3000
    --polarization 0.99 -o OUT`` (operator cache warm, as on the second run at a
    beamline), one ``.xye`` per frame.

``startup_s`` is (b) on one frame (process start to the first pattern written);
``per_frame_ms`` = (``ours_s`` − ``startup_s``) / (N − 1), the steady state.

In process: the plain loop and ``SparseIntegrator.integrate_stack`` (both with a
dark and a mask), their deviation, ``kernel_ms`` (frames already in memory),
``write_ms`` (one ``.xye`` of 3000 bins) and the HDF5 stack writer per frame, and
the memory-bandwidth floor: the bytes the kernel streams per frame (operator +
frame) divided by the read bandwidth of both cores measured by a small probe.

Usage::

    python benchmarks/integrate.py [--frames N] [--pairs P] [--stack] [--json] [--smoke]

The machine's load is recorded with the results: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WAVELENGTH_M = 0.1173e-10
DISTANCE_M = 0.35
PIXEL_M = 200e-6
SHAPE = (2048, 2048)
NPT = 3000
UNIT = "q_A^-1"
POLARIZATION = 0.99
METHOD = ("bbox", "csr", "cython")
H5_PATH = "/entry/data/data"


# ------------------------------------------------------------------------- setup
def make_geometry(shape: tuple[int, int], pixel_m: float):
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    det = Detector(pixel1=pixel_m, pixel2=pixel_m, max_shape=shape)
    # beam near the centre, a small tilt (a real calibration has one)
    return AzimuthalIntegrator(
        dist=DISTANCE_M,
        poni1=0.5 * shape[0] * pixel_m + 1.3e-3,
        poni2=0.5 * shape[1] * pixel_m - 0.9e-3,
        rot1=0.004,
        rot2=-0.003,
        detector=det,
        wavelength=WAVELENGTH_M,
    )


def profile(q: np.ndarray) -> np.ndarray:
    """A powder-like I(Q): decaying background plus Gaussian rings (fcc-like, a = 3.52 Å)."""
    out = 400.0 * np.exp(-q / 12.0) + 60.0
    a = 3.52
    hkl = [
        (1, 1, 1),
        (2, 0, 0),
        (2, 2, 0),
        (3, 1, 1),
        (2, 2, 2),
        (4, 0, 0),
        (3, 3, 1),
        (4, 2, 0),
        (4, 2, 2),
        (5, 1, 1),
        (4, 4, 0),
        (5, 3, 1),
        (6, 0, 0),
        (6, 2, 0),
    ]
    for n, (h, k, l) in enumerate(hkl):
        q0 = 2.0 * np.pi * np.sqrt(h * h + k * k + l * l) / a
        height = 8000.0 / (1.0 + 0.3 * n) * np.exp(-0.004 * q0**2)
        out += height * np.exp(-0.5 * ((q - q0) / 0.02) ** 2)
    return out


def simulate(ai, shape, nframes, rng):
    """Yield (frame uint16, dark float32, mask bool): rings × Ω·P + dark + Poisson noise."""
    q = ai.array_from_unit(shape, "center", UNIT, scale=True)
    expected = profile(q) * ai.polarization(shape, POLARIZATION) * ai.solidAngleArray(shape)
    dark = rng.normal(100.0, 3.0, shape).astype(np.float32)
    mask = np.zeros(shape, dtype=bool)
    r0, c0 = (int(round(ai.poni1 / ai.detector.pixel1)), int(round(ai.poni2 / ai.detector.pixel2)))
    rad = max(3, shape[0] // 100)
    mask[r0 - rad : r0 + rad, c0 - rad : c0 + rad] = True  # beamstop
    mask[r0 - rad // 3 : r0 + rad // 3, c0:] = True  # its arm
    frames = (
        np.clip(rng.poisson(expected * (1.0 + 0.02 * i)) + dark, 0, 65535).astype(np.uint16)
        for i in range(nframes)
    )
    return frames, dark, mask


def write_tiffs(frames, directory: Path) -> list[Path]:
    import tifffile

    paths = []
    for i, frame in enumerate(frames):
        p = directory / f"frame_{i:05d}.tif"
        tifffile.imwrite(p, frame)
        paths.append(p)
    return paths


def write_stack(frames, nframes, shape, path: Path) -> Path:
    import h5py

    with h5py.File(path, "w") as h5:
        ds = h5.create_dataset(
            H5_PATH, shape=(nframes, *shape), dtype=np.uint16, chunks=(1, *shape)
        )
        for i, frame in enumerate(frames):
            ds[i] = frame
    return path


# ------------------------------------------------------------------------- readers
def fabio_frames(paths, stack: bool):
    import fabio

    if stack:
        with fabio.open(f"{paths[0]}::{H5_PATH}") as img:
            for i in range(img.nframes):
                yield img.getframe(i).data
    else:
        for p in paths:
            with fabio.open(str(p)) as img:
                yield img.data


def fast_frames(paths, stack: bool):
    """The fastest well-kept reader per format: tifffile for TIFF, h5py for HDF5."""
    if stack:
        import h5py

        with h5py.File(paths[0], "r") as h5:
            ds = h5[H5_PATH]
            for i in range(ds.shape[0]):
                yield ds[i]
    else:
        import tifffile

        for p in paths:
            yield tifffile.imread(p)


# ------------------------------------------------------------------------- timing
def run_plain(ai, npt, paths, stack, nframes, dark, mask):
    out = []
    c0 = time.process_time()
    t0 = time.perf_counter()
    for frame in fabio_frames(paths, stack):
        res = ai.integrate1d(
            frame,
            npt,
            unit=UNIT,
            method=METHOD,
            error_model="poisson",
            polarization_factor=POLARIZATION,
            correctSolidAngle=True,
            mask=mask,
            dark=dark,
        )
        out.append((res.intensity, res.sigma, res.count))
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    assert len(out) == nframes
    return dt, cpu, out


def run_fast(si, paths, stack, nframes, dark):
    out = []
    c0 = time.process_time()
    t0 = time.perf_counter()
    for _, intensity, sigma in si.integrate_stack(fast_frames(paths, stack), dark=dark):
        out.append((intensity, sigma))
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    assert len(out) == nframes
    return dt, cpu, out


def deviations(plain, fast) -> tuple[float, float]:
    dev_i = dev_s = 0.0
    for (ia, sa, count), (ib, sb) in zip(plain, fast, strict=True):
        ok = np.asarray(count) > 0  # bins that hold signal
        dev_i = max(dev_i, float(np.max(np.abs(ib[ok] / ia[ok] - 1.0))))
        dev_s = max(dev_s, float(np.max(np.abs(sb[ok] / sa[ok] - 1.0))))
    return dev_i, dev_s


def host_info() -> dict:
    import numba
    import pyFAI

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "host": platform.node(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpu": None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pyfai": pyFAI.version,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=50, help="number of frames (default 50)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each path (default 3)")
    ap.add_argument("--stack", action="store_true", help="one multi-frame HDF5 file")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument(
        "--smoke", action="store_true", help="tiny run (3 frames of 512², 750 bins, 1 repeat)"
    )
    args = ap.parse_args(argv)
    if args.frames < 1 or args.repeat < 1:
        print("integrate.py: error: --frames and --repeat must be >= 1", file=sys.stderr)
        return 2

    from xrdpdf._fastint import SparseIntegrator

    shape, pixel_m, npt, nframes, repeat = SHAPE, PIXEL_M, NPT, args.frames, args.repeat
    if args.smoke:  # the same detector binned 4×4, with 4× coarser bins
        shape, pixel_m, npt, nframes, repeat = (512, 512), 4 * PIXEL_M, NPT // 4, 3, 1
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    load_start = os.getloadavg()
    rng = np.random.default_rng(20240811)
    ai = make_geometry(shape, pixel_m)

    with tempfile.TemporaryDirectory(prefix="xrdpdf_bench_") as tmp:
        tmpdir = Path(tmp)
        t = time.perf_counter()
        frames, dark, mask = simulate(ai, shape, nframes, rng)
        if args.stack:
            paths = [write_stack(frames, nframes, shape, tmpdir / "stack.h5")]
        else:
            paths = write_tiffs(frames, tmpdir)
        log(
            f"simulated {nframes} frames {shape[0]}x{shape[1]} in {time.perf_counter() - t:.1f} s"
            f" ({'HDF5 stack' if args.stack else 'TIFF files'})"
        )

        # --- set-up, once per geometry (not in the per-frame timings)
        t = time.perf_counter()
        first = next(iter(fast_frames(paths, args.stack)))
        ai.integrate1d(
            first,
            npt,
            unit=UNIT,
            method=METHOD,
            error_model="poisson",
            polarization_factor=POLARIZATION,
            mask=mask,
            dark=dark,
        )
        pyfai_setup_s = time.perf_counter() - t
        cache = tmpdir / "cache"
        t = time.perf_counter()
        si = SparseIntegrator.from_pyfai(
            ai, shape, npt, UNIT, mask=mask, polarization_factor=POLARIZATION, cache_dir=cache
        )
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        si = SparseIntegrator.from_pyfai(
            ai, shape, npt, UNIT, mask=mask, polarization_factor=POLARIZATION, cache_dir=cache
        )
        cache_load_s = time.perf_counter() - t
        assert si.loaded_from_cache
        t = time.perf_counter()
        si.integrate(first, dark)  # numba compilation, or loading it from numba's cache
        jit_s = time.perf_counter() - t

        # --- timed runs, interleaved so that both paths see the same load; each
        # repeat also times the floors: reading alone (both readers) and integrating
        # frames already in memory.
        plain_runs, fast_runs, plain_cpu, fast_cpu = [], [], [], []
        read_ms, fabio_ms, kernel_ms = [], [], []
        for _ in range(repeat):
            t = time.perf_counter()
            in_memory = list(fast_frames(paths, args.stack))
            read_ms.append(1e3 * (time.perf_counter() - t) / nframes)
            t = time.perf_counter()
            for _f in fabio_frames(paths, args.stack):
                pass
            fabio_ms.append(1e3 * (time.perf_counter() - t) / nframes)
            t = time.perf_counter()
            for f in in_memory:
                si.integrate(f, dark)
            kernel_ms.append(1e3 * (time.perf_counter() - t) / nframes)
            del in_memory

            dt, cpu, plain_out = run_plain(ai, npt, paths, args.stack, nframes, dark, mask)
            plain_runs.append(nframes / dt)
            plain_cpu.append(1e3 * cpu / nframes)
            dt, cpu, fast_out = run_fast(si, paths, args.stack, nframes, dark)
            fast_runs.append(nframes / dt)
            fast_cpu.append(1e3 * cpu / nframes)
            log(
                f"  run: plain {plain_runs[-1]:6.2f} frames/s   fast {fast_runs[-1]:6.2f} frames/s"
                f"   (read {read_ms[-1]:.1f} ms, fabio read {fabio_ms[-1]:.1f} ms, integrate"
                f" in memory {kernel_ms[-1]:.1f} ms per frame; load {os.getloadavg()[0]:.2f})"
            )
        dev_i, dev_s = deviations(plain_out, fast_out)
        read_ms_med = statistics.median(read_ms)
        kernel_ms_med = statistics.median(kernel_ms)

    plain_fps = statistics.median(plain_runs)
    fast_fps = statistics.median(fast_runs)
    result = {
        "schema_version": 1,
        "benchmark": "integrate",
        "mode": "hdf5_stack" if args.stack else "tiff_files",
        "frames": nframes,
        "repeat": repeat,
        "shape": list(shape),
        "npt": npt,
        "unit": UNIT,
        "plain_fps": plain_fps,
        "fast_fps": fast_fps,
        "ratio": fast_fps / plain_fps,
        "plain_fps_runs": plain_runs,
        "fast_fps_runs": fast_runs,
        # CPU time of the process (all threads) per frame: the work, whatever the load
        "plain_cpu_ms_per_frame": statistics.median(plain_cpu),
        "fast_cpu_ms_per_frame": statistics.median(fast_cpu),
        "cpu_ratio": statistics.median(plain_cpu) / statistics.median(fast_cpu),
        "max_rel_dev": dev_i,
        "max_rel_dev_sigma": dev_s,
        "operator_nbytes": si.nbytes,
        "operator_nnz": si.nnz,
        "read_floor_ms": read_ms_med,
        "read_floor_fps": 1e3 / read_ms_med,
        "fabio_read_ms": statistics.median(fabio_ms),
        "kernel_floor_ms": kernel_ms_med,
        "kernel_floor_fps": 1e3 / kernel_ms_med,
        "setup_s": {
            "pyfai_csr": pyfai_setup_s,
            "operator_build": build_s,
            "operator_cache_load": cache_load_s,
            "jit": jit_s,
        },
        "loadavg_start": list(load_start),
        "loadavg_end": list(os.getloadavg()),
        **host_info(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"plain (fabio + pyFAI integrate1d): {plain_fps:7.2f} frames/s")
        print(f"fast  (xrdpdf operator, prefetch): {fast_fps:7.2f} frames/s")
        print(f"ratio fast/plain:                  {result['ratio']:7.2f}")
        print(f"max relative deviation I, sigma:   {dev_i:.2e}, {dev_s:.2e}")
        print(
            f"CPU time per frame (all threads):  plain {result['plain_cpu_ms_per_frame']:.1f} ms,"
            f" fast {result['fast_cpu_ms_per_frame']:.1f} ms (ratio {result['cpu_ratio']:.2f})"
        )
        print(
            f"operator: {si.nbytes / 2**20:.1f} MiB, {si.nnz} non-zeros; build {build_s:.2f} s,"
            f" cached load {cache_load_s:.2f} s"
        )
        print(
            f"floors: read {result['read_floor_ms']:.1f} ms/frame"
            f" ({result['read_floor_fps']:.0f} frames/s; fabio {result['fabio_read_ms']:.1f} ms),"
            " integrate in memory"
            f" {result['kernel_floor_ms']:.1f} ms/frame ({result['kernel_floor_fps']:.0f} frames/s)"
        )
        print(
            f"load average start {load_start[0]:.2f}, end {result['loadavg_end'][0]:.2f}"
            f" on {result['cpu_count']} CPUs ({result['cpu']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
