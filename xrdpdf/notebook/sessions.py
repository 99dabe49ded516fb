"""Interactive analysis in Jupyter: sessions that hold the state, and the widget panels on them.

Every widget callback is a plain method of a session class, usable (and tested) without a
browser; the ipywidgets panels only read their controls, call the method and show what it
returns.

* :class:`RefinementSession` — a pattern, its phases and the refinement settings
  (start cell, size, occupancies, which parameters are free, background terms);
  :meth:`~RefinementSession.set`, :meth:`~RefinementSession.refine`,
  :meth:`~RefinementSession.table`, :meth:`~RefinementSession.figure`.
* :class:`PdfSession` — I(Q) (and a background) → G(r) → correlation length ξ;
  :meth:`~PdfSession.update` with ``qmax``, ``rpoly``, ``bkg_scale``.
* :class:`PdfFitSession` — an observed G(r) and a real-space model (:mod:`xrdpdf.stages.pdffit`);
  ``set``, ``fit``, ``adopt``; :func:`pdffit_panel` is its panel.
* :class:`SeriesExplorer` — reads the output folder of ``xrdpdf series``
  (:func:`xrdpdf.workflows.series.run_series`).
* :func:`refinement_panel`, :func:`pdf_panel`, :func:`series_panel` — the ipywidgets front
  ends (``ipywidgets`` is needed only for these; without it they raise ``ImportError``).

Examples
--------
>>> from xrdpdf.simulate.images import simulate_pattern
>>> from xrdpdf.notebook.sessions import PdfSession
>>> s = PdfSession(simulate_pattern("Ni", qmax_invA=20.0), composition="Ni", rmax_A=20.0)
>>> s.update(qmax=15.0).qmax_invA
15.0
"""

from __future__ import annotations

import html
import inspect
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf._core.errors import ConvergenceError, InputError, XrdpdfError
from xrdpdf._core.pattern import Pattern
from xrdpdf.notebook._pdffit_panel import PdfFitPanel, PdfFitSession, pdffit_panel
from xrdpdf.notebook._widgets import figure_png, require_ipywidgets, status_html

__all__ = [
    "RefinementSession",
    "PdfSession",
    "PdfUpdate",
    "SeriesExplorer",
    "refinement_panel",
    "pdf_panel",
    "series_panel",
    "RefinementPanel",
    "PdfPanel",
    "SeriesPanel",
    "figure_png",
    "show_figure",
    "require_ipywidgets",
    "PdfFitSession",
    "PdfFitPanel",
    "pdffit_panel",
]

_UNSET: Any = object()


# ---------------------------------------------------------------------------------- helpers
def show_figure(fig, dpi: int = 90) -> None:
    """Display a Figure as a PNG in a notebook, whatever the matplotlib backend."""
    try:
        from IPython.display import Image, display
    except ImportError as exc:
        raise ImportError("show_figure needs IPython: pip install ipython") from exc
    display(Image(data=figure_png(fig, dpi=dpi), format="png"))


def _fmt(v: Any, digits: int = 6) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float | np.floating):
        return "" if not math.isfinite(float(v)) else f"{float(v):.{digits}g}"
    return str(v)


def _html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


# ------------------------------------------------------------------------------ refinement
_GLOBAL_KEYS = (
    "n_background",
    "refine_size",
    "refine_strain",
    "refine_biso",
    "refine_lattice",
    "lattice_search",
    "xrange",
    "k_scherrer",
    "fwhm_inst",
    "amorphous",
    "cuka",
    "resolution",
)
_PHASE_KEYS = ("size_A", "occupancy", "free_occupancy", "biso_A2")


def _refine_supports(name: str) -> bool:
    from xrdpdf.stages.refinement import refine

    return name in inspect.signature(refine).parameters


