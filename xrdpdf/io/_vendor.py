"""Lab diffractometer files: Bruker RAW v1–v4 and BRML, PANalytical XRDML, Rigaku RAS/RASX.

Each range (scan) becomes one range dict with 2θ in degrees, the counts, the
anode and its wavelengths in the metadata, and ``wavelength_A`` = Kα1 (the
line the instrument software reports as the wavelength).  Layouts:

* Bruker RAW: DIFFRAC-AT "Raw data file format" (v1 ``RAW ``, v2 ``RAW2``),
  DIFFRAC^plus XCH manual appendix A (v3 ``RAW1.01``: 712-byte file header,
  304-byte range headers, float32 counts) and the segment layout of v4
  (``RAW4.00``) as decoded by xylib (``bruker_raw.cpp``, LGPL; only offsets
  taken, no code).
* BRML: a zip of ``Experiment*/RawData*.xml``; each holds ``ScanInformation``
  (axes, step time), ``Datum`` rows (time, absorption, axes…, counts) and the
  tube (``WaveLengthAlpha1`` …, ``TubeMaterial``).
* XRDML: PANalytical XML (any schema version); one ``scan`` per range,
  positions from ``startPosition``/``endPosition`` or ``listPositions``.
* RAS: text ``*RAS_HEADER_START`` … ``*KEY "value"`` … ``*RAS_INT_START``,
  rows of 2θ, counts, attenuation factor (counts × factor is the intensity);
  RASX: a zip of ``Data*/Profile*.txt`` (the same rows) and
  ``Data*/MesurementConditions*.xml`` (sic).
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np

from xrdpdf._core.errors import InputError

__all__ = ["RAS_MARK", "read_binary", "read_ras_text"]

RAS_MARK = "*RAS_DATA_START"


def read_binary(path: Path, raw: bytes) -> list[dict[str, Any]] | None:
    """Range dicts for a vendor file recognised from its first bytes, else None."""
    if raw[:4] in (b"RAW ", b"RAW2") or raw[:7] in (b"RAW1.01", b"RAW4.00"):
        try:
            return _read_bruker_raw(path, raw)
        except (struct.error, IndexError, ValueError) as exc:
            raise InputError(f"{path}: truncated or damaged Bruker RAW file ({exc})") from None
    if raw.startswith(b"PK\x03\x04"):
        return _read_zip(path, raw)
    head = raw[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<?xml") and b"xrdMeasurements" in raw[:4096]:
        return _read_xrdml(path, raw)
    return None


# --------------------------------------------------------------------------- helpers
def _range(y: np.ndarray, x: np.ndarray, meta: dict[str, Any], fmt: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "unit": "tth",
        "format": fmt,
        "data": np.column_stack([x, y]),
        "metadata": {k: v for k, v in meta.items() if v not in (None, "")},
    }
    wl = meta.get("wavelength_ka1_A")
    if wl:
        info["wavelength_A"] = float(wl)
    return info


def _tube(anode: str, ka1: float, ka2: float, kb: float, ratio: float) -> dict[str, Any]:
    def pos(v: float) -> float | None:
        return float(v) if v and np.isfinite(v) and v > 0 else None

    return {
        "anode": anode.strip("\x00 ").capitalize() or None,
        "wavelength_ka1_A": pos(ka1),
        "wavelength_ka2_A": pos(ka2),
        "wavelength_kb_A": pos(kb),
        "ka2_ka1_ratio": float(ratio) if ratio is not None and np.isfinite(ratio) else None,
    }


def _cstr(b: bytes) -> str:
    return b.split(b"\x00", 1)[0].decode("latin-1").strip()


# --------------------------------------------------------------------------- Bruker RAW
def _read_bruker_raw(path: Path, raw: bytes) -> list[dict[str, Any]]:
    if raw[:4] == b"RAW ":
        return _raw_v1(path, raw)
    if raw[:4] == b"RAW2":
        return _raw_v2(path, raw)
    if raw[:7] == b"RAW1.01":
        return _raw_v3(path, raw)
    return _raw_v4(path, raw)


def _f32(raw: bytes, off: int) -> float:
    return struct.unpack_from("<f", raw, off)[0]


def _f64(raw: bytes, off: int) -> float:
    return struct.unpack_from("<d", raw, off)[0]


def _u32(raw: bytes, off: int) -> int:
    return struct.unpack_from("<I", raw, off)[0]


def _counts(raw: bytes, off: int, n: int) -> np.ndarray:
    if off + 4 * n > len(raw):
        raise ValueError(f"range of {n} steps runs past the end of the file")
    return np.frombuffer(raw, "<f4", n, off).astype(float)


def _raw_v1(path: Path, raw: bytes) -> list[dict[str, Any]]:
    out, off, more = [], 4, 1
    while more:
        steps = _u32(raw, off)
        if out and raw[off : off + 4] == b"RAW ":  # later ranges may repeat the magic
            off += 4
            steps = _u32(raw, off)
        t_step, x_step = _f32(raw, off + 4), _f32(raw, off + 8)
        x0 = _f32(raw, off + 20)
        sample = _cstr(raw[off + 36 : off + 68])
        ka1, ka2 = _f32(raw, off + 68), _f32(raw, off + 72)
        more = _u32(raw, off + 148)
        y = _counts(raw, off + 152, steps)
        meta = {"format_version": "RAW v1", "sample": sample, "step_time_s": t_step}
        meta.update(_tube("", ka1, ka2, 0.0, None))
        out.append(_range(y, x0 + x_step * np.arange(steps), meta, "bruker_raw"))
        off += 152 + 4 * steps
    return out


def _raw_v2(path: Path, raw: bytes) -> list[dict[str, Any]]:
    n_ranges = struct.unpack_from("<H", raw, 4)[0]
    date = _cstr(raw[168:188])
    anode = _cstr(raw[188:190])
    ka1, ka2, ratio = _f32(raw, 190), _f32(raw, 194), _f32(raw, 198)
    out, off = [], 256
    for _ in range(n_ranges):
        hlen, steps = struct.unpack_from("<HH", raw, off)
        t_step, x_step, x0 = _f32(raw, off + 8), _f32(raw, off + 12), _f32(raw, off + 16)
        y = _counts(raw, off + hlen, steps)
        meta = {"format_version": "RAW v2", "measured": date, "step_time_s": t_step}
        meta.update(_tube(anode, ka1, ka2, 0.0, ratio))
        out.append(_range(y, x0 + x_step * np.arange(steps), meta, "bruker_raw"))
        off += hlen + 4 * steps
    return out


def _raw_v3(path: Path, raw: bytes) -> list[dict[str, Any]]:
    n_ranges = _u32(raw, 12)
    file_meta = {
        "format_version": "RAW v3 (RAW1.01)",
        "measured": f"{_cstr(raw[16:26])} {_cstr(raw[26:36])}".strip(),
        "sample": _cstr(raw[326:386]),
        "comment": _cstr(raw[386:546]),
        "goniometer_radius_mm": _f32(raw, 564),
    }
    file_meta.update(
        _tube(_cstr(raw[608:612]), _f64(raw, 624), _f64(raw, 632), _f64(raw, 640), _f64(raw, 648))
    )
    out, off = [], 712
    for _ in range(n_ranges):
        hlen, steps = _u32(raw, off), _u32(raw, off + 4)
        if hlen != 304:
            raise ValueError(f"range header of {hlen} bytes, expected 304")
        x0, x_step = _f64(raw, off + 16), _f64(raw, off + 176)
        supp = _u32(raw, off + 256)
        meta = dict(file_meta)
        meta["step_time_s"] = _f32(raw, off + 192)
        meta["generator_kV"] = _u32(raw, off + 224)
        meta["generator_mA"] = _u32(raw, off + 228)
        used = _f64(raw, off + 240)
        if used > 0 and meta.get("wavelength_ka1_A") is None:
            meta["wavelength_ka1_A"] = used
        y = _counts(raw, off + hlen + supp, steps)
        out.append(_range(y, x0 + x_step * np.arange(steps), meta, "bruker_raw"))
        off += hlen + supp + 4 * steps
    return out


#: RAW v4 scan types whose primary axis is 2θ (xylib reads the first two only).
_RAW4_2THETA_SCANS = ("Locked Coupled", "Unlocked Coupled", "Detector Scan")


def _raw_v4(path: Path, raw: bytes) -> list[dict[str, Any]]:
    file_meta: dict[str, Any] = {
        "format_version": "RAW v4 (RAW4.00)",
        "measured": f"{_cstr(raw[12:24])} {_cstr(raw[24:34])}".strip(),
    }
    off = 61
    while True:
        seg = _u32(raw, off)
        if seg in (0, 160):
            break
        seglen = _u32(raw, off + 4)
        if seglen < 8:
            raise ValueError(f"segment of {seglen} bytes at offset {off}")
        if seg == 30:  # hardware configuration: the tube
            file_meta.update(
                _tube(
                    _cstr(raw[off + 116 : off + 120]),
                    _f64(raw, off + 80),
                    _f64(raw, off + 88),
                    _f64(raw, off + 96),
                    _f64(raw, off + 104),
                )
            )
        elif seg == 10:  # VarInfo: a named string
            name = _cstr(raw[off + 12 : off + 36])
            if name.lower() in ("sampleid", "sample_id", "samplename"):
                file_meta["sample"] = _cstr(raw[off + 36 : off + seglen])
        off += seglen
    out = []
    while off + 160 <= len(raw) and _u32(raw, off) in (0, 160):
        scan_type = _cstr(raw[off + 32 : off + 56])
        if scan_type not in _RAW4_2THETA_SCANS:
            raise InputError(
                f"{path}: RAW v4 range of type {scan_type!r}; only 2θ scans "
                f"({', '.join(_RAW4_2THETA_SCANS)}) are read"
            )
        x0, x_step = _f64(raw, off + 72), _f64(raw, off + 80)
        steps = _u32(raw, off + 88)
        meta = dict(file_meta, scan_type=scan_type, step_time_s=_f32(raw, off + 92))
        used = _f64(raw, off + 112)
        if used > 0 and meta.get("wavelength_ka1_A") is None:
            meta["wavelength_ka1_A"] = used
        datum, hdr = _u32(raw, off + 136), _u32(raw, off + 140)
        data_off = off + 160 + hdr
        if datum != 4:
            raise ValueError(f"{datum}-byte data records (expected 4)")
        y = _counts(raw, data_off, steps)
        out.append(_range(y, x0 + x_step * np.arange(steps), meta, "bruker_raw"))
        off = data_off + 4 * steps
    if not out:
        raise ValueError("no range found")
    return out


# --------------------------------------------------------------------------- zip: BRML, RASX
def _read_zip(path: Path, raw: bytes) -> list[dict[str, Any]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path}: damaged zip file ({exc})") from None
    names = zf.namelist()
    with zf:
        brml = sorted(n for n in names if re.search(r"(^|/)RawData\d*\.xml$", n))
        if brml:
            out = []
            for n in sorted(brml, key=_natural):
                out += _brml_raw_data(path, zf.read(n), n)
            return out
        profiles = sorted((n for n in names if re.search(r"Profile\d*\.txt$", n)), key=_natural)
        if profiles:
            out = []
            for n in profiles:
                cond_name = re.sub(r"Profile(\d*)\.txt$", r"MesurementConditions\1.xml", n)
                cond = zf.read(cond_name) if cond_name in names else b""
                out.append(_rasx_range(path, zf.read(n), cond))
            return out
    raise InputError(f"{path}: a zip file, but neither BRML (RawData*.xml) nor RASX (Profile*.txt)")


def _natural(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml(path: Path, data: bytes, what: str) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise InputError(f"{path}: damaged {what} XML ({exc})") from None


def _brml_raw_data(path: Path, data: bytes, member: str) -> list[dict[str, Any]]:
    root = _xml(path, data, "BRML")
    tube = root.find(".//Tube")

    def tval(tag: str) -> float:
        el = tube.find(tag) if tube is not None else None
        return float(el.get("Value")) if el is not None and el.get("Value") else 0.0

    anode = tube.findtext("TubeMaterial", "") if tube is not None else ""
    base = {"brml_member": member, "measured": root.findtext("TimeStampStarted")}
    base.update(
        _tube(
            anode,
            tval("WaveLengthAlpha1"),
            tval("WaveLengthAlpha2"),
            tval("WaveLengthBeta"),
            tval("WaveLengthRatio"),
        )
    )
    out = []
    for route in root.iter("DataRoute"):
        scan = route.find("ScanInformation")
        rows = [d.text.split(",") for d in route.iter("Datum") if d.text]
        if scan is None or not rows:
            continue
        axes = [a.get("AxisId") or a.get("AxisName") for a in scan.iter("ScanAxisInfo")]
        views = {v.get("LogicName"): v for v in route.iter("RawDataView") if v.get("LogicName")}
        table = np.asarray(rows, dtype=float)
        tth_col = 2 + axes.index("TwoTheta") if "TwoTheta" in axes else 2
        count_col = table.shape[1] - 1
        for v in route.iter("RawDataView"):
            if v.get("MeasuredDataIndex") == "0":
                count_col = int(v.get("Start"))
        del views
        meta = dict(base)
        meta["scan_type"] = scan.get("ScanName")
        meta["step_time_s"] = float(scan.findtext("TimePerStep") or "nan")
        if "TwoTheta" not in axes:
            raise InputError(f"{path}: {member}: scan {meta['scan_type']!r} has no 2θ axis")
        out.append(_range(table[:, count_col], table[:, tth_col], meta, "brml"))
    return out


def _rasx_range(path: Path, profile: bytes, cond: bytes) -> dict[str, Any]:
    text = profile.decode("utf-8-sig", errors="replace")
    table = np.asarray([ln.split() for ln in text.splitlines() if ln.strip()], dtype=float)
    y = table[:, 1] * (table[:, 2] if table.shape[1] >= 3 else 1.0)
    meta: dict[str, Any] = {}
    if cond:
        root = _xml(path, cond, "RASX MesurementConditions")
        gen = {_local(e.tag): (e.text or "").strip() for e in root.iter() if e.text}

        def num(key: str) -> float:
            try:
                return float(gen.get(key, ""))
            except ValueError:
                return 0.0

        meta.update(
            _tube(
                gen.get("TargetName", ""),
                num("WavelengthKalpha1"),
                num("WavelengthKalpha2"),
                num("WavelengthKbeta"),
                None,
            )
        )
        meta["scan_axis"] = gen.get("AxisName")
        meta["sample"] = gen.get("SampleName")
        unit = gen.get("PositionUnit") or gen.get("Unit")
        if unit and unit.lower() not in ("deg", "degree", "°"):
            raise InputError(f"{path}: RASX scan axis unit {unit!r} is not degrees")
    return _range(y, table[:, 0], meta, "rasx")


# --------------------------------------------------------------------------- XRDML
def _read_xrdml(path: Path, raw: bytes) -> list[dict[str, Any]]:
    root = _xml(path, raw, "XRDML")
    out = []
    for meas in (e for e in root.iter() if _local(e.tag) == "xrdMeasurement"):
        kids = {_local(e.tag): e for e in meas.iter()}
        wl = {k: _num(kids.get(k)) for k in ("kAlpha1", "kAlpha2", "kBeta")}
        meta: dict[str, Any] = _tube(
            (kids["anodeMaterial"].text or "") if "anodeMaterial" in kids else "",
            wl["kAlpha1"],
            wl["kAlpha2"],
            wl["kBeta"],
            _num(kids.get("ratioKAlpha2KAlpha1")),
        )
        meta["measurement_type"] = meas.get("measurementType")
        for scan in (e for e in meas.iter() if _local(e.tag) == "scan"):
            out.append(_xrdml_scan(path, scan, dict(meta)))
    if not out:
        raise InputError(f"{path}: XRDML file without a scan")
    return out


def _num(el: ElementTree.Element | None) -> float:
    try:
        return float(el.text) if el is not None and el.text else 0.0
    except ValueError:
        return 0.0


def _xrdml_scan(path: Path, scan: ElementTree.Element, meta: dict[str, Any]) -> dict[str, Any]:
    points = next(e for e in scan.iter() if _local(e.tag) == "dataPoints")
    kids = {_local(e.tag): e for e in points}
    counts_el = kids.get("intensities") if "intensities" in kids else kids.get("counts")
    if counts_el is None or not counts_el.text:
        raise InputError(f"{path}: XRDML scan without intensities")
    y = np.asarray(counts_el.text.split(), dtype=float)
    if _local(counts_el.tag) == "counts" and "beamAttenuationFactors" in kids:
        y = y * np.asarray(kids["beamAttenuationFactors"].text.split(), dtype=float)
    x = None
    for pos in (e for e in points if _local(e.tag) == "positions"):
        if pos.get("axis") != "2Theta":
            continue
        if pos.get("unit") not in (None, "deg"):
            raise InputError(f"{path}: XRDML 2θ axis in {pos.get('unit')!r}, not degrees")
        sub = {_local(e.tag): e.text for e in pos}
        if sub.get("listPositions"):
            x = np.asarray(sub["listPositions"].split(), dtype=float)
        elif sub.get("startPosition") is not None:
            x = np.linspace(float(sub["startPosition"]), float(sub["endPosition"]), y.size)
        elif sub.get("commonPosition") is not None:
            raise InputError(f"{path}: XRDML scan at a fixed 2θ (not a 2θ scan)")
    if x is None:
        raise InputError(f"{path}: XRDML scan without a 2Theta axis")
    meta["scan_axis"] = scan.get("scanAxis")
    meta["scan_mode"] = scan.get("mode")
    t = kids.get("commonCountingTime")
    if t is not None and t.text:
        meta["step_time_s"] = float(t.text)
    return _range(y, x, meta, "xrdml")


# --------------------------------------------------------------------------- RAS
_RAS_KEY = re.compile(r'^\*(\w+)\s+"(.*)"\s*$')


def read_ras_text(path: Path, text: str) -> list[dict[str, Any]]:
    """Every ``*RAS_HEADER_START`` … ``*RAS_INT_END`` block of a Rigaku RAS file."""
    out = []
    header: dict[str, str] = {}
    rows: list[list[float]] | None = None
    for line in text.splitlines():
        s = line.strip()
        if s == "*RAS_HEADER_START":
            header = {}
        elif s == "*RAS_INT_START":
            rows = []
        elif s == "*RAS_INT_END":
            if not rows:
                raise InputError(f"{path}: RAS scan {len(out) + 1} has no data rows")
            out.append(_ras_range(path, header, np.asarray(rows, dtype=float)))
            rows = None
        elif rows is not None and s and not s.startswith("*"):
            try:
                rows.append([float(v) for v in s.split()])
            except ValueError:
                raise InputError(f"{path}: non-numeric RAS data row {s[:60]!r}") from None
        elif (m := _RAS_KEY.match(s)) is not None:
            header[m.group(1)] = m.group(2)
    if not out:
        raise InputError(f"{path}: RAS file without a *RAS_INT_START … *RAS_INT_END block")
    return out


def _ras_range(path: Path, h: dict[str, str], table: np.ndarray) -> dict[str, Any]:
    def num(key: str) -> float:
        try:
            return float(h.get(key, ""))
        except ValueError:
            return 0.0

    unit = h.get("MEAS_SCAN_UNIT_X", "deg")
    if unit.lower() not in ("deg", "degree"):
        raise InputError(f"{path}: RAS scan axis unit {unit!r} is not degrees")
    meta = _tube(
        h.get("HW_XG_TARGET_NAME", ""),
        num("HW_XG_WAVE_LENGTH_ALPHA1"),
        num("HW_XG_WAVE_LENGTH_ALPHA2"),
        num("HW_XG_WAVE_LENGTH_BETA"),
        None,
    )
    meta["scan_axis"] = h.get("MEAS_SCAN_AXIS_X")
    meta["sample"] = h.get("FILE_SAMPLE")
    meta["measured"] = h.get("MEAS_SCAN_START_TIME")
    y = table[:, 1] * (table[:, 2] if table.shape[1] >= 3 else 1.0)
    return _range(y, table[:, 0], meta, "ras")
