"""``xrdpdf demo``: simulate the whole ex situ series as detector images and analyse it.

The simulation and its truth are in :mod:`xrdpdf.simulate.demo`; the analysis is the
same :func:`xrdpdf.workflows.series.run_series` that ``xrdpdf series`` runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xrdpdf.cli._commands._common import handle_errors, info, progress_callback, show_progress


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""

    @app.command("demo")
    @handle_errors
    def demo_cmd(
        output: Annotated[Path, typer.Option("-o", "--output", help="Output directory.")] = Path(
            "demo_out"
        ),
        workers: Annotated[
            int | None,
            typer.Option("--workers", help="Dask worker processes (default: CPU cores)."),
        ] = None,
        binning: Annotated[
            int,
            typer.Option(
                "--binning", help="Detector binning: 1 = 2048² (default), 2 = 1024², 4 = 512²."
            ),
        ] = 1,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace an earlier demo in OUTPUT.")
        ] = False,
        json_out: Annotated[
            bool, typer.Option("--json", help="Print the summary as JSON.")
        ] = False,
    ) -> None:
        """Simulate the ex situ TiO2 → amorphous → rocksalt NaTiO2 series at 11-ID-C and analyse it.

        Writes OUTPUT/images/*.tif (2048² frames at λ = 0.1173 Å), geometry.poni, mask.tif,
        dark.tif, series.toml and truth.json (what was simulated), then runs the series
        pipeline into OUTPUT/results/ (patterns, G(r), refinements, summary.csv,
        summary.h5, figures, report.html) and prints the summary table.

        Example: xrdpdf demo -o demo_out --overwrite
        """
        from xrdpdf.cli._commands._series_table import report_series
        from xrdpdf.simulate.demo import demo_samples, write_demo_series
        from xrdpdf.workflows.series import load_series, run_series

        if binning not in (1, 2, 4, 8):
            from xrdpdf._core.errors import InputError

            raise InputError(f"--binning must be 1, 2, 4 or 8, got {binning}")
        bar = show_progress(json_out)
        if not json_out:
            info(f"simulating the demo series into {output}/images ...")
        with progress_callback(len(demo_samples()), "simulating", bar) as cb:
            series_file = write_demo_series(
                output, binning=binning, overwrite=overwrite, on_progress=cb
            )
        if not json_out:
            info(f"analysing {series_file} ...")
        cfg = load_series(series_file)
        with progress_callback(len(cfg.samples), "analysing", bar) as cb:
            result = run_series(
                cfg,
                output / "results",
                workers=workers,
                force=overwrite,
                overwrite=overwrite,
                on_progress=cb,
            )
        report_series(result, json_out, series_file=series_file)
        if result.n_ok == 0:
            raise typer.Exit(2)