class RefinementSession:
    """A pattern, its phases and the current refinement settings; the state behind a panel.

    Parameters
    ----------
    pattern : Pattern
        I(Q) or I(2θ) with σ (see :func:`xrdpdf.stages.refinement.refine`).
    phases : str, Phase or sequence
        Built-in names, CIF paths or :class:`~xrdpdf.physics.crystal.Phase` objects; their cell,
        occupancies and Biso are the start values.
    size_A : float or sequence
        Start (or fixed, with ``refine_size=False``) Scherrer size per phase (Å).
    free_occupancy : mapping, optional
        Phase name → site labels whose occupancy is refined (default: none).
    **options
        Further :func:`~xrdpdf.stages.refinement.refine` settings: ``n_background`` (6),
        ``refine_size`` (True), ``refine_strain``, ``refine_biso``, ``lattice_search``,
        ``xrange``, ``k_scherrer``, ``fwhm_inst``, ``amorphous``, ``cuka``, ``resolution``.

    Attributes
    ----------
    result : RefinementResult or None
        The last refinement.
    history : list of dict
        ``settings`` and ``result.to_dict()`` of every refinement, oldest first.
    """

    def __init__(
        self,
        pattern: Pattern,
        phases: Any,
        *,
        size_A: float | Sequence[float] = 50.0,
        free_occupancy: Mapping[str, Sequence[str]] | None = None,
        **options: Any,
    ) -> None:
        from xrdpdf.physics.cif import get_phase
        from xrdpdf.physics.crystal import Phase

        if not isinstance(pattern, Pattern):
            raise InputError(f"RefinementSession needs a Pattern, got {type(pattern).__name__}")
        if isinstance(phases, str | Phase):
            phases = [phases]
        self.pattern = pattern
        self._phases = [get_phase(p) for p in phases]
        if not self._phases:
            raise InputError("RefinementSession needs at least one phase")
        names = [p.name for p in self._phases]
        if len(set(names)) != len(names):
            raise InputError(f"phase names must differ, got {names}")
        sizes = [size_A] * len(names) if np.isscalar(size_A) else list(size_A)  # type: ignore[list-item]
        if len(sizes) != len(names):
            raise InputError(f"size_A: give one value or one per phase ({len(names)})")
        self._sizes = [self._check_size(s) for s in sizes]
        self._free_occ: dict[str, list[str]] = {n: [] for n in names}
        self.options: dict[str, Any] = {
            "n_background": 6,
            "refine_size": True,
            "refine_strain": False,
            "refine_biso": True,
            "refine_lattice": True,
            "lattice_search": 0.03,
        }
        self.result: Any = None
        self.history: list[dict[str, Any]] = []
        self.set(**options)
        for name, labels in (free_occupancy or {}).items():
            self.set(phase=name, free_occupancy=labels)

    # ------------------------------------------------------------------ state
    @property
    def phases(self) -> tuple[Any, ...]:
        """The start phases (cell, occupancies and Biso as currently set)."""
        return tuple(self._phases)

    @property
    def lattice_fixable(self) -> bool:
        """Whether :func:`~xrdpdf.stages.refinement.refine` keeps the cell (``refine_lattice``)."""
        return _refine_supports("refine_lattice")

    def _index(self, phase: int | str) -> int:
        names = [p.name for p in self._phases]
        if isinstance(phase, int | np.integer) and not isinstance(phase, bool):
            if not 0 <= int(phase) < len(names):
                raise InputError(f"phase index {phase} out of range 0…{len(names) - 1}")
            return int(phase)
        if phase in names:
            return names.index(phase)  # type: ignore[arg-type]
        raise InputError(f"no phase {phase!r}; phases: {', '.join(names)}")

    @staticmethod
    def _check_size(v: Any) -> float:
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise InputError(f"size_A must be a number of Å, got {v!r}") from None
        if not (math.isfinite(x) and 1.0 <= x <= 1e5):
            raise InputError(f"size_A must be in 1…100000 Å, got {v!r}")
        return x

    def set(self, phase: int | str = 0, **changes: Any) -> RefinementSession:
        """Change start values and free flags; nothing is refined until :meth:`refine`.

        Parameters
        ----------
        phase : int or str
            The phase that phase-level changes apply to (index or name; default the first).
        **changes
            Phase level: free cell parameters of that phase by name (``a=4.18``, ``c=9.5``:
            start values), ``size_A`` (start or fixed size, Å), ``occupancy`` (site label →
            start value), ``free_occupancy`` (site labels to refine; ``[]`` fixes them all),
            ``biso_A2`` (site label or element → start Biso).  Global: ``n_background``
            (1…30), ``refine_size``, ``refine_strain``, ``refine_biso``, ``refine_lattice``,
            ``lattice_search`` (relative, 0 = off), ``xrange`` ((min, max) or None),
            ``k_scherrer``, ``fwhm_inst``, ``amorphous``, ``cuka``, ``resolution``.

        Returns
        -------
        RefinementSession
            ``self``, so calls can be chained.

        Raises
        ------
        InputError
            Unknown key, a cell parameter that is not free in the crystal system, an unknown
            site, or a value out of range; the session is then left unchanged.
        """
        i = self._index(phase)
        ph = self._phases[i]
        cell_keys = ph.free_cell_parameters
        allowed = (*_GLOBAL_KEYS, *_PHASE_KEYS, *cell_keys)
        for key in changes:
            if key not in allowed:
                if key in ("a", "b", "c", "alpha", "beta", "gamma"):
                    raise InputError(
                        f"{ph.name}: cell parameter {key!r} is not free in the "
                        f"{ph.crystal_system} system; free: {', '.join(cell_keys)}"
                    )
                raise InputError(f"unknown setting {key!r}; allowed: {', '.join(allowed)}")
        # validate everything first, then commit (a failed call changes nothing)
        cell = {k: changes[k] for k in cell_keys if k in changes}
        new_phase = ph.with_cell(**cell) if cell else ph
        if "occupancy" in changes or "biso_A2" in changes:
            new_phase = new_phase.with_sites(
                occupancy=changes.get("occupancy"), biso_A2=changes.get("biso_A2")
            )
        size = self._check_size(changes["size_A"]) if "size_A" in changes else self._sizes[i]
        free = self._free_occ[ph.name]
        if "free_occupancy" in changes:
            labels = changes["free_occupancy"]
            labels = [labels] if isinstance(labels, str) else list(labels or [])
            known = [s.label for s in ph.sites]
            for lab in labels:
                if lab not in known:
                    raise InputError(f"{ph.name}: no site {lab!r}; sites: {', '.join(known)}")
            free = labels
        opts = dict(self.options)
        for key in _GLOBAL_KEYS:
            if key in changes:
                opts[key] = self._check_option(key, changes[key])
        self._phases[i] = new_phase
        self._sizes[i] = size
        self._free_occ[ph.name] = free
        self.options = opts
        return self

    def _check_option(self, key: str, v: Any) -> Any:
        if key == "n_background":
            if isinstance(v, bool) or int(v) != v or not 1 <= int(v) <= 30:
                raise InputError(f"n_background must be an integer 1…30, got {v!r}")
            return int(v)
        if key in ("refine_size", "refine_strain", "refine_biso", "amorphous", "cuka"):
            return bool(v)
        if key == "refine_lattice":
            if not bool(v) and not self.lattice_fixable:
                raise InputError(
                    "this version of xrdpdf.stages.refinement.refine always refines the cell; "
                    "set the start cell instead (refine_lattice=False is not available)"
                )
            return bool(v)
        if key == "lattice_search":
            x = float(v)
            if not 0.0 <= x <= 0.06:
                raise InputError(f"lattice_search must be in 0…0.06 (relative), got {v!r}")
            return x
        if key == "xrange":
            if v is None:
                return None
            lo, hi = (None if t is None else float(t) for t in v)
            if lo is not None and hi is not None and not lo < hi:
                raise InputError(f"xrange must be (min, max) with min < max, got {v!r}")
            return (lo, hi)
        if key in ("k_scherrer", "fwhm_inst"):
            if v is None and key == "fwhm_inst":
                return None
            x = float(v)
            if not (math.isfinite(x) and x > 0):
                raise InputError(f"{key} must be a number > 0, got {v!r}")
            return x
        return v  # resolution: checked by refine

    def _snapshot(self) -> tuple[Any, ...]:
        return (
            list(self._phases),
            list(self._sizes),
            {k: list(v) for k, v in self._free_occ.items()},
            dict(self.options),
        )

    def _restore(self, saved: tuple[Any, ...]) -> None:
        self._phases, self._sizes, self._free_occ, self.options = saved

    def settings(self) -> dict[str, Any]:
        """The current settings as plain values (start cell, sizes, free flags, options)."""
        out: dict[str, Any] = {
            k: v for k, v in self.options.items() if k != "resolution" and v is not None
        }
        out["phases"] = [
            {
                "name": p.name,
                "cell": {k: p.cell[_CELL_INDEX[k]] for k in p.free_cell_parameters},
                "size_A": s,
                "occupancy": dict(p.occupancies),
                "free_occupancy": list(self._free_occ[p.name]),
            }
            for p, s in zip(self._phases, self._sizes, strict=True)
        ]
        return out

    # --------------------------------------------------------------- actions
    def refine(self):
        """Refine with the current settings (:func:`~xrdpdf.stages.refinement.refine`): the button.

        Returns
        -------
        RefinementResult
            Also kept as :attr:`result` and appended to :attr:`history`.

        Raises
        ------
        InputError
            Settings that :func:`~xrdpdf.stages.refinement.refine` refuses.

        Warns
        -----
        RefinementWarning
            When the refinement did not converge (as :func:`~xrdpdf.stages.refinement.refine`).
        """
        from xrdpdf.stages.refinement import refine

        kw = {k: v for k, v in self.options.items() if v is not None}
        if kw.pop("refine_lattice", True) is False:
            kw["refine_lattice"] = False
        result = refine(
            self.pattern,
            list(self._phases),
            size_start_A=list(self._sizes),
            refine_occupancy={k: list(v) for k, v in self._free_occ.items()},
            **kw,
        )
        self.result = result
        self.history.append({"settings": self.settings(), "result": result.to_dict()})
        return result

    def adopt(self) -> RefinementSession:
        """Take the refined cell, occupancies, Biso and sizes as the new start values."""
        if self.result is None:
            raise InputError("nothing refined yet: call refine() first")
        for i, pr in enumerate(self.result.phases):
            self._phases[i] = pr.phase
            if pr.size_A is not None and math.isfinite(pr.size_A):
                self._sizes[i] = self._check_size(min(max(pr.size_A, 1.0), 1e5))
        return self

    def table(self) -> list[dict[str, Any]]:
        """Results of the last refinement, one row per quantity.

        Returns
        -------
        list of dict
            Keys ``quantity``, ``value``, ``esd``, ``refined`` (figures of merit first, then
            per phase: free cell parameters, size, occupancies, scale, weight fraction,
            R_Bragg).  Empty before the first :meth:`refine`.
        """
        r = self.result
        if r is None:
            return []
        rows: list[dict[str, Any]] = [
            {"quantity": "Rwp", "value": r.rwp, "esd": None, "refined": None},
            {"quantity": "GoF", "value": r.gof, "esd": None, "refined": None},
            {"quantity": "converged", "value": r.converged, "esd": None, "refined": None},
            {
                "quantity": f"zero ({_UNIT_SHORT.get(r.unit, r.unit)})",
                "value": r.zero,
                "esd": r.zero_esd,
                "refined": r.zero_esd is not None,
            },
        ]
        free = {n for n, p in r.parameters.items() if p["vary"]}
        for i, p in enumerate(r.phases):
            pre = f"p{i}_"
            for k, (v, e) in p.cell.items():
                unit = "°" if k in ("alpha", "beta", "gamma") else "Å"
                rows.append(
                    {
                        "quantity": f"{p.name} {k} ({unit})",
                        "value": v,
                        "esd": e,
                        "refined": pre + k in free,
                    }
                )
            size = p.size_A if p.size_A is not None else self._sizes[i]
            rows.append(
                {
                    "quantity": f"{p.name} size (Å)",
                    "value": size,
                    "esd": p.size_esd_A,
                    "refined": p.size_A is not None,
                }
            )
            for lab, occ in p.occupancy.items():
                rows.append(
                    {
                        "quantity": f"{p.name} occupancy {lab}",
                        "value": occ,
                        "esd": p.occupancy_esd.get(lab),
                        "refined": pre + "occ_" + lab in free,
                    }
                )
            rows.append(
                {
                    "quantity": f"{p.name} scale",
                    "value": p.scale,
                    "esd": p.scale_esd,
                    "refined": True,
                }
            )
            rows.append(
                {
                    "quantity": f"{p.name} weight fraction",
                    "value": p.weight_fraction,
                    "esd": p.weight_fraction_esd,
                    "refined": None,
                }
            )
            rows.append(
                {"quantity": f"{p.name} R_Bragg", "value": p.r_bragg, "esd": None, "refined": None}
            )
        return rows

    def table_html(self) -> str:
        """:meth:`table` as an HTML table (with the refinement's warnings below it)."""
        if self.result is None:
            return "<p>not refined yet</p>"
        out = _html_table(self.table(), ("quantity", "value", "esd", "refined"))
        notes = "".join(f"<li>{html.escape(w)}</li>" for w in self.result.warnings)
        return out + (f"<ul>{notes}</ul>" if notes else "")

    def _repr_html_(self) -> str:
        return self.table_html()

    def figure(self, title: str | None = None):
        """Observed / calculated / difference figure of the last refinement."""
        from xrdpdf.plot.refinement import plot_refinement

        if self.result is None:
            raise InputError("nothing refined yet: call refine() first")
        return plot_refinement(self.result, title=title)


