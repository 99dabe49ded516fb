"""``xrdpdf refine``: Rietveld-lite refinement of one pattern."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import (
    WavelengthOption,
    XtypeOption,
    emit_json,
    handle_errors,
    info,
    parse_xtype,
)


def _report(res) -> None:
    for p in res.phases:
        esd = f" ± {p.a_esd_A:.5f}" if p.a_esd_A is not None else ""
        size = "" if p.size_A is None else f", size {p.size_A:.1f} Å"
        if p.size_esd_A is not None:
            size += f" ± {p.size_esd_A:.1f}"
        occ = ", ".join(f"{k} {v:.3f}" for k, v in p.occupancy.items())
        print(
            f"{p.name}: a = {p.a_A:.5f}{esd} Å{size}, weight fraction "
            f"{p.weight_fraction:.3f}, R_Bragg {p.r_bragg:.4f}, occupancy {occ}"
        )
    print(
        f"Rwp {res.rwp:.4f}  Rp {res.rp:.4f}  Rexp {res.rexp:.4f}  χ² {res.chi2:.3f}  "
        f"GoF {res.gof:.3f}  converged: {res.converged}"
    )
    print(f"size means {res.size_definition}")
    for a, b, r in res.correlations:
        print(f"correlated: {a} / {b}  r = {r:+.2f}")


def register(app: typer.Typer) -> None:
    """Add the ``refine`` command to ``app``."""

    @app.command("refine")
    @handle_errors
    def refine_cmd(
        pattern: Path = typer.Argument(..., help="I(Q) or I(2θ) file (.xye, .xy, .chi, .h5 …)."),
        phase: list[str] = typer.Option(
            ["NaTiO2"], "--phase", help="Built-in phase name or CIF path; repeat for more."
        ),
        xtype: XtypeOption = None,
        wavelength: WavelengthOption = None,
        cuka: bool = typer.Option(False, "--cuka", help="Lab Cu Kα1/Kα2 Bragg–Brentano 2θ data."),
        resolution: Path | None = typer.Option(
            None, "--resolution", help="Instrument resolution JSON (from calibration)."
        ),
        background_terms: int = typer.Option(
            6, "--background-terms", help="Chebyshev background terms (1–30)."
        ),
        xmin: float | None = typer.Option(
            None, "--xmin", help="Lower end of the fit range (pattern's x unit)."
        ),
        xmax: float | None = typer.Option(
            None, "--xmax", help="Upper end of the fit range (pattern's x unit)."
        ),
        background_pattern: Path | None = typer.Option(
            None,
            "--background-pattern",
            help="Measured pattern (e.g. the amorphous electrode) added to the background "
            "with a refined scale.",
        ),
        plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of the fit."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --plot."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Refine lattice, size, occupancy and scale of crystal phases.

        Staged release: scale + background, lattice + zero, profile, Biso/occupancy.
        A refinement that does not converge is reported with converged: false
        and a warning (exit code 0).

        Example: xrdpdf refine cycle03.xye --phase NaTiO2 --resolution calib/res.json --plot fit.png
        """
        from ..errors import InputError
        from ..io import read_pattern
        from ..phases import get_phase, load_resolution
        from ..refine import refine

        if cuka and wavelength is not None:
            raise InputError("give either --wavelength or --cuka, not both")
        if plot is not None and plot.exists() and not overwrite:
            raise InputError(f"{plot}: exists; use --overwrite to replace it")
        wl = 1.540562 if cuka and wavelength is None else wavelength
        pat = read_pattern(pattern, xtype=parse_xtype(xtype), wavelength_A=wl)
        res_model = load_resolution(resolution) if resolution is not None else None
        plist = [get_phase(p) for p in phase]
        bkg_pat = None
        if background_pattern is not None:
            bkg_pat = read_pattern(background_pattern, xtype=parse_xtype(xtype), wavelength_A=wl)
        import warnings

        from ..refine import RefinementWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RefinementWarning)
            res = refine(
                pat,
                plist,
                cuka=cuka,
                resolution=res_model,
                n_background=background_terms,
                xrange=None if xmin is None and xmax is None else (xmin, xmax),
                background_pattern=bkg_pat,
            )
        for w in res.warnings:
            info(f"xrdpdf: warning: {w}")
        if plot is not None:
            from ..plot import save_figure
            from ..plot.refinement import plot_refinement

            save_figure(plot_refinement(res), plot)
        if json_out:
            d = res.to_dict()
            d["pattern"] = str(pattern)
            if plot is not None:
                d["plot"] = str(plot)
            emit_json(d)
        else:
            _report(res)
