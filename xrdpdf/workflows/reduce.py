"""Frames → I(Q) [→ G(r) → ξ]: the one reduction path of every command and workflow.

``xrdpdf integrate``, ``xrdpdf pdf``, ``xrdpdf watch``, ``xrdpdf series`` and
the notebook sessions reduce through a :class:`Reducer` and write through
:func:`write_reduced`, so that the same frames, dark, flat and mask give the
same numbers on every path.

The dark goes to pyFAI as pyFAI expects it: raw counts :math:`r` and dark
:math:`d` are passed separately, the corrected intensity is
:math:`(r - d)/(f\\,\\Omega\\,P)` and the Poisson variance is that of the raw
counts, :math:`v = r` (``integrate1d(..., dark=d, error_model="poisson")``).
For a sum of :math:`N` frames the dark is :math:`N d` (see
:meth:`xrdpdf.stages.integrate.Integrator.integrate`).  Subtracting the dark before
integrating instead would drop every pixel that read noise pushes below zero
as a detector gap and take σ from dark-subtracted counts: on a 512² frame
with a dark of 100 ± 3 counts, a true 2.0 counts/pixel reads 3.5.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xrdpdf import io
from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf.io import images
from xrdpdf.stages import integrate

__all__ = ["Reduced", "Reducer", "outputs_of", "pdf_step", "sum_images", "write_reduced"]


@dataclass(frozen=True, eq=False)
class Reduced:
    """One reduced pattern and, when asked for, its PDF and correlation length.

    Attributes
    ----------
    name : str
        Output stem (``STEM`` or ``STEM_fNNNN``).
    iq : Pattern
        The integrated pattern (I(Q) or I(2θ)) with Poisson σ.
    pdf : xrdpdf.stages.pdf.PdfResult or None
        S(Q), F(Q), G(r) of ``iq``.
    corrlen : xrdpdf.stages.corrlen.CorrLenResult or None
        ξ of the G(r).
    pyfai_result : pyFAI Integrate1dResult or None
        pyFAI's own result of the same frame with its per-bin accumulators,
        when asked for (what :func:`write_reduced` writes as NXazint1d).
    pyfai_config : dict or None
        With ``pyfai_result``: the run's pyFAI WorkerConfig.
    """

    name: str
    iq: Pattern
    pdf: Any = None
    corrlen: Any = None
    pyfai_result: Any = None
    pyfai_config: Any = None


def sum_images(paths: Sequence[str | os.PathLike]) -> images.Frame:
    """Sum every frame of every image into one :class:`~xrdpdf.io.images.Frame`.

    ``Frame.summed`` counts the frames added, so that the integrator subtracts
    that many darks.

    Raises
    ------
    InputError
        No image, an unreadable image, or images of different shapes.
    """
    if not paths:
        raise InputError("no image given")
    total: np.ndarray | None = None
    count = 0
    for p in paths:
        for frame in images.iter_frames(p, sum_frames=True):
            data = np.asarray(frame.data, dtype=np.float64)
            if total is not None and data.shape != total.shape:
                raise InputError(
                    f"{p}: shape {data.shape} differs from the first image's {total.shape}"
                )
            total = data if total is None else total + data
            count += frame.summed
    assert total is not None
    return images.Frame(total, Path(paths[0]), None, 1, summed=count)


def pdf_step(
    pattern: Pattern,
    config: Any,
    *,
    background: Pattern | None = None,
    corrlen_kwargs: dict[str, Any] | None = None,
) -> tuple[Any, Any]:
    """I(Q) → G(r) (:func:`~xrdpdf.stages.pdf.transform`) → ξ (:func:`~xrdpdf.correlation_length`).

    Parameters
    ----------
    pattern : Pattern
        I(Q) with σ.
    config : xrdpdf.stages.pdf.PdfConfig
    background : Pattern, optional
        Container background.
    corrlen_kwargs : dict, optional
        Settings of the correlation-length fit; ``None`` skips it.

    Returns
    -------
    (PdfResult, CorrLenResult or None)
    """
    from xrdpdf.stages import corrlen, pdf

    res = pdf.transform(pattern, config, background=background)
    cl = None if corrlen_kwargs is None else corrlen.correlation_length(res.gr, **corrlen_kwargs)
    return res, cl


class Reducer:
    """Geometry, corrections and settings of one detector, built once, reused per frame.

    Parameters
    ----------
    poni : path-like or AzimuthalIntegrator
        pyFAI geometry with wavelength.
    settings : IntegrationSettings, optional
        Default: those of a pyFAI integration config given as ``poni``, else the
        ``integrate`` command's defaults.
    mask : path-like, optional
        Mask image, non-zero = masked.
    darks : sequence of path-like, optional
        Dark image(s), averaged over all their frames; given to pyFAI per frame.
    flat : path-like, optional
        Flat field.
    pdf_config : xrdpdf.stages.pdf.PdfConfig, optional
        When given, every pattern is also transformed to G(r).
    corrlen_kwargs : dict, optional
        With ``pdf_config``: also fit ξ with these settings (``{}`` = defaults).
    background : Pattern, optional
        Container background of the PDF step.
    overrides : dict, optional
        Settings that replace those of a pyFAI integration config given as ``poni``
        (see :func:`xrdpdf.stages.integrate.integrator_from_files`).

    Raises
    ------
    InputError
        Bad geometry, mask, dark, flat or settings (at construction when the
        detector has a shape, else on the first image).
    """

    def __init__(
        self,
        poni: str | os.PathLike | Any,
        settings: integrate.IntegrationSettings | None = None,
        *,
        mask: str | os.PathLike | None = None,
        darks: Sequence[str | os.PathLike] | None = None,
        flat: str | os.PathLike | None = None,
        pdf_config: Any = None,
        corrlen_kwargs: dict[str, Any] | None = None,
        background: Pattern | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.poni = poni
        self.settings = settings
        self.pdf_config = pdf_config
        self.corrlen_kwargs = corrlen_kwargs
        self.background = background
        self._files: dict[str, Any] = {
            "mask": mask,
            "darks": list(darks) if darks else None,
            "flat": flat,
            "overrides": overrides,
        }
        self._integrator: integrate.Integrator | None = None
        self._ai = poni
        if isinstance(poni, str | os.PathLike):
            # a cached geometry snapshot gives the integrator without pyFAI's import
            self._integrator = integrate.cached_integrator(poni, settings, **self._files)
            if self._integrator is not None:
                self._ai = self._integrator.ai
                return
            self._ai = integrate.load_poni(poni)
        if self._ai.detector.shape is not None or mask or darks or flat:
            self._integrator = self._build(None)  # reads mask/dark/flat now: errors at start

    def _build(self, first_image: str | os.PathLike | None) -> integrate.Integrator:
        return integrate.integrator_from_files(
            self.poni if isinstance(self.poni, str | os.PathLike) else self._ai,
            self.settings,
            first_image=first_image,
            **self._files,
        )

    def integrator(self, first_image: str | os.PathLike | None = None) -> integrate.Integrator:
        """The integrator; built from ``first_image``'s shape if the detector has none."""
        if self._integrator is None:
            if first_image is None:
                raise InputError(f"{self.poni}: the detector has no shape; give an image")
            self._integrator = self._build(first_image)
        return self._integrator

    @property
    def wavelength_A(self) -> float:
        """Wavelength of the geometry, Å."""
        return integrate.poni_wavelength_A(self._ai)

    def _finish(
        self, name: str, pattern: Pattern, pyfai_result: Any = None, pdf: bool = True
    ) -> Reduced:
        config = None
        if pyfai_result is not None:
            config = integrate.worker_config(self.integrator())
        if self.pdf_config is None or not pdf:
            return Reduced(name, pattern, pyfai_result=pyfai_result, pyfai_config=config)
        res, cl = pdf_step(
            pattern, self.pdf_config, background=self.background, corrlen_kwargs=self.corrlen_kwargs
        )
        return Reduced(name, pattern, res, cl, pyfai_result=pyfai_result, pyfai_config=config)

    def reduce_summed(
        self,
        paths: Sequence[str | os.PathLike],
        name: str | None = None,
        *,
        accumulators: bool = False,
    ) -> Reduced:
        """Sum every frame of ``paths`` and reduce the sum (``N`` frames, ``N`` darks).

        With ``accumulators``, :attr:`Reduced.pyfai_result` is pyFAI's own
        result of the sum (for an NXazint1d file).

        Raises
        ------
        InputError
            Unreadable image, wrong shape, nothing valid to integrate, or a PDF
            setting the data refuse.
        """
        frame = sum_images(paths)
        integ = self.integrator(paths[0])
        pattern = integ.integrate(frame)
        pyfai_result = integ.integrate_result(frame) if accumulators else None
        if len(paths) > 1:
            pattern = pattern.with_metadata(images=[str(p) for p in paths])
        return self._finish(name or images.frame_stem(frame), pattern, pyfai_result)

    def iter_frames(
        self,
        paths: Sequence[str | os.PathLike],
        *,
        sum_frames: bool = False,
        accumulators: bool = False,
    ) -> Iterator[integrate.FrameResult]:
        """Integrate every frame (or each file's sum) of ``paths``; a bad one is a failed result.

        ``accumulators``: also pyFAI's own result of each frame
        (:attr:`~xrdpdf.stages.integrate.FrameResult.pyfai_result`).
        """
        if not paths:
            return
        try:
            integ = self.integrator(paths[0])
        except InputError as exc:
            for p in paths:
                yield integrate.FrameResult(Path(p), None, 0, error=str(exc))
            return
        frames = images.iter_many(paths, sum_frames=sum_frames, keep_dtype=True)
        results = integrate.integrate_frames(integ, frames, accumulators=accumulators)
        try:
            yield from results
        finally:
            results.close()

    def finish(self, result: integrate.FrameResult, *, pdf: bool = True) -> Reduced:
        """The :class:`Reduced` of one successful frame result (with the PDF step if ``pdf``).

        Raises
        ------
        InputError
            The frame failed, or the PDF step refuses its pattern.
        """
        if not result.ok:
            raise InputError(str(result.error))
        name = images.frame_stem(result)
        return self._finish(name, result.pattern, result.pyfai_result, pdf=pdf)


