"""The README's error promise, fuzzed: generated bad inputs of every kind a user can hand a
command, run through the CLI entry (``xrdpdf.cli._main``) in this process.

The promise: exit 0 (perhaps with ``xrdpdf: warning:`` lines), or exit 2 with exactly one
``xrdpdf: error:`` line that names the file (or the value) at fault, and then no output left
behind; never a traceback (an exception out of ``_main`` fails the test), never another exit
code.  Categories: usage (flags and values), pattern files (separators, decimal commas,
encodings, NaN, one column, negative or unsorted x, absurd magnitudes), G(r) files, PONI
files (units, missing and repeated keys, rotations, detector JSON), detector images (dtypes,
shapes, colour, bytes that are no image), series TOML (every key with values of every TOML
type), output locations.  Hypothesis runs derandomized (a fixed seed), so a failure repeats.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from xrdpdf.cli import _main

FUZZ = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SHAPE = (16, 16)


def promise(
    argv: list[str],
    named: str | None = None,
    outputs: tuple[Path, ...] = (),
    per_frame: bool = False,
) -> int:
    """Run ``xrdpdf ARGV`` and check the promise; return the exit code.

    ``per_frame``: ``integrate`` goes on after a bad frame and reports each one
    (``FILE[k]: ...``), so a stack gives one line per frame, each naming it.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = _main([str(a) for a in argv])
    text = err.getvalue()
    assert "Traceback" not in text, text
    assert rc in (0, 2), (rc, argv, text)
    errors = [ln for ln in text.splitlines() if ln.startswith("xrdpdf: error:")]
    if rc == 2:
        assert len(errors) == 1 or (per_frame and errors), text
        for line in errors:
            assert len(line) < 600, line
            assert named is None or named in line, line
        for o in outputs:
            assert not o.exists(), (o, errors[0])
            leftovers = list(o.parent.glob(f".{o.name}.*")) if o.parent.is_dir() else []
            assert leftovers == [], leftovers
    else:
        assert errors == [], text
    return rc


# ------------------------------------------------------------------------ usage
_COMMANDS = [
    ["integrate"], ["refine"], ["size"], ["pdf"], ["corrlen"], ["convert"], ["calib"],
    ["pdffit"], ["pdfcalc"], ["simulate", "image"], ["simulate", "pattern"], ["bogus"],
]  # fmt: skip
_FLAGS = [
    "--npt", "--unit", "--poni", "-o", "--output", "--phase", "--peaks", "--k", "--xtype",
    "--wavelength", "--qmax", "--rmax", "--composition", "--shape", "--calibrant", "--format",
    "--json", "--overwrite", "--polarization", "--bogus", "-x", "--", "--plot", "--rmin",
]  # fmt: skip
_VALUES = st.one_of(
    st.sampled_from(["abc", "", "-1", "0", "1e10", "nan", "inf", "q", "2th", "furlong", "a,b",
                     "auto", "NaTiO2", "CeO2", "3.0,4.0", "1e-300", "none.poni", "x.xye"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
)  # fmt: skip


@FUZZ
@given(
    command=st.sampled_from(_COMMANDS),
    rest=st.lists(st.one_of(st.sampled_from(_FLAGS), _VALUES), max_size=6),
)
def test_usage(command, rest):
    """Any flags and values after a command, with input files that do not exist."""
    with tempfile.TemporaryDirectory() as d:
        missing = str(Path(d) / "missing.xye")
        argv = [*command, missing, *rest]
        if "-o" not in rest and "--output" not in rest:
            argv += ["-o", str(Path(d) / "out" / "o.gr")]
        promise(argv)


# ------------------------------------------------------------------ pattern files
_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(-1e3, 1e3),
    st.sampled_from([0.0, -1.0, 1e300, -1e300, 1e-320]),
)


@st.composite
def pattern_text(draw) -> tuple[bytes, str]:
    """Text of a pattern file: header lines, rows of 1–4 columns, any separator and mark."""
    ncol = draw(st.integers(1, 4))
    n = draw(st.integers(0, 30))
    x = sorted(draw(st.lists(st.floats(0.5, 20.0), min_size=n, max_size=n)))
    order = draw(st.sampled_from(["sorted", "reversed", "shuffled", "negative", "repeated"]))
    if order == "reversed":
        x = x[::-1]
    elif order == "shuffled":
        x = draw(st.permutations(x))
    elif order == "negative":
        x = [v - 10.0 for v in x]
    elif order == "repeated" and x:
        x = [x[0]] * len(x)
    rows = [[xv, *draw(st.lists(_NUMBER, min_size=ncol - 1, max_size=ncol - 1))] for xv in x]
    sep = draw(st.sampled_from([" ", "\t", ",", ";", "  "]))
    comma = draw(st.booleans())
    heads = ["# Q I", "# 2theta I", "title", "# xrdpdf", "#L r G", "unit = furlong", ""]
    lines = draw(st.lists(st.sampled_from(heads), max_size=2))
    for r in rows:
        cells = [repr(v) for v in r]
        if comma:
            cells = [c.replace(".", ",") for c in cells]
        lines.append(sep.join(cells))
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "utf-8-sig", "latin-1", "utf-16-le"]))
    return text.encode(encoding, errors="replace"), draw(st.sampled_from([".xye", ".xy", ".dat"]))


