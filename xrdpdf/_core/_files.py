"""Atomic writes: a temporary file beside the target, renamed onto it when complete.

Every writer of xrdpdf goes through :func:`atomic_path` (or the pair
:func:`temp_beside` / :func:`commit` for a file kept open across calls).  The
temporary file is ``.NAME.PID.RANDOM.part`` + the target's suffix (so format
detection by extension still works), in the target's folder so that
``os.replace`` is atomic.  On any exception it is removed; a leftover of a
killed process (its PID gone, or older than a day) is removed by the next write
of the same target.  The finished file gets the permissions of a plain
``open(path, "w")``: ``0o666`` less the process umask, or the mode of the file
it replaces.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from xrdpdf._core.errors import InputError

_STALE_AFTER_S = 60.0  # a temp file this young may belong to a live writer on another host
_ABANDONED_AFTER_S = 86400.0  # older than a day: abandoned, whatever its PID says


def _nearest_existing(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            return parent
    return Path(".")


def _probe(path: Path, base: Path) -> None:
    if not base.is_dir():
        raise InputError(f"{path}: cannot write there, {base} is not a folder")
    try:  # a real probe: os.access says yes to root on a read-only file system
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        raise InputError(f"{path}: cannot write in {base} ({exc.strerror})") from None


def check_folder(path: str | os.PathLike) -> Path:
    """Check that outputs can be written in folder ``path`` (created later if absent).

    Raises
    ------
    InputError
        ``path`` or a parent of it is a file, or the place cannot be written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: output path exists and is not a folder")
    _probe(path, path if path.is_dir() else _nearest_existing(path))
    return path


def check_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """Check that ``path`` may be written, before any work starts.

    Raises
    ------
    InputError
        ``path`` exists and ``overwrite`` is false; it is a directory; the
        folder it would go in is a file, or cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: output path is a directory")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise InputError(f"{path}: output exists; pass overwrite=True to replace it")
    _probe(path, _nearest_existing(path))
    return path


def check_outputs(paths: Iterable[str | os.PathLike | None], overwrite: bool) -> list[Path]:
    """:func:`check_output` for each of several outputs, refusing one named twice.

    ``None`` entries (an optional output not asked for) are skipped.
    """
    seen: dict[str, Path] = {}
    out = []
    for p in paths:
        if p is None:
            continue
        path = check_output(p, overwrite)
        key = os.path.normcase(os.path.abspath(os.path.realpath(path)))
        if key in seen:
            raise InputError(f"{path}: the same file is named for two outputs")
        seen[key] = path
        out.append(path)
    return out


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale(path: str | os.PathLike) -> list[Path]:
    """Remove leftover temporary files of ``path`` whose writer is gone.

    A leftover is ``.NAME.*.part*`` beside ``path``.  It is removed when it is
    older than a minute and its PID is not a running process here (or it
    carries none), or when it is older than a day.  Returns what was removed.
    """
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(?:(\d+)\.)?[\w-]+\.part")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None:
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        pid = int(m.group(1)) if m.group(1) else None
        dead = pid is None or not _pid_alive(pid)
        if (dead and age > _STALE_AFTER_S) or age > _ABANDONED_AFTER_S:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def temp_beside(path: str | os.PathLike) -> Path:
    """Create an empty temporary file beside ``path`` (after removing stale ones)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    prefix = f".{path.name}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".part" + path.suffix)
    os.close(fd)
    return Path(tmp)


def commit(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Give ``tmp`` the permissions of a normally created file and rename it onto ``path``."""
    path = Path(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception (``KeyboardInterrupt`` included) the temporary file is
    removed and ``path`` is untouched, so no half-written output is left.
    """
    path = check_output(path, overwrite)
    tmp_path = temp_beside(path)
    try:
        yield tmp_path
        commit(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
