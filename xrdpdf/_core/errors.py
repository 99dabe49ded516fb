"""Typed exceptions of xrdpdf.

Every exception passes its message to ``super().__init__`` so that it pickles
across Dask workers.  The CLI turns any :class:`XrdpdfError` into one line on
stderr and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "XrdpdfError",
    "InputError",
    "ConvergenceError",
    "CalibrationError",
    "NotDeterminedError",
    "XrdpdfWarning",
    "InputWarning",
]


class XrdpdfError(Exception):
    """Base class of all errors that are the user's input, not a bug."""


class InputError(XrdpdfError, ValueError):
    """Bad input: a missing or unreadable file, a wrong unit, a value out of range."""


class ConvergenceError(XrdpdfError, RuntimeError):
    """A fit or refinement could not reach a trustworthy answer."""


class NotDeterminedError(ConvergenceError):
    """The data do not determine a quantity (e.g. ξ beyond the r range).

    A result rather than a failure: a series records it as a note on the
    sample, not as an error; the CLI still exits 2 with the message.
    """


class CalibrationError(ConvergenceError):
    """Geometry calibration failed (rings not found, wrong calibrant or wavelength)."""


class XrdpdfWarning(UserWarning):
    """Base class of warnings about the user's input or a result's reliability.

    The CLI prints each as one line ``xrdpdf: warning: <msg>`` on stderr.
    """


class InputWarning(XrdpdfWarning):
    """An implausible but usable input (the value is used as given)."""
