"""``xrdpdf series``: a whole ex situ series on Dask."""

from __future__ import annotations

from pathlib import Path

import typer

from xrdpdf.cli._commands._common import fail, handle_errors, progress_callback, show_progress
from xrdpdf.cli._commands._series_table import report_series


def register(app: typer.Typer) -> None:
    """Add the ``series`` command to ``app``."""

    @app.command("series")
    @handle_errors
    def series_cmd(
        config: Path = typer.Argument(..., help="Series file (TOML)."),
        output: Path = typer.Option(..., "-o", "--output", help="Output directory."),
        workers: int = typer.Option(
            None, "--workers", help="Dask worker processes (default: CPU cores); 0 = no Dask."
        ),
        scheduler: str = typer.Option(
            None, "--scheduler", help="Address of a running Dask scheduler, e.g. tcp://host:8786."
        ),
        force: bool = typer.Option(False, "--force", help="Recompute unchanged samples too."),
        fmt: str = typer.Option(
            None,
            "--format",
            help="I(Q) files: xye, or nxazint1d (also <sample>.nxs, pyFAI's NXazint1d with its "
            "accumulators); default the series file's [integrate] format, else xye.",
        ),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="Take over an OUTDIR that holds another series' results."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Integrate, refine, size, transform to G(r) and get ξ for every sample of a series.

        Writes OUTDIR/<sample>/ (pattern, refinement JSON, G(r)), OUTDIR/summary.csv,
        OUTDIR/summary.h5, figures and OUTDIR/report.html.  Samples whose inputs and
        settings are unchanged since the last run are skipped (content hash); a sample
        whose outputs were deleted is done again.  OUTDIR/series.json names the series
        file: an OUTDIR holding another series' results is refused without --overwrite.
        Exit 0 when at least one sample was integrated; failures are listed on stderr.

        Example: xrdpdf series examples/series.toml -o series_out --workers 2
        """
        from xrdpdf.workflows.series import check_outdir, load_series, run_series

        if workers is not None and scheduler is not None:
            fail("give either --workers or --scheduler, not both")
        if workers is not None and workers < 0:
            fail(f"--workers must be ≥ 0, got {workers}")
        cfg = load_series(config)
        if fmt is not None:
            import dataclasses

            from xrdpdf.workflows.series import integration_format

            cfg = dataclasses.replace(cfg, integrate={**cfg.integrate, "format": fmt})
            integration_format(cfg)  # an unknown format: one line, exit 2
        check_outdir(cfg, output, overwrite=overwrite)  # before the progress bar starts
        with progress_callback(len(cfg.samples), "samples", show_progress(json_out)) as cb:
            result = run_series(
                cfg,
                output,
                workers=workers,
                scheduler=scheduler,
                on_progress=cb,
                force=force,
                overwrite=overwrite,
            )
        report_series(result, json_out)
        if result.n_ok == 0:
            raise typer.Exit(2)
