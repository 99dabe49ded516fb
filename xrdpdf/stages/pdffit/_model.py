"""PDF model files (TOML) and the space-group constraints of each phase.

Private helpers of :mod:`xrdpdf.stages.pdffit`: reading and validating the model file,
loading structures (built-in phase, CIF, PDFfit ``.stru``) into a
:class:`~xrdpdf.stages.pdffit._calc.Crystal`, and the free parameters the space group
allows (cell parameters of the crystal system, coordinates from
:class:`diffpy.structure.symmetryutilities.SymmetryConstraints`, with the
floating origin of polar groups fixed).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core.errors import InputError
from xrdpdf.stages.pdffit._calc import Crystal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DATA_KEYS = {"qmax", "qdamp", "qbroad", "rmin", "rmax", "rstep", "vary"}
DATA_VARY = ("qdamp", "qbroad")
PHASE_KEYS = {
    "structure", "name", "scale", "delta1", "delta2", "spdiameter", "uiso", "vary",
    "lattice", "xyz", "occupancy",
}  # fmt: skip
PHASE_VARY = ("scale", "lattice", "delta1", "delta2", "spdiameter", "uiso", "xyz", "occupancy")


@dataclass(frozen=True)
class PhaseModel:
    """One ``[[phase]]`` table (see :func:`xrdpdf.stages.pdffit.read_model`)."""

    structure: str
    name: str
    scale: float = 1.0
    delta1_A: float = 0.0
    delta2_A2: float = 0.0
    spdiameter_A: float = 0.0
    uiso_A2: Mapping[str, float] = field(default_factory=dict)
    vary: tuple[str, ...] = ()
    lattice: tuple[float, ...] | None = None
    xyz: Mapping[str, float] = field(default_factory=dict)
    occupancy: Mapping[str, float] = field(default_factory=dict)
    base_dir: str = "."


@dataclass(frozen=True)
class PdfModel:
    """A PDF model file: the ``[data]`` settings and the phases."""

    phases: tuple[PhaseModel, ...]
    qmax_invA: float = 0.0
    qdamp_invA: float = 0.0
    qbroad_invA: float = 0.0
    rmin_A: float = 1.0
    rmax_A: float = 30.0
    rstep_A: float = 0.01
    vary: tuple[str, ...] = ()
    source: str = "<model>"


def _number(table: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{where}: {key} must be a finite number, got {value!r}")
    return float(value)


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise InputError(f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(allowed))}")


def _vary(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> tuple[str, ...]:
    vary = table.get("vary", [])
    if not isinstance(vary, list) or not all(isinstance(v, str) for v in vary):
        raise InputError(f"{where}: vary must be a list of names, got {vary!r}")
    for v in vary:
        if v not in allowed:
            raise InputError(f"{where}: unknown vary name {v!r}; allowed: {', '.join(allowed)}")
    return tuple(dict.fromkeys(vary))


def _float_table(table: Mapping[str, Any], key: str, where: str) -> dict[str, float]:
    value = table.get(key, {})
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: {key} must be a table name = value, got {value!r}")
    return {str(k): _number(value, k, f"{where}.{key}", 0.0) for k in value}


def parse_model(text: str, source: str = "<model>", base_dir: str = ".") -> PdfModel:
    """Validate a model file's text; unknown keys and names raise InputError."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not valid TOML ({exc})") from None
    _check_keys(doc, {"data", "phase"}, source)
    data = doc.get("data", {})
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: [data] must be a table")
    _check_keys(data, DATA_KEYS, f"{source} [data]")
    where = f"{source} [data]"
    vals = {k: _number(data, k, where, d) for k, d in
            [("qmax", 0.0), ("qdamp", 0.0), ("qbroad", 0.0), ("rmin", 1.0), ("rmax", 30.0),
             ("rstep", 0.01)]}  # fmt: skip
    if min(vals["qmax"], vals["qdamp"], vals["qbroad"]) < 0:
        raise InputError(f"{where}: qmax, qdamp and qbroad must be ≥ 0")
    if not 0 <= vals["rmin"] < vals["rmax"] or vals["rstep"] <= 0:
        raise InputError(
            f"{where}: need 0 ≤ rmin < rmax and rstep > 0, got rmin={vals['rmin']}, "
            f"rmax={vals['rmax']}, rstep={vals['rstep']}"
        )
    phases_in = doc.get("phase", [])
    if not isinstance(phases_in, list) or not phases_in:
        raise InputError(f"{source}: needs at least one [[phase]] table")
    phases = []
    for k, ph in enumerate(phases_in):
        w = f"{source} [[phase]] {k + 1}"
        _check_keys(ph, PHASE_KEYS, w)
        if not isinstance(ph.get("structure"), str):
            raise InputError(f"{w}: structure (a CIF, .stru or built-in phase name) is required")
        lattice = ph.get("lattice")
        if lattice is not None:
            if not isinstance(lattice, list) or len(lattice) != 6:
                raise InputError(f"{w}: lattice must be [a, b, c, alpha, beta, gamma]")
            lattice = tuple(_number({"lattice": v}, "lattice", w, 0) for v in lattice)
        name = ph.get("name", Path(ph["structure"]).stem)
        phases.append(
            PhaseModel(
                structure=ph["structure"],
                name=str(name),
                scale=_number(ph, "scale", w, 1.0),
                delta1_A=_number(ph, "delta1", w, 0.0),
                delta2_A2=_number(ph, "delta2", w, 0.0),
                spdiameter_A=_number(ph, "spdiameter", w, 0.0),
                uiso_A2=_float_table(ph, "uiso", w),
                vary=_vary(ph, PHASE_VARY, w),
                lattice=lattice,
                xyz=_float_table(ph, "xyz", w),
                occupancy=_float_table(ph, "occupancy", w),
                base_dir=base_dir,
            )
        )
    return PdfModel(
        phases=tuple(phases),
        qmax_invA=vals["qmax"],
        qdamp_invA=vals["qdamp"],
        qbroad_invA=vals["qbroad"],
        rmin_A=vals["rmin"],
        rmax_A=vals["rmax"],
        rstep_A=vals["rstep"],
        vary=_vary(data, DATA_VARY, where),
        source=source,
    )


