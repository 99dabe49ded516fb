"""The series file's tables as dataclasses: each field name is a TOML key, its hint the type.

A table is checked by :func:`parse_table` against its dataclass: a key that is
not a field is an unknown key, a field without a default is required, and each
value must match the field's type hint (``bool``, ``int``, ``float`` — an
integer is accepted —, ``str``, ``Literal[...]``, ``list[...]``, ``dict`` for
an inline table, unions and ``None``).  ``Annotated`` hints add value checks
(:class:`Range`, :class:`NonEmpty`, :class:`Length`).  Every error is one line
naming the file, the table and the key.  A field named like a Python keyword
carries a trailing underscore (``from_`` is the key ``from``).

Values keep their TOML types (an integer ``npt = 500`` stays ``500``): the
checked table is returned as a plain dict of the keys given, so that defaults
never enter the content hash of a sample.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from xrdpdf._core.errors import InputError

__all__ = [
    "DERIVED_KINDS",
    "Derived",
    "Figures",
    "Group",
    "Integrate",
    "Length",
    "NonEmpty",
    "Pdf",
    "Pdffit",
    "Range",
    "Refine",
    "Sample",
    "Series",
    "Size",
    "parse_table",
    "table_keys",
]

#: Kinds of ``[[derived]]`` quantities: value of (x_to, x_from) (see :mod:`.summary`).
DERIVED_KINDS = ("difference", "ratio", "relative_change_pct", "volume_change")


@dataclass(frozen=True)
class Range:
    """A number in [lo, hi] (``lo_open``/``hi_open``: the end excluded)."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False

    def check(self, value: Any) -> str | None:
        v = float(value)
        ok = math.isfinite(v) and (v > self.lo if self.lo_open else v >= self.lo)
        ok = ok and (v < self.hi if self.hi_open else v <= self.hi)
        if ok:
            return None
        if math.isinf(self.hi):
            return f"{'>' if self.lo_open else '≥'} {self.lo:g}"
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"in {left}{self.lo:g}, {self.hi:g}{right}"


@dataclass(frozen=True)
class NonEmpty:
    """A string or list that is not empty."""

    def check(self, value: Any) -> str | None:
        return "that is not empty" if len(value) == 0 else None


@dataclass(frozen=True)
class Length:
    """A list of exactly ``n`` items."""

    n: int

    def check(self, value: Any) -> str | None:
        return f"with {self.n} values" if len(value) != self.n else None


Text = Annotated[str, NonEmpty()]
PathText = Annotated[str, NonEmpty()]  # a path, relative to the series file
Number = float  # an integer is accepted
Names = list[Text]


# ---------------------------------------------------------------------- the tables
@dataclass(frozen=True)
class Series:
    """``[series]``: the geometry and the files every sample shares."""

    poni: PathText
    mask: PathText | None = None
    flat: PathText | None = None
    resolution: PathText | None = None
    composition: Text | None = None
    title: Text | None = None


@dataclass(frozen=True)
class Integrate:
    """``[integrate]``: :class:`~xrdpdf.stages.integrate.IntegrationSettings`."""

    npt: Annotated[int, Range(2, 100_000)] = 3000
    unit: Text = "q"
    polarization: Annotated[Number, Range(-1, 1)] | None = None
    sigma_clip: bool = False
    method: Literal["fast", "pyfai"] | None = None
    format: Literal["xye", "nxazint1d"] = "xye"


@dataclass(frozen=True)
class Pdf:
    """``[pdf]`` (also inline ``pdf = {...}`` of a group or sample): PDFgetX3's names."""

    qmin: Annotated[Number, Range(0)] = 0.0
    qmax: Annotated[Number, Range(0, lo_open=True)] | Literal["auto"] | None = None
    qmaxinst: Annotated[Number, Range(0, lo_open=True)] | None = None
    rpoly: Annotated[Number, Range(0)] = 0.9
    bkg: PathText | None = None
    bkg_scale: Annotated[Number, Range(0)] | Literal["auto"] = 1.0
    rmin: Annotated[Number, Range(0)] = 0.0
    rmax: Annotated[Number, Range(0, lo_open=True)] = 60.0
    rstep: Annotated[Number, Range(0, lo_open=True)] = 0.02
    lorch: bool = False


@dataclass(frozen=True)
class Refine:
    """``[refine]``: the phases and options of the whole-pattern refinement."""

    phases: Names = dataclasses.field(default_factory=list)
    cuka: bool = False
    background_terms: Annotated[int, Range(1, 30)] = 8
    amorphous: bool = False
    amorphous_reference: Text | None = None
    fit_range: Annotated[list[Number], Length(2)] | None = None
    fraction_phase: Text | None = None
    occupancy_sum: bool = True


@dataclass(frozen=True)
class Size:
    """``[size]``: the Scherrer constant."""

    k: Annotated[Number, Range(0, 5, lo_open=True, hi_open=True)] = 0.9