_OVERFLOW = (  # one absurd intensity: lmfit's bound transform overflowed in size's peak fit
    b"".join(f"{q} 0.0\n".encode() for q in (0.5, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4))
    + b"".join(f"{q}.0 0.0\n".encode() for q in range(5, 9))
    + b"9.0 5.5866365022174636e+153\n10.0 0.0\n11.0 0.0\n12.0 0.0\n",
    ".xye",
)


@FUZZ
@given(content=pattern_text(), xtype=st.sampled_from([None, "q", "tth"]))
@example(content=_OVERFLOW, xtype="q")
def test_pattern_files(content, xtype):
    """``size`` and ``convert`` on generated pattern files."""
    raw, suffix = content
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / f"p{suffix}"
        f.write_bytes(raw)
        opts = [] if xtype is None else ["--xtype", xtype, "--wavelength", "0.1173"]
        promise(["size", f, *opts], named=f.name if xtype is not None else None)
        out = Path(d) / "out"
        promise(["convert", f, "-o", out, "--format", "xye", *opts], outputs=(out / "p.xye",))


@FUZZ
@given(content=pattern_text())
def test_gr_files(content):
    """``corrlen`` on generated G(r) files (all zero, NaN, one column, negative r, ...)."""
    raw, _ = content
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "g.gr"
        f.write_bytes(raw)
        promise(["corrlen", f, "--json"])


# --------------------------------------------------------------------- PONI files
_PONI_KEYS = [
    "Distance", "Poni1", "Poni2", "Rot1", "Rot2", "Rot3", "Wavelength",
    "PixelSize1", "PixelSize2", "Detector", "Detector_config", "poni_version",
]  # fmt: skip
_PONI_VALUES = st.one_of(
    st.sampled_from(["0.1", "100", "1.173e-11", "0.1173", "1173", "-0.1", "0", "2", "4",
                     "abc", "", "nan", "Detector", "Pilatus1M", '{"pixel1": 2e-4}',
                     '{"pixel1": 2e-4, "pixel2": 2e-4, "max_shape": [16, 16]}', "{bad json",
                     "2.1", "1e30"]),
    st.floats(-10, 10).map(repr),
)  # fmt: skip
_GOOD_PONI = {
    "poni_version": "2", "Detector": "Detector",
    "Detector_config": '{"pixel1": 0.0002, "pixel2": 0.0002, "max_shape": [16, 16]}',
    "Distance": "0.1", "Poni1": "0.0016", "Poni2": "0.0016", "Rot1": "0", "Rot2": "0",
    "Rot3": "0", "Wavelength": "1.173e-11",
}  # fmt: skip


