"""Interactive real-space PDF fitting: :class:`PdfFitSession` and its ipywidgets panel.

Exported by :mod:`xrdpdf.notebook`.  The session holds an observed G(r) and a
model (:mod:`xrdpdf.stages.pdffit`); every widget callback is a plain session method,
usable without a browser.

Examples
--------
>>> from xrdpdf.stages.pdffit import calculate, parse_model
>>> model = parse_model('[data]\\nrmax = 10.0\\n[[phase]]\\nstructure = "Ni"\\n'
...                     'vary = ["scale", "lattice"]')
>>> s = PdfFitSession(calculate(model), model)
>>> s.set(scale=0.9).fit().phases[0]["scale"] > 0.999
True
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

from xrdpdf._core.errors import InputError, XrdpdfError
from xrdpdf._core.pattern import Pattern
from xrdpdf.notebook._widgets import figure_png, require_ipywidgets, status_html
from xrdpdf.stages.pdffit import PdfFitResult, PdfModel, calculate, fit, read_model

_PHASE_KEYS = {"scale": "scale", "delta1": "delta1_A", "delta2": "delta2_A2",
               "spdiameter": "spdiameter_A", "uiso": "uiso_A2", "vary": "vary",
               "lattice": "lattice"}  # fmt: skip
_DATA_KEYS = {"qmax": "qmax_invA", "qdamp": "qdamp_invA", "qbroad": "qbroad_invA",
              "rmin": "rmin_A", "rmax": "rmax_A", "data_vary": "vary"}  # fmt: skip


class PdfFitSession:
    """An observed G(r) and a PDF model; change values, fit, adopt the result.

    Parameters
    ----------
    data : Pattern
        Observed G(r) (unit ``"r_A"``).
    model : PdfModel or path
        Start model (a model file is read with :func:`xrdpdf.stages.pdffit.read_model`).
    """

    def __init__(self, data: Pattern, model: PdfModel | str) -> None:
        if data.unit != "r_A":
            raise InputError(f"PdfFitSession needs G(r) data (unit r_A), got {data.unit!r}")
        self.data = data
        self.model = model if isinstance(model, PdfModel) else read_model(model)
        self.result: PdfFitResult | None = None

    def set(self, phase: int = 0, **changes: Any) -> PdfFitSession:
        """Change model values: phase keys ``scale``, ``delta1``, ``delta2``,
        ``spdiameter``, ``uiso`` (dict), ``vary``, ``lattice``; data keys ``qmax``,
        ``qdamp``, ``qbroad``, ``rmin``, ``rmax``, ``data_vary``.  Unknown keys raise."""
        if not 0 <= phase < len(self.model.phases):
            raise InputError(f"phase {phase} out of range 0…{len(self.model.phases) - 1}")
        pch, dch = {}, {}
        for key, v in changes.items():
            if key in _PHASE_KEYS:
                pch[_PHASE_KEYS[key]] = tuple(v) if key in ("vary", "lattice") else v
            elif key in _DATA_KEYS:
                dch[_DATA_KEYS[key]] = tuple(v) if key == "data_vary" else float(v)
            else:
                allowed = ", ".join([*_PHASE_KEYS, *_DATA_KEYS])
                raise InputError(f"unknown setting {key!r}; allowed: {allowed}")
        phases = list(self.model.phases)
        phases[phase] = dataclasses.replace(phases[phase], **pch)
        new = dataclasses.replace(self.model, phases=tuple(phases), **dch)
        from xrdpdf.stages.pdffit._model import model_text, parse_model

        # validate through the model-file parser: the same checks as a file gets
        parse_model(model_text(new), new.source, new.phases[0].base_dir)
        self.model = new
        return self

    def calculate(self) -> Pattern:
        """G(r) of the current model on the data's points within rmin…rmax."""
        r = self.data.x
        sel = (r >= self.model.rmin_A - 1e-9) & (r <= self.model.rmax_A + 1e-9)
        return calculate(self.model, r[sel])

    def fit(self) -> PdfFitResult:
        """Refine (:func:`xrdpdf.stages.pdffit.fit`); the result is kept in :attr:`result`."""
        self.result = fit(self.data, self.model)
        return self.result

    def adopt(self) -> PdfFitSession:
        """Make the refined model the start model."""
        if self.result is None:
            raise InputError("nothing to adopt: run fit() first")
        self.model = self.result.model
        return self

    def figure(self):
        """Observed, calculated (last fit, else the current model) and difference."""
        from xrdpdf.plot.pdffit import plot_pdffit

        if self.result is not None:
            return plot_pdffit(self.result)
        calc = self.calculate()
        sel = (self.data.x >= calc.x[0] - 1e-9) & (self.data.x <= calc.x[-1] + 1e-9)
        obs = Pattern(self.data.x[sel], self.data.y[sel], "r_A", None)
        diff = obs.y - calc.y
        rw = float((diff**2).sum() / max((obs.y**2).sum(), 1e-300)) ** 0.5
        return plot_pdffit(_Preview(obs, calc, rw))

    def table_html(self) -> str:
        """Refined values (or the start values) as an HTML table."""
        if self.result is not None:
            return self.result._repr_html_()
        rows = "".join(
            f"<tr><td>{html.escape(p.name)}</td><td>{p.scale:.4g}</td><td>{p.delta2_A2:.4g}"
            f"</td><td>{p.spdiameter_A:.4g}</td></tr>"
            for p in self.model.phases
        )
        return ("<table><tr><th>phase</th><th>scale</th><th>δ2 (Å²)</th>"
                f"<th>spdiameter (Å)</th></tr>{rows}</table>")  # fmt: skip

    def _repr_html_(self) -> str:
        return self.table_html()


