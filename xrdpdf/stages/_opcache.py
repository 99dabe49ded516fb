"""On-disk cache of the fast integration operators: memory-mapped files, size cap, LRU eviction.

Location
    ``$XRDPDF_CACHE`` if set, else ``~/.cache/xrdpdf``; one file
    ``fastint_<key>.op`` per geometry and setting (the key is a hash of them),
    and small ``geom_<key>.op`` geometry snapshots (what a run reads from pyFAI,
    so that a run whose operator is cached starts without importing pyFAI; see
    :class:`xrdpdf.stages._geomsnap.GeometrySnapshot`).
Size cap
    ``$XRDPDF_CACHE_MAX_MB`` megabytes (10⁶ bytes), default :data:`DEFAULT_MAX_MB`.
    After a new operator is written, the least recently used files (by
    modification time, which a load refreshes) are deleted until the cache
    fits the cap; the file just written is always kept.  ``0`` keeps only it.
    Operators of the earlier ``fastint_*.npz`` layout are deleted then too.
Layout
    An 8-byte magic, the length of a JSON header (uint64, little endian), the
    header (field name → dtype, shape, byte offset; optional ``meta``, any JSON
    object), then each array's raw bytes
    at a 4096-byte aligned offset.  A load maps the arrays read-only
    (``numpy.memmap``), so start-up does not copy ~100 MB: pages are read from the
    page cache (or the disk) when the first frame touches them.

This is a private helper of :mod:`xrdpdf.stages._fastint`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core._files import atomic_path

__all__ = [
    "DEFAULT_MAX_MB",
    "default_cache_dir",
    "max_bytes",
    "load",
    "load_with_meta",
    "save",
    "evict",
]

#: Default size cap of the cache in MB (10⁶ bytes): about twenty 2048² operators.
DEFAULT_MAX_MB = 2000
_MAGIC = b"XRDPDFOP"
_ALIGN = 4096
_PATTERNS = ("fastint_*.op", "geom_*.op")
#: Operators of an earlier layout (never read again): deleted by every eviction.
_LEGACY = "fastint_*.npz"


def default_cache_dir() -> Path:
    """Directory of the operator cache: ``$XRDPDF_CACHE``, else ``~/.cache/xrdpdf``.

    Returns
    -------
    Path
        The directory (not created here).
    """
    env = os.environ.get("XRDPDF_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "xrdpdf"


def max_bytes() -> int:
    """The cache size cap in bytes, from ``$XRDPDF_CACHE_MAX_MB`` (default 2000 MB).

    An unreadable or negative value falls back to the default (the cache is an
    optimisation; a typo must not stop an integration).
    """
    text = os.environ.get("XRDPDF_CACHE_MAX_MB", "")
    try:
        mb = float(text)
    except ValueError:
        mb = DEFAULT_MAX_MB
    if not np.isfinite(mb) or mb < 0:
        mb = DEFAULT_MAX_MB
    return int(mb * 1e6)


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def save(
    arrays: Mapping[str, np.ndarray], path: Path, meta: Mapping[str, Any] | None = None
) -> None:
    """Write ``arrays`` (and ``meta``, a JSON object) atomically: temporary file, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {}
    offset = 0
    for name, a in arrays.items():
        fields[name] = [np.dtype(a.dtype).str, list(a.shape), offset]
        offset = _aligned(offset + a.nbytes)
    head: dict[str, Any] = {"fields": fields}
    if meta is not None:
        head["meta"] = dict(meta)
    header = json.dumps(head).encode()
    start = _aligned(len(_MAGIC) + 8 + len(header))
    with atomic_path(path, overwrite=True) as tmp, open(tmp, "wb") as fh:
        fh.write(_MAGIC + np.uint64(len(header)).tobytes() + header)
        for name, a in arrays.items():
            fh.seek(start + fields[name][2])
            fh.write(np.ascontiguousarray(a).tobytes())
        fh.truncate(start + offset)


def load(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a cache file, memory-mapped read-only; None if missing or malformed."""
    got = load_with_meta(path)
    return None if got is None else got[0]


def load_with_meta(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """``(arrays, meta)`` of a cache file (``meta`` {} if none); None if missing or malformed."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            if fh.read(len(_MAGIC)) != _MAGIC:
                return None
            nhead = int(np.frombuffer(fh.read(8), dtype="<u8")[0])
            if nhead > size:
                return None
            head = json.loads(fh.read(nhead))
        fields = head["fields"]
        meta = head.get("meta", {})
        if not isinstance(meta, dict):
            return None
        start = _aligned(len(_MAGIC) + 8 + nhead)
        out = {}
        for name, (dtype, shape, offset) in fields.items():
            dt = np.dtype(dtype)
            n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
            if start + offset + n > size:
                return None
            if n == 0:
                out[name] = np.zeros(shape, dtype=dt)
            else:
                out[name] = np.memmap(
                    path, dtype=dt, mode="r", offset=start + offset, shape=tuple(shape)
                )
        os.utime(path)  # a use: the eviction deletes the least recently used files
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return out, meta


def evict(directory: Path, keep: Path, limit: int | None = None) -> list[Path]:
    """Delete the least recently used operator files until ``directory`` fits ``limit``.

    Parameters
    ----------
    directory : Path
        The cache folder.
    keep : Path
        A file never deleted (the operator in use).
    limit : int, optional
        Bytes; :func:`max_bytes` when omitted.

    Returns
    -------
    list of Path
        The deleted files.
    """
    limit = max_bytes() if limit is None else limit
    removed = []
    for p in directory.glob(_LEGACY):
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    entries = []
    for p in (q for pattern in _PATTERNS for q in directory.glob(pattern)):
        try:
            st = p.stat()
        except OSError:  # deleted meanwhile by another process
            continue
        entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    for _, size, p in sorted(entries):
        if total <= limit:
            break
        if p == keep:
            continue
        try:
            p.unlink()
        except OSError:
            continue
        total -= size
        removed.append(p)
    return removed
