"""Jupyter sessions (the callbacks behind the widgets) and their ipywidgets panels.

The sessions live in :mod:`.sessions`, the real-space fit panel in :mod:`._pdffit_panel`;
``ipywidgets`` is needed only for the panels.
"""

from xrdpdf.notebook.sessions import (
    PdfFitPanel,
    PdfFitSession,
    PdfPanel,
    PdfSession,
    PdfUpdate,
    RefinementPanel,
    RefinementSession,
    SeriesExplorer,
    SeriesPanel,
    figure_png,
    pdf_panel,
    pdffit_panel,
    refinement_panel,
    require_ipywidgets,
    series_panel,
    show_figure,
)

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
