"""Beamline watch mode: reduce each detector image as it lands in a folder.

A :class:`Watcher` looks at one folder (not its sub-folders), waits until each
new image file is completely written, and reduces it with an
:class:`ImageReducer` — the same :class:`~xrdpdf.stages.integrate.Integrator`
settings and the same writer as ``xrdpdf integrate`` (``OUT/STEM.xye``, or
``OUT/STEM_fNNNN.xye`` for the frames of a stack), optionally followed by the
PDF transform (``OUT/STEM.gr``).  The integrator is built once and reused for
every image.

Bookkeeping lives in the output folder:

``watch_state.json``
    One entry per image file, keyed by its real path, size and modification
    time (ns), with its status, frame count and result rows.  A file whose key
    is there is never reduced again, also after a restart; a stack that has
    gained frames since (a growing multi-page TIFF or HDF5 stack) is reduced
    again and its earlier outputs are replaced.  Names that are not valid
    UTF-8 are stored losslessly.  Rewritten atomically after every file.
``summary.csv``
    One row per output pattern (per image, or per frame of a stack): ``name``
    (the image's stem, ``STEM_fNNNN`` for a frame), ``source``, ``frame``,
    ``output`` (the ``.xye``), ``gr`` (with PDF), ``processed_at`` (UTC) and
    ``error`` (empty on success).  Rewritten atomically from the state after
    every file, so a crash never leaves a half line and the table always
    agrees with the state.

A file is *complete* when its size and modification time have not changed
for ``stable_s`` seconds (two checks) and :mod:`xrdpdf.io.images` can open it
and read its last frame.  A file that stays unreadable for ``settle_s``
seconds is recorded as failed and the watcher goes on.  Hidden and temporary
files (names starting with ``.``, ending in ``.part``, ``.tmp`` or ``~``) and
files whose suffix is not an image format are ignored.

An existing output is never replaced unless ``overwrite`` is set, except the
outputs of an attempt that did not finish (the process was killed while
reducing that file); a second image with the same stem (``a.tif`` then
``a.edf``, or ``a.tif`` rewritten) is therefore recorded with an error
naming the file that owns the output.

Stopping (:meth:`Watcher.stop`, or SIGINT/SIGTERM while :meth:`Watcher.run`
runs in the main thread) takes effect between frames: the file being reduced
is abandoned, the outputs already written for it are removed, and it is
reduced again on the next start.  Every output is written through a
temporary file and renamed, so no half-written file is ever left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xrdpdf._core.errors import InputError
from xrdpdf._core.results import Result
from xrdpdf.stages import integrate
from xrdpdf.workflows._watch_folder import (
    IMAGE_SUFFIXES,
    candidates,
    frame_count_if_readable,
    is_candidate,
    signature,
    start_observer,
)
from xrdpdf.workflows._watch_reduce import ImageReducer, _row
from xrdpdf.workflows._watch_state import (
    STATE_NAME,
    SUMMARY_COLUMNS,
    SUMMARY_NAME,
    WatchState,
    _one_line,
    frames_of,
    output_lock,
    outputs_of,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "STATE_NAME",
    "SUMMARY_NAME",
    "SUMMARY_COLUMNS",
    "ImageReducer",
    "WatchState",
    "frames_of",
    "outputs_of",
    "is_candidate",
    "WatchResult",
    "Watcher",
    "watch",
]


#: Without events (watchdog mode), rescan the folder at least this often (s).
_RESCAN_S = 30.0


#: Longest single sleep, so that a signal-set stop flag is seen promptly (s).
_SLICE_S = 0.2


@dataclass
class WatchResult(Result):
    """What one :meth:`Watcher.run` did.

    Attributes
    ----------
    processed : list of dict
        Files reduced without error: ``source`` and ``outputs``.
    failed : list of dict
        Files with at least one error: ``source``, ``error`` and ``outputs``
        (what was written nonetheless).
    skipped : int
        Files found already reduced (in the state) and left alone.
    outdir, summary_csv, state_file : Path
        Where the results are.
    mode : str
        ``"watchdog"`` or ``"polling"``.
    stopped : bool
        True when a stop request (signal or :meth:`Watcher.stop`) ended the run.
    """

    processed: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    outdir: Path = Path(".")
    summary_csv: Path = Path(SUMMARY_NAME)
    state_file: Path = Path(STATE_NAME)
    mode: str = "polling"
    stopped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready summary."""
        return {
            "n_processed": len(self.processed),
            "n_failed": len(self.failed),
            "n_skipped": self.skipped,
            "processed": self.processed,
            "failed": self.failed,
            "outdir": str(self.outdir),
            "summary_csv": str(self.summary_csv),
            "state_file": str(self.state_file),
            "mode": self.mode,
            "stopped": self.stopped,
        }


