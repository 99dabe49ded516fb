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
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from xrdpdf._core.errors import InputError
from xrdpdf.workflows.series import _schema
from xrdpdf.workflows.series._options import (
    INTEGRATE_FORMATS,
    PDF_DEFAULTS,
    check_settings,
    integration_format,
    integration_overrides,
    integration_settings,
    pdf_config,
    refine_options,
)
from xrdpdf.workflows.series._schema import DERIVED_KINDS
from xrdpdf.workflows.series._spec import DerivedSpec, SampleSpec, SeriesConfig

__all__ = [
    "DERIVED_KINDS",
    "INTEGRATE_FORMATS",
    "PDF_DEFAULTS",
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

_SECTIONS: dict[str, type] = {
    "series": _schema.Series,
    "integrate": _schema.Integrate,
    "pdf": _schema.Pdf,
    "refine": _schema.Refine,
    "size": _schema.Size,
    "figures": _schema.Figures,
    "pdffit": _schema.Pdffit,
}
_TABLES = (*_SECTIONS, "labels", "group", "derived", "sample")
_LABEL_TYPES = ("integer", "number", "text")

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
#: Longest sample name: its longest output's temporary name must fit in 255 bytes.
MAX_NAME_CHARS = 100
#: What a series writes at the top of OUTDIR; no sample may be named so.
OUTDIR_FILES = (
    "summary.csv",
    "summary.h5",
    "report.html",
    "series.json",
    "waterfall.png",
    "gr_overlay.png",
    "corrlen.png",
    "lattice.png",
)


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
    """A top-level table, checked against its schema when it has one."""
    table = doc.get(key, {})
    if key in _SECTIONS:
        return _schema.parse_table(_SECTIONS[key], table, f"[{key}]", path)
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
    reserved = set(_schema.table_keys(_schema.Sample))
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
        d = _schema.parse_table(_schema.Derived, d, f"[[derived]] #{i}", path)
        if d["label"] not in labels:
            raise InputError(f"{where}: label {d['label']!r} is not declared in [labels]")
        for end in ("from", "to"):
            _label_value(d["label"], labels[d["label"]], d[end], f"{where} {end}")
        name = d["name"]
        stem, _, unit = name.rpartition("_")
        esd_name = d.get("esd_name") or (f"{stem}_esd_{unit}" if stem else f"{name}_esd")
        out.append(
            DerivedSpec(name, d["kind"], d["column"], d["label"], d["from"], d["to"], esd_name)
        )
    return tuple(out)


def _groups(doc: Mapping[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    groups = doc.get("group", {})
    if not isinstance(groups, dict):
        raise InputError(f"{path}: groups are [group.NAME] tables")
    return {
        name: _schema.parse_table(_schema.Group, g, f"[group.{name}]", path)
        for name, g in groups.items()
    }


def _settings(layers: Sequence[Mapping[str, Any]], key: str, default: Any) -> Any:
    """The innermost of sample > group > file value of ``key``."""
    for layer in layers:
        if key in layer:
            return layer[key]
    return default


def _pdf_table(base: Path, table: Any, where: str, path: Path) -> dict[str, Any]:
    out = _schema.parse_table(_schema.Pdf, table, f"{where} pdf", path)
    if "bkg" in out:
        out["bkg"] = _resolve(base, out["bkg"], f"{where} pdf bkg", path)
    return out


def _check_name(name: str, path: Path) -> None:
    """A sample name is a file name inside OUTDIR: safe, short, not one of the series' own."""
    if not _SAFE_NAME.match(name) or ".." in name:
        raise InputError(
            f"{path}: sample name {name!r} is not a safe file name "
            "(letters, digits and ._+- only; no path separators or '..')"
        )
    if len(name) > MAX_NAME_CHARS:
        raise InputError(
            f"{path}: sample name {name[:40]!r}... has {len(name)} characters; "
            f"at most {MAX_NAME_CHARS} (its output files are named after it)"
        )
    if name.lower() in OUTDIR_FILES:
        raise InputError(
            f"{path}: sample name {name!r} is the name of a series output in OUTDIR "
            f"({', '.join(OUTDIR_FILES)})"
        )


def _images(patterns: str | list[str], base: Path, where: str) -> tuple[Path, ...]:
    """Expand the sample's globs (sorted); an image matched twice would be summed twice."""
    images: dict[str, tuple[Path, str]] = {}
    for pat in [patterns] if isinstance(patterns, str) else patterns:
        full = pat if os.path.isabs(pat) else str(base / pat)
        hits = sorted(glob.glob(full))
        if not hits:
            raise InputError(f"{where}: no image matches {pat!r}")
        for hit in hits:
            key = os.path.normcase(os.path.realpath(hit))
            if key in images:
                first = images[key][1]
                also = "" if first == pat else f" (by {first!r} and {pat!r})"
                raise InputError(
                    f"{where}: image {hit} is listed twice{also}; it would be summed twice"
                )
            images[key] = (Path(hit), pat)
    return tuple(p for p, _ in images.values())


def _sample(
    s: Any, i: int, ctx: dict[str, Any], base: Path, path: Path, seen: set[str]
) -> SampleSpec:
    labels = ctx["labels"]
    name = s.get("name") if isinstance(s, dict) else None
    label = f"sample {name!r}" if isinstance(name, str) and name else f"[[sample]] #{i}"
    s = _schema.parse_table(_schema.Sample, s, label, path, extra=tuple(labels))
    for req in labels:
        if req not in s:
            raise InputError(f"{path}: {label} lacks {req!r}")
    name = s["name"]
    _check_name(name, path)
    if name.lower() in seen:
        raise InputError(f"{path}: sample name {name!r} is repeated")
    seen.add(name.lower())
    where = f"{path}: sample {name!r}"
    values = {k: _label_value(k, kind, s[k], where) for k, kind in labels.items()}
    group = s.get("group", "")
    if group and group not in ctx["groups"]:
        known = ", ".join(ctx["groups"]) or "none declared"
        raise InputError(f"{where}: group {group!r} is not a [group.NAME] ({known})")
    layers = [s, ctx["groups"].get(group, {})]
    images = _images(s["images"], base, where)
    dark = _resolve(base, s["dark"], f"sample {name!r} dark", path) if "dark" in s else None
    pdf = dict(ctx["pdf"])
    for layer, lw in ((layers[1], f"[group.{group}]"), (layers[0], f"sample {name!r}")):
        if "pdf" in layer:
            pdf.update(_pdf_table(base, layer["pdf"], lw, path))
    phases = tuple(_settings(layers, "phases", ctx["phases"]))
    composition = _settings(layers, "composition", ctx["composition"])
    model = _settings(layers, "pdffit_model", ctx["pdffit_model"])
    pdffit_model = _resolve(base, model, f"sample {name!r} pdffit model", path) if model else None
    return SampleSpec(
        name=name,
        images=images,
        dark=dark,
        composition=composition,
        phases=phases,
        labels=values,
        group=group,
        pdf=pdf,
        use_reference=_settings(layers, "amorphous_reference", True),
        pdffit_model=pdffit_model,
    )


def load_series(path: str | os.PathLike) -> SeriesConfig:
    """Parse and validate a series TOML file.

    Every table is checked against its schema (:mod:`._schema`: one dataclass
    per table, its fields the allowed keys with their types and ranges), then
    every stage's settings are built once, so that a mistake fails here, in
    one line naming the file and the key, before any work starts.

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
        missing required key, a value of the wrong type or out of range, a
        sample name that would leave the output directory, repeats another,
        is longer than :data:`MAX_NAME_CHARS` or is one of
        :data:`OUTDIR_FILES`, a glob that matches no image, an image listed
        twice in one sample, a label value its declaration does not allow, an
        unknown group, a bad setting.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such series file")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML ({_one_line(exc)})") from None
    base = path.parent.resolve()
    _check_keys("the top level", doc, _TABLES, path)
    if "series" not in doc:
        raise InputError(f"{path}: missing [series] table (needs at least poni)")
    tables = {key: _table(doc, key, path) for key in _SECTIONS}
    series = tables["series"]
    poni = _resolve(base, series["poni"], "poni", path)

    def opt(key: str) -> Path | None:
        return _resolve(base, series[key], key, path) if key in series else None

    refine = tables["refine"]
    labels = _labels(doc, path)
    ctx = {
        "labels": labels,
        "groups": _groups(doc, path),
        "pdf": _pdf_table(base, tables["pdf"], "[pdf]", path),
        "phases": tuple(refine.get("phases", [])),
        "composition": series.get("composition"),
        "pdffit_model": tables["pdffit"].get("model"),
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
        integrate=tables["integrate"],
        pdf=ctx["pdf"],
        refine=refine,
        size=tables["size"],
        samples=samples,
        labels=labels,
        derived=_derived(doc, labels, path),
        figures=tables["figures"],
        pdffit=tables["pdffit"],
    )
    check_settings(path, config)
    return config


def _one_line(text: object) -> str:
    return " ".join(str(text).split())
