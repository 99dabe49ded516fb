"""``xrdpdf integrate``: detector images → I(Q) (or I(2θ)) files, one per image or frame."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from ._common import (
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
    info,
    progress,
    show_progress,
)

FORMATS = {"xye": ".xye", "xy": ".xy", "chi": ".chi", "h5": ".h5"}


def _polarization(text: str) -> float | None:
    if text.strip().lower() in ("none", "off", "no"):
        return None
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(
            f"--polarization must be a number in [-1, 1] or 'none', got {text!r}"
        ) from None


def run_integrate(
    images: list[Path],
    *,
    poni: Path,
    outdir: Path,
    mask: Path | None = None,
    darks: list[Path] | None = None,
    flat: Path | None = None,
    npt: int = 3000,
    unit: str = "q",
    polarization: float | None = 0.99,
    sigma_clip: bool = False,
    sum_frames: bool = False,
    fmt: str = "xye",
    method: str | None = None,
    overwrite: bool = False,
    show: bool = False,
    report=None,
) -> dict:
    """Integrate ``images`` into ``outdir``; returns ``{"written": [...], "failed": [...]}``.

    Setup errors (geometry, mask, dark, flat, settings) raise
    :class:`~xrdpdf.errors.InputError`; a bad image is recorded in
    ``failed`` (and passed to ``report``) while the others go on.
    """
    from .. import images as img
    from ..errors import InputError
    from ..integrate import IntegrationSettings, integrate_frames, integrator_from_files
    from ..io import write_pattern

    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    suffix = FORMATS[fmt]
    if not images:
        raise InputError("no image given")
    stems: dict[str, Path] = {}
    for p in images:
        file, _ = img.split_dataset(p)
        if file.stem in stems and stems[file.stem] != file:
            raise InputError(
                f"{file}: same output name as {stems[file.stem]} ({file.stem}{suffix}); "
                "integrate them into different output folders"
            )
        stems[file.stem] = file
    settings = IntegrationSettings(
        npt=npt,
        unit=unit,
        polarization_factor=polarization,
        sigma_clip=sigma_clip,
        method=method,
    )
    integrator = integrator_from_files(
        poni, settings, mask=mask, darks=darks, flat=flat, first_image=images[0]
    )
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: output path exists and is not a folder")

    def target(item) -> Path:
        return outdir / f"{img.frame_stem(item)}{suffix}"

    def frames() -> Iterator:
        for item in img.iter_many(images, sum_frames=sum_frames):
            if isinstance(item, img.Frame) and not overwrite and target(item).exists():
                yield img.BadInput(
                    item.source, f"{target(item)}: output exists; use --overwrite", item.index
                )
            else:
                yield item

    written: list[dict] = []
    failed: list[dict] = []
    for res in progress(integrate_frames(integrator, frames()), None, "integrating", show):
        entry = {"source": str(res.source), "frame": res.index}
        if res.ok:
            path = target(res)
            try:
                write_pattern(res.pattern, path, overwrite=overwrite)
            except InputError as exc:
                entry["error"] = str(exc)
            else:
                entry.update(path=str(path), npoints=len(res.pattern))
                written.append(entry)
                continue
        else:
            entry["error"] = res.error
        failed.append(entry)
        if report is not None:
            report(entry["error"])
    return {
        "written": written,
        "failed": failed,
        "unit": settings.unit,
        "npt": settings.npt,
        "method": settings.method,
        "wavelength_A": integrator.wavelength_A,
        "poni": str(poni),
    }


def register(app: typer.Typer) -> None:
    """Add ``integrate`` to the CLI."""

    @app.command("integrate")
    @handle_errors
    def integrate(
        images: Annotated[
            list[Path],
            typer.Argument(help="Image files: TIFF, EDF, CBF, HDF5/NeXus (file.h5::/dataset)."),
        ],
        poni: PoniOption,
        outdir: OutdirOption,
        mask: MaskOption = None,
        dark: DarkOption = None,
        flat: FlatOption = None,
        npt: NptOption = 3000,
        unit: UnitOption = "q",
        polarization: PolarizationOption = "0.99",
        sigma_clip: Annotated[
            bool, typer.Option("--sigma-clip", help="Reject outliers (hot pixels, spots) per ring.")
        ] = False,
        sum_frames: Annotated[
            bool, typer.Option("--sum", help="Sum all frames of each file.")
        ] = False,
        fmt: Annotated[
            str, typer.Option("--format", help="Output format: xye, xy, chi or h5.")
        ] = "xye",
        method: MethodOption = None,
        json_mode: Annotated[
            bool, typer.Option("--json", help="Print a JSON summary to stdout.")
        ] = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace existing outputs.")
        ] = False,
    ) -> None:
        """Integrate detector images to I(Q) with σ, one file per image (STEM.xye).

        Frames of a stack give STEM_fNNNN.xye unless --sum.  Pixels that are NaN
        or negative, the detector's own mask and --mask are left out; intensities
        are corrected for solid angle and polarization; σ is Poisson.  A bad
        image is reported and the others go on (exit 2 only if all fail).

        Example: xrdpdf integrate frame_*.tif --poni calib/11idc_default.poni -o iq/
        """
        if unit not in ("q", "2th"):
            raise typer.BadParameter(f"--unit must be q or 2th, got {unit!r}")
        if method is not None and method not in ("fast", "pyfai"):
            raise typer.BadParameter(f"--method must be fast or pyfai, got {method!r}")

        def report(message: str) -> None:
            print(f"xrdpdf: error: {' '.join(str(message).split())}", file=sys.stderr)

        result = run_integrate(
            images,
            poni=poni,
            outdir=outdir,
            mask=mask,
            darks=dark or None,
            flat=flat,
            npt=npt,
            unit=unit,
            polarization=_polarization(polarization),
            sigma_clip=sigma_clip,
            sum_frames=sum_frames,
            fmt=fmt,
            method=method,
            overwrite=overwrite,
            show=show_progress(json_mode),
            report=report,
        )
        if json_mode:
            emit_json({"command": "integrate", **result})
        else:
            for entry in result["written"]:
                info(f"wrote {entry['path']}")
        if not result["written"]:
            raise typer.Exit(2)