@dataclasses.dataclass(frozen=True)
class _Preview:
    observed: Pattern
    fit: Pattern
    rw: float


class PdfFitPanel:
    """ipywidgets front end of a :class:`PdfFitSession` (use :func:`pdffit_panel`)."""

    def __init__(self, session: PdfFitSession) -> None:
        w = require_ipywidgets()
        self.session = session
        ph = session.model.phases[0]
        self.scale = w.FloatText(value=ph.scale, description="scale", step=0.01)
        self.delta2 = w.FloatText(value=ph.delta2_A2, description="δ2 (Å²)", step=0.1)
        self.spd = w.FloatText(value=ph.spdiameter_A, description="spdiam (Å)", step=1.0)
        self.qdamp = w.FloatText(value=session.model.qdamp_invA, description="Qdamp", step=0.005)
        from xrdpdf.stages.pdffit._model import PHASE_VARY

        self.vary = {n: w.Checkbox(value=n in ph.vary, description=n, indent=False)
                     for n in PHASE_VARY}  # fmt: skip
        self.button = w.Button(description="Fit", button_style="primary")
        self.adopt_button = w.Button(description="Use refined values as start")
        self.status = w.HTML("")
        self.table = w.HTML(session.table_html())
        self.plot = w.Image(format="png")
        self.button.on_click(self.on_fit)
        self.adopt_button.on_click(self.on_adopt)
        self.widget = w.VBox([
            w.HBox([w.VBox([self.scale, self.delta2, self.spd, self.qdamp]),
                    w.VBox(list(self.vary.values()))]),
            w.HBox([self.button, self.adopt_button]), self.status,
            w.HBox([self.plot, self.table]),
        ])  # fmt: skip

    def apply(self) -> None:
        """Copy the controls into the session (phase 0)."""
        self.session.set(
            0, scale=self.scale.value, delta2=self.delta2.value, spdiameter=self.spd.value,
            qdamp=self.qdamp.value, vary=[n for n, c in self.vary.items() if c.value],
        )  # fmt: skip

    def on_fit(self, _button: Any = None) -> PdfFitResult | None:
        """Apply the controls, fit, show figure and table; None when refused."""
        try:
            self.apply()
            result = self.session.fit()
        except XrdpdfError as exc:
            self.status.value = status_html(f"refused: {exc}", False)
            return None
        self.plot.value = figure_png(self.session.figure())
        self.table.value = self.session.table_html()
        self.status.value = status_html(
            f"Rw = {result.rw:.4f}, χ²ν = {result.chi2_red:.3g}", result.converged
        )
        return result

    def on_adopt(self, _button: Any = None) -> None:
        """Refined values become the start values (and the controls show them)."""
        try:
            self.session.adopt()
        except XrdpdfError as exc:
            self.status.value = status_html(str(exc), False)
            return
        ph = self.session.model.phases[0]
        self.scale.value, self.delta2.value = ph.scale, ph.delta2_A2
        self.spd.value, self.qdamp.value = ph.spdiameter_A, self.session.model.qdamp_invA
        self.status.value = status_html("refined values are the new start values", True)


def pdffit_panel(session: PdfFitSession) -> PdfFitPanel:
    """Widgets for phase 0's scale, δ2, spdiameter, Q_damp and vary flags; Fit button.

    Raises
    ------
    ImportError
        Without ipywidgets.
    """
    return PdfFitPanel(session)
