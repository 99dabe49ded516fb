"""Reading and writing 1-D patterns, atomically.

Readers understand the files users actually have:

* our own ``.xy``/``.xye``/``.dat`` (``# key = value`` header with ``unit`` and
  ``wavelength_A``), so that a later step never guesses;
* pyFAI's text output (JSON PONI in the comment header, wavelength in m, the
  unit in the column-title line);
* Fit2D / pyFAI ``.chi`` (four header lines: title, axis label, ``Intensity``,
  number of points) — a ``Q-Space`` or ``nm`` axis label means Q in nm⁻¹;
* SrXgui ``.chi`` (an ini header up to ``#### start data``, then Q, I, σ);
* PDFgetX3-style ``.iq``, ``.sq``, ``.fq``, ``.gr`` (``[DEFAULT]`` header,
  ``#### start data``, ``#L`` column line);
* NeXus/HDF5 ``NXdata`` groups (signal, axis with ``units``, ``errors``).

A bare two- or three-column file needs ``xtype`` (``"q"`` Å⁻¹, ``"qnm"`` nm⁻¹ or
``"tth"`` degrees, the last with a wavelength).  Q in nm⁻¹ is converted to Å⁻¹
on reading; every :class:`~xrdpdf.pattern.Pattern` carries Å⁻¹ or degrees.

Writers go through :func:`atomic_path`: a temporary file in the target's
directory, renamed onto the target only when complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import units
from .errors import InputError
from .pattern import Pattern

__all__ = [
    "XTYPES",
    "read_pattern",
    "write_pattern",
    "atomic_path",
    "write_json",
    "write_text",
    "check_output",
    "PATTERN_SUFFIXES",
]

#: ``xtype`` keywords (PDFgetX3 ``dataformat`` QA / Qnm / twotheta).
XTYPES = ("q", "qnm", "tth")
PATTERN_SUFFIXES = (
    ".xy",
    ".xye",
    ".dat",
    ".chi",
    ".txt",
    ".iq",
    ".sq",
    ".fq",
    ".gr",
    ".h5",
    ".hdf5",
    ".nxs",
)
_PDF_SUFFIXES = {
    ".iq": ("Q(Å$^{-1}$)", "I(a.u.)"),
    ".sq": ("Q(Å$^{-1}$)", "S"),
    ".fq": ("Q(Å$^{-1}$)", "F(Å$^{-1}$)"),
    ".gr": ("r(Å)", "G(Å$^{-2}$)"),
}
_HDF5_SUFFIXES = (".h5", ".hdf5", ".nxs", ".nx5")


# --------------------------------------------------------------------------- writing
def check_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """Raise :class:`InputError` if ``path`` exists and ``overwrite`` is false."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path}: output exists; use --overwrite to replace it")
    if path.exists() and path.is_dir():
        raise InputError(f"{path}: output path is a directory")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched,
    so no half-written output is ever left behind.
    """
    path = check_output(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(text: str, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _json_default(obj: Any) -> Any:
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
    return write_text(json.dumps(obj, indent=2, default=_json_default) + "\n", path, overwrite)


def _header_value(value: Any) -> str:
    if isinstance(value, str):
        return value.replace("\n", " ")
    return json.dumps(value, default=_json_default)


def _text_table(pattern: Pattern, with_sigma: bool) -> np.ndarray:
    cols = [pattern.x, pattern.y]
    if with_sigma:
        sig = pattern.sigma if pattern.sigma is not None else np.zeros_like(pattern.y)
        cols.append(sig)
    return np.column_stack(cols)


def write_pattern(
    pattern: Pattern,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    header: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``pattern`` to ``path``; the format follows the suffix.

    Parameters
    ----------
    pattern : Pattern
        What to write.
    path : path-like
        ``.xye`` (x, y, σ), ``.xy``/``.dat`` (x, y), ``.chi`` (Fit2D layout),
        ``.h5``/``.nxs`` (NXdata), or ``.iq``/``.sq``/``.fq``/``.gr``
        (PDFgetX3-like: ``[DEFAULT]`` header of ``key = value`` lines, then
        ``#### start data``).
    overwrite : bool
        Replace an existing file (otherwise :class:`InputError`).
    header : mapping, optional
        Extra ``key = value`` lines (e.g. every PDF setting).

    Returns
    -------
    Path
        The written path.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    meta: dict[str, Any] = {}
    meta.update({k: v for k, v in pattern.metadata.items() if v is not None})
    if header:
        meta.update(header)
    if suffix in _HDF5_SUFFIXES:
        return _write_nexus(pattern, path, overwrite, meta)
    if suffix in _PDF_SUFFIXES:
        text = _pdfgetx_text(pattern, suffix, meta)
    elif suffix == ".chi":
        text = _chi_text(pattern, meta)
    elif suffix in (".xye", ".xy", ".dat", ".txt"):
        text = _xye_text(pattern, meta, with_sigma=suffix == ".xye")
    else:
        raise InputError(
            f"{path}: unknown output format {suffix!r}; "
            "use one of .xye .xy .chi .h5 .iq .sq .fq .gr"
        )
    return write_text(text, path, overwrite)


def _own_header_lines(pattern: Pattern, meta: Mapping[str, Any]) -> list[str]:
    from . import __version__

    lines = [f"xrdpdf {__version__}", f"unit = {pattern.unit}"]
    if pattern.wavelength_A is not None:
        lines.append(f"wavelength_A = {pattern.wavelength_A!r}")
    for key, value in meta.items():
        if key in ("unit", "wavelength_A"):
            continue
        lines.append(f"{key} = {_header_value(value)}")
    return lines


def _xye_text(pattern: Pattern, meta: Mapping[str, Any], with_sigma: bool) -> str:
    lines = ["# " + line for line in _own_header_lines(pattern, meta)]
    cols = [pattern.unit, "I"] + (["sigma"] if with_sigma else [])
    lines.append("# columns = " + " ".join(cols))
    body = "\n".join(" ".join(f"{v: .8e}" for v in row) for row in _text_table(pattern, with_sigma))
    return "\n".join(lines) + "\n" + body + "\n"


def _chi_text(pattern: Pattern, meta: Mapping[str, Any]) -> str:
    label = {
        units.Q_A: "Q (Angstrom-1)",
        units.TTH_DEG: "2-Theta Angle (Degrees)",
        units.R_A: "r (Angstrom)",
    }[pattern.unit]
    title = "; ".join(_own_header_lines(pattern, meta))
    table = _text_table(pattern, pattern.sigma is not None)
    body = "\n".join(" ".join(f"{v: .8e}" for v in row) for row in table)
    return f"{title}\n{label}\nIntensity\n{pattern.x.size:>14d}\n{body}\n"


def _pdfgetx_text(pattern: Pattern, suffix: str, meta: Mapping[str, Any]) -> str:
    from . import __version__

    lines = ["[DEFAULT]", "", f"version = xrdpdf-{__version__}", ""]
    for key, value in meta.items():
        lines.append(f"{key} = {_header_value(value)}")
    if pattern.wavelength_A is not None and "wavelength" not in meta:
        lines.append(f"wavelength = {pattern.wavelength_A!r}")
    lines += ["", "# End of config " + "-" * 62, "", "#### start data", "#S 1"]
    xl, yl = _PDF_SUFFIXES[suffix]
    with_sigma = pattern.sigma is not None
    lines.append(f"#L {xl}  {yl}" + (f"  d{yl}" if with_sigma else ""))
    table = _text_table(pattern, with_sigma)
    body = "\n".join(" ".join(f"{v:.9g}" for v in row) for row in table)
    return "\n".join(lines) + "\n" + body + "\n"


def _write_nexus(pattern: Pattern, path: Path, overwrite: bool, meta: Mapping[str, Any]) -> Path:
    import h5py

    axis_name = {units.Q_A: "q", units.TTH_DEG: "two_theta", units.R_A: "r"}[pattern.unit]
    axis_units = {units.Q_A: "1/angstrom", units.TTH_DEG: "degree", units.R_A: "angstrom"}
    with atomic_path(path, overwrite) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["default"] = "entry"
        h5.attrs["creator"] = "xrdpdf"
        entry = h5.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "data"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data.attrs["signal"] = "I"
        data.attrs["axes"] = axis_name
        data.attrs["xrdpdf_unit"] = pattern.unit
        ax = data.create_dataset(axis_name, data=np.asarray(pattern.x))
        ax.attrs["units"] = axis_units[pattern.unit]
        data.create_dataset("I", data=np.asarray(pattern.y))
        if pattern.sigma is not None:
            data.create_dataset("I_errors", data=np.asarray(pattern.sigma))
        if pattern.wavelength_A is not None:
            wl = entry.create_dataset("wavelength", data=pattern.wavelength_A)
            wl.attrs["units"] = "angstrom"
        md = entry.create_group("metadata")
        md.attrs["NX_class"] = "NXcollection"
        for key, value in meta.items():
            md.attrs[str(key)] = _header_value(value)
    return path


# --------------------------------------------------------------------------- reading
_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NUMERIC_ROW = re.compile(rf"^\s*{_FLOAT}(?:[\s,;]+{_FLOAT})+\s*$")


def read_pattern(
    path: str | os.PathLike,
    *,
    xtype: str | None = None,
    wavelength_A: float | None = None,
) -> Pattern:
    """Read a 1-D pattern from ``path``.

    Parameters
    ----------
    path : path-like
        A text pattern (``.xy``, ``.xye``, ``.chi``, ``.dat``, ``.iq``, ``.sq``,
        ``.fq``, ``.gr``) or NeXus/HDF5 file.
    xtype : {"q", "qnm", "tth"}, optional
        Radial unit of a file whose header does not state one: Q in Å⁻¹, Q in
        nm⁻¹ (converted to Å⁻¹) or 2θ in degrees.  Ignored when the header
        states the unit, except that a conflicting value is an error.
    wavelength_A : float, optional
        Wavelength in Å; overrides one found in the header (needed for 2θ
        data without one).

    Returns
    -------
    Pattern
        With Q in Å⁻¹, 2θ in degrees, or r in Å.

    Raises
    ------
    InputError
        Missing or unreadable file, no numeric data, unknown unit.
    """
    path = Path(path)
    if xtype is not None and xtype not in XTYPES:
        raise InputError(f"{path}: xtype must be one of {', '.join(XTYPES)}, got {xtype!r}")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a pattern file")
    if path.suffix.lower() in _HDF5_SUFFIXES:
        info = _read_nexus(path)
    else:
        info = _read_text(path)
    return _finish(path, info, xtype, wavelength_A)


def _finish(
    path: Path, info: dict[str, Any], xtype: str | None, wavelength_A: float | None
) -> Pattern:
    data = info["data"]
    file_unit = info.get("unit")  # one of q, qnm, tth, r or None
    unit_key = file_unit
    if xtype is not None:
        if file_unit is not None and file_unit != xtype and file_unit != "r":
            raise InputError(
                f"{path}: header says the x axis is {file_unit!r} but xtype={xtype!r} was given"
            )
        unit_key = unit_key or xtype
    if unit_key is None:
        raise InputError(
            f"{path}: the file does not say whether x is Q or 2θ; give --xtype q|qnm|tth "
            "(and --wavelength for tth)"
        )
    wl = wavelength_A if wavelength_A is not None else info.get("wavelength_A")
    x = data[:, 0]
    y = data[:, 1]
    sigma = data[:, 2] if data.shape[1] >= 3 else None
    if sigma is not None and (np.any(sigma < 0) or not np.all(np.isfinite(sigma))):
        raise InputError(f"{path}: the third column (σ) has negative or non-finite values")
    if unit_key == "qnm":
        x = x / 10.0
        unit = units.Q_A
    elif unit_key == "q":
        unit = units.Q_A
    elif unit_key == "tth":
        unit = units.TTH_DEG
        if wl is None:
            raise InputError(f"{path}: 2θ data need the wavelength; give --wavelength (Å)")
    elif unit_key == "r":
        unit = units.R_A
    else:  # pragma: no cover - guarded above
        raise InputError(f"{path}: unknown unit {unit_key!r}")
    if not np.all(np.isfinite(y)):
        raise InputError(f"{path}: {int(np.sum(~np.isfinite(y)))} intensities are NaN or inf")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    sigma = None if sigma is None else sigma[order]
    if np.any(np.diff(x) <= 0):
        raise InputError(f"{path}: repeated x values")
    meta = dict(info.get("metadata", {}))
    meta["source"] = str(path)
    meta.setdefault("format", info.get("format", "text"))
    try:
        return Pattern(x=x, y=y, unit=unit, wavelength_A=wl, sigma=sigma, metadata=meta)
    except InputError as exc:
        msg = str(exc)
        raise InputError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


def _unit_from_label(label: str) -> str | None:
    """Guess a unit keyword from an axis label or column title."""
    s = label.strip().lower()
    if not s:
        return None
    if "q_nm" in s or "nm-1" in s or "nm^-1" in s or "1/nm" in s or "q-space" in s:
        return "qnm"
    if (
        "q_a" in s
        or "angstrom-1" in s
        or "a^-1" in s
        or "å^-1" in s
        or "1/a" in s
        or "å$^{-1}" in s
        or "(å-1)" in s
        or s.startswith("q")
        and "å" in s
    ):
        return "q"
    if "2th_deg" in s or "2-theta" in s or "2theta" in s or "twotheta" in s:
        return "tth"
    if "2th_rad" in s:
        return "tth_rad"
    if s.startswith("r(") or s.startswith("r_a") or s.startswith("r (") or s == "r":
        return "r"
    return None


def _load_numeric(path: Path, lines: list[str], start: int) -> np.ndarray:
    rows = []
    for line in lines[start:]:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if not _NUMERIC_ROW.match(s):
            raise InputError(f"{path}: non-numeric line in the data: {s[:60]!r}")
        rows.append([float(v) for v in re.split(r"[\s,;]+", s)])
    if not rows:
        raise InputError(f"{path}: no numeric data")
    ncol = min(len(r) for r in rows)
    if ncol < 2:
        raise InputError(f"{path}: need at least two columns (x, y)")
    if any(len(r) != len(rows[0]) for r in rows):
        raise InputError(f"{path}: rows have different numbers of columns")
    return np.asarray(rows, dtype=float)[:, : min(ncol, 3)]


def _parse_ini_value(value: str) -> Any:
    value = value.strip()
    try:
        return json.loads(value)
    except (ValueError, TypeError):
        return value


def _read_text(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if b"\x00" in raw[:4096]:
        raise InputError(f"{path}: binary file, not a text pattern")
    text = raw.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if not lines:
        raise InputError(f"{path}: empty file")
    # PDFgetX3 / SrXgui: ini header up to "#### start data"
    for i, line in enumerate(lines):
        if line.strip().lower().startswith("#### start data"):
            return _read_ini_style(path, lines, i)
    first = lines[0].strip()
    if first.startswith("#"):
        return _read_hash_header(path, lines)
    # Fit2D / pyFAI .chi: title, axis label, "Intensity", npts
    if len(lines) > 4 and not _NUMERIC_ROW.match(first) and re.match(r"^\s*\d+\s*$", lines[3]):
        unit = _unit_from_label(lines[1]) or _unit_from_label(lines[0])
        if unit == "tth_rad":
            raise InputError(f"{path}: 2θ in radians is not supported; convert to degrees")
        meta = {"title": first}
        m = re.search(r"wavelength_A\s*=\s*(" + _FLOAT + ")", first)
        info: dict[str, Any] = {"unit": unit, "format": "chi", "metadata": meta}
        if m:
            info["wavelength_A"] = float(m.group(1))
        info["data"] = _load_numeric(path, lines, 4)
        return info
    return {"unit": None, "format": "bare", "data": _load_numeric(path, lines, 0), "metadata": {}}


def _read_ini_style(path: Path, lines: list[str], start: int) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    for line in lines[:start]:
        s = line.strip()
        if not s or s.startswith(("#", "[")) or "=" not in s:
            continue
        key, _, value = s.partition("=")
        cfg[key.strip().lower()] = value.strip()
    unit: str | None = None
    column_line = next((ln for ln in lines[start:] if ln.startswith("#L")), "")
    if column_line:
        unit = _unit_from_label(column_line[2:].split()[0] if column_line[2:].split() else "")
    suffix = path.suffix.lower()
    if unit is None and suffix in (".iq", ".sq", ".fq"):
        unit = "q"
    if unit is None and suffix == ".gr":
        unit = "r"
    if unit is None:  # SrXgui: integrationspace = qspace | twothetaspace
        space = str(cfg.get("integrationspace", "")).lower()
        if space.startswith("q"):
            unit = "q"
        elif space.startswith("two") or space.startswith("tth"):
            unit = "tth"
    if unit is None and "dataformat" in cfg:
        unit = {"qa": "q", "qnm": "qnm", "twotheta": "tth"}.get(cfg["dataformat"].lower())
    info: dict[str, Any] = {"unit": unit, "format": "pdfgetx" if "[DEFAULT]" in lines else "srx"}
    wl = cfg.get("wavelength_a") or cfg.get("wavelength")
    if wl is not None and unit != "r":
        try:
            wl_f = float(wl)
            if wl_f > 0:
                info["wavelength_A"] = wl_f
        except ValueError:
            pass
    info["metadata"] = {f"header.{k}": v for k, v in cfg.items()}
    info["data"] = _load_numeric(path, lines, start + 1)
    return info


def _read_hash_header(path: Path, lines: list[str]) -> dict[str, Any]:
    header = []
    start = 0
    for i, line in enumerate(lines):
        if line.strip().startswith("#") or not line.strip():
            header.append(line.strip().lstrip("#").strip())
            start = i + 1
        else:
            break
    info: dict[str, Any] = {"unit": None, "metadata": {}}
    own = bool(header) and header[0].startswith("xrdpdf")
    if own:
        info["format"] = "xrdpdf"
        for h in header[1:]:
            key, sep, value = h.partition(" = ")
            if not sep:
                continue
            key = key.strip()
            if key == "unit":
                info["unit"] = {units.Q_A: "q", units.TTH_DEG: "tth", units.R_A: "r"}.get(
                    value.strip()
                )
                if info["unit"] is None:
                    raise InputError(f"{path}: unknown unit {value.strip()!r} in header")
            elif key == "wavelength_A":
                info["wavelength_A"] = float(value)
            elif key != "columns":
                info["metadata"][key] = _parse_ini_value(value)
    else:
        info["format"] = (
            "pyfai" if any('"poni_version"' in h or "pyFAI" in h for h in header) else "commented"
        )
        # pyFAI: JSON PONI with "wavelength" in metres; last line names the columns
        m = next(
            (
                re.search(r'"wavelength"\s*:\s*(' + _FLOAT + ")", h)
                for h in header
                if '"wavelength"' in h
            ),
            None,
        )
        if m:
            info["wavelength_A"] = float(m.group(1)) * 1e10
        for h in reversed(header):
            if h:
                unit = _unit_from_label(h.split()[0]) if h.split() else None
                if unit == "tth_rad":
                    raise InputError(f"{path}: 2θ in radians is not supported; convert to degrees")
                info["unit"] = unit
                break
    info["data"] = _load_numeric(path, lines, start)
    return info


def _read_nexus(path: Path) -> dict[str, Any]:
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None
    with h5:
        group = _find_nxdata(h5)
        if group is None:
            raise InputError(f"{path}: no NXdata group with a 1-D signal")
        signal = _attr_str(group.attrs.get("signal"))
        axes = group.attrs.get("axes")
        axis = _attr_str(axes[0] if isinstance(axes, np.ndarray | list) else axes)
        if signal not in group or axis not in group:
            raise InputError(f"{path}: NXdata group {group.name} lacks its signal or axis")
        y = np.asarray(group[signal][()], dtype=float)
        x = np.asarray(group[axis][()], dtype=float)
        if y.ndim != 1 or x.shape != y.shape:
            raise InputError(f"{path}: NXdata signal must be 1-D and match its axis")
        err = None
        for name in (f"{signal}_errors", "errors"):
            if name in group:
                err = np.asarray(group[name][()], dtype=float)
                break
        unit_attr = _attr_str(group[axis].attrs.get("units", "")).lower()
        own = _attr_str(group.attrs.get("xrdpdf_unit", ""))
        unit = {units.Q_A: "q", units.TTH_DEG: "tth", units.R_A: "r"}.get(own)
        if unit is None:
            unit = {
                "1/angstrom": "q",
                "angstrom^-1": "q",
                "1/a": "q",
                "a^-1": "q",
                "1/nm": "qnm",
                "nm^-1": "qnm",
                "degree": "tth",
                "degrees": "tth",
                "deg": "tth",
                "angstrom": "r",
            }.get(unit_attr)
        wl = None
        entry = group.parent
        if "wavelength" in entry:
            wl = float(np.asarray(entry["wavelength"][()]).ravel()[0])
            wl_units = _attr_str(entry["wavelength"].attrs.get("units", "angstrom")).lower()
            wl = wl * {"m": 1e10, "nm": 10.0}.get(wl_units, 1.0)
        meta = {}
        if "metadata" in entry:
            meta = {k: _parse_ini_value(_attr_str(v)) for k, v in entry["metadata"].attrs.items()}
    cols = [x, y] + ([err] if err is not None else [])
    info: dict[str, Any] = {
        "unit": unit,
        "format": "nexus",
        "metadata": meta,
        "data": np.column_stack(cols),
    }
    if wl is not None:
        info["wavelength_A"] = wl
    return info


def _attr_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.size == 1:
        return _attr_str(value.ravel()[0])
    return "" if value is None else str(value)


def _find_nxdata(h5) -> Any:
    """The default NXdata group (``default`` attributes), else the first 1-D one."""
    node = h5
    for _ in range(3):
        default = _attr_str(node.attrs.get("default", ""))
        if default and default in node:
            node = node[default]
            if _attr_str(node.attrs.get("NX_class", "")) == "NXdata":
                return node
        else:
            break
    found = []

    def visit(name, obj):
        import h5py

        if isinstance(obj, h5py.Group) and _attr_str(obj.attrs.get("NX_class", "")) == "NXdata":
            found.append(obj)

    h5.visititems(visit)
    return found[0] if found else None
