"""Shared plumbing of the CLI commands: error handling, JSON output, progress.

Each module in :mod:`xrdpdf.cli._commands` defines ``register(app)`` that adds its
command(s) to the Typer app; :mod:`xrdpdf.cli` discovers them.  A command body
makes one public API call and formats the result; it never does physics.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer

from xrdpdf._core.errors import XrdpdfError

SCHEMA_VERSION = 1
T = TypeVar("T")


#: The library's errors name API parameters; on the command line they read as the flags.
API_TO_FLAG: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bwavelength_A\b"), "--wavelength"),
    (re.compile(r"\bpass overwrite=True\b"), "use --overwrite"),
    (re.compile(r"\bxtype='q'\|'qnm'\|'tth'"), "--xtype q|qnm|tth"),
    (re.compile(r"\bmethod='pyfai'"), "--method pyfai"),
    (re.compile(r"\bframe=N or sum_frames=True\b"), "--sum"),
    (re.compile(r"\bformat '(\w+)'"), r"--format \1"),
    (re.compile(r"\bmerge=True\b"), "--merge"),
)


def as_flags(message: str) -> str:
    """``message`` with the API names in :data:`API_TO_FLAG` replaced by their CLI flags.

    >>> as_flags("x.xy: 2θ data need a wavelength; give wavelength_A")
    'x.xy: 2θ data need a wavelength; give --wavelength'
    """
    for pattern, flag in API_TO_FLAG:
        message = pattern.sub(flag, message)
    return message


def fail(message: str) -> None:
    """Print ``xrdpdf: error: <message>`` (one line, API names as flags) to stderr and exit 2."""
    msg = as_flags(" ".join(str(message).split()))
    print(f"xrdpdf: error: {msg}", file=sys.stderr)
    raise typer.Exit(2)


def handle_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Decorator: turn :class:`XrdpdfError` into one stderr line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except XrdpdfError as exc:
            fail(str(exc))
            raise  # unreachable, keeps type checkers quiet

    return wrapper


def _clean(obj: Any) -> Any:
    """Replace NaN/inf by None so that the JSON is strict."""
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def emit_json(payload: dict[str, Any]) -> None:
    """Print one plain JSON object with ``schema_version`` to stdout."""
    out = {"schema_version": SCHEMA_VERSION}
    out.update(payload)
    from xrdpdf.io import json_default  # here, not at import: keeps `xrdpdf --help` fast

    print(json.dumps(_clean(out), default=json_default, allow_nan=False, indent=2))


def info(message: str) -> None:
    """A human-readable line on stderr (stdout is kept for results / JSON)."""
    print(message, file=sys.stderr)


def show_progress(json_mode: bool) -> bool:
    """Progress bars only on a terminal and never with ``--json``."""
    return (not json_mode) and sys.stderr.isatty()


def progress(items: Iterable[T], total: int | None, label: str, enabled: bool) -> Iterator[T]:
    """Iterate with a rich progress bar on stderr when ``enabled``."""
    if not enabled:
        yield from items
        return
    from rich.progress import track

    yield from track(items, total=total, description=label, transient=True)


@contextlib.contextmanager
def progress_callback(total: int, label: str, enabled: bool) -> Iterator[Callable[..., None]]:
    """Yield ``on_progress(done, total, name)`` that drives a rich bar on stderr when enabled."""
    if not enabled:
        yield lambda *_: None
        return
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    bar.start()
    task = bar.add_task(label, total=total)
    try:
        yield lambda done, _total, name: bar.update(task, completed=done, description=name)
    finally:
        bar.stop()


def parse_xtype(xtype: str | None) -> str | None:
    """Map the CLI's ``--xtype q|qnm|tth`` to an io unit keyword (or None)."""
    if xtype is None:
        return None
    allowed = {"q": "q", "qa": "q", "qnm": "qnm", "tth": "tth", "twotheta": "tth"}
    key = xtype.strip().lower()
    if key not in allowed:
        raise typer.BadParameter(f"--xtype must be q, qnm or tth, got {xtype!r}")
    return allowed[key]


# Options shared by the commands that reduce images (``integrate``, ``watch``): one
# declaration, so that their flags and help texts cannot drift apart.
PoniOption = Annotated[Path, typer.Option("--poni", help="pyFAI geometry (PONI) with wavelength.")]
OutdirOption = Annotated[Path, typer.Option("-o", "--output", help="Output folder.")]
MaskOption = Annotated[
    Path | None, typer.Option("--mask", help="Mask image: non-zero pixels are masked.")
]
DarkOption = Annotated[
    list[Path] | None,
    typer.Option("--dark", help="Dark image(s); repeat to average several."),
]
FlatOption = Annotated[
    Path | None, typer.Option("--flat", help="Flat-field image (divides intensities).")
]
NptOption = Annotated[int, typer.Option("--npt", help="Number of radial bins.")]
UnitOption = Annotated[str, typer.Option("--unit", help="Radial unit: q (Å⁻¹) or 2th (degrees).")]
PolarizationOption = Annotated[
    str, typer.Option("--polarization", help="Polarization factor in [-1, 1], or 'none'.")
]
MethodOption = Annotated[
    str | None,
    typer.Option("--method", help="Engine: fast (precomputed operator) or pyfai (plain)."),
]

# Options of the commands that read a 1-D pattern (refine, size, pdf, simulate image).
XtypeOption = Annotated[
    str | None,
    typer.Option("--xtype", help="x column of a headerless file: q (Å⁻¹), qnm (nm⁻¹) or tth (°)."),
]
WavelengthOption = Annotated[
    float | None, typer.Option("--wavelength", help="Wavelength in Å (needed for 2θ data).")
]
