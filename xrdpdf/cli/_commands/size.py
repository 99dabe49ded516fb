"""``xrdpdf size``: Scherrer crystallite sizes and Williamson–Hall of one pattern."""

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


def _parse_peaks(text: str) -> str | list[float]:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"--peaks must be 'auto' or Q1,Q2,... in Å⁻¹, got {text!r}"
        ) from None


def register(app: typer.Typer) -> None:
    """Add the ``size`` command to ``app``."""

    @app.command("size")
    @handle_errors
    def size_cmd(
        pattern: Path = typer.Argument(..., help="I(Q) or I(2θ) file."),
        peaks: str = typer.Option(
            "auto", "--peaks", help="'auto' or peak positions Q1,Q2,... in Å⁻¹."
        ),
        k: float = typer.Option(
            0.9, "--k", help="Scherrer K (FWHM): 0.9 → V^(1/3), 1.107 → sphere diameter D."
        ),
        resolution: Path | None = typer.Option(
            None, "--resolution", help="Instrument resolution JSON (from calibration)."
        ),
        inst_fwhm: float | None = typer.Option(
            None, "--inst-fwhm", help="Constant instrument FWHM in Å⁻¹ (Gaussian)."
        ),
        xtype: XtypeOption = None,
        wavelength: WavelengthOption = None,
        cuka: bool = typer.Option(
            False, "--cuka", help="Lab Cu Kα1/Kα2 data: refused (use refine --cuka)."
        ),
        anode: str | None = typer.Option(
            None, "--anode", help="Lab tube anode (Kα doublet): refused (use refine --anode)."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Sphere diameters and Scherrer sizes from pseudo-Voigt peak fits, mean, Williamson–Hall.

        The size model is the refinement's (spheres of diameter D); without
        --resolution or --inst-fwhm the sizes are lower bounds.

        Example: xrdpdf size cycle03.xye --peaks 2.59,2.99,4.23 --inst-fwhm 0.02 --json
        """
        from xrdpdf._core.errors import InputError
        from xrdpdf.io import read_pattern
        from xrdpdf.physics.resolution import load_resolution
        from xrdpdf.stages.size import scherrer

        if cuka or anode is not None:
            raise InputError(
                "size fits one pseudo-Voigt per peak and would take a Kα1/Kα2 doublet for "
                "one broadened peak; use 'xrdpdf refine --cuka' (or --anode), which models "
                "the doublet"
            )
        if resolution is not None and inst_fwhm is not None:
            raise InputError("give either --resolution or --inst-fwhm, not both")
        pat = read_pattern(pattern, xtype=parse_xtype(xtype), wavelength_A=wavelength)
        res_model = load_resolution(resolution) if resolution is not None else None
        res = scherrer(
            pat,
            peaks=_parse_peaks(peaks),
            k_scherrer=k,
            resolution=res_model,
            inst_fwhm_invA=inst_fwhm,
        )
        from xrdpdf.cli._commands._common import info

        if res.size_is_lower_bound:
            info(
                "xrdpdf: warning: no --resolution or --inst-fwhm: all broadening is "
                "attributed to the crystallites; the sizes are lower bounds"
            )
        for qf in res.failed_peaks:
            info(f"xrdpdf: warning: the fit of the peak at Q = {qf:.4f} Å⁻¹ failed; not used")
        if json_out:
            d = res.to_dict()
            d["pattern"] = str(pattern)
            emit_json(d)
            return
        for p in res.peaks:
            s = "—" if p.size_A is None else f"{p.size_A:.1f} ± {p.size_esd_A or 0:.1f} Å"
            print(f"Q = {p.q_invA:.4f} Å⁻¹  FWHM {p.fwhm_obs_invA:.4f}  η {p.eta:.2f}  L {s}")
        print(f"mean size {res.size_A:.1f} ± {res.size_esd_A:.1f} Å ({res.size_definition})")
        print(f"sphere diameter D {res.diameter_A:.1f} ± {res.diameter_esd_A:.1f} Å")
        if res.wh_size_A is not None:
            print(
                f"Williamson–Hall: L {res.wh_size_A:.1f} ± {res.wh_size_esd_A:.1f} Å, "
                f"strain {res.wh_strain:.2e} ± {res.wh_strain_esd:.1e}"
            )
