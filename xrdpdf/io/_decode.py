"""Bytes of a pattern file, decompressed by content, and text decoded by its BOM.

Compression is recognised from the magic bytes (gzip ``1f 8b``, bzip2 ``BZh``,
xz ``fd 37 7a 58 5a 00``), not from the suffix, so ``data.xye.gz`` and a gzip
file that lost its suffix read alike.  Text is UTF-8 unless a byte-order mark
says UTF-16/32 (or UTF-16 without a BOM shows as every other byte zero).
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
from pathlib import Path

from xrdpdf._core.errors import InputError

__all__ = ["COMPRESSED_SUFFIXES", "read_bytes", "decode_text", "logical_suffix"]

COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")
_MAGIC = (
    (b"\x1f\x8b", "gzip", gzip.decompress),
    (b"BZh", "bzip2", bz2.decompress),
    (b"\xfd7zXZ\x00", "xz", lzma.decompress),
)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def logical_suffix(path: Path) -> str:
    """The suffix under any compression suffix: ``a.xye.gz`` → ``.xye``."""
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def read_bytes(path: Path) -> tuple[bytes, str | None]:
    """Return the file's bytes, decompressed, and the compression's name (or None)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    for magic, name, decompress in _MAGIC:
        if raw.startswith(magic):
            try:
                return decompress(raw), name
            except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
                raise InputError(f"{path}: damaged {name} file ({exc})") from None
    return raw, None


def decode_text(path: Path, raw: bytes) -> tuple[str, str]:
    """Decode ``raw`` to text; return ``(text, encoding)``.

    Raises
    ------
    InputError
        Binary content (NUL bytes in a file without a UTF-16/32 signature).
    """
    for bom, enc in _BOMS:
        if raw.startswith(bom):
            return raw[len(bom) :].decode(enc, errors="replace"), enc
    head = raw[:4096]
    if len(head) >= 4 and head.count(b"\x00") * 2 >= len(head) - 1:
        # UTF-16 without a BOM: ASCII text with every other byte zero
        enc = "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
        return raw.decode(enc, errors="replace"), enc
    if b"\x00" in head:
        raise InputError(f"{path}: binary file of an unknown format, not a text pattern")
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"
