"""``xrdpdf pdfcalc`` (model → G(r)) and ``xrdpdf pdffit`` (real-space refinement)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xrdpdf._core.errors import InputError
from xrdpdf.cli._commands._common import emit_json, handle_errors, info

_UNITS = {"r": "angstrom", "G": "1/angstrom^2", "a_A": "angstrom", "delta2_A2": "angstrom^2"}


def register(app: typer.Typer) -> None:
    """Add ``pdfcalc`` and ``pdffit`` to the CLI."""

    @app.command("pdfcalc")
    @handle_errors
    def pdfcalc(
        model_file: Annotated[Path, typer.Argument(help="PDF model file (TOML).")],
        output: Annotated[Path, typer.Option("-o", "--output", help="Output G(r) file (.gr).")],
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace an existing output.")
        ] = False,
    ) -> None:
        """G(r) of a model (PDFfit2's conventions) on its [data] rmin…rmax grid, rstep step.

        Example: xrdpdf pdfcalc NaTiO2.toml -o NaTiO2_calc.gr --json
        """
        from xrdpdf.io import check_output, write_pattern
        from xrdpdf.stages.pdffit import calculate, read_model

        if output.suffix.lower() != ".gr":
            raise InputError(f"{output}: the output must end in .gr (got {output.suffix!r})")
        check_output(output, overwrite)
        model = read_model(model_file)
        gr = calculate(model)
        write_pattern(gr, output, overwrite=overwrite)
        if json_mode:
            emit_json({
                "command": "pdfcalc", "model": str(model_file), "output": str(output),
                "npoints": int(gr.x.size), "rmin_A": float(gr.x[0]), "rmax_A": float(gr.x[-1]),
                "units": _UNITS,
            })  # fmt: skip
        else:
            info(f"wrote {output} ({gr.x.size} points, {gr.x[0]:g}–{gr.x[-1]:g} Å)")

    @app.command("pdffit")
    @handle_errors
    def pdffit(
        data_file: Annotated[Path, typer.Argument(help="Observed G(r) file (.gr).")],
        model_file: Annotated[Path, typer.Argument(help="PDF model file (TOML).")],
        output: Annotated[
            Path | None, typer.Option("-o", "--output", help="Write the refined model (TOML).")
        ] = None,
        plot: Annotated[
            Path | None, typer.Option("--plot", help="Save a fit figure (PNG/PDF).")
        ] = None,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace existing outputs.")
        ] = False,
    ) -> None:
        """Refine a structure model against G(r) on the model's [data] rmin…rmax.

        Example: xrdpdf pdffit cycle01.gr NaTiO2.toml -o cycle01_fit.toml --plot fit.png --json
        """
        from xrdpdf.io import check_outputs, read_pattern, write_text
        from xrdpdf.plot import check_figure
        from xrdpdf.stages.pdffit import fit, model_text, read_model

        check_outputs([output, plot], overwrite)
        if plot is not None:
            check_figure(plot, overwrite)
        model = read_model(model_file)
        data = read_pattern(data_file)
        result = fit(data, model)
        if output is not None:
            write_text(model_text(result.model), output, overwrite=overwrite)
        if plot is not None:
            from xrdpdf.plot import save_figure
            from xrdpdf.plot.pdffit import plot_pdffit

            save_figure(plot_pdffit(result, title=data_file.name), plot)
        summary = result.to_dict()
        if json_mode:
            emit_json({"command": "pdffit", "input": str(data_file), "model": str(model_file),
                       **summary, "output": None if output is None else str(output),
                       "plot": None if plot is None else str(plot),
                       "units": {**_UNITS, "qdamp": "1/angstrom", "spdiameter_A": "angstrom",
                                 "uiso_A2": "angstrom^2", "delta1_A": "angstrom"}})  # fmt: skip
        else:
            info(f"Rw = {result.rw:.4f}, chi2_red = {result.chi2_red:.4g}, "
                 f"converged = {result.converged}")  # fmt: skip
            for p in result.phases:
                info(
                    f"{p['name']}: a = {p['a_A']:.5f}({p['a_A_esd']:.1g}) Å, "
                    f"scale = {p['scale']:.4g}, spdiameter = {p['spdiameter_A']:.1f} Å"
                )