def _toml_value(v: Any) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(float(v))


def model_text(model: PdfModel) -> str:
    """The model as TOML text, in the format :func:`parse_model` reads."""
    lines = ["[data]"]
    for key, v in [("qmax", model.qmax_invA), ("qdamp", model.qdamp_invA),
                   ("qbroad", model.qbroad_invA), ("rmin", model.rmin_A),
                   ("rmax", model.rmax_A), ("rstep", model.rstep_A)]:  # fmt: skip
        lines.append(f"{key} = {_toml_value(v)}")
    if model.vary:
        lines.append(f"vary = {_toml_value(list(model.vary))}")
    for ph in model.phases:
        lines += ["", "[[phase]]", f"structure = {_toml_value(ph.structure)}"]
        lines.append(f"name = {_toml_value(ph.name)}")
        for key, v in [("scale", ph.scale), ("delta1", ph.delta1_A), ("delta2", ph.delta2_A2),
                       ("spdiameter", ph.spdiameter_A)]:  # fmt: skip
            lines.append(f"{key} = {_toml_value(v)}")
        for key, v in [("lattice", ph.lattice), ("uiso", ph.uiso_A2), ("xyz", ph.xyz),
                       ("occupancy", ph.occupancy)]:  # fmt: skip
            if v:
                lines.append(f"{key} = {_toml_value(v)}")
        lines.append(f"vary = {_toml_value(list(ph.vary))}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ structures
def _crystal_from_structure(stru, spacegroup, name: str) -> Crystal:
    n = len(stru)
    if n == 0:
        raise InputError(f"{name}: the structure has no atoms")
    from xrdpdf.stages.pdffit._calc import u_iso_to_cif

    cell = tuple(float(v) for v in stru.lattice.abcABG())
    labels = [a.label or f"{a.element}{k + 1}" for k, a in enumerate(stru)]
    u_cif = [np.asarray(a.U, float) if a.anisotropy else u_iso_to_cif(a.Uisoequiv, cell)
             for a in stru]  # fmt: skip
    arrays = [np.array(stru.xyz, float).reshape(n, 3),
              np.array([a.occupancy for a in stru], float), np.array(u_cif)]  # fmt: skip
    for a in arrays:
        a.flags.writeable = False  # one Crystal is shared by every model that loads the file
    return Crystal(
        name=name,
        cell=cell,  # type: ignore[arg-type]
        elements=tuple(_element(a.element, name) for a in stru),
        xyz=arrays[0],
        occupancy=arrays[1],
        u_cif=arrays[2],
        labels=tuple(labels),
        spacegroup=spacegroup,
    )


def _element(symbol: str, name: str) -> str:
    import re

    m = re.match(r"([A-Z][a-z]?)", str(symbol).strip().capitalize())
    if not m:
        raise InputError(f"{name}: cannot read an element from atom type {symbol!r}")
    return m.group(1)


def load_crystal(spec: str, base_dir: str = ".") -> Crystal:
    """Full-cell crystal from a built-in phase name, a CIF or a PDFfit ``.stru`` file.

    A file is read once per content: the crystal is kept for its resolved path,
    modification time and size (a series fits one model file to every sample).
    """
    path = Path(spec) if Path(spec).is_absolute() else Path(base_dir) / spec
    if path.is_file():
        st = path.stat()
        full = str(path.resolve())
        return _load_crystal(full, full, (st.st_mtime_ns, st.st_size))
    return _load_crystal(spec, str(path), ())


@lru_cache(maxsize=32)
def _load_crystal(spec: str, path_str: str, key: tuple) -> Crystal:
    from diffpy.structure import loadStructure
    from diffpy.structure.spacegroups import GetSpaceGroup

    from xrdpdf.physics.cif import SPECIAL_POSITION_TOL, builtin_phases, get_phase

    path = Path(path_str)
    lower = {k.lower() for k in builtin_phases()} | {"rocksalt", "rs", "tio2"}
    if spec.strip().lower() in lower and not path.exists():
        phase = get_phase(spec)
        sg = GetSpaceGroup(phase.spacegroup_number)
        return _crystal_from_structure(phase.structure, sg, phase.name)
    if not path.is_file():
        raise InputError(f"structure {spec!r}: file {path} not found (nor a built-in phase)")
    suffix = path.suffix.lower()
    if suffix == ".cif":
        phase = get_phase(path)  # space group and validation through xrdpdf.physics
        try:
            # full cell with its Uij; rounded special positions merged as get_phase does
            stru = loadStructure(str(path), fmt="cif", eps=SPECIAL_POSITION_TOL)
        except Exception as exc:  # diffpy raises several types for bad files
            raise InputError(f"{path}: cannot read CIF ({exc})") from None
        return _crystal_from_structure(stru, GetSpaceGroup(phase.spacegroup_number), path.stem)
    if suffix == ".stru":
        try:
            stru = loadStructure(str(path), fmt="pdffit")
        except Exception as exc:
            raise InputError(f"{path}: cannot read PDFfit structure ({exc})") from None
        symbol = str(getattr(stru, "pdffit", {}).get("spcgr", "P1")).replace(" ", "")
        try:
            sg = GetSpaceGroup(symbol)
        except ValueError:
            raise InputError(f"{path}: unknown space group {symbol!r}") from None
        return _crystal_from_structure(stru, sg, path.stem)
    raise InputError(f"structure {spec!r}: expected a .cif or .stru file or a built-in phase")


# ---------------------------------------------------------------- constraints
def free_cell_names(system: str, cell) -> tuple[str, ...]:
    """Cell parameters free under the crystal system."""
    system = system.lower()
    if system == "cubic":
        return ("a",)
    if system in ("tetragonal", "hexagonal"):
        return ("a", "c")
    if system == "trigonal":
        return ("a", "c") if abs(cell[5] - 120.0) < 1e-6 else ("a", "alpha")
    if system == "orthorhombic":
        return ("a", "b", "c")
    if system == "monoclinic":
        odd = [n for n, v in zip(("alpha", "beta", "gamma"), cell[3:], strict=True)
               if abs(v - 90.0) > 1e-6]  # fmt: skip
        return ("a", "b", "c", odd[0] if odd else "beta")
    return ("a", "b", "c", "alpha", "beta", "gamma")


def cell_from_free(system: str, cell, values: Mapping[str, float]) -> tuple[float, ...]:
    """Full cell from the free parameters; the dependent ones follow the system."""
    v = dict(zip(("a", "b", "c", "alpha", "beta", "gamma"), map(float, cell), strict=True))
    v.update(values)
    system = system.lower()
    if system == "cubic":
        v["b"] = v["c"] = v["a"]
    elif system in ("tetragonal", "hexagonal") or (system == "trigonal" and "c" in values):
        v["b"] = v["a"]
    elif system == "trigonal":
        v["b"] = v["c"] = v["a"]
        v["beta"] = v["gamma"] = v["alpha"]
    return tuple(v[k] for k in ("a", "b", "c", "alpha", "beta", "gamma"))


@dataclass(frozen=True, eq=False)
class Positions:
    """Fractional coordinates as a linear function of the free parameters: xyz = A p + b."""

    names: tuple[str, ...]
    values: np.ndarray
    matrix: np.ndarray  # (3N, P)
    offset: np.ndarray  # (3N,)
    fixed: tuple[str, ...]  # free by symmetry, held to fix a polar origin

    def xyz(self, values: np.ndarray) -> np.ndarray:
        """(N, 3) fractional coordinates for parameter values (P,)."""
        return (self.matrix @ values + self.offset).reshape(-1, 3)


@lru_cache(maxsize=16)
def _constraints(crystal: Crystal):
    from diffpy.structure.symmetryutilities import SymmetryConstraints

    return SymmetryConstraints(crystal.spacegroup, crystal.xyz)


def positions(crystal: Crystal) -> Positions:
    """Free coordinates of the crystal's space group (diffpy SymmetryConstraints).

    For a polar group the origin floats along each direction that every
    rotation leaves unchanged; the first free coordinate that moves along it
    is held fixed (as PDFgui does), so that the fit is not singular.
    """
    sc = _constraints(crystal)
    names = tuple(n for n, _ in sc.pospars)
    values = np.array([v for _, v in sc.pospars], float)
    formulas = sc.positionFormulas()
    nat, npar = len(formulas), len(names)

    def evaluate(p: np.ndarray) -> np.ndarray:
        env = {"__builtins__": {}, **dict(zip(names, p, strict=True))}
        return np.array([eval(f[c], env) for f in formulas for c in "xyz"], float)  # noqa: S307

    offset = evaluate(np.zeros(npar))
    matrix = np.zeros((3 * nat, npar))
    for k in range(npar):
        e = np.zeros(npar)
        e[k] = 1.0
        matrix[:, k] = evaluate(e) - offset
    rots = np.array([np.asarray(op.R, float) for op in crystal.spacegroup.iter_symops()])
    stack = (rots - np.eye(3)).reshape(-1, 3)
    _, sv, vt = np.linalg.svd(stack)
    polar = vt[np.sum(sv > 1e-8) :]  # directions every rotation keeps
    fixed: list[str] = []
    for direction in polar:
        moves = np.abs(matrix.reshape(nat, 3, npar).transpose(2, 0, 1) @ direction).sum(1)
        for k in np.flatnonzero(moves > 1e-8):
            if names[k] not in fixed:
                fixed.append(names[k])
                break
    return Positions(names, values, matrix, offset, tuple(fixed))


def sites(crystal: Crystal) -> tuple[tuple[str, ...], np.ndarray]:
    """Site label of each atom (one per orbit and element) and the index of its site."""
    sc = _constraints(crystal)
    labels: list[str] = []
    index = np.zeros(len(crystal.elements), int)
    seen: dict[tuple[int, str], int] = {}
    for core, members in sorted(sc.coremap.items()):
        for atom in members:
            key = (core, crystal.elements[atom])
            if key not in seen:
                seen[key] = len(labels)
                labels.append(crystal.labels[atom])
            index[atom] = seen[key]
    return tuple(labels), index
