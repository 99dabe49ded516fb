"""One sample of a series: input hash, frames → I(Q) → refinement, G(r), ξ, PDF fit → one row."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf.workflows.series._outdir import RESULT_FILE
from xrdpdf.workflows.series.config import (
    SampleSpec,
    SeriesConfig,
    integration_format,
    integration_overrides,
    integration_settings,
    pdf_config,
    refine_options,
)
from xrdpdf.workflows.series.summary import (
    _TEXT,
    _num,
    summary_columns,
)

__all__ = [
    "reference_sample",
    "input_hash",
    "SampleOutcome",
    "integrate_sample",
    "process_sample",
]


_NAN = float("nan")


_RESULT = RESULT_FILE


_REDUCERS: dict[str, Any] = {}  # per worker process: one Reducer per geometry+dark+settings


@functools.lru_cache(maxsize=4096)
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        return f"unreadable:{exc}"
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, read once per (path, size, mtime) in this process."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"unreadable:{exc}"
    return _digest_of(str(path), st.st_size, st.st_mtime_ns)


def reference_sample(config: SeriesConfig, sample: SampleSpec) -> SampleSpec | None:
    """The sample whose I(Q) is the amorphous background of ``sample``'s refinement.

    ``[refine] amorphous_reference`` names a fully amorphous sample; its I(Q),
    with a refined scale ≥ 0, is added to the Chebyshev background of every
    sample that refines phases, unless the sample or its group sets
    ``amorphous_reference = false`` (or names another sample).
    """
    if not sample.phases or sample.use_reference is False:
        return None
    name = sample.use_reference
    if name is True:
        name = config.refine.get("amorphous_reference")
    if name is None or name == sample.name:
        return None
    return next(s for s in config.samples if s.name == name)


def input_hash(config: SeriesConfig, sample: SampleSpec) -> str:
    """SHA-256 over the bytes of every input file and the sample's settings."""
    h = hashlib.sha256()
    files: list[Any] = [*sample.images, config.poni]
    ref = reference_sample(config, sample)
    if ref is not None:  # its pattern is part of this sample's refinement
        files += [*ref.images] + ([ref.dark] if ref.dark else [])
    extras = (sample.dark, config.mask, config.flat, config.resolution, sample.pdf.get("bkg"),
              sample.pdffit_model)  # fmt: skip
    for extra in extras:
        if extra is not None:
            files.append(Path(extra))
    for f in files:
        h.update(str(Path(f).name).encode())
        h.update(_file_digest(Path(f)).encode())
    h.update(json.dumps(config.settings_for(sample), sort_keys=True, default=str).encode())
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class SampleOutcome:
    """What one sample produced: its summary row and, in memory, its I(Q) and G(r)."""

    row: dict[str, Any]
    iq: Pattern | None = None
    gr: Pattern | None = None


def _empty_row(config: SeriesConfig, sample: SampleSpec, digest: str) -> dict[str, Any]:
    cols = summary_columns(config)
    row: dict[str, Any] = {c: ("" if c in _TEXT else _NAN) for c in cols}
    row.update(sample.labels)
    row.update(name=sample.name, group=sample.group, n_images=len(sample.images), input_hash=digest)
    return row


def _reducer(config: SeriesConfig, sample: SampleSpec):
    """The worker's :class:`~xrdpdf.workflows.reduce.Reducer`: this geometry, dark and settings."""
    from xrdpdf.workflows.reduce import Reducer

    key = json.dumps(
        [str(config.poni), str(config.mask), str(config.flat), str(sample.dark), config.integrate],
        sort_keys=True,
        default=str,
    )
    red = _REDUCERS.get(key)
    if red is None:
        from xrdpdf.io import is_worker_config

        settings, overrides = integration_settings(config), None
        if is_worker_config(config.poni):  # its settings, except those [integrate] gives
            settings, overrides = None, integration_overrides(config)
        red = Reducer(
            config.poni,
            settings,
            mask=config.mask,
            darks=None if sample.dark is None else [sample.dark],
            flat=config.flat,
            overrides=overrides,
        )
        if len(_REDUCERS) > 8:
            _REDUCERS.clear()
        _REDUCERS[key] = red
    return red


