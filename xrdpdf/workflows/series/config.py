"""The series file: a TOML description of samples, their labels, groups and settings.

A series file is data, never code: it is parsed with :mod:`tomllib` and every
key is checked against the lists below, so that a typo is an error naming the
key and the file.  Paths are relative to the series file.  Nothing about one
experiment is built in: the file declares its sample labels (``[labels]``),
its groups (``[group.NAME]``), the quantities derived between samples
(``[[derived]]``) and which refined phase the ``rs_fraction`` column reports
(``[refine] fraction_phase``).

Example (``examples/series.toml`` is a complete one)::

    [series]
    poni = "geometry.poni"
    composition = "CeO2"              # PDF composition (also per group or sample)
    [labels]                          # free sample labels: columns of the summary
    temperature_K = "number"          # "integer", "number", "text" or a list of values
    [refine]
    phases = ["CeO2"]
    [[derived]]                       # a quantity between two samples of one group
    name = "a_change_pct"
    kind = "relative_change_pct"      # difference, ratio, relative_change_pct, volume_change
    column = "a_A"
    label = "temperature_K"
    from = 300
    to = 600
    [pdffit]                          # optional: real-space fit of each G(r)
    model = "NaTiO2_pdf.toml"         # PDF-fit model file; pdffit_model per group/sample
    phase = "NaTiO2"                  # the phase of the pdffit_* columns (default: the first)
    [group.heating]
    phases = ["CeO2"]
    [[sample]]
    name = "t300"
    group = "heating"
    temperature_K = 300
    images = ["t300_*.tif"]           # globs; several images are summed
    dark = "dark.tif"                 # optional
"""

from __future__ import annotations

import glob
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from xrdpdf._core.errors import InputError

__all__ = [
    "DERIVED_KINDS",
    "DerivedSpec",
    "SampleSpec",
    "SeriesConfig",
    "integration_format",
    "integration_overrides",
    "integration_settings",
    "load_series",
    "pdf_config",
    "refine_options",
]

_SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "series": ("poni", "mask", "flat", "resolution", "composition", "title"),
    "integrate": ("npt", "unit", "polarization", "sigma_clip", "method", "format"),
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
        "fraction_phase",
        "occupancy_sum",
    ),
    "size": ("k",),
    "figures": ("x", "by", "peaks"),
    "pdffit": ("model", "phase"),
}
_TABLES = (*_SECTION_KEYS, "labels", "group", "derived", "sample")
_SETTING_KEYS = ("composition", "phases", "pdf", "amorphous_reference", "pdffit_model")
_SAMPLE_KEYS = ("name", "group", "images", "dark", *_SETTING_KEYS)
_DERIVED_KEYS = ("name", "kind", "column", "label", "from", "to", "esd_name")
_LABEL_TYPES = ("integer", "number", "text")

#: Kinds of ``[[derived]]`` quantities: value of (x_to, x_from) (see :mod:`.summary`).
DERIVED_KINDS = ("difference", "ratio", "relative_change_pct", "volume_change")

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass(frozen=True)
class SampleSpec:
    """One sample of a series: its images, labels, group and resolved settings.

    Attributes
    ----------
    name : str
        Used for output file names; letters, digits, ``._+-`` only.
    images : tuple of Path
        Image files (globs already expanded, sorted); every frame is summed.
    dark : Path or None
        Dark image, given to the integrator (pyFAI subtracts it per frame).
    composition : str or None
        Chemical composition for the PDF (sample > group > ``[series]``).
    phases : tuple of str
        Phases to refine (sample > group > ``[refine] phases``).
    labels : mapping
        The sample's values of the ``[labels]`` of the file (summary columns).
    group : str
        Its group ("" when none); derived quantities pair samples of one group.
    pdf : mapping
        ``[pdf]`` settings with the group's and the sample's overrides.
    use_reference : bool or str
        ``False``: no amorphous reference; a sample name: that one; ``True``:
        ``[refine] amorphous_reference``.
    """

    name: str
    images: tuple[Path, ...]
    dark: Path | None
    composition: str | None
    phases: tuple[str, ...]
    labels: Mapping[str, Any] = field(default_factory=dict)
    group: str = ""
    pdf: Mapping[str, Any] = field(default_factory=dict)
    use_reference: bool | str = True
    pdffit_model: Path | None = None

    def __getattr__(self, key: str) -> Any:
        # labels read as attributes (``sample.cycle``) for scripts and notebooks
        labels = object.__getattribute__(self, "labels")
        if key in labels:
            return labels[key]
        raise AttributeError(key)