_CELL_INDEX = {"a": 0, "b": 1, "c": 2, "alpha": 3, "beta": 4, "gamma": 5}
_UNIT_SHORT = {"q_A^-1": "Å⁻¹", "2th_deg": "°"}


# ------------------------------------------------------------------------------------- PDF
_PDF_ALIASES = {
    "qmax": "qmax_invA",
    "qmin": "qmin_invA",
    "qmaxinst": "qmaxinst_invA",
    "rpoly": "rpoly_A",
    "rmin": "rmin_A",
    "rmax": "rmax_A",
    "rstep": "rstep_A",
    "rfirst": "rfirst_A",
    "bkg_scale": "bkg_scale",
    "lorch": "lorch",
    "composition": "composition",
}


@dataclass(frozen=True, eq=False)
class PdfUpdate:
    """What one :meth:`PdfSession.update` produced.

    Attributes
    ----------
    result : PdfResult
        The transform (S(Q), F(Q), G(r) and the resolved settings).
    corrlen : CorrLenResult or None
        The correlation length of ``result.gr``; None when it could not be determined.
    corrlen_error : str or None
        Why not (the :class:`~xrdpdf._core.errors.ConvergenceError` or InputError message).
    settings : dict
        ``result.summary()``: the resolved settings of this update.
    """

    result: Any
    corrlen: Any = None
    corrlen_error: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def qmax_invA(self) -> float:
        """Resolved Q_max (Å⁻¹)."""
        return float(self.result.qmax_invA)

    @property
    def bkg_scale(self) -> float:
        """Background scale used."""
        return float(self.result.bkg_scale)

    @property
    def xi_A(self) -> float:
        """Correlation length ξ (Å); NaN when undetermined."""
        return float(self.corrlen.xi_A) if self.corrlen is not None else float("nan")

    @property
    def xi_esd_A(self) -> float:
        """esd of ξ (Å); NaN when undetermined."""
        return float(self.corrlen.xi_esd_A) if self.corrlen is not None else float("nan")

    def __repr__(self) -> str:
        s = self.result.summary()
        return (
            f"PdfUpdate(qmax={s['qmax_invA']:.4g} Å⁻¹, rpoly={s['rpoly_A']:g} Å, "
            f"bkg_scale={s['bkg_scale']:.4g}, xi={self.xi_A:.4g} ± {self.xi_esd_A:.2g} Å)"
        )

    def summary(self) -> dict[str, Any]:
        """Plain values: the resolved PDF settings, ξ ± esd, r_noise."""
        out = dict(self.result.summary())
        out["xi_A"] = self.xi_A
        out["xi_esd_A"] = self.xi_esd_A
        out["r_noise_A"] = (
            float(self.corrlen.r_noise_A) if self.corrlen is not None else float("nan")
        )
        if self.corrlen_error:
            out["corrlen_error"] = self.corrlen_error
        return out

    def table_html(self) -> str:
        """The summary as a two-column HTML table."""
        keys = (
            "qmax_invA",
            "qmax_auto",
            "rpoly_A",
            "poly_degree",
            "bkg_scale",
            "bkg_scale_auto",
            "xi_A",
            "xi_esd_A",
            "r_noise_A",
            "corrlen_error",
        )
        s = self.summary()
        rows = [{"setting": k, "value": s[k]} for k in keys if k in s]
        return _html_table(rows, ("setting", "value"))

    def _repr_html_(self) -> str:
        return self.table_html()


