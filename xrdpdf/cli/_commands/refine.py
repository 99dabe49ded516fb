"""``xrdpdf refine``: Rietveld-lite refinement of one pattern."""

from __future__ import annotations

from pathlib import Path

import typer

from xrdpdf.cli._commands._common import (
    WavelengthOption,
    XtypeOption,
    emit_json,
    handle_errors,
    info,
    parse_xtype,
)


def _report(res) -> None:
    for p in res.phases:
        if not p.detected:
            print(f"{p.name}: not detected (weight fraction 0)")
            continue
        esd = f" ± {p.a_esd_A:.5f}" if p.a_esd_A is not None else ""
        size = "" if p.size_A is None else f", size {p.size_A:.1f} Å"
        if p.size_esd_A is not None:
            size += f" ± {p.size_esd_A:.1f}"
        if p.diameter_A is not None:
            de = "" if p.diameter_esd_A is None else f" ± {p.diameter_esd_A:.1f}"
            size += f" (sphere D {p.diameter_A:.1f}{de} Å)"
        if p.size_is_lower_bound and p.size_A is not None:
            size += " (lower bound: no resolution file)"
        occ = ", ".join(f"{k} {v:.3f}" for k, v in p.occupancy.items())
        wf_e = "" if p.weight_fraction_esd is None else f" ± {p.weight_fraction_esd:.3f}"
        xf = ""
        if p.crystalline_fraction is not None:
            xe = p.crystalline_fraction_esd
            xf = f", crystalline fraction {p.crystalline_fraction:.3f}"
            xf += "" if xe is None else f" ± {xe:.3f}"
        print(
            f"{p.name}: a = {p.a_A:.5f}{esd} Å{size}, weight fraction "
            f"{p.weight_fraction:.3f}{wf_e}{xf}, R_Bragg {p.r_bragg:.4f}, occupancy {occ}, "
            f"density {p.phase.density_g_cm3:.3f} g/cm³"
        )
        fixed = [f"Biso({el})" for el in p.biso_at_bound]
        fixed += [f"occupancy({lab})" for lab in p.occupancy_at_bound]
        if fixed:
            print(f"{p.name}: fixed at a bound (not determined): {', '.join(fixed)}")
    if res.displacement_mm is not None:
        e = "" if res.displacement_esd_mm is None else f" ± {res.displacement_esd_mm:.4f}"
        print(f"sample displacement {res.displacement_mm:.4f}{e} mm")
    print(f"aberration terms refined: {', '.join(res.aberrations) or 'none'}")
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
        cuka: bool = typer.Option(
            False, "--cuka", help="Lab Cu Kα1/Kα2 Bragg–Brentano 2θ data (= --anode Cu)."
        ),
        anode: str | None = typer.Option(
            None, "--anode", help="Lab tube anode: Cu, Mo, Co, Ag or Cr (Bragg–Brentano 2θ)."
        ),
        kbeta: bool = typer.Option(False, "--kbeta", help="Model the Kβ line too (lab data)."),
        no_displacement: bool = typer.Option(
            False,
            "--no-displacement",
            help="Lab data: refine a 2θ zero offset instead of the sample displacement.",
        ),
        transparency: bool = typer.Option(
            False, "--transparency", help="Lab data: also refine the sample transparency."
        ),
        goniometer_radius: float = typer.Option(
            240.0,
            "--goniometer-radius",
            help="Goniometer radius in mm (240: PANalytical X'Pert/Empyrean; D8 250).",
        ),
        refine_ka2: bool = typer.Option(
            False, "--refine-ka2-ratio", help="Lab data: refine the Kα2/Kα1 intensity ratio."
        ),
        strain: bool = typer.Option(False, "--strain", help="Refine microstrain (2εQ)."),
        no_occupancy_sum: bool = typer.Option(
            False,
            "--no-occupancy-sum",
            help="Sites sharing a position (Na/Ti on 4a) refine with vacancies (site at most "
            "full) instead of keeping their sum and refining the split.",
        ),
        reference_composition: str | None = typer.Option(
            None,
            "--reference-composition",
            help="Composition of the --background-pattern sample (e.g. TiO2): gives each "
            "phase's crystalline (atom) fraction.",
        ),
        resolution: Path | None = typer.Option(
            None, "--resolution", help="Instrument resolution JSON (from calibration)."
        ),
        inst_fwhm: float | None = typer.Option(
            None,
            "--inst-fwhm",
            help="Gaussian instrument FWHM in the pattern's x unit, when there is no "
            "--resolution; without either, sizes are lower bounds.",
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
        Sites sharing a position keep their summed occupancy (the split is refined);
        a Biso or occupancy that runs to its bound is fixed there and reported.
        A refinement that does not converge is reported with converged: false
        and a warning (exit code 0).

        Lab Bragg–Brentano data (--cuka or --anode) refine the sample displacement
        s (2θ shift −2s cosθ/R, R = --goniometer-radius) instead of a zero offset;
        --cuka implies a 2θ x column for a headerless file.

        Example: xrdpdf refine cycle03.xye --phase NaTiO2 --resolution calib/res.json --plot fit.png

        Example: xrdpdf refine y2o3.xy --cuka --kbeta --phase y2o3.cif --xmin 15 --json
        """
        from xrdpdf._core.errors import InputError
        from xrdpdf.io import read_pattern
        from xrdpdf.physics.cif import get_phase
        from xrdpdf.physics.resolution import load_resolution
        from xrdpdf.physics.scattering import anode_lines
        from xrdpdf.stages.refinement import refine

        if cuka and anode is not None and anode.strip().lower() != "cu":
            raise InputError(f"--cuka and --anode {anode} disagree; give one")
        anode = "Cu" if cuka and anode is None else anode
        if anode is not None and wavelength is not None:
            raise InputError("give either --wavelength or --cuka/--anode, not both")
        if plot is not None:
            from xrdpdf.plot import check_figure

            check_figure(plot, overwrite)
        wl = anode_lines(anode)[0][0] if anode is not None else wavelength
        xt = parse_xtype(xtype)
        if xt is None and anode is not None:
            xt = "tth"  # lab Bragg–Brentano data are 2θ scans
        pat = read_pattern(pattern, xtype=xt, wavelength_A=wl)
        if resolution is not None and inst_fwhm is not None:
            raise InputError("give either --resolution or --inst-fwhm, not both")
        res_model = load_resolution(resolution) if resolution is not None else None
        plist = [get_phase(p) for p in phase]
        bkg_pat = None
        if background_pattern is not None:
            bkg_pat = read_pattern(background_pattern, xtype=xt, wavelength_A=wl)
        import warnings

        from xrdpdf.stages.refinement import RefinementWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RefinementWarning)
            res = refine(
                pat,
                plist,
                anode=anode,
                kbeta=kbeta,
                displacement=None if anode is None else not no_displacement,
                transparency=transparency,
                goniometer_radius_mm=goniometer_radius,
                refine_ka2_ratio=refine_ka2,
                refine_strain=strain,
                occupancy_sum=not no_occupancy_sum,
                reference_composition=reference_composition,
                resolution=res_model,
                fwhm_inst=inst_fwhm,
                n_background=background_terms,
                xrange=None if xmin is None and xmax is None else (xmin, xmax),
                background_pattern=bkg_pat,
            )
        for w in res.warnings:
            info(f"xrdpdf: warning: {w}")
        if plot is not None:
            from xrdpdf.plot import save_figure
            from xrdpdf.plot.refinement import plot_refinement

            save_figure(plot_refinement(res), plot)
        if json_out:
            d = res.to_dict()
            d["pattern"] = str(pattern)
            if plot is not None:
                d["plot"] = str(plot)
            emit_json(d)
        else:
            _report(res)