#: Suffix of NXazint1d files (pyFAI's NeXus azimuthal-integration results).
NXAZINT_SUFFIX = ".nxs"
#: Output formats of one pattern per frame: name → suffix (as ``xrdpdf integrate --format``).
FRAME_FORMATS = {
    "xye": ".xye",
    "xy": ".xy",
    "chi": ".chi",
    "h5": ".h5",
    "nxazint1d": NXAZINT_SUFFIX,
}

#: File suffixes of the PDF outputs, by :class:`~xrdpdf.stages.pdf.PdfResult` attribute.
PDF_FILES = ("iq", "sq", "fq", "gr")


def outputs_of(
    name: str,
    outdir: str | os.PathLike,
    *,
    suffix: str = ".xye",
    pdf_files: Sequence[str] = (),
) -> list[Path]:
    """Every path :func:`write_reduced` writes for pattern ``name`` (the I(Q) first)."""
    outdir = Path(outdir)
    return [outdir / f"{name}{suffix}", *(outdir / f"{name}.{k}" for k in pdf_files)]


def write_reduced(
    reduced: Reduced,
    outdir: str | os.PathLike,
    *,
    suffix: str = ".xye",
    pdf_files: Sequence[str] = ("gr",),
    overwrite: bool = False,
) -> list[Path]:
    """Write a reduced pattern: ``OUT/NAME.xye`` and, with a PDF, ``OUT/NAME.gr`` (…).

    Parameters
    ----------
    reduced : Reduced
    outdir : path-like
        Created if missing.
    suffix : str
        Format of the I(Q) file (``.xye``, ``.xy``, ``.chi``, ``.h5``), or ``.nxs``:
        NXazint1d of :attr:`Reduced.pyfai_result` (:func:`xrdpdf.io.write_nxazint1d`).
    pdf_files : sequence of str
        Which of ``iq``, ``sq``, ``fq``, ``gr`` to write when there is a PDF.
    overwrite : bool
        Replace existing files.

    Returns
    -------
    list of Path
        The files written, in order.

    Raises
    ------
    InputError
        An output exists (without ``overwrite``) or cannot be written.
    """
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: output path exists and is not a folder")
    files = pdf_files if reduced.pdf is not None else ()
    targets = outputs_of(reduced.name, outdir, suffix=suffix, pdf_files=files)
    if not overwrite:
        for t in targets:
            if t.exists():
                raise InputError(f"{t}: output exists; pass overwrite=True")
    outdir.mkdir(parents=True, exist_ok=True)
    if suffix == NXAZINT_SUFFIX:
        if reduced.pyfai_result is None:
            raise InputError(
                f"{targets[0]}: NXazint1d needs pyFAI's accumulators "
                "(reduce with accumulators=True)"
            )
        first = io.write_nxazint1d(
            reduced.pyfai_result, targets[0], overwrite=overwrite, config=reduced.pyfai_config
        )
    else:
        first = io.write_pattern(reduced.iq, targets[0], overwrite=overwrite)
    written = [first]
    for key, target in zip(files, targets[1:], strict=True):
        written.append(io.write_pattern(getattr(reduced.pdf, key), target, overwrite=overwrite))
    return [Path(p) for p in written]
