"""Each stage's settings from a parsed series file: integration, refinement, PDF, PDF fit.

Every function takes a :class:`~._spec.SeriesConfig` (and a sample where the
setting is per sample) and returns the keywords or settings object the stage
takes; :func:`check_settings` builds them all once at load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xrdpdf._core.errors import InputError
from xrdpdf.workflows.series._spec import SampleSpec, SeriesConfig

__all__ = [
    "INTEGRATE_FORMATS",
    "PDF_DEFAULTS",
    "check_settings",
    "integration_format",
    "integration_overrides",
    "integration_settings",
    "pdf_config",
    "refine_options",
]

#: ``[integrate] format``: the I(Q) file of each sample; ``nxazint1d`` adds
#: ``<name>.nxs`` (pyFAI's NXazint1d with its accumulators) to the ``.xye``.
INTEGRATE_FORMATS = ("xye", "nxazint1d")


def integration_format(config: SeriesConfig) -> str:
    """``[integrate] format`` (default ``"xye"``), checked."""
    fmt = config.integrate.get("format", "xye")
    if fmt not in INTEGRATE_FORMATS:
        raise InputError(
            f"[integrate] format must be one of {', '.join(INTEGRATE_FORMATS)}, got {fmt!r}"
        )
    return fmt


def integration_settings(config: SeriesConfig):
    """The :class:`~xrdpdf.stages.integrate.IntegrationSettings` of the ``[integrate]`` table."""
    from xrdpdf.stages.integrate import IntegrationSettings

    try:
        return IntegrationSettings(**integration_overrides(config))
    except InputError as exc:
        raise InputError(f"[integrate] {exc}") from None


def integration_overrides(config: SeriesConfig) -> dict[str, Any]:
    """The ``[integrate]`` settings given, as IntegrationSettings keywords.

    With a pyFAI integration config (WorkerConfig JSON) as ``poni`` these win over
    the config's settings; the others come from it.  Types and ranges were
    checked at load (:class:`._schema.Integrate`).
    """
    integration_format(config)
    names = {"polarization": "polarization_factor"}
    return {names.get(k, k): v for k, v in config.integrate.items() if k != "format"}


def refine_options(config: SeriesConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`~xrdpdf.stages.refinement.refine` (``[refine]``, ``[size]``)."""
    opts = config.refine
    kw: dict[str, Any] = {
        "amorphous": opts.get("amorphous", False),
        "cuka": opts.get("cuka", False),
    }
    if "occupancy_sum" in opts:
        kw["occupancy_sum"] = opts["occupancy_sum"]
    if "background_terms" in opts:
        kw["n_background"] = opts["background_terms"]
    if "fit_range" in opts:
        lo, hi = (float(v) for v in opts["fit_range"])
        if not lo < hi:
            raise InputError(f"[refine] fit_range must be [min, max] with min < max, got {lo, hi}")
        kw["xrange"] = (lo, hi)
    if "k" in config.size:
        kw["k_scherrer"] = float(config.size["k"])
    return kw


_PDF_KEYS = {
    "qmin": "qmin_invA",
    "qmax": "qmax_invA",
    "qmaxinst": "qmaxinst_invA",
    "rpoly": "rpoly_A",
    "rmin": "rmin_A",
    "rmax": "rmax_A",
    "rstep": "rstep_A",
    "lorch": "lorch",
    "bkg_scale": "bkg_scale",
}
#: PDF defaults of a series (r to 60 Å so that ξ up to ~50 Å is resolved).
PDF_DEFAULTS = {"rmax_A": 60.0, "rstep_A": 0.02}


def pdf_config(config: SeriesConfig, sample: SampleSpec):
    """The :class:`~xrdpdf.PdfConfig` of a sample (``[pdf]``, group and sample overrides).

    Raises
    ------
    InputError
        No composition for the sample (``[series]``, its group or itself), or a bad value.
    """
    from xrdpdf.stages import pdf

    if sample.composition is None:
        raise InputError(
            f"sample {sample.name!r} has no composition for the PDF "
            "(give composition in [series], its [group.NAME] or the sample)"
        )
    kw: dict[str, Any] = dict(PDF_DEFAULTS)
    kw.update({_PDF_KEYS[k]: v for k, v in sample.pdf.items() if k in _PDF_KEYS})
    return pdf.PdfConfig(composition=sample.composition, **kw)


def check_settings(path: Path, config: SeriesConfig) -> None:
    """Build every stage's settings once, so that a bad value fails at load, naming the file."""
    from xrdpdf.physics.cif import get_phase

    try:
        integration_settings(config)
        refine_options(config)
        peaks = config.figures.get("peaks")
        names = {p for smp in config.samples for p in smp.phases} | ({peaks} - {None})
        for name in sorted(names):
            get_phase(name)
        for key in ("x", "by"):
            lab = config.figures.get(key)
            if lab is not None and lab not in config.labels:
                raise InputError(f"[figures] {key} = {lab!r} is not declared in [labels]")
        for smp in config.samples:
            if smp.composition is not None:
                pdf_config(config, smp)
        _check_pdffit(config)
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: {exc}") from None


def _check_pdffit(config: SeriesConfig) -> None:
    """Every real-space model file reads, and ``[pdffit] phase`` is one of its phases."""
    from xrdpdf.stages.pdffit import read_model

    phase = config.pdffit.get("phase")
    for model_path in sorted({smp.pdffit_model for smp in config.samples} - {None}):
        model = read_model(model_path)
        names = [ph.name for ph in model.phases]
        if phase is not None and phase not in names:
            raise InputError(
                f"[pdffit] phase {phase!r} is not a phase of {model_path} ({', '.join(names)})"
            )