@dataclass(frozen=True)
class Figures:
    """``[figures]``: the trend figures' x label, marker label and peak phase."""

    x: Text | None = None
    by: Text | None = None
    peaks: Text | None = None


@dataclass(frozen=True)
class Pdffit:
    """``[pdffit]``: the real-space model file and the phase of the ``pdffit_*`` columns."""

    model: PathText | None = None
    phase: Text | None = None


@dataclass(frozen=True)
class Group:
    """``[group.NAME]``: settings shared by the samples of a group."""

    composition: Text | None = None
    phases: Names | None = None
    pdf: dict | None = None
    amorphous_reference: bool | Text | None = None
    pdffit_model: PathText | None = None


@dataclass(frozen=True)
class Sample(Group):
    """``[[sample]]``: one sample (its label values are checked against ``[labels]``)."""

    name: Text = ""
    images: Annotated[list[PathText], NonEmpty()] | PathText = ""
    group: str = ""
    dark: PathText | None = None


@dataclass(frozen=True)
class Derived:
    """``[[derived]]``: ``kind`` of ``column`` between the samples labelled ``from`` and ``to``."""

    name: Text
    kind: Literal["difference", "ratio", "relative_change_pct", "volume_change"]
    column: Text
    label: Text
    from_: Any
    to: Any
    esd_name: Text | None = None


#: Keys that must be present (beyond the fields without default).
_REQUIRED = {Sample: ("name", "images")}


# ------------------------------------------------------------------------ checking
def table_keys(cls: type) -> tuple[str, ...]:
    """The TOML keys of a table's dataclass (a trailing ``_`` dropped)."""
    return tuple(f.name.rstrip("_") for f in dataclasses.fields(cls))


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _describe(typing.get_args(tp)[0])  # a value check speaks when it fails
    if origin in (Union, types.UnionType):
        parts = [_describe(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(parts)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return f"a list of {_plural(item)}"
    return {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a text string",
        dict: "a table",
        Any: "a value",
    }.get(tp, getattr(tp, "__name__", str(tp)))


def _plural(tp: Any) -> str:
    words = _describe(tp)
    for one, many in (("an integer", "integers"), ("a number", "numbers")):
        words = words.replace(one, many)
    return words.replace("a text string", "text strings")


def _check(value: Any, tp: Any) -> str | None:
    """None when ``value`` matches the hint ``tp``; else what it must be."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *marks = typing.get_args(tp)
        wrong = _check(value, base)
        if wrong is not None:
            return wrong
        for mark in marks:
            wrong = mark.check(value)
            if wrong is not None:
                return f"{_describe(base)} {wrong}"
        return None
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        answers = [_check(value, a) for a in options if a is not type(None)]
        if any(a is None for a in answers):
            return None
        typed = [a for a, o in zip(answers, options, strict=False) if _type_matches(value, o)]
        return typed[0] if typed else _describe(tp)
    if origin is Literal:
        return None if value in typing.get_args(tp) else _describe(tp)
    if origin is list:
        if not isinstance(value, list):
            return _describe(tp)
        (item,) = typing.get_args(tp) or (Any,)
        bad = [_check(v, item) for v in value]
        return None if all(b is None for b in bad) else _describe(tp)
    if tp is Any:
        return None
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "a number"
    if tp is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    return None if isinstance(value, tp) else _describe(tp)


def _type_matches(value: Any, tp: Any) -> bool:
    """True when ``value`` has the base type of ``tp`` (so that its value check speaks)."""
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) is list:
        return isinstance(value, list)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return (
        isinstance(tp, type)
        and isinstance(value, tp)
        and not (tp is int and isinstance(value, bool))
    )


def parse_table(
    cls: type,
    table: Any,
    where: str,
    path: Path,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Check one TOML table against the dataclass ``cls``; return the keys given.

    Parameters
    ----------
    cls : dataclass type
        The table's schema.
    table : any
        The parsed TOML value (must be a table).
    where : str
        How the table is named in messages (``"[pdf]"``, ``"sample 'c01'"``).
    path : Path
        The series file, named in every message.
    extra : tuple of str
        Further allowed keys, not checked here (the ``[labels]`` of a sample).

    Raises
    ------
    InputError
        Not a table, an unknown or missing key, or a value of the wrong type or range.
    """
    if not isinstance(table, Mapping):
        raise InputError(f"{path}: {where} must be a table, got {table!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name.rstrip("_"): f for f in dataclasses.fields(cls)}
    allowed = (*fields, *extra)
    for key in table:
        if key not in allowed:
            raise InputError(
                f"{path}: unknown key {key!r} in {where}; allowed: {', '.join(allowed)}"
            )
    required = [
        k
        for k, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    for key in (*required, *_REQUIRED.get(cls, ())):
        if key not in table:
            raise InputError(f"{path}: {where} lacks {key!r}")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            out[key] = value
            continue
        wrong = _check(value, hints[fields[key].name])
        if wrong is not None:
            raise InputError(f"{path}: {where} {key} must be {wrong}, got {_show(value)}")
        out[key] = value
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
