"""``xrdpdf watch``: images reduced as they land, exactly once, like ``xrdpdf integrate``.

Truth: the ``integrate`` command's own files for the same images (byte for
byte), the peak positions of the simulated pattern, and the PDF API applied
to the same integrated pattern.  Geometry: a small generic detector
(256 × 256 pixels of 200 µm, 0.1 m, λ = 0.1173 Å) so that every test is fast.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf.cli import _main
from xrdpdf.io import images, read_pattern
from xrdpdf.simulate.images import simulate_image
from xrdpdf.stages.integrate import IntegrationSettings, Integrator, load_poni
from xrdpdf.workflows.watch import ImageReducer, Watcher, WatchState, is_candidate

SHAPE = (256, 256)
NPT = 400
PEAKS_Q = (3.0, 5.0)  # Å⁻¹, the simulated pattern's two peaks
XRDPDF = Path(sys.executable).with_name("xrdpdf")


@pytest.fixture(scope="module")
def geo(tmp_path_factory):
    """PONI file, geometry and three simulated frames (seeded)."""
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    d = tmp_path_factory.mktemp("geo")
    poni = d / "g.poni"
    AzimuthalIntegrator(
        dist=0.1,
        poni1=0.0251,
        poni2=0.0262,
        detector=Detector(2e-4, 2e-4, max_shape=SHAPE),
        wavelength=1.173e-11,
    ).write(str(poni))
    ai = load_poni(poni)
    q = np.linspace(0, 20, 4001)
    y = 5 + sum(40 * np.exp(-0.5 * ((q - q0) / 0.2) ** 2) for q0 in PEAKS_Q)
    truth = Pattern(q, y, units.Q_A, 0.1173)
    frames = [
        simulate_image(truth, ai, scale=20.0 * (i + 1), seed=i).data.astype(np.float32)
        for i in range(3)
    ]
    mask = np.zeros(SHAPE, np.uint8)
    mask[120:136, :128] = 1  # a beamstop arm
    tifffile.imwrite(d / "mask.tif", mask)
    return d, poni, frames


def cli(argv, capsys):
    """``xrdpdf ARGV...`` in-process: (exit code, stdout, stderr)."""
    rc = _main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def watch_once(incoming, poni, out, *extra) -> list:
    """Arguments of one ``xrdpdf watch --once --json`` pass over INCOMING into OUT."""
    common = ["--poni", poni, "--npt", NPT, "-o", out]
    return ["watch", incoming, *common, "--once", "--json", "--poll", 0.1, *extra]


def rows_of(outdir: Path) -> list[dict]:
    with open(outdir / "summary.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def leftovers(folder: Path) -> list[str]:
    """Temporary or partial files (our atomic writers use .NAME.xxx.part)."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name.endswith(".part") or (p.name.startswith(".") and p.name != ".watch.lock")
    )


def test_help_has_example(capsys):
    rc, out, _ = cli(["watch", "--help"], capsys)
    assert rc == 0 and "Example:" in out


def test_is_candidate():
    assert is_candidate("a.tif") and is_candidate("/x/B.TIFF") and is_candidate("s.h5")
    for name in (".a.tif", "a.tif.part", "a.tmp", "a.tif~", "notes.txt", "a.xye", "g.poni"):
        assert not is_candidate(name), name


def test_once_equals_integrate(geo, tmp_path, capsys):
    """--once reduces a single image and a stack exactly as ``integrate`` does."""
    d, poni, frames = geo
    incoming = tmp_path / "in"
    incoming.mkdir()
    tifffile.imwrite(incoming / "a.tif", frames[0])
    images.write_image(np.stack(frames[1:]), incoming / "stack.h5")
    (incoming / "notes.txt").write_text("not an image")
    opts = ["--poni", poni, "--mask", d / "mask.tif", "--npt", NPT]
    out = tmp_path / "out"
    rc, so, err = cli(
        ["watch", incoming, *opts, "-o", out, "--once", "--json", "--poll", 0.1], capsys
    )
    assert rc == 0, err
    summary = json.loads(so)
    assert summary["n_processed"] == 2 and summary["n_failed"] == 0
    names = {"a", "stack_f0000", "stack_f0001"}
    assert {r["name"] for r in rows_of(out)} == names
    assert all(r["error"] == "" for r in rows_of(out))

    ref = tmp_path / "ref"
    rc, _, err = cli(
        ["integrate", incoming / "a.tif", incoming / "stack.h5", *opts, "-o", ref], capsys
    )
    assert rc == 0, err
    for name in names:  # same integrator settings, same writer: identical bytes
        assert (out / f"{name}.xye").read_bytes() == (ref / f"{name}.xye").read_bytes(), name
    # independent truth: the simulated peaks, within one pixel's Q span (≈0.1 Å⁻¹ here)
    pat = read_pattern(out / "a.xye")
    for q0 in PEAKS_Q:
        win = np.abs(pat.x - q0) < 0.6
        assert abs(pat.x[win][np.argmax(pat.y[win])] - q0) < 0.1
    assert leftovers(out) == []


