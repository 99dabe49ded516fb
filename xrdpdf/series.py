"""Ex situ series: a TOML description of samples → per-sample pipeline on Dask → summary.

A series file is data, never code: it is parsed with :mod:`tomllib` and every
key is checked against the lists below, so that a typo is an error naming the
key and the file.  Paths are relative to the series file.

Example (``examples/series.toml`` is a complete one)::

    [series]
    poni = "geometry.poni"
    mask = "mask.edf"                 # optional
    composition = "TiO2"
    [integrate]                       # optional: npt, unit, polarization, sigma_clip
    npt = 3000
    [pdf]                   # optional: qmin, qmax ("auto"), qmaxinst, rpoly, bkg, bkg_scale, rmax
    qmax = 24.0
    [refine]                # optional: phases, cuka, background_terms, amorphous, fit_range
    phases = ["NaTiO2"]
    [[sample]]
    name = "c20_sod"
    cycle = 20
    state = "sodiated"                # pristine | sodiated | desodiated
    images = ["c20_sod_*.tif"]        # globs; several images are summed
    dark = "dark.tif"                 # optional

Each sample runs integrate → refine + size → PDF → correlation length (see
:func:`process_sample`); :func:`run_series` maps that over the samples with a
``distributed`` client, skips samples whose inputs and settings are unchanged
(content hash), and writes ``summary.csv`` / ``summary.h5``.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .errors import InputError

__all__ = [
    "SampleSpec",
    "SeriesConfig",
    "load_series",
    "SUMMARY_COLUMNS",
    "STATES",
]

STATES = ("pristine", "sodiated", "desodiated")

_SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "series": ("poni", "mask", "flat", "resolution", "composition", "title"),
    "integrate": ("npt", "unit", "polarization", "sigma_clip", "method"),
    "pdf": (
        "qmin",
        "qmax",
        "qmaxinst",
        "rpoly",
        "bkg",
        "bkg_scale",
        "rmin",
        "rmax",
        "rstep",
        "lorch",
    ),
    "refine": (
        "phases",
        "cuka",
        "background_terms",
        "amorphous",
        "amorphous_reference",
        "fit_range",
    ),
    "size": ("k",),
}
_SAMPLE_KEYS = ("name", "cycle", "state", "images", "dark", "composition", "phases")

#: Columns of ``summary.csv`` / ``summary.h5`` (one row per sample).
SUMMARY_COLUMNS = (
    "name",
    "cycle",
    "state",
    "phase",
    "a_A",
    "a_esd_A",
    "size_A",
    "size_esd_A",
    "rs_fraction",
    "rwp",
    "xi_A",
    "xi_esd_A",
    "r_noise_A",
    "volume_change_pct",
    "volume_change_esd_pct",
    "qmax_invA",
    "n_images",
    "input_hash",
    "error",
)

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass(frozen=True)
class SampleSpec:
    """One sample of a series: its images and where it sits in the cycling history.

    Attributes
    ----------
    name : str
        Used for output file names; letters, digits, ``._+-`` only.
    cycle : int
        Number of sodiation cycles (0 = pristine).
    state : str
        ``"pristine"``, ``"sodiated"`` or ``"desodiated"``.
    images : tuple of Path
        Image files (globs already expanded, sorted); summed before integration.
    dark : Path or None
        Dark image subtracted from each image.
    composition : str
        Chemical composition for the PDF (defaults to the series').
    phases : tuple of str
        Phases to refine (defaults to the series' ``[refine] phases``).
    """

    name: str
    cycle: int
    state: str
    images: tuple[Path, ...]
    dark: Path | None
    composition: str
    phases: tuple[str, ...]


@dataclass(frozen=True)
class SeriesConfig:
    """A parsed, validated series file.  Paths are absolute."""

    path: Path
    poni: Path
    mask: Path | None
    flat: Path | None
    resolution: Path | None
    composition: str
    title: str
    integrate: Mapping[str, Any] = field(default_factory=dict)
    pdf: Mapping[str, Any] = field(default_factory=dict)
    refine: Mapping[str, Any] = field(default_factory=dict)
    size: Mapping[str, Any] = field(default_factory=dict)
    samples: tuple[SampleSpec, ...] = ()

    def settings_for(self, sample: SampleSpec) -> dict[str, Any]:
        """All settings that determine a sample's result (for the content hash)."""
        return {
            "integrate": dict(self.integrate),
            "pdf": {k: (str(v) if isinstance(v, Path) else v) for k, v in self.pdf.items()},
            "refine": dict(self.refine),
            "size": dict(self.size),
            "composition": sample.composition,
            "phases": list(sample.phases),
            "cycle": sample.cycle,
            "state": sample.state,
        }


def _check_keys(where: str, table: Mapping[str, Any], allowed: Sequence[str], path: Path) -> None:
    for key in table:
        if key not in allowed:
            raise InputError(
                f"{path}: unknown key {key!r} in {where}; allowed: {', '.join(allowed)}"
            )


def _resolve(base: Path, value: Any, what: str, path: Path, must_exist: bool = True) -> Path:
    if not isinstance(value, str) or not value:
        raise InputError(f"{path}: {what} must be a path string, got {value!r}")
    p = Path(value)
    p = p if p.is_absolute() else base / p
    if must_exist and not p.exists():
        raise InputError(f"{path}: {what} {value!r} not found (looked at {p})")
    return p


def load_series(path: str | os.PathLike) -> SeriesConfig:
    """Parse and validate a series TOML file.

    Parameters
    ----------
    path : path-like
        The series file.

    Returns
    -------
    SeriesConfig

    Raises
    ------
    InputError
        Unreadable file, TOML syntax error, unknown key (named, with the file),
        missing required key, a sample name that would leave the output
        directory or repeats another, a glob that matches no image, an unknown
        state.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such series file")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    base = path.parent.resolve()
    allowed_top = (*_SECTION_KEYS, "sample")
    _check_keys("the top level", doc, allowed_top, path)
    for section, keys in _SECTION_KEYS.items():
        table = doc.get(section, {})
        if not isinstance(table, dict):
            raise InputError(f"{path}: [{section}] must be a table")
        _check_keys(f"[{section}]", table, keys, path)
    series = doc.get("series")
    if not series:
        raise InputError(f"{path}: missing [series] table (needs at least poni)")
    if "poni" not in series:
        raise InputError(f"{path}: [series] needs 'poni', the geometry file")
    poni = _resolve(base, series["poni"], "poni", path)
    mask = _resolve(base, series["mask"], "mask", path) if "mask" in series else None
    flat = _resolve(base, series["flat"], "flat", path) if "flat" in series else None
    resolution = (
        _resolve(base, series["resolution"], "resolution", path) if "resolution" in series else None
    )
    composition = str(series.get("composition", "TiO2"))
    pdf = dict(doc.get("pdf", {}))
    if "bkg" in pdf:
        pdf["bkg"] = _resolve(base, pdf["bkg"], "[pdf] bkg", path)
    refine = dict(doc.get("refine", {}))
    default_phases = refine.get("phases", [])
    if isinstance(default_phases, str) or not isinstance(default_phases, list):
        raise InputError(f'{path}: [refine] phases must be a list of names, e.g. ["NaTiO2"]')
    raw_samples = doc.get("sample", [])
    if not isinstance(raw_samples, list) or not raw_samples:
        raise InputError(f"{path}: no [[sample]] entries")
    samples: list[SampleSpec] = []
    seen: set[str] = set()
    for i, s in enumerate(raw_samples, 1):
        if not isinstance(s, dict):
            raise InputError(f"{path}: [[sample]] #{i} must be a table")
        _check_keys(f"[[sample]] #{i}", s, _SAMPLE_KEYS, path)
        for req in ("name", "cycle", "state", "images"):
            if req not in s:
                raise InputError(f"{path}: [[sample]] #{i} lacks {req!r}")
        name = s["name"]
        if (
            not isinstance(name, str)
            or not _SAFE_NAME.match(name)
            or ".." in name
            or name in (".", "..")
        ):
            raise InputError(
                f"{path}: sample name {name!r} is not a safe file name "
                "(letters, digits and ._+- only; no path separators or '..')"
            )
        if name.lower() in seen:
            raise InputError(f"{path}: sample name {name!r} is repeated")
        seen.add(name.lower())
        cycle = s["cycle"]
        if isinstance(cycle, bool) or not isinstance(cycle, int) or cycle < 0:
            raise InputError(
                f"{path}: sample {name!r}: cycle must be an integer ≥ 0, got {cycle!r}"
            )
        state = s["state"]
        if state not in STATES:
            raise InputError(
                f"{path}: sample {name!r}: state must be one of {', '.join(STATES)}, got {state!r}"
            )
        pats = s["images"]
        if isinstance(pats, str):
            pats = [pats]
        images: list[Path] = []
        for pat in pats:
            full = pat if os.path.isabs(pat) else str(base / pat)
            hits = sorted(glob.glob(full))
            if not hits:
                raise InputError(f"{path}: sample {name!r}: no image matches {pat!r}")
            images.extend(Path(h) for h in hits)
        dark = _resolve(base, s["dark"], f"sample {name!r} dark", path) if "dark" in s else None
        phases = s.get("phases", default_phases)
        samples.append(
            SampleSpec(
                name=name,
                cycle=int(cycle),
                state=state,
                images=tuple(images),
                dark=dark,
                composition=str(s.get("composition", composition)),
                phases=tuple(phases),
            )
        )
    ref = refine.get("amorphous_reference")
    if ref is not None and ref not in {smp.name for smp in samples}:
        raise InputError(
            f"{path}: [refine] amorphous_reference {ref!r} is not the name of a sample"
        )
    config = SeriesConfig(
        path=path.resolve(),
        poni=poni,
        mask=mask,
        flat=flat,
        resolution=resolution,
        composition=composition,
        title=str(series.get("title", path.stem)),
        integrate=dict(doc.get("integrate", {})),
        pdf=pdf,
        refine=refine,
        size=dict(doc.get("size", {})),
        samples=tuple(samples),
    )
    _check_settings(path, config)
    return config


# ------------------------------------------------------------- typed settings of a table
def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{what} must be true or false, got {value!r}")
    return value


def integration_settings(config: SeriesConfig):
    """The :class:`~xrdpdf.integrate.IntegrationSettings` of the ``[integrate]`` table."""
    from .integrate import IntegrationSettings

    names = {
        "npt": "npt",
        "unit": "unit",
        "polarization": "polarization_factor",
        "sigma_clip": "sigma_clip",
        "method": "method",
    }
    kw = {names[k]: v for k, v in config.integrate.items()}
    if "sigma_clip" in kw:
        kw["sigma_clip"] = _bool(kw["sigma_clip"], "[integrate] sigma_clip")
    for key in ("npt", "polarization_factor"):
        v = kw.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise InputError(f"[integrate] {key.split('_')[0]} must be a number, got {v!r}")
    return IntegrationSettings(**kw)


def refine_options(config: SeriesConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`xrdpdf.refine.refine` from ``[refine]`` and ``[size]``."""
    opts = config.refine
    kw: dict[str, Any] = {
        "amorphous": _bool(opts.get("amorphous", False), "[refine] amorphous"),
        "cuka": _bool(opts.get("cuka", False), "[refine] cuka"),
    }
    if "background_terms" in opts:
        n = opts["background_terms"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 30:
            raise InputError(f"[refine] background_terms must be an integer 1…30, got {n!r}")
        kw["n_background"] = n
    if "fit_range" in opts:
        fr = opts["fit_range"]
        if (
            not isinstance(fr, list)
            or len(fr) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in fr)
            or not fr[0] < fr[1]
        ):
            raise InputError(f"[refine] fit_range must be [min, max] with min < max, got {fr!r}")
        kw["xrange"] = (float(fr[0]), float(fr[1]))
    if "k" in config.size:
        k = config.size["k"]
        if isinstance(k, bool) or not isinstance(k, int | float) or not k > 0:
            raise InputError(f"[size] k must be a positive number, got {k!r}")
        kw["k_scherrer"] = float(k)
    return kw


def _check_settings(path: Path, config: SeriesConfig) -> None:
    """Build every stage's settings once, so that a bad value fails at load, naming the file."""
    from .phases import get_phase

    try:
        integration_settings(config)
        refine_options(config)
        ref = config.refine.get("amorphous_reference")
        if ref is not None and not isinstance(ref, str):
            raise InputError(f"[refine] amorphous_reference must be a sample name, got {ref!r}")
        for name in sorted({p for smp in config.samples for p in smp.phases}):
            if not isinstance(name, str):
                raise InputError(f"phases must be names or CIF paths, got {name!r}")
            get_phase(name)
        for comp in sorted({smp.composition for smp in config.samples}):
            smp = next(x for x in config.samples if x.composition == comp)
            pdf_config(config, smp)
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: {exc}") from None


def _file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, read once per (path, size, mtime) in this process.

    The geometry, mask, dark and an amorphous reference sample's images enter the hash of
    many samples; they are read once, not once per sample.
    """
    try:
        st = path.stat()
    except OSError as exc:
        return f"unreadable:{exc}"
    return _digest_of(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        return f"unreadable:{exc}"
    return h.hexdigest()


def input_hash(config: SeriesConfig, sample: SampleSpec) -> str:
    """SHA-256 over the bytes of every input file and the sample's settings."""
    h = hashlib.sha256()
    files = [*sample.images, config.poni]
    ref = reference_sample(config, sample)
    if ref is not None:  # its pattern is part of this sample's refinement
        files += [*ref.images] + ([ref.dark] if ref.dark else [])
    for extra in (sample.dark, config.mask, config.flat, config.resolution, config.pdf.get("bkg")):
        if extra is not None:
            files.append(Path(extra))
    for f in files:
        h.update(str(Path(f).name).encode())
        h.update(_file_digest(Path(f)).encode())
    h.update(json.dumps(config.settings_for(sample), sort_keys=True, default=str).encode())
    return h.hexdigest()


def reference_sample(config: SeriesConfig, sample: SampleSpec) -> SampleSpec | None:
    """The sample whose pattern is the amorphous background of ``sample``'s refinement.

    ``[refine] amorphous_reference`` names a fully amorphous sample (e.g. the electrode
    after the first sodiation); its I(Q), with a refined scale ≥ 0, is added to the
    Chebyshev background of every *cycled* (sodiated or desodiated) sample that refines
    phases.  Pristine samples have no amorphous matrix and do not use it.
    """
    name = config.refine.get("amorphous_reference")
    if name is None or name == sample.name or not sample.phases or sample.state == "pristine":
        return None
    return next(s for s in config.samples if s.name == name)


def volume_changes(rows: list[dict[str, Any]]) -> None:
    """Add ``volume_change_pct`` (and its esd) to rows, in place.

    For each cycle with both a sodiated and a desodiated sample whose lattice
    parameter was refined: ΔV/V = (a_sod³ − a_desod³)/a_desod³ · 100 %, with
    esd 3·sqrt((σ_sod/a_sod)² + (σ_desod/a_desod)²)·(a_sod/a_desod)³ · 100 %
    (first-order propagation, independent errors).  Both rows get the value.
    """
    by_cycle: dict[int, dict[str, dict[str, Any]]] = {}
    for row in rows:
        if _finite(row.get("a_A")) and row.get("state") in ("sodiated", "desodiated"):
            by_cycle.setdefault(int(row["cycle"]), {})[row["state"]] = row
    for pair in by_cycle.values():
        if len(pair) != 2:
            continue
        s, d = pair["sodiated"], pair["desodiated"]
        ratio3 = (s["a_A"] / d["a_A"]) ** 3
        dv = (ratio3 - 1.0) * 100.0
        rel = math.hypot(_or0(s.get("a_esd_A")) / s["a_A"], _or0(d.get("a_esd_A")) / d["a_A"])
        esd = 3.0 * rel * ratio3 * 100.0
        for row in (s, d):
            row["volume_change_pct"] = dv
            row["volume_change_esd_pct"] = esd


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def _or0(v: Any) -> float:
    return float(v) if _finite(v) else 0.0


# ------------------------------------------------------------------ per sample
_NAN = float("nan")
_INTEGRATORS: dict[str, Any] = {}  # per worker process: one Integrator per geometry+settings


def _empty_row(sample: SampleSpec, digest: str) -> dict[str, Any]:
    row: dict[str, Any] = {c: _NAN for c in SUMMARY_COLUMNS}
    row.update(
        name=sample.name,
        cycle=sample.cycle,
        state=sample.state,
        phase="",
        n_images=len(sample.images),
        input_hash=digest,
        error="",
    )
    return row


def _integrator(config: SeriesConfig):
    """The worker's Integrator for this geometry and settings (built once, reused)."""
    from . import integrate

    settings = dict(config.integrate)
    key = json.dumps(
        [str(config.poni), str(config.mask), str(config.flat), settings],
        sort_keys=True,
        default=str,
    )
    integ = _INTEGRATORS.get(key)
    if integ is None:
        integ = integrate.integrator_from_files(
            config.poni,
            integration_settings(config),
            mask=config.mask,
            flat=config.flat,
            first_image=config.samples[0].images[0],
        )
        _INTEGRATORS.clear()
        _INTEGRATORS[key] = integ
    return integ


def integrate_sample(config: SeriesConfig, sample: SampleSpec):
    """Sum a sample's images (dark-subtracted) and integrate them to I(Q).

    Returns
    -------
    Pattern
        I(Q) in Å⁻¹ with Poisson σ of the summed counts.
    """
    from . import images

    total = None
    for img in sample.images:
        frame = images.read_image(img, sum_frames=True)
        total = frame if total is None else total + frame
    dark = None
    if sample.dark is not None:
        dark = images.read_dark(sample.dark) * len(sample.images)
    integ = _integrator(config)
    pattern = integ.integrate(total if dark is None else total - dark)
    return pattern.with_metadata(sample=sample.name, images=[str(p) for p in sample.images])


def _refine_sample(config: SeriesConfig, sample: SampleSpec, pattern, sdir: Path, row: dict) -> Any:
    from . import io, refine

    kw = refine_options(config)
    ref = reference_sample(config, sample)
    if ref is not None:
        ref_file = sdir.parent / ref.name / f"{ref.name}.xye"
        if not ref_file.is_file():
            raise InputError(f"amorphous reference sample {ref.name!r} has no pattern ({ref_file})")
        kw["background_pattern"] = io.read_pattern(ref_file)
    with warnings.catch_warnings():
        # non-convergence is recorded in the row's error column, not printed
        warnings.simplefilter("ignore", refine.RefinementWarning)
        res = refine.refine(pattern, list(sample.phases), resolution=_resolution(config), **kw)
    first = res.phases[0]
    row.update(
        phase=first.name,
        a_A=first.a_A,
        a_esd_A=_num(first.a_esd_A),
        size_A=_num(first.size_A),
        size_esd_A=_num(first.size_esd_A),
        rwp=res.rwp,
    )
    rs = [p for p in res.phases if p.phase.spacegroup_symbol.replace(" ", "") in ("Fm-3m",)]
    row["rs_fraction"] = sum(p.weight_fraction for p in rs) if rs else 0.0
    io.write_json(res.to_dict(), sdir / f"{sample.name}_refine.json", overwrite=True)
    from .plot import save_figure
    from .plot.refinement import plot_refinement

    save_figure(plot_refinement(res, title=sample.name), sdir / f"{sample.name}_refine.png")
    if not res.converged:
        row["error"] = _join(row["error"], f"refinement did not converge: {res.message}")
    return res


def _resolution(config: SeriesConfig):
    if config.resolution is None:
        return None
    from .phases import load_resolution

    return load_resolution(config.resolution)


_PDF_KEYS = {
    "qmin": "qmin_invA",
    "qmax": "qmax_invA",
    "qmaxinst": "qmaxinst_invA",
    "rpoly": "rpoly_A",
    "rmin": "rmin_A",
    "rmax": "rmax_A",
    "rstep": "rstep_A",
    "lorch": "lorch",
    "bkg_scale": "bkg_scale",
}
#: PDF defaults of a series (r to 60 Å so that ξ up to ~50 Å is resolved).
PDF_DEFAULTS = {"rmax_A": 60.0, "rstep_A": 0.02}


def pdf_config(config: SeriesConfig, sample: SampleSpec):
    """The :class:`~xrdpdf.pdf.PdfConfig` of a sample from the ``[pdf]`` table."""
    from . import pdf

    kw: dict[str, Any] = dict(PDF_DEFAULTS)
    kw.update({_PDF_KEYS[k]: v for k, v in config.pdf.items() if k in _PDF_KEYS})
    return pdf.PdfConfig(composition=sample.composition, **kw)


def _pdf_sample(config: SeriesConfig, sample: SampleSpec, pattern, sdir: Path, row: dict):
    from . import corrlen, io, pdf

    background = io.read_pattern(config.pdf["bkg"]) if "bkg" in config.pdf else None
    res = pdf.transform(pattern, pdf_config(config, sample), background=background)
    for key in ("iq", "sq", "fq", "gr"):
        io.write_pattern(getattr(res, key), sdir / f"{sample.name}.{key}", overwrite=True)
    row["qmax_invA"] = res.qmax_invA
    cl = corrlen.correlation_length(res.gr)
    row.update(xi_A=cl.xi_A, xi_esd_A=_num(cl.xi_esd_A), r_noise_A=_num(cl.r_noise_A))
    return res


def _attempt(row: dict[str, Any], stage: str, func: Callable[..., Any], *args: Any) -> Any:
    """Run one stage; a user-level failure goes to ``row["error"]`` and returns None."""
    from .errors import XrdpdfError

    try:
        return func(*args)
    except XrdpdfError as exc:
        row["error"] = _join(row["error"], f"{stage}: {exc}")
        return None


def _num(v: Any) -> float:
    return float(v) if _finite(v) else _NAN


def _join(a: str, b: str) -> str:
    return b if not a else f"{a}; {b}"


def process_sample(
    config: SeriesConfig, sample: SampleSpec, outdir: str | os.PathLike, digest: str | None = None
) -> dict[str, Any]:
    """Run one sample through integrate → refine + size → PDF → correlation length.

    Each stage's failure is recorded in the row's ``error`` (prefixed with the
    stage) and the later stages still run when they can; only a failed
    integration stops the sample.  Outputs go to ``OUTDIR/<name>/``:
    ``<name>.xye``, ``<name>_refine.json``, ``<name>.gr`` (+ ``.iq/.sq/.fq``)
    and ``result.json`` (the summary row, with the input hash used to skip
    unchanged samples on a re-run).

    Returns
    -------
    dict
        The summary row (keys :data:`SUMMARY_COLUMNS`).
    """
    from . import io
    from .errors import XrdpdfError

    digest = digest or input_hash(config, sample)
    row = _empty_row(sample, digest)
    sdir = Path(outdir) / sample.name
    sdir.mkdir(parents=True, exist_ok=True)
    try:
        pattern = integrate_sample(config, sample)
        io.write_pattern(pattern, sdir / f"{sample.name}.xye", overwrite=True)
    except XrdpdfError as exc:
        row["error"] = f"integrate: {exc}"
        io.write_json(row, sdir / "result.json", overwrite=True)
        return row
    if sample.phases:
        # whole-pattern size (Scherrer K in the profile): single-peak Scherrer fits are
        # unreliable at ~3 nm, where 111 and 200 overlap (ALGORITHMS.md §5)
        _attempt(row, "refine", _refine_sample, config, sample, pattern, sdir, row)
    _attempt(row, "pdf", _pdf_sample, config, sample, pattern, sdir, row)
    io.write_json(row, sdir / "result.json", overwrite=True)
    return row


def _cached_row(outdir: Path, sample: SampleSpec, digest: str) -> dict[str, Any] | None:
    f = outdir / sample.name / "result.json"
    try:
        row = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if row.get("input_hash") != digest or set(row) != set(SUMMARY_COLUMNS):
        return None
    return {k: (_NAN if v is None else v) for k, v in row.items()}


# ------------------------------------------------------------------ the series
@dataclass
class SeriesResult:
    """Outcome of :func:`run_series`.

    Attributes
    ----------
    rows : list of dict
        One summary row per sample, in the order of the series file.
    skipped : list of str
        Samples whose inputs and settings were unchanged (results reused).
    failed : list of str
        Samples whose ``error`` is not empty.
    summary_csv, summary_h5 : Path
    """

    rows: list[dict[str, Any]]
    skipped: list[str]
    failed: list[str]
    summary_csv: Path
    summary_h5: Path
    figures: dict[str, Path] = field(default_factory=dict)
    report: Path | None = None

    @property
    def n_ok(self) -> int:
        """Samples that produced at least an integrated pattern."""
        return sum(1 for r in self.rows if not str(r["error"]).startswith("integrate:"))


def run_series(
    config: SeriesConfig,
    outdir: str | os.PathLike,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    force: bool = False,
) -> SeriesResult:
    """Process every sample of a series, in parallel with Dask, and write the summary.

    Parameters
    ----------
    config : SeriesConfig
        From :func:`load_series`.
    outdir : path-like
        Output directory (created).
    workers : int, optional
        Worker processes of a ``distributed.LocalCluster`` (default: the number
        of CPU cores, at most the number of samples).  ``0`` runs in this
        process without Dask (for notebooks and debugging).
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``); overrides
        ``workers``.
    on_progress : callable, optional
        Called as ``on_progress(done, total, sample_name)`` after each sample.
    force : bool
        Recompute samples even when their content hash is unchanged.

    Returns
    -------
    SeriesResult
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    digests = {s.name: input_hash(config, s) for s in config.samples}
    rows: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    todo: list[SampleSpec] = []
    for s in config.samples:
        cached = None if force else _cached_row(outdir, s, digests[s.name])
        if cached is not None:
            rows[s.name] = cached
            skipped.append(s.name)
        else:
            todo.append(s)
    total = len(config.samples)
    done = len(skipped)
    if on_progress:
        for name in skipped:
            on_progress(done, total, name)
    # the amorphous reference (if any) is processed before the samples that use it
    ref_name = config.refine.get("amorphous_reference")
    batches = [[t for t in todo if t.name == ref_name], [t for t in todo if t.name != ref_name]]
    batches = [b for b in batches if b]
    if batches:
        if scheduler is None and workers == 0:
            results = (
                (t.name, process_sample(config, t, outdir, digests[t.name]))
                for b in batches
                for t in b
            )
        else:
            results = _run_dask(config, batches, outdir, digests, workers, scheduler)
        for name, row in results:
            rows[name] = row
            done += 1
            if on_progress:
                on_progress(done, total, name)
    ordered = [rows[s.name] for s in config.samples]
    volume_changes(ordered)
    csv_path = write_summary_csv(ordered, outdir / "summary.csv")
    h5_path = write_summary_h5(ordered, outdir / "summary.h5")
    failed = [r["name"] for r in ordered if r["error"]]
    figures, report = write_figures(config, ordered, outdir)
    return SeriesResult(ordered, skipped, failed, csv_path, h5_path, figures, report)


def write_figures(
    config: SeriesConfig, rows: Sequence[Mapping[str, Any]], outdir: Path
) -> tuple[dict[str, Path], Path]:
    """Write the series figures (PNG) and ``report.html`` from the per-sample outputs.

    Figures: I(Q) waterfall with its Cu Kα 2θ view and rocksalt peaks marked,
    G(r) overlay, correlation length vs cycle, lattice parameter vs state.
    Samples without a pattern or G(r) are left out of the respective figure.
    """
    from . import io, phases
    from .plot import save_figure
    from .plot import series as sp

    with_iq = [(r, outdir / r["name"] / f"{r['name']}.xye") for r in rows]
    with_iq = [(r, f) for r, f in with_iq if f.exists()]
    with_gr = [(r, outdir / r["name"] / f"{r['name']}.gr") for r in rows]
    with_gr = [(r, f) for r, f in with_gr if f.exists()]
    figures: dict[str, Path] = {}
    if with_iq:
        rs = phases.get_phase("NaTiO2").reflections(8.5)
        fig = sp.waterfall_figure(
            [io.read_pattern(f) for _, f in with_iq],
            [r for r, _ in with_iq],
            rs_peaks_q=np.unique(rs.q_invA.round(4)),
        )
        figures["I(Q) waterfall and Cu Kα 2θ view"] = save_figure(fig, outdir / "waterfall.png")
    if with_gr:
        fig = sp.gr_overlay_figure(
            [io.read_pattern(f) for _, f in with_gr], [r for r, _ in with_gr]
        )
        figures["G(r) across cycles"] = save_figure(fig, outdir / "gr_overlay.png")
    figures["correlation length vs cycle"] = save_figure(
        sp.corrlen_figure(rows), outdir / "corrlen.png"
    )
    figures["lattice parameter vs state"] = save_figure(
        sp.lattice_figure(rows), outdir / "lattice.png"
    )
    notes = [
        "a_A: rocksalt lattice parameter from the Rietveld-lite refinement (Bragg positions "
        "of the refined cell, not single-peak maxima).",
        "size_A: whole-pattern Scherrer size of the first phase (Lorentzian size "
        "broadening with K from [size] k, default 0.9: V^1/3 of the grains).",
        "xi_A: sphere-envelope diameter fitted to G(r) (module xrdpdf.corrlen); r_noise_A: "
        "largest r where |G| exceeds 3σ of the high-r noise.",
        "volume_change_pct: (a_sod/a_desod)^3 − 1 for the same cycle.",
    ]
    page = sp.report_html(config.title, rows, SUMMARY_COLUMNS, figures, notes)
    report = io.write_text(page, outdir / "report.html", overwrite=True)
    return figures, report


def _run_dask(config, batches, outdir, digests, workers, scheduler):
    """Yield ``(name, row)`` as samples finish; each batch waits for the one before."""
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="20s")
    else:
        n = workers or os.cpu_count() or 1
        n = max(1, min(n, max(len(b) for b in batches)))
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
        )
        client = Client(cluster)
    try:
        for batch in batches:
            futures = {
                client.submit(
                    process_sample,
                    config,
                    t,
                    str(outdir),
                    digests[t.name],
                    pure=False,
                    key=f"xrdpdf-{t.name}-{digests[t.name][:12]}",
                ): t
                for t in batch
            }
            for fut in as_completed(futures):
                spec = futures[fut]
                try:
                    row = fut.result()
                except Exception as exc:  # a worker died or a bug: report, keep going
                    row = _empty_row(spec, digests[spec.name])
                    row["error"] = f"{type(exc).__name__}: {exc}"
                yield spec.name, row
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ------------------------------------------------------------------ summary files
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(v)
    return str(v)


def write_summary_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Write the summary table as CSV (empty cell = not determined), atomically."""
    import csv
    import io as _io

    from .io import write_text

    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SUMMARY_COLUMNS)
    for r in rows:
        w.writerow([_fmt(r.get(c, "")) for c in SUMMARY_COLUMNS])
    return write_text(buf.getvalue(), path, overwrite=True)


def write_summary_h5(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Write the summary table to HDF5: group ``/summary``, one dataset per column."""
    import h5py
    import numpy as np

    from .io import atomic_path

    text_cols = ("name", "state", "phase", "input_hash", "error")
    with atomic_path(path, overwrite=True) as tmp, h5py.File(tmp, "w") as h5:
        g = h5.create_group("summary")
        g.attrs["columns"] = ",".join(SUMMARY_COLUMNS)
        for c in SUMMARY_COLUMNS:
            vals = [r.get(c) for r in rows]
            if c in text_cols:
                g.create_dataset(
                    c,
                    data=np.array([str(v) for v in vals], dtype=object),
                    dtype=h5py.string_dtype(),
                )
            elif c in ("cycle", "n_images"):
                g.create_dataset(c, data=np.array(vals, dtype=np.int64))
            else:
                g.create_dataset(c, data=np.array([_num(v) for v in vals], dtype=float))
    return path


def read_summary(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read ``summary.csv`` back into rows (numbers as float, empty as NaN)."""
    import csv

    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            row: dict[str, Any] = {}
            for k, v in r.items():
                if k in ("name", "state", "phase", "input_hash", "error"):
                    row[k] = v
                elif k in ("cycle", "n_images"):
                    row[k] = int(v)
                else:
                    row[k] = float(v) if v != "" else _NAN
            rows.append(row)
    return rows