def _poni_text(pairs) -> str:
    return "".join(f"{k}: {v}\n" for k, v in pairs)


@FUZZ
@given(
    changes=st.lists(
        st.tuples(st.sampled_from(_PONI_KEYS), st.one_of(st.none(), _PONI_VALUES)), max_size=3
    ),
    duplicate=st.booleans(),
)
def test_poni_files(changes, duplicate):
    """``integrate`` with a PONI whose keys are changed, removed (None) or repeated."""
    pairs = dict(_GOOD_PONI)
    for key, value in changes:
        if value is None:
            pairs.pop(key, None)
        else:
            pairs[key] = value
    items = list(pairs.items())
    if duplicate and items:
        items.append(items[len(items) // 2])
    with tempfile.TemporaryDirectory() as d:
        poni = Path(d) / "g.poni"
        poni.write_text(_poni_text(items))
        img = Path(d) / "f.npy"
        np.save(img, np.random.default_rng(0).poisson(100, SHAPE).astype(np.uint16))
        out = Path(d) / "out"
        argv = ["integrate", img, "--poni", poni, "-o", out, "--npt", 50, "--method", "pyfai"]
        rc = promise(argv, outputs=(out / "f.xye",))
        if rc == 0:
            assert (out / "f.xye").is_file()


# ------------------------------------------------------------------------ images
_DTYPES = ["uint8", "uint16", "int32", "float32", "float64", "bool", "complex64", "int8"]
_SHAPES = [SHAPE, (2, *SHAPE), (16,), (1, 2, *SHAPE), (8, 8), (*SHAPE, 3), (3, *SHAPE), (0, 16)]


@st.composite
def image_file(draw) -> tuple[str, bytes | np.ndarray]:
    kind = draw(st.sampled_from(["npy", "tif", "bytes"]))
    if kind == "bytes":
        suffix = draw(st.sampled_from([".tif", ".edf", ".h5", ".cbf", ".npy"]))
        return suffix, draw(st.binary(max_size=300))
    dtype = draw(st.sampled_from(_DTYPES))
    shape = draw(st.sampled_from(_SHAPES))
    fill = draw(st.sampled_from(["poisson", "nan", "zeros", "huge"]))
    rng = np.random.default_rng(1)
    arr = rng.poisson(50, shape).astype(float)
    if fill == "nan":
        arr[..., 0] = np.nan
    elif fill == "zeros":
        arr[:] = 0
    elif fill == "huge":
        arr *= 1e30
    with np.errstate(invalid="ignore", over="ignore"):
        return f".{kind}", arr.astype(dtype)


@FUZZ
@given(image=image_file())
def test_images(image):
    """``integrate`` of generated images against a valid 16 × 16 geometry."""
    import tifffile

    suffix, data = image
    with tempfile.TemporaryDirectory() as d:
        poni = Path(d) / "g.poni"
        poni.write_text(_poni_text(_GOOD_PONI.items()))
        img = Path(d) / f"img{suffix}"
        if isinstance(data, bytes):
            img.write_bytes(data)
        elif suffix == ".npy":
            np.save(img, data)
        else:
            try:
                with warnings.catch_warnings():  # tifffile's own notes on odd data
                    warnings.simplefilter("ignore")
                    tifffile.imwrite(img, data)
            except (ValueError, TypeError):  # a dtype or shape TIFF cannot hold
                return
        out = Path(d) / "out"
        argv = ["integrate", img, "--poni", poni, "-o", out, "--npt", 50, "--method", "pyfai"]
        promise(argv, named=img.name, outputs=(out / "img.xye",), per_frame=True)


# --------------------------------------------------------------------- series TOML
_BASE_SERIES = {
    "series": {"poni": "g.poni", "composition": "TiO2", "title": "t"},
    "integrate": {"npt": 50, "unit": "q", "polarization": 0.99, "sigma_clip": False},
    "pdf": {"qmax": 12.0, "rmax": 20.0, "lorch": False},
    "refine": {"phases": ["NaTiO2"], "background_terms": 6, "fit_range": [1.0, 10.0]},
    "size": {"k": 0.9},
    "labels": {"cycle": "integer"},
    "sample": [{"name": "s1", "cycle": 1, "images": ["f.npy"]}],
}
_TOML_VALUES = st.one_of(
    st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["false", "auto", "f.npy", "x" * 250, "summary.csv"]),
    st.lists(st.one_of(st.integers(-3, 3), st.text(max_size=4)), max_size=3),
    st.dictionaries(st.sampled_from(["qmax", "rmax", "x"]), st.integers(-3, 30), max_size=2),
)  # fmt: skip
_WHERE = [(t, k) for t, keys in _BASE_SERIES.items() if t != "sample" for k in keys] + [
    ("sample", k) for k in ("name", "cycle", "images", "dark", "phases", "pdf", "group", "bogus")
]


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(v), repr(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return str(v)


def _toml(doc: dict) -> str:
    lines = []
    for table, body in doc.items():
        for entry in body if isinstance(body, list) else [body]:
            lines.append(f"[[{table}]]" if isinstance(body, list) else f"[{table}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


class _Accepted(Exception):
    """Raised by the stand-in for the pipeline: the file passed every check."""


@settings(FUZZ, max_examples=60)  # no pipeline runs: cheap
@given(changes=st.lists(st.tuples(st.sampled_from(_WHERE), _TOML_VALUES), min_size=1, max_size=2))
def test_series_toml(changes, monkeypatch):
    """``series`` with keys of every table set to values of every TOML type.

    The pipeline is replaced by a stand-in: what is checked is that a file is
    either refused at load, in one line naming it, or accepted (then the run
    starts: the stand-in raises :class:`_Accepted`).
    """
    import copy

    import xrdpdf.workflows.series as series

    def accepted(*args, **kwargs):
        raise _Accepted

    monkeypatch.setattr(series, "run_series", accepted)
    doc = copy.deepcopy(_BASE_SERIES)
    for (table, key), value in changes:
        target = doc[table][0] if table == "sample" else doc[table]
        target[key] = value
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "g.poni").write_text(_poni_text(_GOOD_PONI.items()))
        np.save(Path(d) / "f.npy", np.ones(SHAPE, np.uint16))
        f = Path(d) / "s.toml"
        f.write_text(_toml(doc))
        out = Path(d) / "out"
        with contextlib.suppress(_Accepted):
            promise(["series", f, "-o", out, "--workers", "0"], named=str(f), outputs=(out,))


# -------------------------------------------------------------------- output places
@FUZZ
@given(place=st.sampled_from(["file", "under_file", "fine", "dir_as_output", "dotdot"]))
def test_output_places(place):
    """``convert`` and ``pdf`` into places that are files, under files, or folders."""
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "p.xye"
        q = np.linspace(0.5, 20, 200)
        np.savetxt(src, np.c_[q, 10 + np.exp(-((q - 3) ** 2))], header="q_A^-1 I")
        blocker = Path(d) / "blocker"
        blocker.write_text("a file")
        out = {
            "file": blocker, "under_file": blocker / "x", "fine": Path(d) / "o",
            "dir_as_output": Path(d), "dotdot": Path(d) / "o" / ".." / "o2",
        }[place]  # fmt: skip
        promise(["convert", src, "-o", out, "--format", "xy"])
        gr = out / "p.gr" if place != "dir_as_output" else out
        promise(["pdf", src, "--composition", "TiO2", "-o", gr], outputs=())
        assert blocker.read_text() == "a file"  # never replaced


@pytest.mark.parametrize("argv", [["--version"], ["-h"], ["size", "--help"]])
def test_help_and_version_exit_0(argv):
    assert promise(argv) == 0
