"""The ``xrdpdf`` command line: a thin layer over the public API.

Commands live in :mod:`xrdpdf.cli._commands`, one module per pipeline stage, each
with a ``register(app)`` function; this module discovers and registers them.

Usage errors (unknown option or command, missing or malformed value, a
``BadParameter`` raised by a command) print click's usage line and one line
``xrdpdf: error: …`` to stderr and exit with code 2.  Typer ≥ 0.24 raises its
own vendored copy of click's exceptions rather than the ``click`` package's, so
they are recognised by their interface (``exit_code``, ``format_message``,
``ctx``), not by class identity.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import pkgutil
import sys
import warnings
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from xrdpdf._core.errors import XrdpdfWarning
from xrdpdf.cli import _commands
from xrdpdf.cli._commands._common import as_flags

app = typer.Typer(
    name="xrdpdf",
    help=(
        "Synchrotron powder diffraction and PDF analysis: detector images → I(Q) → "
        "refinement, Scherrer sizes, G(r), correlation lengths.\n\n"
        "Example: xrdpdf integrate frame.tif --poni calib/11idc_default.poni -o out/"
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _package_version() -> str:
    # imported here: importlib.metadata costs ~0.1 s of every command's start-up
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xrdpdf")
    except PackageNotFoundError:
        from xrdpdf._core._version import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        print(f"xrdpdf {_package_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Synchrotron powder diffraction and PDF analysis.

    Example: xrdpdf integrate frame.tif --poni calib/11idc_default.poni -o out/
    """


def _register_all() -> None:
    for mod in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_commands.__name__}.{mod.name}")
        module.register(app)


_register_all()


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _report_click_exception(exc: Any) -> int:
    """Print a click-style exception as usage + one ``xrdpdf: error:`` line."""
    names = _class_names(exc)
    code = int(getattr(exc, "exit_code", 2))
    ctx = getattr(exc, "ctx", None)
    if "NoArgsIsHelpError" in names and ctx is not None:
        print(ctx.get_help(), file=sys.stderr)
        return code
    if ctx is not None and "UsageError" in names:
        print(ctx.get_usage(), file=sys.stderr)
        if ctx.command.get_help_option(ctx) is not None:
            print(f"Try '{ctx.command_path} --help' for help.", file=sys.stderr)
    msg = " ".join(str(exc.format_message()).split())
    print(f"xrdpdf: error: {msg}", file=sys.stderr)
    return code


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print an :class:`XrdpdfWarning` as one line; others as Python does."""
    if issubclass(category, XrdpdfWarning):
        print(f"xrdpdf: warning: {as_flags(' '.join(str(message).split()))}", file=sys.stderr)
    else:
        print(
            warnings.formatwarning(message, category, filename, lineno, line),
            end="",
            file=sys.stderr,
        )


__all__ = ["READER_LOGGERS", "app", "main", "quiet_reader_logs"]

#: Third-party readers that log about the corrupt files the CLI reports in one line.
READER_LOGGERS = ("tifffile", "fabio", "PIL", "h5py")


@contextlib.contextmanager
def quiet_reader_logs() -> Iterator[None]:
    """Raise the image readers' loggers above CRITICAL while a command runs, then restore them.

    tifffile, fabio and PIL log about the very corruptions that the library turns into one
    :class:`~xrdpdf.InputError`; on a terminal their lines would break the one-line
    ``xrdpdf: error:`` contract.  Only the CLI does this; the library leaves logging alone.
    """
    saved = {name: logging.getLogger(name).level for name in READER_LOGGERS}
    for name in READER_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _printable_file_names() -> None:
    """Let stdout and stderr print any file name the OS allows.

    A name that is not valid UTF-8 reaches Python as lone surrogates
    (:func:`os.fsdecode`); printed, they become ``\\udcXX`` escapes instead of
    an encoding error (stdout is strict when it is a pipe).
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")


def _main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return the exit code (for tests)."""
    _printable_file_names()
    try:
        with warnings.catch_warnings(), quiet_reader_logs():
            warnings.simplefilter("always", XrdpdfWarning)
            warnings.showwarning = _show_warning
            rv = app(args=argv, prog_name="xrdpdf", standalone_mode=False)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        return int(code or 0)
    except typer.Abort:
        print("xrdpdf: aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("xrdpdf: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if "ClickException" in _class_names(exc) and hasattr(exc, "format_message"):
            return _report_click_exception(exc)
        names = _class_names(exc)
        if "Exit" in names and hasattr(exc, "exit_code"):
            return int(exc.exit_code)
        if "Abort" in names:
            print("xrdpdf: aborted", file=sys.stderr)
            return 130
        raise
    return int(rv) if isinstance(rv, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(_main())


if __name__ == "__main__":
    main()
