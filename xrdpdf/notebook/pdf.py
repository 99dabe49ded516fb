"""Interactive PDF: :class:`PdfSession` (I(Q) and a background → G(r) → ξ) and its panel.

Examples
--------
>>> from xrdpdf.simulate.images import simulate_pattern
>>> s = PdfSession(simulate_pattern("Ni", qmax_invA=20.0), composition="Ni", rmax_A=20.0)
>>> s.update(qmax=15.0).qmax_invA
15.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from xrdpdf._core.errors import ConvergenceError, InputError, XrdpdfError
from xrdpdf._core.pattern import Pattern
from xrdpdf.notebook._display import _UNSET, _html_table
from xrdpdf.notebook._widgets import figure_png, require_ipywidgets, status_html

__all__ = [
    "PdfUpdate",
    "PdfSession",
    "PdfPanel",
    "pdf_panel",
]


_PDF_ALIASES = {
    "qmax": "qmax_invA",
    "qmin": "qmin_invA",
    "qmaxinst": "qmaxinst_invA",
    "rpoly": "rpoly_A",
    "rmin": "rmin_A",
    "rmax": "rmax_A",
    "rstep": "rstep_A",
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