def _slow_write(data: bytes, path: Path, chunks: int, pause_s: float) -> None:
    step = -(-len(data) // chunks)
    with open(path, "wb") as fh:
        for i in range(0, len(data), step):
            fh.write(data[i : i + step])
            fh.flush()
            time.sleep(pause_s)


def test_live_folder_restart(geo, tmp_path, capsys):
    """Files dropped while it runs: slow, corrupt, duplicate name, temporary; then restarts."""
    d, poni, frames = geo
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    tifffile.imwrite(tmp_path / "full.tif", frames[1])
    full = (tmp_path / "full.tif").read_bytes()
    settings = IntegrationSettings(npt=NPT)
    reducer = ImageReducer(poni, out, settings=settings)
    results: queue.Queue = queue.Queue()
    logs: list[str] = []
    watcher = Watcher(
        incoming,
        reducer,
        stable_s=0.15,
        settle_s=1.5,
        log=logs.append,
        on_result=lambda src, rows: results.put((Path(src).name, rows)),
    )
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(res=watcher.run(handle_signals=False)))
    thread.start()

    def next_result():
        return results.get(timeout=30)

    try:
        tifffile.imwrite(incoming / "a.tif", frames[0])
        assert next_result()[0] == "a.tif"
        a_bytes = (out / "a.xye").read_bytes()
        # written in 4 chunks with pauses longer than the stability time: size is
        # stable between chunks, so only the readability check keeps it waiting
        _slow_write(full, incoming / "slow.tif", 4, 0.4)
        (incoming / "bad.tif").write_bytes(np.random.default_rng(3).bytes(4000))
        (incoming / ".hidden.tif").write_bytes(full)
        (incoming / "c.tif.part").write_bytes(full)
        (incoming / "d.tmp").write_bytes(full)
        got = dict(next_result() for _ in range(2))
        assert set(got) == {"slow.tif", "bad.tif"}
        assert got["slow.tif"][0]["error"] == ""
        assert "bad.tif" in got["bad.tif"][0]["error"]
        images.write_image(frames[2], incoming / "a.edf")  # same stem as a.tif
        name, rows = next_result()
        assert name == "a.edf"
        assert "output exists" in rows[0]["error"] and "a.tif" in rows[0]["error"]
        assert (out / "a.xye").read_bytes() == a_bytes  # not replaced
        time.sleep(0.5)
        assert results.empty()  # hidden / temporary files were ignored
    finally:
        watcher.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert any("error:" in line and "bad.tif" in line for line in logs)
    res = outcome["res"]
    assert res.stopped and len(res.processed) == 2 and len(res.failed) == 2
    # file-system events, unless the observer could not start (then it says so)
    assert res.mode == "watchdog" or any("watchdog unavailable" in line for line in logs)

    # the slowly written file gives what the whole file gives
    ref = Integrator(load_poni(poni), settings=settings, poni=str(poni)).integrate(frames[1])
    slow = read_pattern(out / "slow.xye")
    np.testing.assert_allclose(slow.y, ref.y, rtol=1e-7)  # 8 significant digits in the file
    rows = rows_of(out)
    assert [r["name"] for r in rows] == ["a", "slow", "bad", "a"]
    assert [bool(r["error"]) for r in rows] == [False, False, True, True]
    assert leftovers(out) == []

    # restart: nothing is reduced again, nothing is rewritten
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.xye")}
    rc, so, err = cli(watch_once(incoming, poni, out), capsys)
    assert rc == 0, err
    summary = json.loads(so)
    assert (summary["n_processed"], summary["n_failed"], summary["n_skipped"]) == (0, 0, 4)
    assert rows_of(out) == rows
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.xye")} == mtimes

    # a rewritten a.tif is a new file: reported (output kept) unless --overwrite
    tifffile.imwrite(incoming / "a.tif", frames[2])
    base = watch_once(incoming, poni, out)
    rc, so, err = cli(base, capsys)
    summary = json.loads(so)
    assert rc == 2 and summary["n_failed"] == 1 and "output exists" in err
    assert (out / "a.xye").read_bytes() == a_bytes
    tifffile.imwrite(incoming / "a.tif", frames[1])  # rewritten again
    rc, so, err = cli([*base, "--overwrite"], capsys)
    assert rc == 0 and json.loads(so)["n_processed"] == 1, err
    np.testing.assert_allclose(read_pattern(out / "a.xye").y, ref.y, rtol=1e-7)
    assert len(rows_of(out)) == 6


