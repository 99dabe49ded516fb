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
import csv
import io as _stdio
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from xrdpdf import io
from xrdpdf._core.errors import InputError
from xrdpdf._core.results import Result
from xrdpdf.io import images
from xrdpdf.stages import integrate
from xrdpdf.workflows import reduce

__all__ = [
    "IMAGE_SUFFIXES",
    "STATE_NAME",
    "SUMMARY_NAME",
    "SUMMARY_COLUMNS",
    "is_candidate",
    "ImageReducer",
    "WatchState",
    "WatchResult",
    "Watcher",
    "frames_of",
    "outputs_of",
    "watch",
]

#: Suffixes of the image files the watcher reduces (case-insensitive).
IMAGE_SUFFIXES = (
    ".tif",
    ".tiff",
    ".edf",
    ".cbf",
    ".h5",
    ".hdf5",
    ".hdf",
    ".nxs",
    ".nx5",
    ".npy",
    ".img",
    ".mccd",
)
#: The state file in the output folder.
STATE_NAME = "watch_state.json"
#: The summary table in the output folder.
SUMMARY_NAME = "summary.csv"
#: Columns of ``summary.csv``.
SUMMARY_COLUMNS = ("name", "source", "frame", "output", "gr", "processed_at", "error")
_TEMP_SUFFIXES = (".part", ".tmp", "~")
_STATE_SCHEMA = 1
_LOCK_NAME = ".watch.lock"
#: Without events (watchdog mode), rescan the folder at least this often (s).
_RESCAN_S = 30.0
#: Longest single sleep, so that a signal-set stop flag is seen promptly (s).
_SLICE_S = 0.2


def is_candidate(path: str | os.PathLike, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> bool:
    """True if ``path``'s name marks an image to reduce (not hidden, temporary or other).

    Parameters
    ----------
    path : path-like
        File name or path; only the name is looked at.
    suffixes : sequence of str
        Accepted suffixes, lower case with the dot.
    """
    name = Path(path).name
    low = name.lower()
    if not name or name.startswith(".") or low.endswith(_TEMP_SUFFIXES):
        return False
    return Path(low).suffix in tuple(s.lower() for s in suffixes)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _row(name: str, path: Path, frame: int | None, **kw: Any) -> dict[str, Any]:
    """A summary row (keys :data:`SUMMARY_COLUMNS`), stamped now."""
    row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS, "")
    row.update(name=name, source=str(path), frame="" if frame is None else frame)
    row["processed_at"] = _now()
    for k, v in kw.items():
        row[k] = "" if v is None else (_one_line(v) if k == "error" else v)
    return row


