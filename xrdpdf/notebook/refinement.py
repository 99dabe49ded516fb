"""Interactive Bragg refinement: :class:`RefinementSession` (pattern, phases, settings), its panel.

Every widget callback is a plain method of the session, usable (and tested) without a browser:
:meth:`~RefinementSession.set`, :meth:`~RefinementSession.refine`,
:meth:`~RefinementSession.table`, :meth:`~RefinementSession.figure`.  :func:`refinement_panel`
is the ipywidgets front end (``ipywidgets`` is needed only for it).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xrdpdf._core.errors import InputError, XrdpdfError
from xrdpdf._core.pattern import Pattern
from xrdpdf.notebook._display import _UNIT_SHORT, _html_table
from xrdpdf.notebook._widgets import figure_png, require_ipywidgets, status_html

__all__ = [
    "RefinementSession",
    "RefinementPanel",
    "refinement_panel",
]


_GLOBAL_KEYS = (
    "n_background",
    "refine_size",
    "refine_strain",
    "refine_biso",
    "occupancy_sum",
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
        ``refine_size`` (True), ``refine_strain``, ``refine_biso``, ``occupancy_sum``
        (True: sites sharing a position keep their sum; False: vacancies), ``lattice_search``,
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
            (1…30), ``refine_size``, ``refine_strain``, ``refine_biso``, ``occupancy_sum``,
            ``refine_lattice``, ``lattice_search`` (relative, 0 = off), ``xrange`` ((min, max)
            or None),
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
        if key in (
            "refine_size",
            "refine_strain",
            "refine_biso",
            "occupancy_sum",
            "amorphous",
            "cuka",
        ):
            return bool(v)
        if key == "refine_lattice":
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
    def refine(self, *, warn: bool = True):
        """Refine with the current settings (:func:`~xrdpdf.stages.refinement.refine`): the button.

        Parameters
        ----------
        warn : bool
            Issue :class:`~xrdpdf.stages.refinement.RefinementWarning` as
            :func:`~xrdpdf.stages.refinement.refine` does; False when the caller shows the
            result's ``message`` and ``warnings`` itself.

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
            With ``warn``, when the refinement did not converge (as
            :func:`~xrdpdf.stages.refinement.refine`).
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
            warn=warn,
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
        try:
            self.apply()
            # the verdict is shown in the status line and the cautions under the table
            result = self.session.refine(warn=False)
        except XrdpdfError as exc:
            self.status.value = status_html(f"refused: {exc}", False)
            return None
        self.plot.value = figure_png(self.session.figure())
        self.table.value = self.session.table_html()
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