def test_growing_stack_waits_for_stability(geo, tmp_path):
    """A stack that stays readable while frames are appended is reduced once, whole."""
    d, poni, frames = geo
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    results: queue.Queue = queue.Queue()
    watcher = Watcher(
        incoming,
        ImageReducer(poni, out, settings=IntegrationSettings(npt=NPT)),
        stable_s=0.6,
        on_result=lambda src, rows: results.put((Path(src).name, rows)),
    )
    thread = threading.Thread(target=watcher.run, kwargs={"handle_signals": False})
    thread.start()
    try:
        for i in range(4):  # each step leaves a valid TIFF of i + 1 pages
            tifffile.imwrite(incoming / "g.tif", frames[i % 3], append=True, metadata=None)
            time.sleep(0.1)  # well below stable_s
        name, rows = results.get(timeout=30)
        time.sleep(1.0)
    finally:
        watcher.stop()
        thread.join(timeout=30)
    assert name == "g.tif" and results.empty()
    assert [r["name"] for r in rows] == [f"g_f{i:04d}" for i in range(4)]
    assert all(r["error"] == "" for r in rows)


def test_ctrl_c_stops_cleanly(geo, tmp_path):
    """SIGINT in the main thread ends run() normally; the previous handler comes back."""
    d, poni, frames = geo
    incoming = tmp_path / "in"
    incoming.mkdir()
    tifffile.imwrite(incoming / "a.tif", frames[0])
    watcher = Watcher(
        incoming,
        ImageReducer(poni, tmp_path / "out", settings=IntegrationSettings(npt=NPT)),
        stable_s=0.1,
        on_result=lambda src, rows: timer.start(),
    )
    before = signal.getsignal(signal.SIGINT)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    res = watcher.run(handle_signals=True)  # returns only through the signal
    timer.join()
    assert res.stopped and len(res.processed) == 1
    assert signal.getsignal(signal.SIGINT) is before
    assert leftovers(tmp_path / "out") == []


class _Buggy(ImageReducer):
    """A reducer with a bug on one file (after writing its first output)."""

    def reduce(self, path, **kw):
        if Path(path).name == "boom.h5":
            super().reduce(path, stopped=lambda: len(kw["written"]) >= 1, written=kw["written"])
            raise RuntimeError("simulated bug")
        return super().reduce(path, **kw)


def test_internal_error_is_recorded_and_watch_goes_on(geo, tmp_path):
    d, poni, frames = geo
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    images.write_image(np.stack(frames), incoming / "boom.h5")
    tifffile.imwrite(incoming / "z.tif", frames[0])
    reducer = _Buggy(poni, out, settings=IntegrationSettings(npt=NPT))
    res = Watcher(incoming, reducer, stable_s=0.05).run(once=True, handle_signals=False)
    assert [Path(p["source"]).name for p in res.processed] == ["z.tif"]
    assert "internal error (RuntimeError: simulated bug)" in res.failed[0]["error"]
    assert sorted(p.name for p in out.glob("*.xye")) == ["z.xye"]  # no orphan output
    assert [r["name"] for r in rows_of(out)] == ["boom", "z"]


