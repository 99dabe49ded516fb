"""``xrdpdf watch``: reduce each detector image as it lands in a folder (beamline mode)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from xrdpdf.cli._commands._common import (
    DarkOption,
    FlatOption,
    MaskOption,
    MethodOption,
    NptOption,
    OutdirOption,
    PolarizationOption,
    PoniOption,
    UnitOption,
    emit_json,
    handle_errors,
)


def _qmax(text: str | None) -> float | str | None:
    if text is None or text.strip().lower() == "auto":
        return None if text is None else "auto"
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(f"--qmax must be a number (Å⁻¹) or 'auto', got {text!r}") from None


def register(app: typer.Typer) -> None:
    """Add ``watch`` to the CLI."""

    @app.command("watch")
    @handle_errors
    def watch(
        ctx: typer.Context,
        directory: Annotated[Path, typer.Argument(help="Folder the detector writes images into.")],
        poni: PoniOption,
        outdir: OutdirOption,
        mask: MaskOption = None,
        dark: DarkOption = None,
        flat: FlatOption = None,
        npt: NptOption = 3000,
        unit: UnitOption = "q",
        polarization: PolarizationOption = "0.99",
        method: MethodOption = None,
        pdf: Annotated[
            bool, typer.Option("--pdf", help="Also transform each pattern to G(r) (STEM.gr).")
        ] = False,
        composition: Annotated[
            str | None, typer.Option("--composition", help="Sample formula for --pdf, e.g. CeO2.")
        ] = None,
        qmax: Annotated[
            str | None,
            typer.Option("--qmax", help="PDF Qmax in Å⁻¹ or 'auto' (default: end of data)."),
        ] = None,
        rmax: Annotated[float, typer.Option("--rmax", help="PDF rmax in Å.")] = 30.0,
        fmt: Annotated[
            str,
            typer.Option(
                "--format",
                help="Output format: xye, xy, chi, h5 (NXdata) or nxazint1d (STEM.nxs, pyFAI's "
                "NXazint1d with its accumulators), one file per frame.",
            ),
        ] = "xye",
        once: Annotated[
            bool, typer.Option("--once", help="Reduce the images there now, then exit.")
        ] = False,
        poll: Annotated[
            float | None,
            typer.Option(
                "--poll",
                help="Poll the folder every SECONDS instead of file-system events "
                "(network file systems).",
            ),
        ] = None,
        settle: Annotated[
            float,
            typer.Option(
                "--settle",
                help="Seconds an unchanged, unreadable file waits before it is reported bad.",
            ),
        ] = 10.0,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace existing outputs.")
        ] = False,
        json_mode: Annotated[
            bool, typer.Option("--json", help="Print a JSON summary to stdout at exit.")
        ] = False,
    ) -> None:
        """Reduce each new image in DIRECTORY to OUT/STEM.xye as it lands (and STEM.gr).

        Each image is reduced exactly as `xrdpdf integrate` would (same options,
        same files; STEM_fNNNN.xye for the frames of a stack) once it is
        completely written (size unchanged between two checks and readable).
        OUT/watch_state.json remembers what was done, so no image is reduced
        twice, also after a restart; OUT/summary.csv gets one row per pattern
        (name, source, output, error).  A bad file is reported and skipped.
        Ctrl-C or SIGTERM stop cleanly (exit 0); --once reduces what is there and
        exits (2 if every new image failed).  An existing output is kept unless
        --overwrite.  Files named .* or *.part / *.tmp are ignored.

        --poni also takes a pyFAI integration config (WorkerConfig JSON), as for
        `xrdpdf integrate`: its settings, the flags given here win.  --format
        nxazint1d writes STEM.nxs (pyFAI's NXazint1d, with its accumulators).

        Example: xrdpdf watch /data/incoming --poni calib/11idc_default.poni -o reduced/ --pdf --composition CeO2
        """  # noqa: E501
        from xrdpdf._core.errors import InputError
        from xrdpdf.cli._commands.integrate import _explicit, _polarization
        from xrdpdf.io import is_worker_config
        from xrdpdf.stages.integrate import IntegrationSettings
        from xrdpdf.workflows.watch import watch as run_watch

        if unit not in ("q", "2th"):
            raise typer.BadParameter(f"--unit must be q or 2th, got {unit!r}")
        if method is not None and method not in ("fast", "pyfai"):
            raise typer.BadParameter(f"--method must be fast or pyfai, got {method!r}")
        pdf_config = None
        if pdf:
            if not composition:
                raise InputError("--pdf needs the sample's --composition (e.g. CeO2)")
            from xrdpdf.stages.pdf import PdfConfig

            kw: dict = {"rmax_A": rmax}
            if qmax is not None:
                kw["qmax_invA"] = _qmax(qmax)
            pdf_config = PdfConfig(composition, **kw)
        elif composition or qmax is not None:
            raise InputError("--composition and --qmax are used only with --pdf")
        settings = IntegrationSettings(
            npt=npt, unit=unit, polarization_factor=_polarization(polarization), method=method
        )
        overrides = None
        if is_worker_config(poni):  # the config's settings, except the flags given here
            given = _explicit(
                ctx, {"npt": "npt", "unit": "unit", "polarization": "polarization_factor"}
            )
            values = {
                "npt": settings.npt,
                "unit": settings.unit,
                "polarization_factor": settings.polarization_factor,
            }
            overrides = {k: v for k, v in values.items() if k in given}
            overrides["method"] = method
            settings = None

        def log(message: str) -> None:
            print(f"xrdpdf: {message}", file=sys.stderr, flush=True)

        result = run_watch(
            directory,
            poni,
            outdir,
            mask=mask,
            darks=dark or None,
            flat=flat,
            settings=settings,
            pdf_config=pdf_config,
            fmt=fmt,
            overrides=overrides,
            once=once,
            poll_s=poll,
            settle_s=settle,
            overwrite=overwrite,
            log=log,
        )
        summary = result.to_dict()
        if json_mode:
            emit_json({"command": "watch", "directory": str(directory), **summary})
        else:
            log(
                f"{summary['n_processed']} image(s) reduced, {summary['n_failed']} failed, "
                f"{summary['n_skipped']} already done; summary in {summary['summary_csv']}"
            )
        if once and result.failed and not result.processed:
            raise typer.Exit(2)