# ------------------------------------------------------------------ reducer
class ImageReducer:
    """Reduce one image file to ``OUTDIR/STEM.xye`` (and ``STEM.gr``), as ``xrdpdf integrate``.

    The :class:`~xrdpdf.stages.integrate.Integrator` is built from the same inputs and
    with the same provenance as the ``integrate`` command, once (at
    construction, or from the first image when the PONI's detector has no
    shape), and reused for every image.

    Parameters
    ----------
    poni : path-like
        pyFAI geometry with wavelength.
    outdir : path-like
        Output folder (created if missing).
    mask : path-like, optional
        Mask image, non-zero = masked.
    darks : sequence of path-like, optional
        Dark image(s), averaged.
    flat : path-like, optional
        Flat field.
    settings : IntegrationSettings, optional
        Default: those of a pyFAI integration config (WorkerConfig JSON) given
        as ``poni``, else the ``integrate`` command's defaults.
    pdf_config : xrdpdf.stages.pdf.PdfConfig, optional
        When given, each pattern is also transformed to G(r) and written as
        ``STEM.gr`` (the optional PDF step).
    fmt : str
        Output format, as ``xrdpdf integrate --format``: ``xye`` (default),
        ``xy``, ``chi``, ``h5`` or ``nxazint1d`` (``STEM.nxs``, pyFAI's
        NXazint1d with its accumulators; one more pyFAI integration per frame).
    overrides : dict, optional
        With a WorkerConfig ``poni`` and no ``settings``: the settings given
        explicitly, which win over the config's.

    Raises
    ------
    InputError
        Bad geometry, mask, dark, flat or settings, or an output folder that
        is a file.
    """

    def __init__(
        self,
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
    ) -> None:
        self.poni = Path(poni)
        self.outdir = Path(outdir)
        self.pdf_config = pdf_config
        if fmt not in reduce.FRAME_FORMATS:
            known = ", ".join(reduce.FRAME_FORMATS)
            raise InputError(f"format must be one of {known}, got {fmt!r}")
        self.suffix = reduce.FRAME_FORMATS[fmt]
        if self.outdir.exists() and not self.outdir.is_dir():
            raise InputError(f"{self.outdir}: output path exists and is not a folder")
        self._reducer = reduce.Reducer(
            self.poni,
            settings,
            mask=mask,
            darks=darks,
            flat=flat,
            pdf_config=pdf_config,
            overrides=overrides,
        )
        self.settings = settings if settings is not None else integrate.IntegrationSettings()
        if settings is None and self._reducer._integrator is not None:
            self.settings = self._reducer._integrator.settings  # a WorkerConfig's
        self.outdir.mkdir(parents=True, exist_ok=True)

    def integrator(self, first_image: str | os.PathLike | None = None) -> integrate.Integrator:
        """The integrator; built from ``first_image``'s shape if the detector has none."""
        return self._reducer.integrator(first_image)

    @property
    def wavelength_A(self) -> float:
        """Wavelength of the geometry, Å."""
        return self._reducer.wavelength_A

    # -- names
    def output_names(self, path: str | os.PathLike, nframes: int) -> list[str]:
        """Output stems of an image with ``nframes`` frames (``STEM`` or ``STEM_fNNNN``)."""
        path = Path(path)
        if nframes <= 1:
            return [images.frame_stem(images.BadInput(path, ""))]
        return [images.frame_stem(images.BadInput(path, "", i)) for i in range(nframes)]

    def outputs_for(self, name: str) -> list[Path]:
        """Every file written for one pattern ``name``."""
        out = [self.outdir / f"{name}{self.suffix}"]
        if self.pdf_config is not None:
            out.append(self.outdir / f"{name}.gr")
        return out

    # -- reduction
    def reduce(
        self,
        path: str | os.PathLike,
        *,
        refuse: Callable[[Path], str | None] | None = None,
        stopped: Callable[[], bool] = lambda: False,
        written: list[Path] | None = None,
    ) -> list[dict[str, Any]] | None:
        """Reduce every frame of one image file; a bad frame gives an error row.

        Parameters
        ----------
        path : path-like
            The image.
        refuse : callable, optional
            ``refuse(output) -> str or None``, asked for an output that exists
            already: the reason not to replace it (that pattern then gets an
            error row), or ``None`` to replace it.  Default: existing outputs
            are never replaced.
        stopped : callable
            Checked between frames; when it returns True the reduction stops
            and ``None`` is returned.
        written : list, optional
            Every output written is appended to it (for clean-up on stop).

        Returns
        -------
        list of dict or None
            One row (keys :data:`SUMMARY_COLUMNS`) per frame, or per file
            when it cannot be read; ``None`` if stopped.
        """
        path = Path(path)
        written = [] if written is None else written
        if refuse is None:
            refuse = _never_replace
        rows: list[dict[str, Any]] = []
        try:
            integ = self.integrator(path)
        except InputError as exc:
            return [_row(path.stem, path, None, error=str(exc))]
        frames = images.iter_many([path], keep_dtype=True)
        nxs = self.suffix == reduce.NXAZINT_SUFFIX
        results = integrate.integrate_frames(integ, frames, accumulators=nxs)
        try:
            for res in results:
                if stopped():
                    return None
                name = images.frame_stem(res)
                if not res.ok:
                    rows.append(_row(name, path, res.index, error=res.error))
                    continue
                rows.append(self._write(name, path, res, refuse, written))
        finally:
            results.close()
        return rows

    def _write(
        self,
        name: str,
        path: Path,
        res: integrate.FrameResult,
        refuse: Callable[[Path], str | None],
        written: list[Path],
    ) -> dict[str, Any]:
        targets = self.outputs_for(name)
        for t in targets:
            reason = refuse(t) if t.exists() else None
            if reason:
                return _row(name, path, res.index, error=f"{t}: {reason}")
        xye = targets[0]
        try:
            reduced = self._reducer.finish(res)
        except InputError as exc:
            reduced, error = self._reducer.finish(res, pdf=False), f"PDF: {exc}"
        else:
            error = None
        try:
            files = reduce.write_reduced(reduced, self.outdir, suffix=self.suffix, overwrite=True)
        except InputError as exc:
            return _row(name, path, res.index, error=str(exc))
        written.extend(files)
        if error is not None:
            return _row(name, path, res.index, output=str(xye), error=error)
        if self.pdf_config is None:
            return _row(name, path, res.index, output=str(xye))
        return _row(name, path, res.index, output=str(xye), gr=str(targets[1]))