@dataclass
class _Pending:
    sig: tuple[int, int]  # (size, mtime_ns) when first seen
    since: float  # monotonic time the signature was first seen
    next_check: float  # monotonic time of the next look


class Watcher:
    """Watch ``directory`` and reduce each new, complete image with ``reducer``.

    Parameters
    ----------
    directory : path-like
        The folder the detector writes into (not searched recursively).
    reducer : ImageReducer
        Integration (and optional PDF) settings and the output folder.
    poll_s : float, optional
        Poll the folder every ``poll_s`` seconds instead of using watchdog
        file-system events (e.g. on network file systems whose remote writes
        raise no events).  Default: watchdog, falling back to polling every
        ``stable_s`` if the observer cannot start (reported through ``log``).
    stable_s : float
        A file's size and modification time must stay unchanged this long
        (two checks) before it is read.  Default 1 s, or ``poll_s``.
    settle_s : float
        A file that stays unchanged but unreadable this long is recorded as
        failed.  Default 10 s (at least ``2 * stable_s``).
    overwrite : bool
        Replace existing outputs.
    suffixes : sequence of str
        Image suffixes to reduce; default :data:`IMAGE_SUFFIXES`.
    log : callable, optional
        ``log(message)`` for one-line progress and error messages.
    on_result : callable, optional
        ``on_result(source, rows)`` after each file (``rows`` as in the summary).

    Raises
    ------
    InputError
        Missing folder, bad timings, or an unreadable state file.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        reducer: ImageReducer,
        *,
        poll_s: float | None = None,
        stable_s: float | None = None,
        settle_s: float | None = None,
        overwrite: bool = False,
        suffixes: Sequence[str] = IMAGE_SUFFIXES,
        log: Callable[[str], None] | None = None,
        on_result: Callable[[Path, list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise InputError(f"{self.directory}: folder to watch not found")
        for name, v in (("poll", poll_s), ("stable", stable_s), ("settle", settle_s)):
            if v is not None and not (float(v) > 0 and float(v) < 1e6):
                raise InputError(f"{name} time must be a positive number of seconds, got {v!r}")
        self.reducer = reducer
        self.poll_s = None if poll_s is None else float(poll_s)
        if stable_s is None:
            stable_s = self.poll_s if self.poll_s is not None else 1.0
        self.stable_s = float(stable_s)
        self.settle_s = max(float(settle_s if settle_s is not None else 10.0), 2 * self.stable_s)
        self.overwrite = bool(overwrite)
        self.suffixes = tuple(s.lower() for s in suffixes)
        self._log = log or (lambda message: None)
        self._on_result = on_result
        self._stop = False
        self._wake = threading.Event()
        self.state: WatchState | None = None

    # -- control
    def stop(self) -> None:
        """Ask :meth:`run` to stop (thread-safe; takes effect between frames)."""
        self._stop = True
        self._wake.set()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: give up at once
        self._stop = True  # only a flag: the loop sleeps in short slices

    @contextlib.contextmanager
    def _signals(self, enabled: bool) -> Iterator[None]:
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in saved:
            signal.signal(s, self._on_signal)
        try:
            yield
        finally:
            for s, h in saved.items():
                signal.signal(s, h)

    def _observer(self):
        """A watchdog observer that wakes the loop; ``None`` (and a log line) if none starts."""
        try:
            return start_observer(self.directory, self._wake)
        except Exception as exc:  # ImportError, inotify limits, unsupported file system
            self._log(f"watchdog unavailable ({_one_line(exc)}); polling every {self.stable_s:g} s")
            return None

    # -- main loop
    def run(self, *, once: bool = False, handle_signals: bool = True) -> WatchResult:
        """Reduce complete images as they appear until stopped (or, with ``once``, done).

        Parameters
        ----------
        once : bool
            Reduce the images present now (waiting for those still being
            written) and return.
        handle_signals : bool
            In the main thread, turn SIGINT and SIGTERM into a clean stop
            while running (the previous handlers are restored).

        Returns
        -------
        WatchResult
        """
        outdir = self.reducer.outdir
        result = WatchResult(
            outdir=outdir, summary_csv=outdir / SUMMARY_NAME, state_file=outdir / STATE_NAME
        )
        with output_lock(outdir), self._signals(handle_signals):
            self.state = WatchState(outdir)
            if self.state.reclaimable:
                self._log(
                    f"{len(self.state.reclaimable)} output(s) of an interrupted run will be redone"
                )
            self.state.write_summary()
            obs = None if once or self.poll_s is not None else self._observer()
            result.mode = "watchdog" if obs is not None else "polling"
            if not once:
                how = (
                    "file-system events"
                    if obs is not None
                    else (f"polling every {self.poll_s or self.stable_s:g} s")
                )
                self._log(f"watching {self.directory} → {outdir} ({how}); Ctrl-C to stop")
            try:
                self._loop(result, once, obs is not None)
            finally:
                if obs is not None:
                    obs.stop()
                    obs.join(timeout=5)
        result.stopped = self._stop
        return result

    def _sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` or until woken; True if woken by an event."""
        end = time.monotonic() + seconds
        while not self._stop:
            left = end - time.monotonic()
            if left <= 0:
                return False
            if self._wake.wait(min(left, _SLICE_S)):
                self._wake.clear()
                return True
        return True

    def _loop(self, result: WatchResult, once: bool, events: bool) -> None:
        pending: dict[str, _Pending] = {}
        counted: set[str] = set()
        while not self._stop:
            self._scan(result, pending, counted)
            if self._stop or (once and not pending):
                return
            if not events:
                delay = self.poll_s or self.stable_s
            elif pending:
                delay = max(0.05, min(p.next_check for p in pending.values()) - time.monotonic())
            else:
                delay = _RESCAN_S
            self._sleep(delay)

    def _scan(self, result: WatchResult, pending: dict[str, _Pending], counted: set[str]) -> None:
        """One look at the folder: reduce every file that is new and complete."""
        assert self.state is not None
        seen = set()
        for path in candidates(self.directory, self.suffixes):
            if self._stop:
                return
            sp = str(path)
            seen.add(sp)
            sig = signature(path)
            if sig is None:  # gone meanwhile
                continue
            key = WatchState.key(path, *sig)
            if key in self.state:
                pending.pop(sp, None)
                if key not in counted:  # reduced by an earlier run
                    result.skipped += 1
                    counted.add(key)
                continue
            now = time.monotonic()
            p = pending.get(sp)
            if p is None or p.sig != sig:  # new, or still growing
                pending[sp] = _Pending(sig, now, now + self.stable_s)
                continue
            if now < p.next_check:
                continue
            try:
                nframes = frame_count_if_readable(path)
            except InputError as exc:
                if now - p.since < self.settle_s:  # may still be being written
                    p.next_check = now + self.stable_s
                    continue
                del pending[sp]
                counted.add(key)
                self._record(result, key, path, [_row(path.stem, path, None, error=str(exc))])
                continue
            sig2 = signature(path)  # unchanged while we read it?
            if sig2 != sig:
                if sig2 is not None:
                    t = time.monotonic()
                    pending[sp] = _Pending(sig2, t, t + self.stable_s)
                continue
            del pending[sp]
            if self._process(result, key, path, nframes):
                counted.add(key)
        for sp in list(pending):
            if sp not in seen:
                del pending[sp]

    def _refuse(self, target: Path) -> str | None:
        """Why an existing output may not be replaced (None: it may)."""
        assert self.state is not None
        if self.overwrite or self.state.may_replace(target):
            return None
        owner = self.state.owner(target)
        where = f" (from {owner})" if owner else ""
        return f"output exists{where}; not replaced (pass overwrite=True)"

    def _process(self, result: WatchResult, key: str, path: Path, nframes: int) -> bool:
        assert self.state is not None
        names = self.reducer.output_names(path, nframes)
        planned = [p for n in names for p in self.reducer.outputs_for(n)]
        # a stack that gained frames since its last reduction (a multi-page TIFF or an
        # HDF5 stack still being acquired): its own earlier outputs are redone
        old = self.state.previous(key)
        grown = old is not None and nframes > frames_of(old[1])
        own = set(outputs_of(old[1])) if grown and old is not None else set()

        def refuse(target: Path) -> str | None:
            return None if str(target) in own else self._refuse(target)

        self.state.begin(key, path, planned)
        written: list[Path] = []
        try:
            rows = self.reducer.reduce(
                path, refuse=refuse, stopped=lambda: self._stop, written=written
            )
        except Exception as exc:  # a bug must not stop the beamline: record it, go on
            reason = f"internal error ({type(exc).__name__}: {_one_line(exc)}); please report"
            _remove(written)
            rows = [_row(path.stem, path, None, error=f"{path}: {reason}")]
        if rows is None:  # stopped: leave no partial result of this file
            _remove(written)
            self._log(f"{path.name}: interrupted; it will be reduced on the next start")
            return False
        if grown and old is not None:
            keep = [r[c] for r in rows for c in ("output", "gr") if r.get(c)]
            self.state.supersede(old[0], keep)
            self._log(f"{path.name}: grew from {frames_of(old[1])} to {nframes} frames; redone")
        self._record(result, key, path, rows, nframes)
        return True

    def _record(
        self,
        result: WatchResult,
        key: str,
        path: Path,
        rows: list[dict[str, Any]],
        nframes: int | None = None,
    ) -> None:
        assert self.state is not None
        self.state.finish(key, path, rows, nframes)
        outputs = [r[c] for r in rows for c in ("output", "gr") if r.get(c)]
        errors = [r["error"] for r in rows if r.get("error")]
        if errors:
            result.failed.append(
                {"source": str(path), "error": "; ".join(errors), "outputs": outputs}
            )
            for e in errors:
                self._log(f"error: {e}")
        else:
            result.processed.append({"source": str(path), "outputs": outputs})
            self._log(f"{path.name} → {', '.join(outputs)}")
        if self._on_result is not None:
            self._on_result(path, rows)


