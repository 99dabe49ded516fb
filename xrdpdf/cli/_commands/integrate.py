"""``xrdpdf integrate``: detector images → I(Q) (or I(2θ)) files, one per image or frame."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

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
    info,
    progress,
    show_progress,
)

FORMATS = {
    "xye": ".xye",
    "xy": ".xy",
    "chi": ".chi",
    "h5": ".h5",
    "nxazint1d": ".nxs",
    "h5stack": ".h5",
}
#: The one output file of ``--format h5stack`` in OUTDIR.
STACK_NAME = "patterns.h5"


def _explicit(ctx: typer.Context, names: dict[str, str]) -> frozenset[str]:
    """Settings the user gave on the command line (they win over a WorkerConfig's)."""
    given = set()
    for param, setting in names.items():
        # by name: typer may vendor its own click, whose ParameterSource is another enum
        source = getattr(ctx.get_parameter_source(param), "name", "DEFAULT")
        if source not in ("DEFAULT", "DEFAULT_MAP"):
            given.add(setting)
    return frozenset(given)


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
    explicit: frozenset[str] | None = None,
) -> dict:
    """Integrate ``images`` into ``outdir``; returns ``{"written": [...], "failed": [...]}``.

    ``poni`` may be a pyFAI integration config (WorkerConfig JSON): its
    settings are used except those named in ``explicit`` (the flags the user
    gave).  The WorkerConfig of the run is written to ``outdir/integration.json``
    so that pyFAI can redo the reduction.

    Setup errors (geometry, mask, dark, flat, settings) raise
    :class:`~xrdpdf._core.errors.InputError`; a bad image is recorded in
    ``failed`` (and passed to ``report``) while the others go on.
    """
    from xrdpdf.io import check_folder
    from xrdpdf.stages.integrate import integrate_frames

    suffix = _output_suffix(images, fmt)
    given = {
        "npt": npt,
        "unit": unit,
        "polarization_factor": polarization,
        "sigma_clip": sigma_clip,
        "method": method,
    }
    integrator = _integrator(
        poni, images[0], given, mask=mask, darks=darks, flat=flat, explicit=explicit
    )
    settings = integrator.settings
    outdir = check_folder(outdir)
    outputs = _Outputs(integrator, outdir, suffix, fmt, overwrite)
    frames = outputs.frames(images, sum_frames)
    if fmt == "nxazint1d":
        results = _nxazint_results(integrator, frames)
    else:
        results = integrate_frames(integrator, frames)
    results = progress(results, None, "integrating", show)
    written, failed = _write_all(results, outputs, report)
    config_path = None
    if written:
        config_path = _write_worker_config(integrator, outdir / "integration.json", overwrite)
    return {
        "written": written,
        "failed": failed,
        "pyfai_config": config_path,
        "unit": settings.unit,
        "npt": settings.npt,
        "method": settings.method,
        "wavelength_A": integrator.wavelength_A,
        "poni": str(poni),
    }


def _output_suffix(images: list[Path], fmt: str) -> str:
    """The output files' suffix for ``fmt``; refuse no image, or two images whose outputs clash."""
    from xrdpdf._core.errors import InputError
    from xrdpdf.io import images as img

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
    return suffix


def _integrator(
    poni: Path,
    first: Path,
    given: dict[str, Any],
    *,
    mask: Path | None,
    darks: list[Path] | None,
    flat: Path | None,
    explicit: frozenset[str] | None,
):
    """The run's integrator, built for the ``first`` image.

    ``given`` holds the :class:`~xrdpdf.stages.integrate.IntegrationSettings`
    keywords of the command line.  With a PONI they are the settings; with a
    pyFAI WorkerConfig its own settings are used, overridden by ``method`` and
    by the ``explicit`` ones.
    """
    from xrdpdf.io import is_worker_config
    from xrdpdf.stages.integrate import IntegrationSettings
    from xrdpdf.workflows.reduce import Reducer

    settings = IntegrationSettings(**given)
    overrides = None
    if is_worker_config(poni):
        given = {**given, "unit": settings.unit}
        overrides = {k: v for k, v in given.items() if k in (explicit or ()) or k == "method"}
        settings = None
    reducer = Reducer(poni, settings, mask=mask, darks=darks, flat=flat, overrides=overrides)
    return reducer.integrator(first)


