"""``xrdpdf convert``: any readable pattern file to any writable format."""

from __future__ import annotations

from pathlib import Path

import typer

from xrdpdf.cli._commands._common import (
    WavelengthOption,
    XtypeOption,
    emit_json,
    handle_errors,
    parse_xtype,
)


def register(app: typer.Typer) -> None:
    """Add the ``convert`` command to ``app``."""

    @app.command("convert")
    @handle_errors
    def convert_cmd(
        inputs: list[Path] = typer.Argument(..., help="Pattern files (any readable format)."),
        output: Path = typer.Option(..., "-o", "--output", help="Output folder."),
        fmt: str = typer.Option(
            "xye", "--format", help="xye | xy | chi | gr | h5 (also iq, sq, fq)."
        ),
        merge: bool = typer.Option(
            False, "--merge", help="Merge the ranges of a multi-range file into one pattern."
        ),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
        xtype: XtypeOption = None,
        wavelength: WavelengthOption = None,
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Convert patterns, one output per input (STEM_rN for the ranges of one file).

        Example: xrdpdf convert scan.raw run.xrdml -o converted --format xye --json
        """
        from xrdpdf.io import convert_patterns

        written = convert_patterns(
            inputs,
            output,
            fmt,
            xtype=parse_xtype(xtype),
            wavelength_A=wavelength,
            merge=merge,
            overwrite=overwrite,
        )
        if json_out:
            emit_json({"written": written})
            return
        for w in written:
            wl = "" if w["wavelength_A"] is None else f", λ = {w['wavelength_A']} Å"
            print(f"{w['path']}  ({w['n_points']} points, {w['x_unit']}{wl})")
