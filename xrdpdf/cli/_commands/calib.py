"""``xrdpdf calib``: headless detector calibration from a calibrant image."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from xrdpdf.cli._commands._common import emit_json, handle_errors, info

if TYPE_CHECKING:
    import numpy as np


def _parse_shape(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        a, b = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise typer.BadParameter(
            f"--shape must be ROWSxCOLS, e.g. 2048x2048, got {text!r}"
        ) from None
    if a < 8 or b < 8:
        raise typer.BadParameter(f"--shape must be at least 8x8, got {text!r}")
    return a, b


def output_paths(poni: Path) -> dict[str, Path]:
    """The files written beside ``OUT.poni``."""
    stem = poni.with_suffix("")
    return {
        "poni": poni,
        "report": Path(f"{stem}.calib.json"),
        "mask": Path(f"{stem}.mask.edf"),
        "resolution": Path(f"{stem}.resolution.json"),
        "figure": Path(f"{stem}.png"),
    }


def register(app: typer.Typer) -> None:
    """Add the ``calib`` command to ``app``."""

    @app.command("calib")
    @handle_errors
    def calib_cmd(
        image: Path = typer.Argument(..., help="Calibrant image (TIFF, EDF, CBF, HDF5, npy...)."),
        calibrant: str = typer.Option(..., "--calibrant", help="CeO2, LaB6, Ni, Si, ..."),
        wavelength: float = typer.Option(..., "--wavelength", help="Wavelength in Å."),
        output: Path = typer.Option(..., "-o", "--output", help="PONI file to write."),
        pixel_size: float | None = typer.Option(
            None, "--pixel-size", help="Pixel size in m (default 200e-6)."
        ),
        shape: str | None = typer.Option(None, "--shape", help="Detector ROWSxCOLS."),
        detector: str | None = typer.Option(
            None, "--detector", help="pyFAI detector name (instead of --pixel-size/--shape)."
        ),
        distance_guess: float | None = typer.Option(
            None, "--distance-guess", help="Sample-detector distance guess in m."
        ),
        center_guess: tuple[float, float] | None = typer.Option(
            None, "--center-guess", help="Beam centre guess X Y (column, row) in pixels."
        ),
        mask: Path | None = typer.Option(
            None, "--mask", help="User mask image (non-zero = masked), added to the auto mask."
        ),
        flip_ud: bool = typer.Option(
            False, "--flip-ud", help="Flip the image (and mask) upside down first."
        ),
        refine_wavelength: bool = typer.Option(
            False, "--refine-wavelength", help="Refine the wavelength too (fixed by default)."
        ),
        refine_rot3: bool = typer.Option(False, "--refine-rot3", help="Refine rot3 too."),
        max_rings: int = typer.Option(24, "--max-rings", help="Use at most this many rings."),
        no_resolution: bool = typer.Option(
            False, "--no-resolution", help="Do not fit the instrument resolution."
        ),
        no_plot: bool = typer.Option(False, "--no-plot", help="Do not write the PNG."),
        json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    ) -> None:
        """Calibrate the detector geometry from a calibrant image, without a GUI.

        Writes OUT.poni, OUT.calib.json (report), OUT.mask.edf (automatic + user mask),
        OUT.resolution.json (instrumental FWHM(Q), η(Q)) and OUT.png.  Refuses (exit 2,
        nothing written) when the rings do not fit the calibrant and wavelength.

        Example: xrdpdf calib CeO2_0001.tif --calibrant CeO2 --wavelength 0.1173
        --distance-guess 0.35 -o calib/11idc.poni
        """
        from xrdpdf.stages.calibrate import calibrate, make_detector

        paths = _checked_outputs(
            output,
            detector=detector,
            pixel_size=pixel_size,
            shape=shape,
            no_plot=no_plot,
            no_resolution=no_resolution,
            overwrite=overwrite,
        )
        shp = _parse_shape(shape)
        img, user_mask = _read_image(image, mask, flip_ud=flip_ud, shape=shp)
        det = make_detector(name=detector, pixel_size_m=pixel_size, shape=shp or img.shape)
        say = None if json_out else (lambda m: info(f"xrdpdf calib: {m}"))
        result = calibrate(
            img,
            calibrant=calibrant,
            wavelength_A=wavelength,
            detector=det,
            mask=user_mask,
            distance_guess_m=distance_guess,
            center_guess_px=tuple(center_guess) if center_guess else None,
            refine_wavelength=refine_wavelength,
            refine_rot3=refine_rot3,
            max_rings=max_rings,
            progress=say,
        )
        resolution = None if no_resolution else _resolution(img, result)
        fig = None
        if not no_plot:
            from xrdpdf.plot.calibration import calibration_figure

            fig = calibration_figure(img, result)
        report = _report(result, image, flip_ud, paths, resolution, with_figure=fig is not None)
        _write_outputs(result, report, resolution, fig, paths, overwrite=overwrite)
        if json_out:
            emit_json(report)
            return
        info(_summary(result))
        print(paths["poni"])


def _checked_outputs(
    output: Path,
    *,
    detector: str | None,
    pixel_size: float | None,
    shape: str | None,
    no_plot: bool,
    no_resolution: bool,
    overwrite: bool,
) -> dict[str, Path]:
    """The :func:`output_paths` of ``output``, refused before any work if one exists.

    Also refuses an ``output`` that is not a ``.poni`` and a detector given
    both by name and by pixel size or shape.
    """
    from xrdpdf._core.errors import InputError
    from xrdpdf.io import check_output

    if output.suffix.lower() != ".poni":
        raise InputError(f"-o must name a .poni file, got {output}")
    if detector is not None and (pixel_size is not None or shape is not None):
        raise InputError("give either --detector or --pixel-size/--shape, not both")
    paths = output_paths(output)
    for key, p in paths.items():
        if key == "figure" and no_plot or key == "resolution" and no_resolution:
            continue
        check_output(p, overwrite)
    return paths


def _read_image(
    image: Path, mask: Path | None, *, flip_ud: bool, shape: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The calibrant image (frames summed) and the user mask (non-zero = masked, or None).

    Both are flipped upside down with ``flip_ud``; a mask or a ``shape`` that
    differs from the image is refused.
    """
    import numpy as np

    from xrdpdf._core.errors import InputError
    from xrdpdf.io.images import iter_frames

    img = next(iter_frames(image, sum_frames=True)).data
    user_mask = None
    if mask is not None:
        user_mask = next(iter_frames(mask, sum_frames=True)).data != 0
        if user_mask.shape != img.shape:
            raise InputError(f"mask {mask} has shape {user_mask.shape}, image has {img.shape}")
    if flip_ud:
        img = np.flipud(img)
        user_mask = None if user_mask is None else np.flipud(user_mask)
    if shape is not None and shape != img.shape:
        raise InputError(f"--shape {shape[0]}x{shape[1]} differs from the image {img.shape}")
    return img, user_mask