class _Outputs:
    """Where each frame of a run is written, in the run's ``fmt``.

    An existing output is refused per frame (as a failed result) unless
    ``overwrite``; ``h5stack`` writes every frame into one :class:`_Stack`.
    """

    def __init__(self, integrator, outdir: Path, suffix: str, fmt: str, overwrite: bool) -> None:
        self._integrator = integrator
        self._outdir = outdir
        self._suffix = suffix
        self._fmt = fmt
        self._overwrite = overwrite
        self.stack = (
            _Stack(outdir / STACK_NAME, integrator, overwrite) if fmt == "h5stack" else None
        )

    def target(self, item) -> Path:
        """The file that ``item`` (a frame or its result) goes to."""
        from xrdpdf.io import images as img

        if self.stack:
            return self.stack.path
        return self._outdir / f"{img.frame_stem(item)}{self._suffix}"

    def frames(self, images: list[Path], sum_frames: bool) -> Iterator:
        """The frames of ``images``; one whose output exists comes as a BadInput."""
        from xrdpdf.io import images as img

        for item in img.iter_many(images, sum_frames=sum_frames, keep_dtype=True):
            exists = self.stack is None and not self._overwrite and isinstance(item, img.Frame)
            if exists and self.target(item).exists():
                yield img.BadInput(
                    item.source, f"{self.target(item)}: output exists; use --overwrite", item.index
                )
            else:
                yield item

    def write(self, res) -> None:
        """Write one successful result."""
        from xrdpdf.io import images as img
        from xrdpdf.io import write_nxazint1d
        from xrdpdf.stages.integrate import worker_config
        from xrdpdf.workflows.reduce import Reduced, write_reduced

        path = self.target(res)
        if self.stack is not None:
            self.stack.append(res)
        elif self._fmt == "nxazint1d":
            config = worker_config(self._integrator)
            write_nxazint1d(res.pyfai_result, path, overwrite=self._overwrite, config=config)
        else:
            reduced = Reduced(img.frame_stem(res), res.pattern)
            write_reduced(reduced, self._outdir, suffix=self._suffix, overwrite=self._overwrite)

    def finish(self, keep: bool) -> None:
        """Close the stack file (``keep``) or remove it; nothing for one file per frame."""
        if self.stack is not None:
            self.stack.finish(keep=keep)


def _write_all(
    results: Iterable, outputs: _Outputs, report: Callable[[str], None] | None
) -> tuple[list[dict], list[dict]]:
    """Write the ``results``; the ``written`` and ``failed`` entries of the summary.

    Each failure (of the integration or the write) is passed to ``report``.  The
    stack file of ``h5stack`` is kept only if a pattern was written, and is
    removed if the run stops with an exception.
    """
    written: list[dict] = []
    failed: list[dict] = []
    try:
        for res, error in _written_behind(results, outputs.write):
            entry = {"source": str(res.source), "frame": res.index}
            if res.ok and error is None:
                entry.update(path=str(outputs.target(res)), npoints=len(res.pattern))
                written.append(entry)
                continue
            entry["error"] = res.error if not res.ok else error
            failed.append(entry)
            if report is not None:
                report(entry["error"])
    except BaseException:
        outputs.finish(keep=False)
        raise
    outputs.finish(keep=bool(written))
    return written, failed


class _Stack:
    """``--format h5stack``: every pattern of the run as a row of one HDF5 file.

    The output is checked before any frame is integrated; the file is opened on the
    first pattern (on the fast engine's full radial axis, else the first pattern's)
    and renamed into place by :meth:`finish` only if a pattern was written.
    """

    def __init__(self, path: Path, integrator, overwrite: bool) -> None:
        from xrdpdf.io import check_output

        self.path = check_output(path, overwrite)
        self._integrator = integrator
        self._overwrite = overwrite
        self._writer = None

    def append(self, res) -> None:
        from xrdpdf.io import PatternStackWriter

        if self._writer is None:
            integ = self._integrator
            axis = integ.radial_axis()
            self._writer = PatternStackWriter(
                self.path,
                res.pattern.x if axis is None else axis,
                res.pattern.unit,
                wavelength_A=integ.wavelength_A,
                overwrite=self._overwrite,
                metadata=integ.metadata(),
            )
        self._writer.append(res.pattern, str(res.source), res.index)

    def finish(self, keep: bool) -> None:
        if self._writer is not None:
            if keep:
                self._writer.close()
            else:
                self._writer.abort()