def integrate_sample(config: SeriesConfig, sample: SampleSpec):
    """Sum every frame of a sample's images and integrate the sum to I(Q).

    The dark goes to pyFAI (once per summed frame), as in ``xrdpdf integrate``
    and ``xrdpdf watch`` (:mod:`xrdpdf.workflows.reduce`).

    Returns
    -------
    Reduced
        I(Q) in Å⁻¹ with Poisson σ of the summed raw counts; with ``[integrate]
        format = "nxazint1d"`` also pyFAI's own result (``pyfai_result``).
    """
    import dataclasses

    nxs = integration_format(config) == "nxazint1d"
    red = _reducer(config, sample).reduce_summed(sample.images, sample.name, accumulators=nxs)
    iq = red.iq.with_metadata(sample=sample.name, images=[str(p) for p in sample.images])
    return dataclasses.replace(red, name=sample.name, iq=iq)


def _join(a: str, b: str) -> str:
    return b if not a else f"{a}; {b}"


def _fraction(res, phase_name: str | None) -> tuple[float, float, str]:
    """``rs_fraction``, its esd and a note, from the refined phase ``phase_name``.

    The crystalline fraction of :mod:`xrdpdf.stages.refinement` (``crystalline_fraction``,
    the phase's share of the coherent scattering in electrons against the
    amorphous reference); empty when the refinement does not determine it.
    """
    if phase_name is None:
        return _NAN, _NAN, ""
    ph = next((p for p in res.phases if p.name == phase_name), None)
    if ph is None:
        return _NAN, _NAN, ""
    value = getattr(ph, "crystalline_fraction", None)
    esd = getattr(ph, "crystalline_fraction_esd", None)
    note = "" if getattr(ph, "detected", True) else f"{phase_name} not detected"
    return _num(value), _num(esd), note


def _refine_sample(
    config: SeriesConfig,
    sample: SampleSpec,
    pattern: Pattern,
    reference: Pattern | None,
    sdir: Path,
    row: dict[str, Any],
    written: list[Path],
) -> Any:
    from xrdpdf import io
    from xrdpdf.stages import refinement as refine

    kw = refine_options(config)
    ref = reference_sample(config, sample)
    if ref is not None:
        if reference is None:
            raise InputError(f"amorphous reference sample {ref.name!r} has no pattern")
        kw["background_pattern"] = reference
        if ref.composition is not None:
            kw["reference_composition"] = ref.composition
    resolution = None
    if config.resolution is not None:
        from xrdpdf.physics.resolution import load_resolution

        resolution = load_resolution(config.resolution)
    # non-convergence goes into the row's note column (below), not into a warning
    res = refine.refine(pattern, list(sample.phases), resolution=resolution, warn=False, **kw)
    first = res.phases[0]
    detected = getattr(first, "detected", True)
    row.update(
        phase=first.name,
        a_A=_num(first.a_A) if detected else _NAN,
        a_esd_A=_num(first.a_esd_A) if detected else _NAN,
        size_A=_num(first.size_A) if detected else _NAN,
        size_esd_A=_num(first.size_esd_A) if detected else _NAN,
        rwp=res.rwp,
    )
    if detected and getattr(first, "size_is_lower_bound", False):
        row["note"] = _join(row["note"], "size_A is a lower bound (no [series] resolution)")
    frac, frac_esd, note = _fraction(res, config.refine.get("fraction_phase"))
    row.update(rs_fraction=frac, rs_fraction_esd=frac_esd)
    if note:
        row["note"] = _join(row["note"], note)
    written.append(
        io.write_json(res.to_dict(), sdir / f"{sample.name}_refine.json", overwrite=True)
    )
    from xrdpdf.plot import save_figure
    from xrdpdf.plot.refinement import plot_refinement

    fig = plot_refinement(res, title=sample.name)
    written.append(save_figure(fig, sdir / f"{sample.name}_refine.png"))
    if not res.converged:
        row["note"] = _join(row["note"], f"refinement: {res.message}")
    return res


