"""The ``xrdpdf`` command line: a thin layer over the public API.

Commands live in :mod:`xrdpdf._commands`, one module per pipeline stage, each
with a ``register(app)`` function; this module discovers and registers them.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click
import typer

from . import _commands

app = typer.Typer(
    name="xrdpdf",
    help=(
        "Synchrotron powder diffraction and PDF analysis: detector images → I(Q) → "
        "refinement, Scherrer sizes, G(r), correlation lengths.\n\n"
        "Example: xrdpdf integrate frame.tif --poni calib/11idc_default.poni -o out/"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_all() -> None:
    for mod in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_commands.__name__}.{mod.name}")
        module.register(app)


_register_all()


def _main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return the exit code (for tests)."""
    try:
        rv = app(args=argv, prog_name="xrdpdf", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except click.exceptions.Abort:
        print("xrdpdf: aborted", file=sys.stderr)
        return 130
    return int(rv) if isinstance(rv, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(_main())


if __name__ == "__main__":
    main()