@dataclass(frozen=True)
class DerivedSpec:
    """A ``[[derived]]`` quantity: ``kind`` of ``column`` between two samples of one group.

    The two samples are those of the group whose ``label`` equals ``from``
    and ``to``; both rows get the value (column ``name``) and its esd
    (column ``esd_name``).
    """

    name: str
    kind: str
    column: str
    label: str
    from_value: Any
    to_value: Any
    esd_name: str


@dataclass(frozen=True)
class SeriesConfig:
    """A parsed, validated series file.  Paths are absolute."""

    path: Path
    poni: Path
    mask: Path | None
    flat: Path | None
    resolution: Path | None
    composition: str | None
    title: str
    integrate: Mapping[str, Any] = field(default_factory=dict)
    pdf: Mapping[str, Any] = field(default_factory=dict)
    refine: Mapping[str, Any] = field(default_factory=dict)
    size: Mapping[str, Any] = field(default_factory=dict)
    samples: tuple[SampleSpec, ...] = ()
    labels: Mapping[str, Any] = field(default_factory=dict)
    derived: tuple[DerivedSpec, ...] = ()
    figures: Mapping[str, Any] = field(default_factory=dict)
    pdffit: Mapping[str, Any] = field(default_factory=dict)

    def settings_for(self, sample: SampleSpec) -> dict[str, Any]:
        """All settings that determine a sample's result (for the content hash)."""
        return {
            "integrate": dict(self.integrate),
            "pdf": {k: (str(v) if isinstance(v, Path) else v) for k, v in sample.pdf.items()},
            "refine": dict(self.refine),
            "size": dict(self.size),
            "composition": sample.composition,
            "phases": list(sample.phases),
            "labels": dict(sample.labels),
            "group": sample.group,
            "reference": sample.use_reference,
            "pdffit": dict(self.pdffit),
            "pdffit_model": None if sample.pdffit_model is None else str(sample.pdffit_model),
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


def _table(doc: Mapping[str, Any], key: str, path: Path) -> dict[str, Any]:
    table = doc.get(key, {})
    if not isinstance(table, dict):
        raise InputError(f"{path}: [{key}] must be a table")
    return dict(table)


def _label_value(name: str, kind: Any, value: Any, where: str) -> Any:
    """Check one label value against its declaration in ``[labels]``."""
    if isinstance(kind, list):
        if value not in kind:
            allowed = ", ".join(str(k) for k in kind)
            raise InputError(f"{where}: {name} must be one of {allowed}, got {value!r}")
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where}: {name} must be an integer, got {value!r}")
        return int(value)
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{where}: {name} must be a number, got {value!r}")
        return value
    if not isinstance(value, str):
        raise InputError(f"{where}: {name} must be text, got {value!r}")
    return value


def _labels(doc: Mapping[str, Any], path: Path) -> dict[str, Any]:
    labels = _table(doc, "labels", path)
    reserved = set(_SAMPLE_KEYS)
    for name, kind in labels.items():
        if name in reserved or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise InputError(f"{path}: [labels] {name!r} is not a free column name")
        ok = kind in _LABEL_TYPES or (
            isinstance(kind, list) and kind and all(isinstance(k, str | int) for k in kind)
        )
        if not ok:
            raise InputError(
                f"{path}: [labels] {name} must be one of {', '.join(_LABEL_TYPES)} "
                f"or a list of allowed values, got {kind!r}"
            )
    return labels


