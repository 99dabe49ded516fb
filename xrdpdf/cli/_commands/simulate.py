"""``xrdpdf simulate pattern|image``: synthetic powder patterns and detector frames."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xrdpdf.cli._commands._common import (
    WavelengthOption,
    XtypeOption,
    emit_json,
    handle_errors,
    info,
    parse_xtype,
)


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` group (``pattern``, ``image``) to the CLI."""
    sim = typer.Typer(
        name="simulate",
        help=(
            "Simulate a powder pattern of a phase, or a detector image from a 1-D I(Q).\n\n"
            "Example: xrdpdf simulate pattern CeO2 -o ceo2.xye && "
            "xrdpdf simulate image ceo2.xye --poni calib/11idc_default.poni -o ceo2.tif"
        ),
        no_args_is_help=True,
    )
    app.add_typer(sim, name="simulate")

    @sim.command("pattern")
    @handle_errors
    def pattern(
        phase: Annotated[
            str, typer.Argument(help="Built-in phase (CeO2, anatase, NaTiO2, Ni) or a CIF file.")
        ],
        output: Annotated[Path, typer.Option("-o", "--output", help="Output file (.xye ...).")],
        qmin: Annotated[float, typer.Option("--qmin", help="Lowest Q (Å⁻¹).")] = 0.5,
        qmax: Annotated[float, typer.Option("--qmax", help="Highest Q (Å⁻¹).")] = 25.0,
        npt: Annotated[int, typer.Option("--npt", help="Number of Q points.")] = 5000,
        wavelength: Annotated[
            float, typer.Option("--wavelength", help="Wavelength (Å) stored with the pattern.")
        ] = 0.1173,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace an existing output.")
        ] = False,
    ) -> None:
        """Powder pattern I(Q) of a crystalline phase.

        Example: xrdpdf simulate pattern anatase -o anatase.xye --qmax 20
        """
        from xrdpdf.io import check_output, write_pattern
        from xrdpdf.simulate.images import simulate_pattern

        check_output(output, overwrite)
        pat = simulate_pattern(
            phase, qmin_invA=qmin, qmax_invA=qmax, npt=npt, wavelength_A=wavelength
        )
        pat = pat.with_metadata(phase=phase)
        path = write_pattern(pat, output, overwrite=overwrite)
        if json_mode:
            emit_json(
                {
                    "command": "simulate pattern",
                    "written": [str(path)],
                    "phase": phase,
                    "npoints": len(pat),
                    "unit": pat.unit,
                }
            )
        else:
            info(f"wrote {path}")

    @sim.command("image")
    @handle_errors
    def image(
        pattern_file: Annotated[Path, typer.Argument(help="1-D I(Q) file (.xye, .xy, .chi ...).")],
        poni: Annotated[Path, typer.Option("--poni", help="pyFAI geometry (PONI).")],
        output: Annotated[
            Path, typer.Option("-o", "--output", help="Image file: .tif, .edf, .cbf, .h5, .npy.")
        ],
        xtype: XtypeOption = None,
        scale: Annotated[float, typer.Option("--scale", help="Counts per unit intensity.")] = 100.0,
        polarization: Annotated[
            float, typer.Option("--polarization", help="Polarization factor in [-1, 1].")
        ] = 0.99,
        noise: Annotated[
            bool, typer.Option("--noise/--no-noise", help="Poisson counting noise.")
        ] = True,
        seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
        dark_counts: Annotated[
            float, typer.Option("--dark-counts", help="Dark level per pixel.")
        ] = 0.0,
        read_noise: Annotated[
            float, typer.Option("--read-noise", help="Gaussian read noise σ.")
        ] = 0.0,
        beamstop: Annotated[
            float, typer.Option("--beamstop", help="Beamstop radius in pixels (0: none).")
        ] = 0.0,
        arm_width: Annotated[
            float, typer.Option("--arm-width", help="Beamstop arm width (pixels).")
        ] = 12.0,
        arm_angle: Annotated[
            float, typer.Option("--arm-angle", help="Beamstop arm direction (degrees).")
        ] = 90.0,
        dead: Annotated[float, typer.Option("--dead", help="Fraction of dead pixels.")] = 0.0,
        hot: Annotated[float, typer.Option("--hot", help="Fraction of hot pixels.")] = 0.0,
        frames: Annotated[
            int, typer.Option("--frames", help="Number of frames (a stack if > 1).")
        ] = 1,
        mask_out: Annotated[
            Path | None,
            typer.Option("--mask-out", help="Also write the true bad-pixel mask here."),
        ] = None,
        wavelength: WavelengthOption = None,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace existing outputs.")
        ] = False,
    ) -> None:
        """Detector image(s) from a 1-D I(Q) for a pyFAI geometry.

        Uses pyFAI's pixel Q, polarization and solid angle; adds Poisson noise,
        a dark level, a beamstop with its arm, dead and hot pixels.

        Example: xrdpdf simulate image ceo2.xye --poni calib/11idc_default.poni -o ceo2.tif
        """
        import numpy as np

        from xrdpdf._core.errors import InputError
        from xrdpdf.io import check_outputs, images, read_pattern
        from xrdpdf.simulate.images import Beamstop, simulate_image
        from xrdpdf.stages.integrate import load_poni

        check_outputs([output, mask_out], overwrite)
        if frames < 1:
            raise InputError(f"--frames must be ≥ 1, got {frames}")
        pat = read_pattern(pattern_file, xtype=parse_xtype(xtype), wavelength_A=wavelength)
        ai = load_poni(poni)
        stop = Beamstop(beamstop, arm_width, arm_angle) if beamstop > 0 else None
        stack = []
        sim = None
        for i in range(frames):
            sim = simulate_image(
                pat,
                ai,
                scale=scale,
                polarization_factor=polarization,
                noise=noise,
                seed=seed + i,
                dark_counts=dark_counts,
                read_noise=read_noise,
                beamstop=stop,
                dead_fraction=dead,
                hot_fraction=hot,
            )
            stack.append(sim.data)
        data = stack[0] if frames == 1 else np.stack(stack)
        written = [str(images.write_image(data, output, overwrite=overwrite))]
        if mask_out is not None:
            written.append(
                str(
                    images.write_image(
                        sim.bad.astype(np.uint8), mask_out, overwrite=overwrite, dtype=np.uint8
                    )
                )
            )
        if json_mode:
            emit_json(
                {
                    "command": "simulate image",
                    "written": written,
                    "shape": list(data.shape),
                    "frames": frames,
                    "masked_pixels": int(sim.bad.sum()),
                }
            )
        else:
            for w in written:
                info(f"wrote {w}")