def _resolution(img: np.ndarray, result):
    """The instrument resolution fitted on the calibrant's rings, or None (with a warning)."""
    from xrdpdf._core.errors import CalibrationError
    from xrdpdf.stages.calibrate import instrument_resolution

    try:
        return instrument_resolution(img, result)
    except CalibrationError as exc:
        info(f"xrdpdf: warning: no resolution file: {exc}")
        return None


def _report(
    result, image: Path, flip_ud: bool, paths: dict[str, Path], resolution, *, with_figure: bool
) -> dict:
    """The calibration report (``OUT.calib.json``, and the ``--json`` output)."""
    report = result.to_dict()
    report.update(
        {
            "image": str(image),
            "flip_ud": flip_ud,
            "files": {
                k: str(v)
                for k, v in paths.items()
                if not (k == "figure" and not with_figure)
                and not (k == "resolution" and resolution is None)
            },
            "resolution": None if resolution is None else resolution.to_dict(),
        }
    )
    return report


def _write_outputs(
    result, report: dict, resolution, fig, paths: dict[str, Path], *, overwrite: bool
) -> None:
    """Write the PONI, mask, resolution, figure and report, each file atomically."""
    import fabio
    import numpy as np

    from xrdpdf._core.errors import InputError
    from xrdpdf.io import atomic_path, write_json, write_text

    write_text(result.poni_text, paths["poni"], overwrite=overwrite)
    with atomic_path(paths["mask"], overwrite=overwrite) as tmp:
        fabio.edfimage.EdfImage(data=result.mask.astype(np.int8)).write(str(tmp))
    if resolution is not None:
        write_json(resolution.to_dict(), paths["resolution"], overwrite=overwrite)
    if fig is not None:
        from xrdpdf.plot import save_figure

        if paths["figure"].exists() and not overwrite:
            raise InputError(f"{paths['figure']} exists; use --overwrite")
        save_figure(fig, paths["figure"])
    write_json(report, paths["report"], overwrite=overwrite)


def _summary(result) -> str:
    """One line: the fitted distance, beam centre, tilts and ring residual."""
    c = result.beam_center_px
    return (
        f"xrdpdf calib: D = {result.direct_distance_m * 1e3:.3f} mm, centre "
        f"({c[0]:.2f}, {c[1]:.2f}) px, rot1 {result.rot1_rad:.5f}, rot2 {result.rot2_rad:.5f} "
        f"rad, RMS {result.rms_2theta_deg:.5f}° on {result.n_rings} rings / "
        f"{result.n_points} points"
    )