def test_interrupted_attempt_is_redone(geo, tmp_path):
    """Outputs of an attempt killed half-way may be replaced by the next run."""
    d, poni, frames = geo
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    out.mkdir()
    path = incoming / "s.h5"
    images.write_image(np.stack(frames), path)
    st = path.stat()
    state = WatchState(out)  # what a killed run leaves: a pending entry and one output
    key = WatchState.key(path, st.st_size, st.st_mtime_ns)
    state.begin(key, path, [out / f"s_f{i:04d}.xye" for i in range(3)])
    (out / "s_f0000.xye").write_text("half a job\n")
    (out / "s_f0001.xye").write_text("not ours\n")
    state2 = WatchState(out)
    assert state2.may_replace(out / "s_f0000.xye") and key not in state2
    reducer = ImageReducer(poni, out, settings=IntegrationSettings(npt=NPT))
    res = Watcher(incoming, reducer, stable_s=0.05).run(once=True, handle_signals=False)
    assert [p["source"] for p in res.processed] == [str(path)] and res.failed == []
    assert read_pattern(out / "s_f0001.xye").x.size > 100
    assert key in WatchState(out) and not WatchState(out).reclaimable


def test_pdf_step(geo, tmp_path, capsys):
    """--pdf writes STEM.gr = pdf.transform of the integrated pattern."""
    from xrdpdf.stages import pdf

    d, poni, frames = geo
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    tifffile.imwrite(incoming / "a.tif", frames[2])
    rc, so, err = cli(
        watch_once(incoming, poni, out, "--pdf", "--composition", "Ni", "--rmax", 10), capsys
    )
    assert rc == 0, err
    row = rows_of(out)[0]
    assert row["gr"] == str(out / "a.gr") and row["error"] == ""
    pat = Integrator(load_poni(poni), settings=IntegrationSettings(npt=NPT), poni=str(poni))
    expected = pdf.transform(pat.integrate(frames[2]), pdf.PdfConfig("Ni", rmax_A=10)).gr
    gr = read_pattern(out / "a.gr")
    np.testing.assert_allclose(gr.x, expected.x, atol=1e-9)
    # 9 significant digits in the file
    np.testing.assert_allclose(gr.y, expected.y, rtol=1e-8, atol=1e-8 * np.abs(expected.y).max())


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--pdf"], "--composition"),
        (["--composition", "Ni"], "only with --pdf"),
    ],
)
def test_bad_options(geo, tmp_path, capsys, extra, needle):
    d, poni, _ = geo
    rc, out, err = cli(["watch", tmp_path, "--poni", poni, "-o", tmp_path / "o", *extra], capsys)
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_bad_folder_and_state(geo, tmp_path, capsys):
    d, poni, _ = geo
    rc, _, err = cli(["watch", tmp_path / "nope", "--poni", poni, "-o", tmp_path / "o"], capsys)
    assert rc == 2 and "nope" in err and len(err.strip().splitlines()) == 1
    out = tmp_path / "o2"
    out.mkdir()
    (out / "watch_state.json").write_text("{truncated")
    rc, _, err = cli(["watch", tmp_path, "--poni", poni, "-o", out, "--once"], capsys)
    assert rc == 2 and "watch_state.json" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(InputError, match="folder to watch"):
        Watcher(tmp_path / "nope", ImageReducer(poni, tmp_path / "o3"))


def test_sigterm_subprocess(geo, tmp_path, capsys):
    """The installed script stops cleanly on SIGTERM, mid-stack too: no partial output."""
    d, poni, frames = geo
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    nstack = 60
    stack = np.stack([frames[i % 3] for i in range(nstack)])
    images.write_image(stack, tmp_path / "big.h5")
    proc = subprocess.Popen(
        [
            str(XRDPDF),
            "watch",
            str(incoming),
            "--poni",
            str(poni),
            "--npt",
            str(NPT),
            "-o",
            str(out),
            "--poll",
            "0.1",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        tifffile.imwrite(incoming / "a.tif", frames[0])
        deadline = time.monotonic() + 60
        while not (out / "a.xye").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.replace(tmp_path / "big.h5", incoming / "big.h5")  # lands at once
        while not (out / "big_f0000.xye").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        so, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    summary = json.loads(so)
    assert summary["stopped"] is True
    assert leftovers(out) == []
    done = sorted(p.name for p in out.glob("big_f*.xye"))
    listed = sorted(Path(r["output"]).name for r in rows_of(out) if r["name"].startswith("big"))
    assert done == listed and len(done) in (0, nstack)  # all of the stack or none of it
    # the next start finishes the job
    rc, so, err = cli(watch_once(incoming, poni, out), capsys)
    assert rc == 0, err
    assert len(list(out.glob("big_f*.xye"))) == nstack
    assert sorted(r["name"] for r in rows_of(out)) == sorted(
        ["a", *(f"big_f{i:04d}" for i in range(nstack))]
    )