# -------------------------------------------------------------------- state
class WatchState:
    """The watcher's memory in ``OUTDIR/watch_state.json``: what was reduced, and how.

    Entries are keyed by real path (symbolic links resolved), size and
    modification time (ns).  An entry is ``"pending"`` while its file is
    reduced; the outputs of a pending entry (a run that was killed, or stopped
    in the middle of a file) may be replaced by a later attempt
    ("reclaimable").  File names are stored losslessly: a name that is not
    valid UTF-8 is kept as JSON ``\\udcXX`` escapes of its bytes
    (:func:`os.fsdecode`'s surrogates), so it reads back to the same name.

    Parameters
    ----------
    outdir : path-like
        The output folder holding the state file.

    Raises
    ------
    InputError
        If the state file exists but cannot be read.
    """

    def __init__(self, outdir: str | os.PathLike) -> None:
        self.outdir = Path(outdir)
        self.path = self.outdir / STATE_NAME
        self.summary_path = self.outdir / SUMMARY_NAME
        self.files: dict[str, dict[str, Any]] = {}
        self.reclaimable: set[str] = set()
        self.owners: dict[str, str] = {}
        self.latest: dict[str, str] = {}  # real path -> key of its last finished version
        self._pending: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                files = data["files"]
                reclaimable = data.get("reclaimable", [])
                if not isinstance(files, dict) or not isinstance(reclaimable, list):
                    raise TypeError("unexpected layout")
                for entry in files.values():
                    if not isinstance(entry, dict) or "path" not in entry or "status" not in entry:
                        raise TypeError(f"bad entry {str(entry)[:60]}")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise InputError(
                    f"{self.path}: cannot read the watch state ({_one_line(exc)}); "
                    "move it away to start afresh (every image is then reduced again)"
                ) from exc
            self.reclaimable.update(str(p) for p in reclaimable)
            for key, entry in files.items():
                if entry["status"] == "pending":  # an attempt that never finished
                    self.reclaimable.update(entry.get("outputs", []))
                else:
                    self.files[key] = entry
                    self._own(entry)
                    self.latest[key.rsplit("|", 2)[0]] = key

    def _own(self, entry: dict[str, Any]) -> None:
        for row in entry.get("rows", []):
            for col in ("output", "gr"):
                if row.get(col):
                    self.owners[row[col]] = entry["path"]
                    self.reclaimable.discard(row[col])

    @staticmethod
    def key(path: str | os.PathLike, size: int, mtime_ns: int) -> str:
        """The state key of a file version: ``realpath|size|mtime_ns``."""
        return f"{os.path.realpath(path)}|{int(size)}|{int(mtime_ns)}"

    def previous(self, key: str) -> tuple[str, dict[str, Any]] | None:
        """The last finished version of the file of ``key`` (another size or time), if any."""
        old = self.latest.get(key.rsplit("|", 2)[0])
        return None if old is None or old == key else (old, self.files[old])

    def supersede(self, old_key: str, keep: Sequence[str]) -> list[str]:
        """Forget an earlier version of a file; remove its outputs not in ``keep``.

        Returns the outputs removed (those of frames the new version names
        otherwise, e.g. ``STEM.xye`` of a one-page file that became a stack).
        """
        entry = self.files.pop(old_key)
        gone = [
            o
            for o in outputs_of(entry)
            if o not in set(keep) and self.owners.get(o) == entry["path"]
        ]
        for o in outputs_of(entry):
            self.owners.pop(o, None)
        for o in gone:
            with contextlib.suppress(OSError):
                os.unlink(o)
        return gone

    def __contains__(self, key: object) -> bool:
        return key in self.files

    def may_replace(self, output: str | os.PathLike) -> bool:
        """True for outputs of an attempt that never finished."""
        return str(output) in self.reclaimable

    def owner(self, output: str | os.PathLike) -> str | None:
        """The image whose reduction wrote ``output``, if known."""
        return self.owners.get(str(output))

    def begin(self, key: str, path: Path, outputs: Sequence[Path]) -> None:
        """Record (and save) that ``path`` is being reduced into ``outputs``."""
        self._pending[key] = {
            "path": str(path),
            "status": "pending",
            "outputs": [str(p) for p in outputs],
        }
        self._save()

    def finish(
        self, key: str, path: Path, rows: Sequence[dict[str, Any]], nframes: int | None = None
    ) -> None:
        """Record the result rows of ``path`` (saved) and rewrite ``summary.csv``."""
        self._pending.pop(key, None)
        ok = all(not r.get("error") for r in rows)
        entry = {
            "path": str(path),
            "status": "done" if ok else "failed",
            "rows": [dict(r) for r in rows],
        }
        if nframes is not None:
            entry["nframes"] = int(nframes)
        self.files[key] = entry
        self._own(entry)
        self.latest[key.rsplit("|", 2)[0]] = key
        self._save()
        self.write_summary()

    def rows(self) -> list[dict[str, Any]]:
        """Every result row, in the order the files were reduced."""
        return [row for entry in self.files.values() for row in entry.get("rows", [])]

    def _save(self) -> None:
        state = {
            "schema_version": _STATE_SCHEMA,
            "files": {**self.files, **self._pending},
            "reclaimable": sorted(self.reclaimable),
        }
        # one entry per line, compact (json's C encoder): fast also with 10⁴ files;
        # ASCII escapes keep a name's undecodable bytes (surrogates) losslessly
        lines = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in state["files"].items())
        text = (
            f'{{"schema_version": {_STATE_SCHEMA},\n'
            f'"reclaimable": {json.dumps(state["reclaimable"])},\n'
            f'"files": {{\n{lines}\n}}}}\n'
        )
        io.write_text(text, self.path, overwrite=True)

    def write_summary(self) -> Path:
        """Rewrite ``summary.csv`` (atomically) from the state."""
        buf = _stdio.StringIO()
        w = csv.DictWriter(
            buf, fieldnames=SUMMARY_COLUMNS, lineterminator="\n", extrasaction="ignore"
        )
        w.writeheader()
        for row in self.rows():
            w.writerow({k: row.get(k, "") for k in SUMMARY_COLUMNS})
        return io.write_text(buf.getvalue(), self.summary_path, overwrite=True)


