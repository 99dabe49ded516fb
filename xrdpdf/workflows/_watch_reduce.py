"""The per-file reduction of :mod:`xrdpdf.workflows.watch`: frames → I(Q) [→ G(r)] rows."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xrdpdf._core.errors import InputError
from xrdpdf.io import images
from xrdpdf.stages import integrate
from xrdpdf.workflows import reduce
from xrdpdf.workflows._watch_state import SUMMARY_COLUMNS, _never_replace, _now, _one_line

__all__ = [
    "ImageReducer",
]


def _row(name: str, path: Path, frame: int | None, **kw: Any) -> dict[str, Any]:
    """A summary row (keys :data:`SUMMARY_COLUMNS`), stamped now."""
    row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS, "")
    row.update(name=name, source=str(path), frame="" if frame is None else frame)
    row["processed_at"] = _now()
    for k, v in kw.items():
        row[k] = "" if v is None else (_one_line(v) if k == "error" else v)
    return row


class ImageReducer:
    """Reduce one image file to ``OUTDIR/STEM.xye`` (and ``STEM.gr``), as ``xrdpdf integrate``.

    The :class:`~xrdpdf.stages.integrate.Integrator` is built from the same inputs and
    with the same provenance as the ``integrate`` command, once (at
    construction, or from the first image when the PONI's detector has no
    shape), and reused for every image.

    Parameters
    ----------
    poni : path-like
        pyFAI geometry with wavelength.
    outdir : path-like
        Output folder (created if missing).
    mask : path-like, optional
        Mask image, non-zero = masked.
    darks : sequence of path-like, optional
        Dark image(s), averaged.
    flat : path-like, optional
        Flat field.
    settings : IntegrationSettings, optional
        Default: those of a pyFAI integration config (WorkerConfig JSON) given
        as ``poni``, else the ``integrate`` command's defaults.
    pdf_config : xrdpdf.stages.pdf.PdfConfig, optional
        When given, each pattern is also transformed to G(r) and written as
        ``STEM.gr`` (the optional PDF step).
    fmt : str
        Output format, as ``xrdpdf integrate --format``: ``xye`` (default),
        ``xy``, ``chi``, ``h5`` or ``nxazint1d`` (``STEM.nxs``, pyFAI's
        NXazint1d with its accumulators; one more pyFAI integration per frame).
    overrides : dict, optional
        With a WorkerConfig ``poni`` and no ``settings``: the settings given
        explicitly, which win over the config's.

    Raises
    ------
    InputError
        Bad geometry, mask, dark, flat or settings, or an output folder that
        is a file.
    """

    def __init__(
        self,
        poni: str | os.PathLike,
        outdir: str | os.PathLike,
        *,
        mask: str | os.PathLike | None = None,
        darks: Sequence[str | os.PathLike] | None = None,
        flat: str | os.PathLike | None = None,
        settings: integrate.IntegrationSettings | None = None,
        pdf_config: Any | None = None,
        fmt: str = "xye",
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.poni = Path(poni)
        self.outdir = Path(outdir)
        self.pdf_config = pdf_config
        if fmt not in reduce.FRAME_FORMATS:
            known = ", ".join(reduce.FRAME_FORMATS)
            raise InputError(f"format must be one of {known}, got {fmt!r}")
        self.suffix = reduce.FRAME_FORMATS[fmt]
        if self.outdir.exists() and not self.outdir.is_dir():
            raise InputError(f"{self.outdir}: output path exists and is not a folder")
        self._reducer = reduce.Reducer(
            self.poni,
            settings,
            mask=mask,
            darks=darks,
            flat=flat,
            pdf_config=pdf_config,
            overrides=overrides,
        )
        self.settings = settings if settings is not None else integrate.IntegrationSettings()
        if settings is None and self._reducer._integrator is not None:
            self.settings = self._reducer._integrator.settings  # a WorkerConfig's
        self.outdir.mkdir(parents=True, exist_ok=True)

    def integrator(self, first_image: str | os.PathLike | None = None) -> integrate.Integrator:
        """The integrator; built from ``first_image``'s shape if the detector has none."""
        return self._reducer.integrator(first_image)

    @property
    def wavelength_A(self) -> float:
        """Wavelength of the geometry, Å."""
        return self._reducer.wavelength_A

    # -- names
    def output_names(self, path: str | os.PathLike, nframes: int) -> list[str]:
        """Output stems of an image with ``nframes`` frames (``STEM`` or ``STEM_fNNNN``)."""
        path = Path(path)
        if nframes <= 1:
            return [images.frame_stem(images.BadInput(path, ""))]
        return [images.frame_stem(images.BadInput(path, "", i)) for i in range(nframes)]

    def outputs_for(self, name: str) -> list[Path]:
        """Every file written for one pattern ``name``."""
        out = [self.outdir / f"{name}{self.suffix}"]
        if self.pdf_config is not None:
            out.append(self.outdir / f"{name}.gr")
        return out

    # -- reduction
    def reduce(
        self,
        path: str | os.PathLike,
        *,
        refuse: Callable[[Path], str | None] | None = None,
        stopped: Callable[[], bool] = lambda: False,
        written: list[Path] | None = None,
    ) -> list[dict[str, Any]] | None:
        """Reduce every frame of one image file; a bad frame gives an error row.

        Parameters
        ----------
        path : path-like
            The image.
        refuse : callable, optional
            ``refuse(output) -> str or None``, asked for an output that exists
            already: the reason not to replace it (that pattern then gets an
            error row), or ``None`` to replace it.  Default: existing outputs
            are never replaced.
        stopped : callable
            Checked between frames; when it returns True the reduction stops
            and ``None`` is returned.
        written : list, optional
            Every output written is appended to it (for clean-up on stop).

        Returns
        -------
        list of dict or None
            One row (keys :data:`SUMMARY_COLUMNS`) per frame, or per file
            when it cannot be read; ``None`` if stopped.
        """
        path = Path(path)
        written = [] if written is None else written
        if refuse is None:
            refuse = _never_replace
        rows: list[dict[str, Any]] = []
        try:
            integ = self.integrator(path)
        except InputError as exc:
            return [_row(path.stem, path, None, error=str(exc))]
        frames = images.iter_many([path], keep_dtype=True)
        nxs = self.suffix == reduce.NXAZINT_SUFFIX
        results = integrate.integrate_frames(integ, frames, accumulators=nxs)
        try:
            for res in results:
                if stopped():
                    return None
                name = images.frame_stem(res)
                if not res.ok:
                    rows.append(_row(name, path, res.index, error=res.error))
                    continue
                rows.append(self._write(name, path, res, refuse, written))
        finally:
            results.close()
        return rows

    def _write(
        self,
        name: str,
        path: Path,
        res: integrate.FrameResult,
        refuse: Callable[[Path], str | None],
        written: list[Path],
    ) -> dict[str, Any]:
        targets = self.outputs_for(name)
        for t in targets:
            reason = refuse(t) if t.exists() else None
            if reason:
                return _row(name, path, res.index, error=f"{t}: {reason}")
        xye = targets[0]
        try:
            reduced = self._reducer.finish(res)
        except InputError as exc:
            reduced, error = self._reducer.finish(res, pdf=False), f"PDF: {exc}"
        else:
            error = None
        try:
            files = reduce.write_reduced(reduced, self.outdir, suffix=self.suffix, overwrite=True)
        except InputError as exc:
            return _row(name, path, res.index, error=str(exc))
        written.extend(files)
        if error is not None:
            return _row(name, path, res.index, output=str(xye), error=error)
        if self.pdf_config is None:
            return _row(name, path, res.index, output=str(xye))
        return _row(name, path, res.index, output=str(xye), gr=str(targets[1]))
