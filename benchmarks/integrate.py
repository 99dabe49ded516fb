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
dark and a mask), their deviation, ``kernel_ms`` (frames already in memory, the
dark prepared once as ``xrdpdf.Integrator`` does; ``kernel_gathered_dark_ms`` with
the dark passed as an array),
``write_ms`` (one ``.xye`` of 3000 bins) and the HDF5 stack writer per frame, and
the memory-bandwidth floor: the bytes the kernel streams per frame (operator, frame
and dark) divided by the read bandwidth of both cores measured by a small probe
right after each kernel run; ``kernel_over_floor`` is the median of the runs' ratios.

Usage::

    python benchmarks/integrate.py [--frames N] [--pairs P] [--stack] [--json] [--smoke]

The machine's load is recorded with the results: timings on a shared machine are noisy.
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
    import pyFAI

    from xrdpdf.stages._fastint import kernel_threads
    from xrdpdf.stages._scatter import simd_available

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
        "kernel_threads": kernel_threads(),
        "kernel_avx512": simd_available(),
    }


# ------------------------------------------------------------------------- floors
def bandwidth_probe(nbytes: int = 256 * 2**20, repeat: int = 5) -> float:
    """Read bandwidth of the kernel's threads in bytes/s: a parallel sum over a large array.

    The kernel reads its operator and the frame once per frame and writes only
    small per-thread accumulators, so read bandwidth is its floor.  ``fastmath``
    lets the sum use several vector accumulators, so the probe is limited by
    memory, not by the latency of one chain of additions (a strict in-order
    float sum reads only ~4 bytes per add latency, ~2 GB/s here, and would make
    the floor look slower than it is).  Best of `repeat` (the least disturbed by
    other processes).
    """
    import numba

    from xrdpdf.stages._fastint import kernel_threads

    numba.set_num_threads(min(kernel_threads(), numba.config.NUMBA_NUM_THREADS))

    @numba.njit(parallel=True, fastmath=True, cache=False)
    def _sum(a):  # pragma: no cover - jit
        acc = 0.0
        for i in numba.prange(a.size):
            acc += a[i]
        return acc

    a = np.ones(nbytes // 4, dtype=np.float32)
    _sum(a[:1024])
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        _sum(a)
        best = min(best, time.perf_counter() - t)
    return nbytes / best


def kernel_bytes(si, frame: np.ndarray, dark) -> int:
    """Bytes the kernel streams per frame: the operator arrays it reads, frame and dark.

    A prepared dark is read in step order (``dark.steps``; its flat copy only at the
    few overflow coefficients); an array dark is read whole.  ``pixel_norm`` is read
    only at invalid pixels, and the per-strip sums stay in cache; neither is counted.
    """
    from xrdpdf.stages._fastint import PreparedDark

    op = si._op
    arrays = (op.off, op.coef, op.batches, op.blocks, op.ov_pix, op.ov_bin, op.ov_coef)
    if dark is None:
        dark_bytes = 0
    else:
        dark_bytes = dark.steps.nbytes if isinstance(dark, PreparedDark) else dark.nbytes
    return int(sum(a.nbytes for a in arrays) + frame.nbytes + dark_bytes)


def time_writers(si, frame, dark, nframes: int, tmpdir: Path) -> tuple[float, float]:
    """ms per pattern: one ``.xye`` file (xrdpdf's writer) and one row of the HDF5 stack."""
    from xrdpdf._core.pattern import Pattern
    from xrdpdf.io import PatternStackWriter, write_pattern

    radial, intensity, sigma = si.integrate(frame, dark)
    pattern = Pattern(x=radial, y=intensity, unit="q_A^-1", wavelength_A=0.1173, sigma=sigma)
    out = tmpdir / "writers"
    out.mkdir()
    t = time.perf_counter()
    for i in range(nframes):
        write_pattern(pattern, out / f"p{i:05d}.xye")
    xye_ms = 1e3 * (time.perf_counter() - t) / nframes
    t = time.perf_counter()
    with PatternStackWriter(out / "stack.h5", radial, "q_A^-1", wavelength_A=0.1173) as w:
        for i in range(nframes):
            w.append(pattern, f"frame_{i:05d}.tif", i)
    h5_ms = 1e3 * (time.perf_counter() - t) / nframes
    shutil.rmtree(out)
    return xye_ms, h5_ms


# ------------------------------------------------------------------------- whole process
PLAIN_SCRIPT = """\
import sys
from pathlib import Path

import fabio
import pyFAI

ai = pyFAI.load(sys.argv[1])
out, npt = Path(sys.argv[2]), int(sys.argv[3])
out.mkdir(exist_ok=True)
for name in sys.argv[4:]:
    with fabio.open(name) as img:
        data = img.data
    ai.integrate1d(
        data, npt, unit="q_A^-1", method=("bbox", "csr", "cython"), error_model="poisson",
        polarization_factor=%r, correctSolidAngle=True,
        filename=str(out / (Path(name).stem + ".xye")),
    )
"""


def xrdpdf_command() -> list[str]:
    """The installed ``xrdpdf`` script of this interpreter's environment."""
    exe = Path(sys.executable).with_name("xrdpdf")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("xrdpdf")
    if found is None:
        raise SystemExit("integrate.py: error: the xrdpdf command is not installed")
    return [found]


#: CPU seconds (user + system, all threads) of the last subprocess :func:`timed` ran.
LAST_CPU_S = [0.0]


def timed(cmd: list[str], env: dict, outdir: Path | None = None) -> float:
    """Wall time of one subprocess, its output folder removed before; CPU in LAST_CPU_S."""
    import resource

    if outdir is not None:
        shutil.rmtree(outdir, ignore_errors=True)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True)
    dt = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CPU_S[0] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"integrate.py: error: {cmd[0]} failed: {proc.stderr.decode()[-400:]}")
    timed.stdout = proc.stdout.decode()
    return dt