def _derived(doc: Mapping[str, Any], labels: Mapping[str, Any], path: Path) -> tuple:
    raw = doc.get("derived", [])
    if not isinstance(raw, list):
        raise InputError(f"{path}: derived quantities are [[derived]] tables")
    out = []
    for i, d in enumerate(raw, 1):
        where = f"{path}: [[derived]] #{i}"
        if not isinstance(d, dict):
            raise InputError(f"{where} must be a table")
        _check_keys(f"[[derived]] #{i}", d, _DERIVED_KEYS, path)
        for req in ("name", "kind", "column", "label", "from", "to"):
            if req not in d:
                raise InputError(f"{where} lacks {req!r}")
        if d["kind"] not in DERIVED_KINDS:
            raise InputError(
                f"{where}: kind must be one of {', '.join(DERIVED_KINDS)}, got {d['kind']!r}"
            )
        if d["label"] not in labels:
            raise InputError(f"{where}: label {d['label']!r} is not declared in [labels]")
        for end in ("from", "to"):
            _label_value(d["label"], labels[d["label"]], d[end], f"{where} {end}")
        name = str(d["name"])
        stem, _, unit = name.rpartition("_")
        esd_name = d.get("esd_name") or (f"{stem}_esd_{unit}" if stem else f"{name}_esd")
        out.append(
            DerivedSpec(name, d["kind"], str(d["column"]), d["label"], d["from"], d["to"], esd_name)
        )
    return tuple(out)