# ------------------------------------------------------------------- result
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


# ------------------------------------------------------------------ watcher
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

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stop

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

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        fh = open(self.reducer.outdir / _LOCK_NAME, "a")  # noqa: SIM115
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise InputError(
                    f"{self.reducer.outdir}: another xrdpdf watch writes into this folder"
                ) from None
            yield
        finally:
            fh.close()

    def _observer(self):
        """Start a watchdog observer that wakes the loop; ``None`` when polling."""
        if self.poll_s is not None:
            return None
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer

            wake = self._wake

            class _Handler(FileSystemEventHandler):
                def on_any_event(self, event: Any) -> None:
                    wake.set()

            obs = Observer()
            obs.schedule(_Handler(), str(self.directory), recursive=False)
            obs.daemon = True
            obs.start()
        except Exception as exc:  # ImportError, inotify limits, unsupported file system
            self._log(f"watchdog unavailable ({_one_line(exc)}); polling every {self.stable_s:g} s")
            return None
        return obs

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
        with self._lock(), self._signals(handle_signals):
            self.state = WatchState(outdir)
            if self.state.reclaimable:
                self._log(
                    f"{len(self.state.reclaimable)} output(s) of an interrupted run will be redone"
                )
            self.state.write_summary()
            obs = None if once else self._observer()
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

    def _candidates(self) -> list[Path]:
        try:
            with os.scandir(self.directory) as it:
                names = sorted(
                    e.name for e in it if is_candidate(e.name, self.suffixes) and _is_file(e)
                )
        except OSError as exc:
            raise InputError(f"{self.directory}: cannot list the folder ({exc.strerror})") from exc
        return [self.directory / n for n in names]

    def _scan(self, result: WatchResult, pending: dict[str, _Pending], counted: set[str]) -> None:
        """One look at the folder: reduce every file that is new and complete."""
        assert self.state is not None
        seen = set()
        for path in self._candidates():
            if self._stop:
                return
            sp = str(path)
            seen.add(sp)
            sig = _signature(path)
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
                nframes = _readable(path)
            except InputError as exc:
                if now - p.since < self.settle_s:  # may still be being written
                    p.next_check = now + self.stable_s
                    continue
                del pending[sp]
                counted.add(key)
                self._record(result, key, path, [_row(path.stem, path, None, error=str(exc))])
                continue
            sig2 = _signature(path)  # unchanged while we read it?
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


def outputs_of(entry: dict[str, Any]) -> list[str]:
    """The output files a state entry's rows name."""
    return [r[c] for r in entry.get("rows", []) for c in ("output", "gr") if r.get(c)]


def frames_of(entry: dict[str, Any]) -> int:
    """Frames of the file version an entry records (its rows when it predates ``nframes``)."""
    if "nframes" in entry:
        return int(entry["nframes"])
    return sum(1 for r in entry.get("rows", []) if r.get("frame") != "") or 1


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return int(st.st_size), int(st.st_mtime_ns)


def _remove(paths: Sequence[Path]) -> None:
    for p in paths:
        with contextlib.suppress(OSError):
            p.unlink()


def _never_replace(target: Path) -> str:
    return "output exists; not replaced (pass overwrite=True)"


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _readable(path: Path) -> int:
    """Number of frames, after reading the last one (raises InputError if unreadable)."""
    n = images.frame_count(path)
    for _ in images.iter_frames(path, frames=[n - 1]):
        pass
    return n


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