CHECK_IMPORTS = """import sys
from xrdpdf.cli import _main
rc = _main(sys.argv[1:])
print(rc, "pyFAI" in sys.modules, "scipy" in sys.modules)
"""


def startup_floors(env: dict, pairs: int) -> dict:
    """Process start-up floors: python + numpy, the CLI's --help."""
    floors = {
        "startup_floor_numpy_s": [sys.executable, "-c", "import numpy"],
        "startup_floor_cli_s": [*xrdpdf_command(), "integrate", "--help"],
    }
    out = {}
    for key, cmd in floors.items():
        runs, cpu = [], []
        for _ in range(max(pairs, 3)):
            runs.append(timed(cmd, env))
            cpu.append(LAST_CPU_S[0])
        out[key] = statistics.median(runs)
        out[key.replace("_s", "_cpu_s")] = statistics.median(cpu)
    return out


def whole_process(paths, poni: Path, npt: int, pairs: int, tmpdir: Path, log) -> dict:
    """Plain script vs installed ``xrdpdf integrate``, alternating, medians of `pairs`."""
    script = tmpdir / "plain_pyfai.py"
    script.write_text(PLAIN_SCRIPT % POLARIZATION)
    env = dict(os.environ, XRDPDF_CACHE=str(tmpdir / "xrdpdf_cache"))
    # bytecode cached as in a default shell (the set-up run below writes the .pyc files);
    # with PYTHONDONTWRITEBYTECODE set, every start would compile the edited modules again
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    names = [str(p) for p in paths]

    def plain(files):
        return [sys.executable, str(script), str(poni), str(tmpdir / "out_plain"), str(npt)] + files

    def ours(files):
        return xrdpdf_command() + [
            "integrate",
            *files,
            "--poni",
            str(poni),
            "--npt",
            str(npt),
            "--polarization",
            str(POLARIZATION),
            "-o",
            str(tmpdir / "out_ours"),
        ]

    timed(ours(names[:1]), env, tmpdir / "out_ours")  # builds the operator cache (set-up)
    check = tmpdir / "check_imports.py"
    check.write_text(CHECK_IMPORTS)
    timed([sys.executable, str(check), *ours(names[:1])[1:]], env, tmpdir / "out_ours")
    rc, has_pyfai, has_scipy = timed.stdout.split()[-3:]
    plain_s, ours_s, first_s = [], [], []
    plain_cpu, ours_cpu, first_cpu = [], [], []
    for k in range(pairs):
        order = [("plain", plain), ("ours", ours)]
        for name, cmd in order if k % 2 == 0 else order[::-1]:
            dt = timed(cmd(names), env, tmpdir / f"out_{name}")
            (plain_s if name == "plain" else ours_s).append(dt)
            (plain_cpu if name == "plain" else ours_cpu).append(LAST_CPU_S[0])
        first_s.append(timed(ours(names[:1]), env, tmpdir / "out_ours"))
        first_cpu.append(LAST_CPU_S[0])
        log(
            f"  pair {k + 1}: plain {plain_s[-1]:.2f} s, ours {ours_s[-1]:.2f} s"
            f" (ours on 1 frame {first_s[-1]:.2f} s; load {os.getloadavg()[0]:.2f})"
        )
    p, o, s1 = (statistics.median(v) for v in (plain_s, ours_s, first_s))
    n = len(names)
    return {
        "whole_process_ratio": p / o,
        "plain_s": p,
        "ours_s": o,
        "startup_s": s1,
        "per_frame_ms": 1e3 * (o - s1) / max(n - 1, 1),
        "plain_s_runs": plain_s,
        "ours_s_runs": ours_s,
        "startup_s_runs": first_s,
        # CPU time (user + system, all threads) of the processes: the work, whatever the load
        "plain_cpu_s": statistics.median(plain_cpu),
        "ours_cpu_s": statistics.median(ours_cpu),
        "startup_cpu_s": statistics.median(first_cpu),
        "whole_process_cpu_ratio": statistics.median(plain_cpu) / statistics.median(ours_cpu),
        "startup_imports_pyfai": has_pyfai == "True",
        "startup_imports_scipy": has_scipy == "True",
        **startup_floors(env, pairs),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=50, help="number of frames (default 50)")
    ap.add_argument("--repeat", type=int, default=3, help="in-process runs of each path (3)")
    ap.add_argument("--pairs", type=int, default=3, help="whole-process A/B pairs (default 3)")
    ap.add_argument("--stack", action="store_true", help="in process: one multi-frame HDF5 file")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument(
        "--smoke", action="store_true", help="tiny run (3 frames of 512², 750 bins, 1 pair)"
    )
    args = ap.parse_args(argv)
    if args.frames < 2 or args.repeat < 1 or args.pairs < 1:
        print("integrate.py: error: --frames >= 2, --repeat and --pairs >= 1", file=sys.stderr)
        return 2

    from xrdpdf.stages._fastint import SparseIntegrator

    shape, pixel_m, npt, nframes = SHAPE, PIXEL_M, NPT, args.frames
    repeat, pairs = args.repeat, args.pairs
    if args.smoke:  # the same detector binned 4×4, with 4× coarser bins
        shape, pixel_m, npt, nframes, repeat, pairs = (512, 512), 4 * PIXEL_M, NPT // 4, 3, 1, 1
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    load_start = os.getloadavg()
    rng = np.random.default_rng(20240811)
    ai = make_geometry(shape, pixel_m)

    with tempfile.TemporaryDirectory(prefix="xrdpdf_bench_") as tmp:
        tmpdir = Path(tmp)
        t = time.perf_counter()
        frames, dark, mask = simulate(ai, shape, nframes, rng)
        frames = list(frames)
        tiffs = write_tiffs(frames, tmpdir)
        paths = [write_stack(frames, nframes, shape, tmpdir / "stack.h5")] if args.stack else tiffs
        del frames
        poni = tmpdir / "geometry.poni"
        ai.write(str(poni))
        log(
            f"simulated {nframes} frames {shape[0]}x{shape[1]} in {time.perf_counter() - t:.1f} s"
            f" ({'HDF5 stack' if args.stack else 'TIFF files'})"
        )

        # --- whole process, first (the in-process part leaves large arrays around)
        log("whole process (subprocesses timed from outside, alternating):")
        whole = whole_process(tiffs, poni, npt, pairs, tmpdir, log)

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
        si.integrate(first, dark)  # first call: the kernel threads start
        jit_s = time.perf_counter() - t
        t = time.perf_counter()
        prepared = si.prepare_dark(dark)  # once per dark, as xrdpdf.Integrator does
        prepare_dark_ms = 1e3 * (time.perf_counter() - t)

        # --- in-process runs, interleaved so that both paths see the same load
        plain_runs, fast_runs, plain_cpu, fast_cpu = [], [], [], []
        read_ms, fabio_ms, kernel_ms, kernel_cpu_ms, gathered_ms = [], [], [], [], []
        bandwidths, probe_bytes = [], 64 * 2**20 if args.smoke else 256 * 2**20
        for _ in range(repeat):
            t = time.perf_counter()
            in_memory = list(fast_frames(paths, args.stack))
            read_ms.append(1e3 * (time.perf_counter() - t) / nframes)
            t = time.perf_counter()
            for _f in fabio_frames(paths, args.stack):
                pass
            fabio_ms.append(1e3 * (time.perf_counter() - t) / nframes)
            t, c = time.perf_counter(), time.process_time()
            for f in in_memory:
                si.integrate(f, prepared)
            kernel_ms.append(1e3 * (time.perf_counter() - t) / nframes)
            kernel_cpu_ms.append(1e3 * (time.process_time() - c) / nframes)
            # the probe right after the kernel, so that each ratio sees one state of
            # the machine (a VM's bandwidth drifts by tens of percent within minutes)
            bandwidths.append(bandwidth_probe(probe_bytes))
            t = time.perf_counter()
            for f in in_memory:
                si.integrate(f, dark)  # the dark gathered per frame (an array, not prepared)
            gathered_ms.append(1e3 * (time.perf_counter() - t) / nframes)
            del in_memory

            dt, cpu, plain_out = run_plain(ai, npt, paths, args.stack, nframes, dark, mask)
            plain_runs.append(nframes / dt)
            plain_cpu.append(1e3 * cpu / nframes)
            dt, cpu, fast_out = run_fast(si, paths, args.stack, nframes, dark)
            fast_runs.append(nframes / dt)
            fast_cpu.append(1e3 * cpu / nframes)
            log(
                f"  in process: plain {plain_runs[-1]:6.2f} frames/s   fast {fast_runs[-1]:6.2f}"
                f" frames/s   (read {read_ms[-1]:.1f} ms, fabio read {fabio_ms[-1]:.1f} ms,"
                f" kernel {kernel_ms[-1]:.1f} ms per frame; load {os.getloadavg()[0]:.2f})"
            )
        dev_i, dev_s = deviations(plain_out, fast_out)
        write_ms, h5_row_ms = time_writers(si, first, dark, nframes, tmpdir)
        traffic = kernel_bytes(si, first, prepared)

    kernel_ms_med = statistics.median(kernel_ms)
    read_ms_med = statistics.median(read_ms)
    bandwidth = statistics.median(bandwidths)
    floor_ms = 1e3 * traffic / bandwidth
    ratios = [k * b / (1e3 * traffic) for k, b in zip(kernel_ms, bandwidths, strict=True)]
    plain_fps = statistics.median(plain_runs)
    fast_fps = statistics.median(fast_runs)
    result = {
        "schema_version": 2,
        "benchmark": "integrate",
        "mode": "hdf5_stack" if args.stack else "tiff_files",
        "frames": nframes,
        "pairs": pairs,
        "repeat": repeat,
        "shape": list(shape),
        "npt": npt,
        "unit": UNIT,
        **whole,
        "kernel_ms": kernel_ms_med,
        "kernel_cpu_ms": statistics.median(kernel_cpu_ms),
        "kernel_gathered_dark_ms": statistics.median(gathered_ms),
        "prepare_dark_ms": prepare_dark_ms,
        "write_ms": write_ms,
        "h5_stack_row_ms": h5_row_ms,
        "bandwidth_floor_ms": floor_ms,
        "kernel_over_floor": statistics.median(ratios),
        "kernel_over_floor_runs": ratios,
        "read_bandwidth_GBps_runs": [b / 1e9 for b in bandwidths],
        "kernel_bytes_per_frame": traffic,
        "read_bandwidth_GBps": bandwidth / 1e9,
        "inprocess_plain_fps": plain_fps,
        "inprocess_fast_fps": fast_fps,
        "inprocess_ratio": fast_fps / plain_fps,
        "plain_fps_runs": plain_runs,
        "fast_fps_runs": fast_runs,
        # CPU time of the process (all threads) per frame: the work, whatever the load
        "plain_cpu_ms_per_frame": statistics.median(plain_cpu),
        "fast_cpu_ms_per_frame": statistics.median(fast_cpu),
        "max_rel_dev": dev_i,
        "max_rel_dev_sigma": dev_s,
        "operator_nbytes": si.nbytes,
        "operator_nnz": si.nnz,
        "read_floor_ms": read_ms_med,
        "fabio_read_ms": statistics.median(fabio_ms),
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
        report(result)
    return 0


def report(r: dict) -> None:
    n = r["frames"]
    print(f"whole process, {n} frames, median of {r['pairs']} alternating pairs:")
    print(f"  plain fabio + pyFAI script: {r['plain_s']:7.2f} s")
    print(
        f"  xrdpdf integrate:           {r['ours_s']:7.2f} s   ratio {r['whole_process_ratio']:.2f}"
    )
    print(
        f"  xrdpdf start-up (1 frame):  {r['startup_s']:7.2f} s;"
        f" steady state {r['per_frame_ms']:.1f} ms/frame ({1e3 / r['per_frame_ms']:.0f} frames/s)"
    )
    print(
        f"  CPU time: plain {r['plain_cpu_s']:.2f} s, ours {r['ours_cpu_s']:.2f} s"
        f" (ratio {r['whole_process_cpu_ratio']:.2f}), start-up {r['startup_cpu_s']:.2f} s"
    )
    print(
        f"  start-up floors: python + numpy {r['startup_floor_numpy_s']:.2f} s,"
        f" xrdpdf integrate --help"
        f" {r['startup_floor_cli_s']:.2f} s; pyFAI imported before the first frame:"
        f" {r['startup_imports_pyfai']}"
    )
    print("in process:")
    print(
        f"  plain {r['inprocess_plain_fps']:.2f} frames/s, fast {r['inprocess_fast_fps']:.2f}"
        f" frames/s, ratio {r['inprocess_ratio']:.2f};"
        f" max deviation I {r['max_rel_dev']:.1e}, σ {r['max_rel_dev_sigma']:.1e}"
    )
    print(
        f"  kernel {r['kernel_ms']:.1f} ms/frame; floor {r['bandwidth_floor_ms']:.1f} ms"
        f" ({r['kernel_bytes_per_frame'] / 1e6:.0f} MB at {r['read_bandwidth_GBps']:.1f} GB/s):"
        f" kernel/floor {r['kernel_over_floor']:.2f}; kernel CPU {r['kernel_cpu_ms']:.1f} ms/frame"
    )
    print(
        f"  dark prepared once ({r['prepare_dark_ms']:.0f} ms); gathered per frame instead:"
        f" kernel {r['kernel_gathered_dark_ms']:.1f} ms/frame"
    )
    print(
        f"  write .xye {r['write_ms']:.2f} ms/pattern, HDF5 stack {r['h5_stack_row_ms']:.2f}"
        f" ms/row; read (tifffile) {r['read_floor_ms']:.1f} ms, fabio {r['fabio_read_ms']:.1f} ms"
    )
    s = r["setup_s"]
    print(
        f"  operator {r['operator_nbytes'] / 2**20:.0f} MiB, {r['operator_nnz']} non-zeros;"
        f" build {s['operator_build']:.2f} s, cached load {s['operator_cache_load']:.3f} s"
    )
    print(
        f"load average start {r['loadavg_start'][0]:.2f}, end {r['loadavg_end'][0]:.2f}"
        f" on {r['cpu_count']} CPUs ({r['cpu']})"
    )


if __name__ == "__main__":
    sys.exit(main())