def _groups(doc: Mapping[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    groups = _table(doc, "group", path)
    for name, g in groups.items():
        if not isinstance(g, dict):
            raise InputError(f"{path}: [group.{name}] must be a table")
        _check_keys(f"[group.{name}]", g, _SETTING_KEYS, path)
    return groups


def _settings(layers: Sequence[Mapping[str, Any]], key: str, default: Any) -> Any:
    """The innermost of sample > group > file value of ``key``."""
    for layer in layers:
        if key in layer:
            return layer[key]
    return default


def _phases(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InputError(f'{where}: phases must be a list of names, e.g. ["anatase"]')
    return tuple(value)


def _pdf_table(base: Path, table: Any, where: str, path: Path) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise InputError(f"{path}: {where} pdf must be a table")
    _check_keys(f"{where} pdf", table, _SECTION_KEYS["pdf"], path)
    out = dict(table)
    if "bkg" in out:
        out["bkg"] = _resolve(base, out["bkg"], f"{where} pdf bkg", path)
    return out


def _sample(
    s: Any, i: int, ctx: dict[str, Any], base: Path, path: Path, seen: set[str]
) -> SampleSpec:
    if not isinstance(s, dict):
        raise InputError(f"{path}: [[sample]] #{i} must be a table")
    labels = ctx["labels"]
    _check_keys(f"[[sample]] #{i}", s, (*_SAMPLE_KEYS, *labels), path)
    for req in ("name", "images", *labels):
        if req not in s:
            raise InputError(f"{path}: [[sample]] #{i} lacks {req!r}")
    name = s["name"]
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name:
        raise InputError(
            f"{path}: sample name {name!r} is not a safe file name "
            "(letters, digits and ._+- only; no path separators or '..')"
        )
    if name.lower() in seen:
        raise InputError(f"{path}: sample name {name!r} is repeated")
    seen.add(name.lower())
    where = f"{path}: sample {name!r}"
    values = {k: _label_value(k, kind, s[k], where) for k, kind in labels.items()}
    group = s.get("group", "")
    if not isinstance(group, str) or (group and group not in ctx["groups"]):
        known = ", ".join(ctx["groups"]) or "none declared"
        raise InputError(f"{where}: group {group!r} is not a [group.NAME] ({known})")
    layers = [s, ctx["groups"].get(group, {})]
    pats = s["images"]
    if isinstance(pats, str):
        pats = [pats]
    images: list[Path] = []
    for pat in pats:
        full = pat if os.path.isabs(pat) else str(base / pat)
        hits = sorted(glob.glob(full))
        if not hits:
            raise InputError(f"{where}: no image matches {pat!r}")
        images.extend(Path(h) for h in hits)
    dark = _resolve(base, s["dark"], f"sample {name!r} dark", path) if "dark" in s else None
    pdf = dict(ctx["pdf"])
    for layer, lw in ((layers[1], f"[group.{group}]"), (layers[0], f"sample {name!r}")):
        if "pdf" in layer:
            pdf.update(_pdf_table(base, layer["pdf"], lw, path))
    phases = _phases(_settings(layers, "phases", ctx["phases"]), where)
    composition = _settings(layers, "composition", ctx["composition"])
    model = _settings(layers, "pdffit_model", ctx["pdffit_model"])
    pdffit_model = _resolve(base, model, f"sample {name!r} pdffit model", path) if model else None
    ref = _settings(layers, "amorphous_reference", True)
    if not isinstance(ref, bool | str):
        raise InputError(f"{where}: amorphous_reference must be true, false or a sample name")
    return SampleSpec(
        name=name,
        images=tuple(images),
        dark=dark,
        composition=None if composition is None else str(composition),
        phases=phases,
        labels=values,
        group=group,
        pdf=pdf,
        use_reference=ref,
        pdffit_model=pdffit_model,
    )


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
        directory or repeats another, a glob that matches no image, a label
        value its declaration does not allow, an unknown group, a bad setting.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such series file")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    base = path.parent.resolve()
    _check_keys("the top level", doc, _TABLES, path)
    for section, keys in _SECTION_KEYS.items():
        _check_keys(f"[{section}]", _table(doc, section, path), keys, path)
    series = doc.get("series")
    if not series:
        raise InputError(f"{path}: missing [series] table (needs at least poni)")
    if "poni" not in series:
        raise InputError(f"{path}: [series] needs 'poni', the geometry file")
    poni = _resolve(base, series["poni"], "poni", path)

    def opt(key: str) -> Path | None:
        return _resolve(base, series[key], key, path) if key in series else None

    refine = _table(doc, "refine", path)
    labels = _labels(doc, path)
    ctx = {
        "labels": labels,
        "groups": _groups(doc, path),
        "pdf": _pdf_table(base, _table(doc, "pdf", path), "[pdf]", path),
        "phases": _phases(refine.get("phases", []), f"{path}: [refine]"),
        "composition": series.get("composition"),
        "pdffit_model": _table(doc, "pdffit", path).get("model"),
    }
    raw_samples = doc.get("sample", [])
    if not isinstance(raw_samples, list) or not raw_samples:
        raise InputError(f"{path}: no [[sample]] entries")
    seen: set[str] = set()
    samples = tuple(_sample(s, i, ctx, base, path, seen) for i, s in enumerate(raw_samples, 1))
    names = {smp.name for smp in samples}
    for ref in [refine.get("amorphous_reference")] + [s.use_reference for s in samples]:
        if isinstance(ref, str) and ref not in names:
            raise InputError(f"{path}: amorphous_reference {ref!r} is not the name of a sample")
    config = SeriesConfig(
        path=path.resolve(),
        poni=poni,
        mask=opt("mask"),
        flat=opt("flat"),
        resolution=opt("resolution"),
        composition=ctx["composition"],
        title=str(series.get("title", path.stem)),
        integrate=_table(doc, "integrate", path),
        pdf=ctx["pdf"],
        refine=refine,
        size=_table(doc, "size", path),
        samples=samples,
        labels=labels,
        derived=_derived(doc, labels, path),
        figures=_table(doc, "figures", path),
        pdffit=_table(doc, "pdffit", path),
    )
    _check_settings(path, config)
    return config


# ------------------------------------------------------------- typed settings of a table
def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{what} must be true or false, got {value!r}")
    return value


#: ``[integrate] format``: the I(Q) file of each sample; ``nxazint1d`` adds
#: ``<name>.nxs`` (pyFAI's NXazint1d with its accumulators) to the ``.xye``.
INTEGRATE_FORMATS = ("xye", "nxazint1d")


def integration_format(config: SeriesConfig) -> str:
    """``[integrate] format`` (default ``"xye"``), checked."""
    fmt = config.integrate.get("format", "xye")
    if fmt not in INTEGRATE_FORMATS:
        raise InputError(
            f"[integrate] format must be one of {', '.join(INTEGRATE_FORMATS)}, got {fmt!r}"
        )
    return fmt


def integration_settings(config: SeriesConfig):
    """The :class:`~xrdpdf.stages.integrate.IntegrationSettings` of the ``[integrate]`` table."""
    from xrdpdf.stages.integrate import IntegrationSettings

    return IntegrationSettings(**integration_overrides(config))


def integration_overrides(config: SeriesConfig) -> dict[str, Any]:
    """The ``[integrate]`` settings given, as IntegrationSettings keywords (checked types).

    With a pyFAI integration config (WorkerConfig JSON) as ``poni`` these win over
    the config's settings; the others come from it.
    """
    integration_format(config)
    names = {
        "npt": "npt",
        "unit": "unit",
        "polarization": "polarization_factor",
        "sigma_clip": "sigma_clip",
        "method": "method",
    }
    kw = {names[k]: v for k, v in config.integrate.items() if k in names}
    if "sigma_clip" in kw:
        kw["sigma_clip"] = _bool(kw["sigma_clip"], "[integrate] sigma_clip")
    for key in ("npt", "polarization_factor"):
        v = kw.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise InputError(f"[integrate] {key.split('_')[0]} must be a number, got {v!r}")
    return kw


def refine_options(config: SeriesConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`~xrdpdf.stages.refinement.refine` (``[refine]``, ``[size]``)."""
    opts = config.refine
    kw: dict[str, Any] = {
        "amorphous": _bool(opts.get("amorphous", False), "[refine] amorphous"),
        "cuka": _bool(opts.get("cuka", False), "[refine] cuka"),
    }
    if "occupancy_sum" in opts:
        kw["occupancy_sum"] = _bool(opts["occupancy_sum"], "[refine] occupancy_sum")
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
    """The :class:`~xrdpdf.PdfConfig` of a sample (``[pdf]``, group and sample overrides).

    Raises
    ------
    InputError
        No composition for the sample (``[series]``, its group or itself), or a bad value.
    """
    from xrdpdf.stages import pdf

    if sample.composition is None:
        raise InputError(
            f"sample {sample.name!r} has no composition for the PDF "
            "(give composition in [series], its [group.NAME] or the sample)"
        )
    kw: dict[str, Any] = dict(PDF_DEFAULTS)
    kw.update({_PDF_KEYS[k]: v for k, v in sample.pdf.items() if k in _PDF_KEYS})
    return pdf.PdfConfig(composition=sample.composition, **kw)


def _check_settings(path: Path, config: SeriesConfig) -> None:
    """Build every stage's settings once, so that a bad value fails at load, naming the file."""
    from xrdpdf.physics.cif import get_phase

    try:
        integration_settings(config)
        refine_options(config)
        ref = config.refine.get("amorphous_reference")
        if ref is not None and not isinstance(ref, str):
            raise InputError(f"[refine] amorphous_reference must be a sample name, got {ref!r}")
        frac = config.refine.get("fraction_phase")
        if frac is not None and not isinstance(frac, str):
            raise InputError(f"[refine] fraction_phase must be a phase name, got {frac!r}")
        peaks = config.figures.get("peaks")
        names = {p for smp in config.samples for p in smp.phases} | ({peaks} - {None})
        for name in sorted(names, key=str):
            if not isinstance(name, str):
                raise InputError(f"phases must be names or CIF paths, got {name!r}")
            get_phase(name)
        for key in ("x", "by"):
            lab = config.figures.get(key)
            if lab is not None and lab not in config.labels:
                raise InputError(f"[figures] {key} = {lab!r} is not declared in [labels]")
        for smp in config.samples:
            if smp.composition is not None:
                pdf_config(config, smp)
        _check_pdffit(config)
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: {exc}") from None


def _check_pdffit(config: SeriesConfig) -> None:
    """Every real-space model file reads, and ``[pdffit] phase`` is one of its phases."""
    from xrdpdf.stages.pdffit import read_model

    phase = config.pdffit.get("phase")
    for model_path in sorted({smp.pdffit_model for smp in config.samples} - {None}):
        model = read_model(model_path)
        names = [ph.name for ph in model.phases]
        if phase is not None and phase not in names:
            raise InputError(
                f"[pdffit] phase {phase!r} is not a phase of {model_path} ({', '.join(names)})"
            )