def _attempt(
    row: dict[str, Any], stage: str, func: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """Run one stage; what stops it goes to ``row["error"]`` and None is returned.

    A quantity the data do not determine (:class:`~xrdpdf._core.errors.NotDeterminedError`)
    is a result: it goes to ``row["note"]``.  A file that cannot be written
    (disk full, permissions changed meanwhile) is an error of that stage.
    """
    from xrdpdf._core.errors import NotDeterminedError, XrdpdfError

    try:
        return func(*args, **kwargs)
    except NotDeterminedError as exc:
        row["note"] = _join(row["note"], f"{stage}: {exc}")
        return None
    except XrdpdfError as exc:
        row["error"] = _join(row["error"], f"{stage}: {exc}")
        return None
    except OSError as exc:
        row["error"] = _join(row["error"], f"{stage}: {_os_error(exc)}")
        return None


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}cannot write ({exc.strerror or exc})"


def _pdf_sample(config: SeriesConfig, sample: SampleSpec, iq: Pattern, row: dict[str, Any]):
    """I(Q) → S(Q), F(Q), G(r) (:func:`xrdpdf.workflows.reduce.pdf_step`)."""
    from xrdpdf import io
    from xrdpdf.workflows.reduce import pdf_step

    bkg = sample.pdf.get("bkg")
    background = io.read_pattern(bkg) if bkg is not None else None
    res, _ = pdf_step(iq, pdf_config(config, sample), background=background)
    row["qmax_invA"] = res.qmax_invA
    return res


def _corrlen_sample(config: SeriesConfig, iq: Pattern, res, row: dict[str, Any]) -> None:
    """ξ of the G(r); with ``[series] resolution`` the instrument's Q_damp enters the fit.

    Q_damp = ⟨FWHM(Q)⟩/(2√(2 ln 2)) over the transform's Q range
    (:func:`xrdpdf.stages.corrlen.qdamp_from_resolution`).
    """
    from xrdpdf.stages import corrlen

    kw: dict[str, Any] = {}
    if config.resolution is not None:
        from xrdpdf.physics.resolution import load_resolution

        kw["qdamp_invA"] = corrlen.qdamp_from_resolution(
            load_resolution(config.resolution), res.qmin_invA, res.qmax_invA, iq.wavelength_A
        )
    cl = corrlen.correlation_length(res.gr, **kw)
    row.update(xi_A=cl.xi_A, xi_esd_A=_num(cl.xi_esd_A), r_noise_A=_num(cl.r_noise_A))


def _pdffit_sample(
    config: SeriesConfig,
    sample: SampleSpec,
    gr: Pattern,
    sdir: Path,
    row: dict[str, Any],
    written: list[Path] | None = None,
):
    """Real-space fit of the sample's G(r) with its ``pdffit_model``; refined model beside it."""
    from xrdpdf import io
    from xrdpdf.stages.pdffit import fit, model_text, read_model

    res = fit(gr, read_model(sample.pdffit_model))
    target = sdir / f"{sample.name}_pdffit.toml"
    path = io.write_text(model_text(res.model), target, overwrite=True)
    if written is not None:
        written.append(path)
    want = config.pdffit.get("phase")
    p = next((p for p in res.phases if p["name"] == want), res.phases[0])
    row.update(
        pdffit_rw=res.rw, pdffit_a_A=p["a_A"], pdffit_a_esd_A=p["a_A_esd"],
        pdffit_spdiameter_A=p["spdiameter_A"], pdffit_spdiameter_esd_A=p["spdiameter_A_esd"],
        pdffit_fraction=p.get("fraction", 1.0), pdffit_fraction_esd=p.get("fraction_esd", 0.0),
    )  # fmt: skip
    if not res.converged:
        row["note"] = _join(row["note"], "pdffit: not converged")
    return res


