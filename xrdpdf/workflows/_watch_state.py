"""The watch state file: what was reduced from which file version, kept by real path."""

from __future__ import annotations

import contextlib
import csv
import io as _stdio
import json
import os
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from xrdpdf import io
from xrdpdf._core.errors import InputError

__all__ = [
    "STATE_NAME",
    "SUMMARY_NAME",
    "SUMMARY_COLUMNS",
    "WatchState",
    "output_lock",
    "outputs_of",
    "frames_of",
]


#: The state file in the output folder.
STATE_NAME = "watch_state.json"


#: The summary table in the output folder.
SUMMARY_NAME = "summary.csv"


#: Columns of ``summary.csv``.
SUMMARY_COLUMNS = ("name", "source", "frame", "output", "gr", "processed_at", "error")


_STATE_SCHEMA = 1


_LOCK_NAME = ".watch.lock"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _never_replace(target: Path) -> str:
    return "output exists; not replaced (pass overwrite=True)"


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


def outputs_of(entry: dict[str, Any]) -> list[str]:
    """The output files a state entry's rows name."""
    return [r[c] for r in entry.get("rows", []) for c in ("output", "gr") if r.get(c)]


def frames_of(entry: dict[str, Any]) -> int:
    """Frames of the file version an entry records (its rows when it predates ``nframes``)."""
    if "nframes" in entry:
        return int(entry["nframes"])
    return sum(1 for r in entry.get("rows", []) if r.get("frame") != "") or 1


@contextlib.contextmanager
def output_lock(outdir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``outdir`` (one watcher writes its state), where POSIX allows.

    Raises
    ------
    InputError
        Another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fh = open(outdir / _LOCK_NAME, "a")  # noqa: SIM115
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(f"{outdir}: another xrdpdf watch writes into this folder") from None
        yield
    finally:
        fh.close()
