"""``xrdpdf pdf`` (I(Q) → G(r), PDFgetX3 ad hoc method) and ``xrdpdf corrlen``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xrdpdf._core.errors import InputError
from xrdpdf.cli._commands._common import (
    WavelengthOption,
    XtypeOption,
    emit_json,
    handle_errors,
    info,
    parse_xtype,
)

_UNITS = {"q": "Å⁻¹", "r": "Å", "G": "Å⁻²", "F": "Å⁻¹"}


def _float_or_auto(value: str | None, name: str) -> float | str | None:
    if value is None:
        return None
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return float(value)
    except ValueError:
        raise InputError(f"{name} must be a number or 'auto', got {value!r}") from None


def register(app: typer.Typer) -> None:
    """Add ``pdf`` and ``corrlen`` to the CLI."""

    @app.command("pdf")
    @handle_errors
    def pdf(
        pattern: Annotated[Path, typer.Argument(help="Sample I(Q) or I(2θ) file.")],
        composition: Annotated[
            str, typer.Option("--composition", help="Sample formula, e.g. TiO2 or 'Zr H2 P2 O8'.")
        ],
        output: Annotated[Path, typer.Option("-o", "--output", help="Output G(r) file (.gr).")],
        bkg: Annotated[
            Path | None, typer.Option("--bkg", help="Background (container/Kapton) file.")
        ] = None,
        bkg_scale: Annotated[
            str, typer.Option("--bkg-scale", help="Background scale, or 'auto'.")
        ] = "1",
        qmin: Annotated[float, typer.Option("--qmin", help="Lowest Q used (Å⁻¹).")] = 0.0,
        qmax: Annotated[
            str | None,
            typer.Option("--qmax", help="Fourier-transform Q_max (Å⁻¹) or 'auto' [qmaxinst]."),
        ] = None,
        qmaxinst: Annotated[
            float | None,
            typer.Option("--qmaxinst", help="Upper Q of usable data (Å⁻¹) [last non-zero I]."),
        ] = None,
        rpoly: Annotated[float, typer.Option("--rpoly", help="Polynomial r limit (Å).")] = 0.9,
        rmin: Annotated[float, typer.Option("--rmin", help="r grid start (Å).")] = 0.0,
        rmax: Annotated[float, typer.Option("--rmax", help="r grid end (Å).")] = 30.0,
        rstep: Annotated[float, typer.Option("--rstep", help="r grid step (Å).")] = 0.01,
        lorch: Annotated[bool, typer.Option("--lorch", help="Apply the Lorch window.")] = False,
        xtype: XtypeOption = None,
        wavelength: WavelengthOption = None,
        plot: Annotated[
            Path | None, typer.Option("--plot", help="Also save a figure (PNG/PDF).")
        ] = None,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace existing outputs.")
        ] = False,
    ) -> None:
        """I(Q) → S(Q), F(Q), G(r) by the PDFgetX3 ad hoc method; writes OUT.gr and
        OUT.iq/.sq/.fq beside it, each with a PDFgetX3-like header of every setting.

        Example: xrdpdf pdf Ni.chi --composition Ni --bkg kapton.chi --bkg-scale 0.4
        --qmin 0.85 --qmax 25 --qmaxinst 29 --rmax 60 -o Ni.gr
        """
        from xrdpdf.io import check_outputs, read_pattern, write_pattern
        from xrdpdf.plot import check_figure
        from xrdpdf.stages.pdf import PdfConfig
        from xrdpdf.workflows.reduce import pdf_step

        if output.suffix.lower() != ".gr":
            raise InputError(f"{output}: the output must end in .gr (got {output.suffix!r})")
        xt = parse_xtype(xtype)
        outs = {k: output.with_suffix("." + k) for k in ("iq", "sq", "fq", "gr")}
        check_outputs([*outs.values(), plot], overwrite)
        if plot is not None:
            check_figure(plot, overwrite)
        sample = read_pattern(pattern, xtype=xt, wavelength_A=wavelength)
        background = None
        if bkg is not None:
            # --xtype applies to the background too, unless its own header states the axis
            try:
                background = read_pattern(bkg, wavelength_A=wavelength)
            except InputError:
                if xt is None:
                    raise
                background = read_pattern(bkg, xtype=xt, wavelength_A=wavelength)
        bscale = _float_or_auto(bkg_scale, "--bkg-scale")
        config = PdfConfig(
            composition=composition,
            qmin_invA=qmin,
            qmax_invA=_float_or_auto(qmax, "--qmax"),
            qmaxinst_invA=qmaxinst,
            rpoly_A=rpoly,
            rmin_A=rmin,
            rmax_A=rmax,
            rstep_A=rstep,
            lorch=lorch,
            bkg_scale=1.0 if bscale is None else bscale,
        )
        result, _ = pdf_step(sample, config, background=background)
        for key, path in outs.items():
            write_pattern(getattr(result, key), path, overwrite=overwrite)
        if plot is not None:
            from xrdpdf.plot import save_figure
            from xrdpdf.plot.pdf import plot_pdf

            save_figure(plot_pdf(result, title=str(pattern.name)), plot)
        summary = result.summary()
        if json_mode:
            emit_json(
                {
                    "command": "pdf",
                    "input": str(pattern),
                    "background": None if bkg is None else str(bkg),
                    **summary,
                    "outputs": {k: str(v) for k, v in outs.items()},
                    "plot": None if plot is None else str(plot),
                    "units": {"q": "1/angstrom", "r": "angstrom", "G": "1/angstrom^2"},
                }
            )
        else:
            info(
                f"Q = {result.qmin_invA:g}–{result.qmax_invA:.4g} Å⁻¹"
                f"{' (auto)' if result.qmax_auto else ''}, qmaxinst {result.qmaxinst_invA:.4g}, "
                f"polynomial degree {result.poly_degree}, bkg scale {result.bkg_scale:.4g}"
                f"{' (auto)' if result.bkg_scale_auto else ''}"
            )
            for path in outs.values():
                info(f"wrote {path}")

    @app.command("corrlen")
    @handle_errors
    def corrlen(
        gr_file: Annotated[Path, typer.Argument(help="G(r) file (.gr).")],
        rmin: Annotated[float, typer.Option("--rmin", help="Start of the fit (Å).")] = 3.0,
        rmax: Annotated[
            float | None, typer.Option("--rmax", help="End of the fit (Å) [end of data].")
        ] = None,
        window: Annotated[float, typer.Option("--window", help="RMS window width (Å).")] = 2.0,
        qdamp: Annotated[
            float | None, typer.Option("--qdamp", help="Instrument Q_damp (Å⁻¹), if known.")
        ] = None,
        plot: Annotated[
            Path | None, typer.Option("--plot", help="Also save a figure (PNG/PDF).")
        ] = None,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace an existing plot.")
        ] = False,
    ) -> None:
        """Correlation length of G(r): spherical-envelope diameter xi_A ± xi_esd_A and the
        noise-threshold length r_noise_A.

        Example: xrdpdf corrlen cycle01.gr --json
        """
        from xrdpdf.io import read_pattern
        from xrdpdf.plot import check_figure
        from xrdpdf.stages.corrlen import correlation_length

        if plot is not None:
            check_figure(plot, overwrite)
        gr = read_pattern(gr_file)
        res = correlation_length(gr, rmin_A=rmin, rmax_A=rmax, window_A=window, qdamp_invA=qdamp)
        if plot is not None:
            from xrdpdf.plot import save_figure
            from xrdpdf.plot.pdf import plot_corrlen

            save_figure(plot_corrlen(gr, res, title=gr_file.name), plot)
        if json_mode:
            emit_json(
                {
                    "command": "corrlen",
                    "input": str(gr_file),
                    **res.to_dict(),
                    "units": {"xi_A": "angstrom", "r_noise_A": "angstrom"},
                }
            )
        else:
            print(
                f"xi_A = {res.xi_A:.2f} ± {res.xi_esd_A:.2f} Å ({res.method}); "
                f"r_noise_A = {res.r_noise_A:.2f} Å"
                + (f" ({res.r_noise_reason})" if res.r_noise_reason else "")
            )
