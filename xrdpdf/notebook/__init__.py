"""Jupyter sessions (the callbacks behind the widgets) and their ipywidgets panels.

Every widget callback is a plain method of a session class, usable (and tested) without a
browser; the panels only read their controls, call the method and show what it returns.
:mod:`.refinement` (Bragg), :mod:`.pdf` (G(r), ξ), :mod:`.series` (a series folder),
:mod:`._pdffit_panel` (real-space fit);
``ipywidgets`` is needed only for the panels.
"""

from xrdpdf.notebook._display import show_figure
from xrdpdf.notebook._pdffit_panel import PdfFitPanel, PdfFitSession, pdffit_panel
from xrdpdf.notebook._widgets import figure_png, require_ipywidgets
from xrdpdf.notebook.pdf import PdfPanel, PdfSession, PdfUpdate, pdf_panel
from xrdpdf.notebook.refinement import RefinementPanel, RefinementSession, refinement_panel
from xrdpdf.notebook.series import SeriesExplorer, SeriesPanel, series_panel

__all__ = [
    "RefinementSession",
    "PdfSession",
    "PdfUpdate",
    "SeriesExplorer",
    "PdfFitSession",
    "refinement_panel",
    "pdf_panel",
    "series_panel",
    "pdffit_panel",
    "RefinementPanel",
    "PdfPanel",
    "SeriesPanel",
    "PdfFitPanel",
    "figure_png",
    "show_figure",
    "require_ipywidgets",
]
