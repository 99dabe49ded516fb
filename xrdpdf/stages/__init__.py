"""Pipeline stages, each a set of pure functions on `Pattern` objects and results.

:mod:`.integrate` (+ :mod:`._fastint`, :mod:`._opcache`), :mod:`.calibrate`,
:mod:`.refinement`, :mod:`.size`, :mod:`.pdf`, :mod:`.corrlen`, :mod:`.pdffit`.
A workflow (:mod:`xrdpdf.workflows`) composes them.
"""

__all__ = ["calibrate", "corrlen", "integrate", "pdf", "pdffit", "refinement", "size"]
