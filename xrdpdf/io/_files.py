"""Text and JSON writers on top of the atomic writes of :mod:`xrdpdf._core._files`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core._files import (
    atomic_path,
    check_folder,
    check_output,
    check_outputs,
    commit,
    remove_stale,
    temp_beside,
)

__all__ = [
    "atomic_path",
    "check_folder",
    "check_output",
    "check_outputs",
    "commit",
    "remove_stale",
    "temp_beside",
    "write_text",
    "write_json",
]


def write_text(text: str, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def json_default(obj: Any) -> Any:
    """``json.dumps`` default: numpy scalars and arrays, paths and mappings as JSON."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(obj: Any, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return write_text(json.dumps(obj, indent=2, default=json_default) + "\n", path, overwrite)


def _header_value(value: Any) -> str:
    if isinstance(value, str):
        return value.replace("\n", " ")
    return json.dumps(value, default=json_default)