class PdfSession:
    """I(Q) (and a background) → G(r) → correlation length, re-run on every setting change.

    Parameters
    ----------
    pattern : Pattern
        Sample I(Q) or I(2θ), σ optional.
    config : PdfConfig, optional
        Start settings; or give ``composition=`` and PdfConfig fields as keywords.
    background : Pattern, optional
        Container / air background (its scale is the ``bkg_scale`` setting).
    corrlen_rmin_A, corrlen_window_A, qdamp_invA : float
        Settings of :func:`xrdpdf.stages.corrlen.correlation_length`.
    **config_fields
        :class:`~xrdpdf.stages.pdf.PdfConfig` fields (``composition``, ``qmin_invA``, ...).

    Attributes
    ----------
    config : PdfConfig
        The settings of :attr:`current`.
    current : PdfUpdate
        The latest successful update.
    history : list of dict
        :meth:`PdfUpdate.summary` of every update, oldest first.

    Raises
    ------
    InputError
        If the start settings do not give a G(r).
    """

    def __init__(
        self,
        pattern: Pattern,
        config: Any = None,
        *,
        background: Pattern | None = None,
        corrlen_rmin_A: float = 3.0,
        corrlen_window_A: float = 2.0,
        qdamp_invA: float | None = None,
        **config_fields: Any,
    ) -> None:
        from xrdpdf.stages.pdf import PdfConfig

        if config is None:
            fields = self._fields(config_fields)
            if "composition" not in fields:
                raise InputError("PdfSession needs a composition (or a PdfConfig)")
            config = PdfConfig(**fields)
        elif config_fields:
            config = replace(config, **self._fields(config_fields))
        self.pattern = pattern
        self.background = background
        self.corrlen_kwargs = {
            "rmin_A": float(corrlen_rmin_A),
            "window_A": float(corrlen_window_A),
            "qdamp_invA": qdamp_invA,
        }
        self.config = config
        self.history: list[dict[str, Any]] = []
        self.current: PdfUpdate = self._compute(config)
        self.history.append(self.current.summary())

    @staticmethod
    def _fields(changes: Mapping[str, Any]) -> dict[str, Any]:
        from xrdpdf.stages.pdf import PdfConfig

        names = set(PdfConfig.__dataclass_fields__)
        out = {}
        for key, value in changes.items():
            name = _PDF_ALIASES.get(key, key)
            if name not in names:
                allowed = sorted(set(_PDF_ALIASES) | names)
                raise InputError(f"unknown PDF setting {key!r}; allowed: {', '.join(allowed)}")
            out[name] = value
        return out

    def _compute(self, config) -> PdfUpdate:
        from xrdpdf.stages.corrlen import correlation_length
        from xrdpdf.workflows.reduce import pdf_step

        # ξ apart: a failed fit is the session's message, not an exception
        result, _ = pdf_step(self.pattern, config, background=self.background)
        corr, err = None, None
        try:
            corr = correlation_length(result.gr, **self.corrlen_kwargs)
        except (ConvergenceError, InputError) as exc:
            err = str(exc)
        return PdfUpdate(result, corr, err, settings=dict(result.summary()))

    def update(
        self,
        *,
        qmax: Any = _UNSET,
        rpoly: Any = _UNSET,
        bkg_scale: Any = _UNSET,
        **other: Any,
    ) -> PdfUpdate:
        """Change settings, recompute G(r) and ξ; the callback of the sliders.

        Parameters
        ----------
        qmax : float, "auto" or None
            Q_max of the transform (Å⁻¹); None = qmaxinst.
        rpoly : float
            r limit of the correction polynomial (Å).
        bkg_scale : float or "auto"
            Background scale (used only with a background).
        **other
            Any other :class:`~xrdpdf.stages.pdf.PdfConfig` field, by its name or short name
            (``qmin``, ``qmaxinst``, ``rmax``, ``lorch``, ...).

        Returns
        -------
        PdfUpdate
            Also kept as :attr:`current`.

        Raises
        ------
        InputError
            Settings the transform refuses (e.g. ``qmax`` beyond the data); the session keeps
            its previous settings and result.
        """
        changes = dict(other)
        for key, v in (("qmax", qmax), ("rpoly", rpoly), ("bkg_scale", bkg_scale)):
            if v is not _UNSET:
                changes[key] = v
        config = replace(self.config, **self._fields(changes)) if changes else self.config
        upd = self._compute(config)
        self.config = config
        self.current = upd
        self.history.append(upd.summary())
        return upd

    @property
    def result(self):
        """The current :class:`~xrdpdf.stages.pdf.PdfResult`."""
        return self.current.result

    def figure(self, kind: str = "corrlen"):
        """``"corrlen"``: G(r) with the ξ envelope fit; ``"pdf"``: I(Q), F(Q), G(r) panels."""
        from xrdpdf.plot.pdf import plot_corrlen, plot_pdf

        if kind == "pdf":
            return plot_pdf(self.current.result)
        if kind != "corrlen":
            raise InputError(f"figure kind must be 'corrlen' or 'pdf', got {kind!r}")
        if self.current.corrlen is None:
            return plot_pdf(self.current.result, title=self.current.corrlen_error)
        return plot_corrlen(self.current.result.gr, self.current.corrlen)

    def _repr_html_(self) -> str:
        return self.current.table_html()