def process_sample(
    config: SeriesConfig,
    sample: SampleSpec,
    outdir: str | os.PathLike,
    digest: str | None = None,
    reference: Pattern | None = None,
) -> SampleOutcome:
    """Run one sample through integrate → refine + size → PDF → correlation length.

    A stage that cannot run is recorded in the row's ``error`` (prefixed with
    the stage) and the later stages still run when they can; only a failed
    integration stops the sample.  What a finished stage has to say (a phase
    not detected, a refinement that did not converge) goes to ``note``.
    Outputs go to ``OUTDIR/<name>/``: ``<name>.xye`` (and ``<name>.nxs``, NXazint1d,
    with ``[integrate] format = "nxazint1d"``), ``<name>_refine.json``,
    ``<name>.gr`` (+ ``.iq/.sq/.fq``) and ``result.json`` (the summary row,
    with the input hash used to skip unchanged samples on a re-run, and the
    names of the files written, so that a re-run redoes a sample whose
    outputs were deleted).

    Parameters
    ----------
    reference : Pattern, optional
        I(Q) of the sample's amorphous reference (:func:`reference_sample`).

    Returns
    -------
    SampleOutcome
        The summary row (keys :func:`~.summary.summary_columns`), I(Q) and G(r).
    """
    from xrdpdf.workflows.reduce import NXAZINT_SUFFIX, PDF_FILES, Reduced, write_reduced

    digest = digest or input_hash(config, sample)
    row = _empty_row(config, sample, digest)
    sdir = Path(outdir) / sample.name
    written: list[Path] = []
    try:
        sdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        row["error"] = f"integrate: {_os_error(exc)}"
        return SampleOutcome(row)
    reduced = _attempt(row, "integrate", integrate_sample, config, sample)
    if reduced is not None:
        files = _attempt(row, "integrate", write_reduced, reduced, sdir, overwrite=True)
        written += files or []
    if reduced is not None and reduced.pyfai_result is not None and not row["error"]:
        kw = {"suffix": NXAZINT_SUFFIX, "overwrite": True}
        files = _attempt(row, "integrate", write_reduced, reduced, sdir, **kw)
        written += files or []
    if reduced is None or row["error"]:
        _write_result(row, sdir, written)
        return SampleOutcome(row)
    iq = reduced.iq
    if sample.phases:
        # whole-pattern size (Scherrer K in the profile): single-peak Scherrer fits are
        # unreliable at ~3 nm, where 111 and 200 overlap
        args = (config, sample, iq, reference, sdir, row, written)
        _attempt(row, "refine", _refine_sample, *args)
    pdf = _attempt(row, "pdf", _pdf_sample, config, sample, iq, row)
    if pdf is not None:
        _attempt(row, "corrlen", _corrlen_sample, config, iq, pdf, row)
        red = Reduced(sample.name, iq, pdf)
        files = _attempt(row, "pdf", write_reduced, red, sdir, pdf_files=PDF_FILES, overwrite=True)
        written += files or []
        if sample.pdffit_model is not None:
            _attempt(row, "pdffit", _pdffit_sample, config, sample, pdf.gr, sdir, row, written)
    _write_result(row, sdir, written)
    return SampleOutcome(row, iq, None if pdf is None else pdf.gr)


def _write_result(row: dict[str, Any], sdir: Path, written: Sequence[Path]) -> None:
    """``result.json``: the row and the names of the sample's files (a failure goes to the row)."""
    from xrdpdf import io

    outputs = sorted({Path(p).name for p in written})
    try:
        io.write_json({**row, "outputs": outputs}, sdir / _RESULT, overwrite=True)
    except OSError as exc:
        row["error"] = _join(row["error"], f"result: {_os_error(exc)}")


def _cached(config: SeriesConfig, outdir: Path, sample: SampleSpec, digest: str):
    """The outcome of an earlier run with the same inputs and settings, or None."""
    from xrdpdf import io
    from xrdpdf._core.errors import XrdpdfError

    sdir = outdir / sample.name
    try:
        row = json.loads((sdir / _RESULT).read_text(encoding="utf-8"))
        outputs = row.pop("outputs")
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    if row.get("input_hash") != digest or set(row) != set(summary_columns(config)):
        return None
    if not isinstance(outputs, list) or not all((sdir / str(n)).is_file() for n in outputs):
        return None  # an output was deleted: the sample is done again
    row = {k: (_NAN if v is None else v) for k, v in row.items()}
    files = [sdir / f"{sample.name}{suffix}" for suffix in (".xye", ".gr")]
    try:
        iq, gr = (io.read_pattern(f) if f.is_file() else None for f in files)
    except XrdpdfError:
        return None
    return SampleOutcome(row, iq, gr)
