"""The watched folder: which names are images, when a file is complete, watchdog events.

A file is a candidate when its name is not hidden or temporary and its suffix is an image
format.  The watcher calls it complete when its :func:`signature` (size, modification time)
has held for a while and :func:`frame_count_if_readable` reads its last frame.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xrdpdf._core.errors import InputError
from xrdpdf.io import images

__all__ = [
    "IMAGE_SUFFIXES",
    "candidates",
    "frame_count_if_readable",
    "is_candidate",
    "signature",
    "start_observer",
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


_TEMP_SUFFIXES = (".part", ".tmp", "~")


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


def candidates(directory: Path, suffixes: Sequence[str]) -> list[Path]:
    """The candidate files of ``directory`` (not its sub-folders), sorted by name.

    Raises
    ------
    InputError
        The folder cannot be listed.
    """
    try:
        with os.scandir(directory) as it:
            names = sorted(e.name for e in it if is_candidate(e.name, suffixes) and _is_file(e))
    except OSError as exc:
        raise InputError(f"{directory}: cannot list the folder ({exc.strerror})") from exc
    return [directory / n for n in names]


def signature(path: Path) -> tuple[int, int] | None:
    """``(size, mtime_ns)`` of ``path``, or None when it is gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return int(st.st_size), int(st.st_mtime_ns)


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def frame_count_if_readable(path: Path) -> int:
    """Number of frames, after reading the last one (raises InputError if unreadable)."""
    n = images.frame_count(path)
    for _ in images.iter_frames(path, frames=[n - 1]):
        pass
    return n


def start_observer(directory: Path, wake: threading.Event) -> Any:
    """Start a daemon watchdog observer of ``directory`` that sets ``wake`` on every event.

    Raises whatever watchdog raises when it cannot start (ImportError, inotify limits, a file
    system without events); the caller falls back to polling.
    """
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    class _Handler(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            wake.set()

    obs = Observer()
    obs.schedule(_Handler(), str(directory), recursive=False)
    obs.daemon = True
    obs.start()
    return obs