# ------------------------------------------------------------------------------ series
_SERIES_HIDDEN = ("size_esd_A", "r_noise_A", "n_images", "input_hash")


class SeriesExplorer:
    """Browse the output folder of ``xrdpdf series`` (:func:`xrdpdf.workflows.series.run_series`).

    Parameters
    ----------
    outdir : path-like
        The folder with ``summary.csv`` and one sub-folder per sample
        (``<name>/<name>.xye``, ``<name>.gr``, ``<name>_refine.json``).

    Raises
    ------
    InputError
        If ``summary.csv`` is missing or unreadable.
    """

    def __init__(self, outdir: str | Path) -> None:
        from xrdpdf.workflows.series import read_summary

        self.outdir = Path(outdir)
        summary = self.outdir / "summary.csv"
        if not summary.is_file():
            raise InputError(f"{summary}: not found; run `xrdpdf series` (or run_series) first")
        try:
            self.rows = read_summary(summary)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{summary}: cannot read the summary ({exc})") from exc
        self.columns = tuple(self.rows[0]) if self.rows else ()

    @property
    def labels(self) -> tuple[str, ...]:
        """The series file's sample labels (the columns between ``group`` and ``phase``)."""
        cols = self.columns
        if "group" not in cols or "phase" not in cols:
            return ()
        return cols[cols.index("group") + 1 : cols.index("phase")]

    @property
    def default_columns(self) -> tuple[str, ...]:
        """The columns :meth:`table` shows by default (all but bookkeeping)."""
        return tuple(c for c in self.columns if c not in _SERIES_HIDDEN)

    @property
    def names(self) -> list[str]:
        """Sample names, in the order of the series file."""
        return [r["name"] for r in self.rows]

    def row(self, name: str) -> dict[str, Any]:
        """The summary row of a sample."""
        for r in self.rows:
            if r["name"] == name:
                return dict(r)
        raise InputError(f"no sample {name!r} in {self.outdir}; samples: {', '.join(self.names)}")

    def _file(self, name: str, suffix: str) -> Path:
        self.row(name)
        return self.outdir / name / f"{name}{suffix}"

    def pattern(self, name: str) -> Pattern:
        """The integrated I(Q) of a sample."""
        from xrdpdf.io import read_pattern

        f = self._file(name, ".xye")
        if not f.is_file():
            raise InputError(
                f"{f}: no integrated pattern for {name} (error: {self.row(name)['error']})"
            )
        return read_pattern(f)

    def gr(self, name: str) -> Pattern | None:
        """The G(r) of a sample, or None when the PDF step did not produce one."""
        from xrdpdf.io import read_pattern

        f = self._file(name, ".gr")
        return read_pattern(f) if f.is_file() else None

    def refinement(self, name: str) -> dict[str, Any] | None:
        """The refinement summary (``RefinementResult.to_dict()``) of a sample, or None."""
        f = self._file(name, "_refine.json")
        if not f.is_file():
            return None
        try:
            return json.loads(f.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(f"{f}: not valid JSON ({exc})") from exc

    def table(self, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The summary rows restricted to ``columns`` (default :attr:`default_columns`)."""
        columns = self.default_columns if columns is None else columns
        return [{c: r.get(c) for c in columns} for r in self.rows]

    def table_html(self, columns: Sequence[str] | None = None) -> str:
        """The summary as an HTML table."""
        return _html_table(self.rows, self.default_columns if columns is None else columns)

    def _repr_html_(self) -> str:
        return self.table_html()

    def figure(self, name: str):
        """I(Q) (top) and G(r) with ξ marked (bottom) of one sample."""
        from xrdpdf.plot import new_figure

        row = self.row(name)
        pat = self.pattern(name)
        gr = self.gr(name)
        fig, (ax_q, ax_r) = new_figure(2, 1, figsize=(7.0, 6.0))
        ax_q.plot(pat.x, pat.y, lw=0.7)
        ax_q.set(
            xlabel="Q (Å⁻¹)",
            ylabel="I (a.u.)",
            title=", ".join([name, *(f"{k} {row[k]}" for k in self.labels)]),
        )
        if gr is None:
            ax_r.text(0.5, 0.5, "no G(r)", ha="center", va="center", transform=ax_r.transAxes)
        else:
            ax_r.plot(gr.x, gr.y, lw=0.7)
            xi = row.get("xi_A")
            if isinstance(xi, float) and math.isfinite(xi):
                ax_r.axvline(xi, color="k", ls=":", label=f"ξ = {xi:.1f} Å")
                ax_r.legend(fontsize=8, loc="upper right")
        ax_r.set(xlabel="r (Å)", ylabel="G (Å⁻²)")
        return fig

    def trend_figures(self, x: str | None = None, by: str | None = None) -> dict[str, Any]:
        """Correlation length and lattice parameter against the label ``x``, per label ``by``."""
        from xrdpdf.plot import series as sp

        for lab in (x, by):
            if lab is not None and lab not in self.labels:
                known = ", ".join(self.labels) or "none"
                raise InputError(f"{lab!r} is not a label of this series ({known})")
        return {
            "xi": sp.corrlen_figure(self.rows, x=x, by=by),
            "lattice": sp.lattice_figure(self.rows, x=x, by=by),
        }


# ---------------------------------------------------------------------------------- panels
class RefinementPanel:
    """ipywidgets front end of a :class:`RefinementSession` (use :func:`refinement_panel`).

    Attributes
    ----------
    widget : ipywidgets.VBox
        Display this.
    button : ipywidgets.Button
        "Refine": calls :meth:`on_refine`.
    plot : ipywidgets.Image
        Observed / calculated / difference (PNG).
    table, status : ipywidgets.HTML
        Results table and the last message.
    """

    def __init__(self, session: RefinementSession) -> None:
        w = require_ipywidgets()
        self.session = session
        s = session.settings()
        self.cell: dict[tuple[int, str], Any] = {}
        self.size: dict[int, Any] = {}
        self.occ: dict[tuple[int, str], Any] = {}
        self.free_occ: dict[tuple[int, str], Any] = {}
        rows = []
        for i, ph in enumerate(s["phases"]):
            items = [w.HTML(f"<b>{html.escape(ph['name'])}</b>")]
            for k, v in ph["cell"].items():
                self.cell[(i, k)] = w.FloatText(
                    value=round(v, 6), description=f"{k} start", step=0.001
                )
                items.append(self.cell[(i, k)])
            self.size[i] = w.BoundedFloatText(
                value=ph["size_A"], min=1.0, max=1e5, step=1.0, description="size (Å)"
            )
            items.append(self.size[i])
            for lab, occ in ph["occupancy"].items():
                self.occ[(i, lab)] = w.BoundedFloatText(
                    value=occ, min=0.0, max=1.0, step=0.01, description=f"occ {lab}"
                )
                self.free_occ[(i, lab)] = w.Checkbox(
                    value=lab in ph["free_occupancy"], description="refine", indent=False
                )
                items.append(w.HBox([self.occ[(i, lab)], self.free_occ[(i, lab)]]))
            rows.append(w.VBox(items))
        self.free_lattice = w.Checkbox(
            value=bool(s["refine_lattice"]),
            description="refine lattice",
            disabled=not session.lattice_fixable,
        )
        self.free_size = w.Checkbox(value=bool(s["refine_size"]), description="refine size")
        self.free_biso = w.Checkbox(value=bool(s["refine_biso"]), description="refine Biso")
        self.n_background = w.IntSlider(
            value=s["n_background"], min=1, max=30, description="bkg terms", continuous_update=False
        )
        self.button = w.Button(description="Refine", button_style="primary")
        self.adopt_button = w.Button(description="Use refined values as start")
        self.status = w.HTML("")
        self.table = w.HTML(session.table_html())
        self.plot = w.Image(format="png")
        self.button.on_click(self.on_refine)
        self.adopt_button.on_click(self.on_adopt)
        flags = w.VBox([self.free_lattice, self.free_size, self.free_biso, self.n_background])
        controls = w.HBox([*rows, flags])
        self.widget = w.VBox(
            [
                controls,
                w.HBox([self.button, self.adopt_button]),
                self.status,
                w.HBox([self.plot, self.table]),
            ]
        )

    def apply(self) -> None:
        """Copy the controls into the session (:meth:`RefinementSession.set`).

        All or nothing: if one control is refused (InputError), the session keeps every
        setting it had before.
        """
        glob = {
            "refine_size": self.free_size.value,
            "refine_biso": self.free_biso.value,
            "n_background": self.n_background.value,
        }
        if self.session.lattice_fixable:
            glob["refine_lattice"] = self.free_lattice.value
        saved = self.session._snapshot()
        try:
            self.session.set(**glob)
            for i in range(len(self.session.phases)):
                cell = {k: wid.value for (j, k), wid in self.cell.items() if j == i}
                occ = {lab: wid.value for (j, lab), wid in self.occ.items() if j == i}
                free = [lab for (j, lab), wid in self.free_occ.items() if j == i and wid.value]
                self.session.set(
                    phase=i, size_A=self.size[i].value, occupancy=occ, free_occupancy=free, **cell
                )
        except XrdpdfError:
            self.session._restore(saved)
            raise

    def on_refine(self, _button: Any = None):
        """Apply the controls, refine, show the figure and the table; the Refine callback.

        Returns
        -------
        RefinementResult or None
            None when the settings were refused (the message is in :attr:`status`).
        """
        from xrdpdf.stages.refinement import RefinementWarning

        try:
            self.apply()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", RefinementWarning)
                result = self.session.refine()
        except XrdpdfError as exc:
            self.status.value = status_html(f"refused: {exc}", False)
            return None
        self.plot.value = figure_png(self.session.figure())
        self.table.value = self.session.table_html()
        del caught  # the message is in the result (shown below), not in a log
        text = f"Rwp = {result.rwp:.4f}, GoF = {result.gof:.3g}; " + (
            "converged" if result.converged else f"NOT converged: {result.message}"
        )
        self.status.value = status_html(text, result.converged)
        return result

    def on_adopt(self, _button: Any = None) -> None:
        """Copy the refined values into the start-value controls."""
        try:
            self.session.adopt()
        except XrdpdfError as exc:
            self.status.value = status_html(str(exc), False)
            return
        s = self.session.settings()
        for i, ph in enumerate(s["phases"]):
            for k, v in ph["cell"].items():
                self.cell[(i, k)].value = round(v, 6)
            self.size[i].value = ph["size_A"]
            for lab, occ in ph["occupancy"].items():
                self.occ[(i, lab)].value = round(occ, 4)
        self.status.value = status_html("refined values are the new start values", True)


def refinement_panel(session: RefinementSession) -> RefinementPanel:
    """Widgets to set and free parameters, a Refine button, the live plot and the table.

    Raises
    ------
    ImportError
        Without ipywidgets.
    """
    return RefinementPanel(session)


class PdfPanel:
    """ipywidgets front end of a :class:`PdfSession` (use :func:`pdf_panel`).

    Sliders for Q_max, rpoly and the background scale (with "auto" boxes); every change
    calls :meth:`on_change`, which re-runs :meth:`PdfSession.update`.
    """

    def __init__(self, session: PdfSession) -> None:
        w = require_ipywidgets()
        self.session = session
        res = session.result
        qhi = float(res.qmaxinst_invA)
        qauto = res.qmax_auto
        self.qmax = w.FloatSlider(
            value=min(res.qmax_invA, qhi),
            min=min(3.0, qhi / 2),
            max=qhi,
            step=0.1,
            description="Qmax (Å⁻¹)",
            continuous_update=False,
            disabled=qauto,
        )
        self.qmax_auto = w.Checkbox(value=qauto, description="auto Qmax")
        self.rpoly = w.FloatSlider(
            value=float(session.config.rpoly_A),
            min=0.0,
            max=3.0,
            step=0.05,
            description="rpoly (Å)",
            continuous_update=False,
        )
        has_bkg = session.background is not None
        self.bkg_scale = w.FloatSlider(
            value=float(res.bkg_scale),
            min=0.0,
            max=2.0,
            step=0.01,
            description="bkg scale",
            continuous_update=False,
            disabled=not has_bkg or res.bkg_scale_auto,
        )
        self.bkg_auto = w.Checkbox(
            value=res.bkg_scale_auto, description="auto bkg scale", disabled=not has_bkg
        )
        self.status = w.HTML("")
        self.table = w.HTML(session.current.table_html())
        self.plot_gr = w.Image(format="png")
        self.plot_fq = w.Image(format="png")
        for c in (self.qmax, self.qmax_auto, self.rpoly, self.bkg_scale, self.bkg_auto):
            c.observe(self.on_change, names="value")
        self.widget = w.VBox(
            [
                w.HBox([self.qmax, self.qmax_auto]),
                self.rpoly,
                w.HBox([self.bkg_scale, self.bkg_auto]),
                self.status,
                w.HBox([self.plot_gr, self.table]),
                self.plot_fq,
            ]
        )
        self._show(session.current)

    def _show(self, upd: PdfUpdate) -> None:
        self.table.value = upd.table_html()
        self.plot_gr.value = figure_png(self.session.figure("corrlen"))
        self.plot_fq.value = figure_png(self.session.figure("pdf"))

    def on_change(self, _change: Any = None) -> PdfUpdate | None:
        """Read the sliders, update the session, redraw; the slider callback.

        Returns
        -------
        PdfUpdate or None
            None when the settings were refused (the message is in :attr:`status`).
        """
        self.qmax.disabled = self.qmax_auto.value
        has_bkg = self.session.background is not None
        self.bkg_scale.disabled = not has_bkg or self.bkg_auto.value
        kw: dict[str, Any] = {
            "qmax": "auto" if self.qmax_auto.value else float(self.qmax.value),
            "rpoly": float(self.rpoly.value),
        }
        if has_bkg:
            kw["bkg_scale"] = "auto" if self.bkg_auto.value else float(self.bkg_scale.value)
        try:
            upd = self.session.update(**kw)
        except XrdpdfError as exc:
            self.status.value = status_html(f"refused: {exc}", False)
            return None
        xi = upd.xi_A
        self.status.value = status_html(
            f"Qmax = {upd.qmax_invA:.2f} Å⁻¹, ξ = "
            + (
                f"{xi:.1f} ± {upd.xi_esd_A:.1f} Å"
                if math.isfinite(xi)
                else f"undetermined ({upd.corrlen_error})"
            ),
            math.isfinite(xi),
        )
        self._show(upd)
        return upd


def pdf_panel(session: PdfSession) -> PdfPanel:
    """Sliders for Q_max, rpoly and background scale with a live G(r) and ξ.

    Raises
    ------
    ImportError
        Without ipywidgets.
    """
    return PdfPanel(session)


class SeriesPanel:
    """ipywidgets front end of a :class:`SeriesExplorer` (use :func:`series_panel`)."""

    def __init__(self, explorer: SeriesExplorer) -> None:
        w = require_ipywidgets()
        self.explorer = explorer
        if not explorer.names:
            raise InputError(f"{explorer.outdir}: the summary lists no samples")
        self.sample = w.Dropdown(
            options=explorer.names, value=explorer.names[0], description="sample"
        )
        self.plot = w.Image(format="png")
        self.details = w.HTML("")
        self.summary = w.HTML(explorer.table_html())
        self.sample.observe(self.on_select, names="value")
        self.widget = w.VBox([self.summary, self.sample, w.HBox([self.plot, self.details])])
        self.on_select()

    def on_select(self, _change: Any = None) -> dict[str, Any]:
        """Show the selected sample's I(Q), G(r) and refinement; the dropdown callback.

        Returns
        -------
        dict
            The sample's summary row.
        """
        name = self.sample.value
        row = self.explorer.row(name)
        try:
            self.plot.value = figure_png(self.explorer.figure(name))
        except XrdpdfError as exc:
            self.plot.value = b""
            self.details.value = status_html(str(exc), False)
            return row
        ref = self.explorer.refinement(name)
        items = [
            {"quantity": k, "value": row.get(k)}
            for k in self.explorer.default_columns
            if k not in ("name", "group", *self.explorer.labels)
        ]
        if ref is not None:
            items += [
                {"quantity": "refinement: " + k, "value": ref.get(k)}
                for k in ("converged", "gof", "n_points")
            ]
        self.details.value = _html_table(items, ("quantity", "value"))
        return row


def series_panel(explorer: SeriesExplorer | str | Path) -> SeriesPanel:
    """A sample chooser with each sample's I(Q), G(r) and numbers, under the summary table.

    Raises
    ------
    ImportError
        Without ipywidgets.
    """
    if not isinstance(explorer, SeriesExplorer):
        explorer = SeriesExplorer(explorer)
    return SeriesPanel(explorer)