def _written_behind(results: Iterable, write: Callable) -> Iterator[tuple[Any, str | None]]:
    """``(result, error)`` per result, each written in a thread while the next is integrated.

    The integration kernel and the file write release the GIL, so writing frame N
    overlaps the reading and integration of frame N+1.  ``error`` is the message of
    the :class:`~xrdpdf._core.errors.InputError` the write raised, or None; results that
    failed before (``not result.ok``) are not written.  Order is kept.
    """
    from concurrent.futures import ThreadPoolExecutor

    from xrdpdf._core.errors import InputError

    def outcome(future) -> str | None:
        if future is None:
            return None
        try:
            future.result()
        except InputError as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xrdpdf-write") as pool:
        pending = None
        for res in results:
            future = pool.submit(write, res) if res.ok else None
            if pending is not None:
                yield pending[0], outcome(pending[1])
            pending = (res, future)
        if pending is not None:
            yield pending[0], outcome(pending[1])


def _nxazint_results(integrator, frames) -> Iterator:
    """FrameResults whose ``pyfai_result`` is pyFAI's own result (accumulators for NXazint1d)."""
    from types import SimpleNamespace

    from xrdpdf._core.errors import InputError
    from xrdpdf.io import images as img

    for item in frames:
        if isinstance(item, img.BadInput):
            yield SimpleNamespace(
                ok=False, source=item.source, index=item.index, error=item.message
            )
            continue
        try:
            result = integrator.integrate_result(item)
        except InputError as exc:
            yield SimpleNamespace(ok=False, source=item.source, index=item.index, error=str(exc))
            continue
        yield SimpleNamespace(
            ok=True,
            source=item.source,
            index=item.index,
            pyfai_result=result,
            pattern=result.radial,  # len() of the written bins for the summary
        )


def _write_worker_config(integrator, path: Path, overwrite: bool) -> str | None:
    """Write the run's pyFAI WorkerConfig; keep a different existing one unless overwrite."""
    import json

    from xrdpdf.io import write_json
    from xrdpdf.stages.integrate import worker_config

    cfg = worker_config(integrator)
    if path.exists() and not overwrite:
        try:
            same = json.loads(path.read_text(encoding="utf-8")) == cfg
        except (OSError, ValueError):
            same = False
        if not same:
            info(f"xrdpdf: warning: {path} exists with other settings; kept (use --overwrite)")
            return None
        return str(path)
    write_json(cfg, path, overwrite=True)
    return str(path)


def register(app: typer.Typer) -> None:
    """Add ``integrate`` to the CLI."""

    @app.command("integrate")
    @handle_errors
    def integrate(
        ctx: typer.Context,
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
            str,
            typer.Option(
                "--format",
                help="Output format: xye, xy, chi, h5 (NXdata) or nxazint1d (.nxs, pyFAI's "
                "NXazint1d with its accumulators, pyFAI engine), one file per frame; h5stack: "
                f"all frames as rows of one OUTDIR/{STACK_NAME} (long runs).",
            ),
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

        --poni also takes a pyFAI integration config (WorkerConfig JSON from
        pyFAI-integrate or Dioptas): geometry, mask, dark, flat, polarization,
        unit and npt come from it, flags given here win.  OUTDIR/integration.json
        is the run's WorkerConfig, so pyFAI can redo the reduction.

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
            explicit=_explicit(
                ctx,
                {
                    "npt": "npt",
                    "unit": "unit",
                    "polarization": "polarization_factor",
                    "sigma_clip": "sigma_clip",
                },
            ),
        )
        if json_mode:
            emit_json({"command": "integrate", **result})
        else:
            for entry in result["written"]:
                info(f"wrote {entry['path']}")
        if not result["written"]:
            raise typer.Exit(2)