def _remove(paths: Sequence[Path]) -> None:
    for p in paths:
        with contextlib.suppress(OSError):
            p.unlink()


def watch(
    directory: str | os.PathLike,
    poni: str | os.PathLike,
    outdir: str | os.PathLike,
    *,
    mask: str | os.PathLike | None = None,
    darks: Sequence[str | os.PathLike] | None = None,
    flat: str | os.PathLike | None = None,
    settings: integrate.IntegrationSettings | None = None,
    pdf_config: Any | None = None,
    fmt: str = "xye",
    overrides: dict[str, Any] | None = None,
    once: bool = False,
    poll_s: float | None = None,
    stable_s: float | None = None,
    settle_s: float | None = None,
    overwrite: bool = False,
    handle_signals: bool = True,
    log: Callable[[str], None] | None = None,
    on_result: Callable[[Path, list[dict[str, Any]]], None] | None = None,
) -> WatchResult:
    """Reduce every new image in ``directory`` into ``outdir`` until stopped.

    Builds an :class:`ImageReducer` and a :class:`Watcher` and runs it; see
    those classes for the parameters.  With ``once``, reduces what is there
    and returns.

    Returns
    -------
    WatchResult

    Examples
    --------
    >>> from xrdpdf.workflows.watch import watch
    >>> poni = "calib/11idc_default.poni"
    >>> res = watch("incoming/", poni, "reduced/", once=True)  # doctest: +SKIP
    >>> res.to_dict()["n_processed"]  # doctest: +SKIP
    12
    """
    reducer = ImageReducer(
        poni,
        outdir,
        mask=mask,
        darks=darks,
        flat=flat,
        settings=settings,
        pdf_config=pdf_config,
        fmt=fmt,
        overrides=overrides,
    )
    watcher = Watcher(
        directory,
        reducer,
        poll_s=poll_s,
        stable_s=stable_s,
        settle_s=settle_s,
        overwrite=overwrite,
        log=log,
        on_result=on_result,
    )
    return watcher.run(once=once, handle_signals=handle_signals)
