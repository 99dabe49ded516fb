r"""X-ray PDF: I(Q) → S(Q) → F(Q) → G(r) by the PDFgetX3 ad hoc method.

Own implementation of the ad hoc data reduction of Juhás et al. (2013) [1]_
(the ``diffpy.pdfgetx`` chain ``Background → XrayASFnorm → SQnormRPoly →
SQToFQ → FQToGr``), with σ propagated from σ(I) to every output, an automatic
Q_max and an automatic background scale.

Notes
-----
With ``I_c = I_s − s·I_bg`` (``s`` = background scale), atom fractions
:math:`c_a` and :math:`\langle f^2\rangle = \sum c_a f_a^2`,
:math:`\langle f\rangle^2 = (\sum c_a f_a)^2` (xraydb Waasmaier–Kirfel f0 at
:math:`s = Q/4\pi`), on the points :math:`q_{min} \le Q \le q_{maxinst}`:

.. math::

    k = \frac{\sum I_c \langle f^2\rangle/\langle f\rangle^4}
             {\sum I_c^2/\langle f\rangle^4}, \qquad
    S_m = 1 + \frac{k I_c - \langle f^2\rangle}{\langle f\rangle^2}, \qquad
    F_m = Q (S_m - 1),

    F = F_m - (1-\alpha) B_{\lfloor n\rfloor}(Q) - \alpha B_{\lfloor n\rfloor+1}(Q),
    \qquad n = r_{poly} (Q_{last} - Q_{first})/\pi, \quad \alpha = n - \lfloor n\rfloor,

where :math:`B_m(Q) = Q\sum_{j=0}^{m-1} c_j Q^j` is the unweighted
least-squares fit of :math:`F_m` on the points used,
:math:`Q_{first} \dots Q_{last}` (the first and last points in
:math:`[q_{min}, q_{maxinst}]`).  Its highest "frequency" corresponds to
:math:`r \approx r_{poly}`, so G(r > r_poly) is left untouched.  The degree
rule and the blend of the two neighbouring degrees were measured, not taken
from PDFgetX3's (closed) source: on xPDFsuite's TiO2 ``.fq``
(``tests/data/tio2_film_xpd``, n = 6.136) the least-squares blend weight of
the degree-7 fit is 0.1355 (α = 0.136) and the residual drops from 7e-3 to
4e-5 Å⁻¹; on the three Ni ``.gr`` files α = 0.956, 0.063, 0.062 for
n = 8.955, 8.061, 8.061.  F is then interpolated linearly onto
:math:`Q_k = k\Delta Q` (PDFgetX3 ``FQgrid``, ``fq_grid=True``; ΔQ the
input step) and

.. math::

    G(r) = \frac{2}{\pi} \sum_{q_{min} \le Q_k \le q_{max}}
           w_k F(Q_k) M(Q_k) \sin(Q_k r),

with :math:`w_k = \Delta Q` on a regular grid (midpoint-cell widths
otherwise) and :math:`M = \mathrm{sinc}(Q/q_{max})` for the Lorch (1969)
modification [2]_, else 1.  ``k`` is the least-squares scale that brings
:math:`k I_c` to :math:`\langle f^2\rangle` in units of
:math:`\langle f\rangle^2`.  These choices reproduce PDFgetX3's Ni ``.gr``
files and xPDFsuite's TiO2 ``.iq``/``.fq``/``.gr`` *without* rescaling
(tests/test_pdf_xpdfsuite.py).  The regridding matters when the input grid
is offset from kΔQ (the TiO2 Fit2D grid starts at ΔQ/2): without it G(r)
differs from xPDFsuite's by Rw 0.03, with it by < 0.001.

Uncertainties (correlations through ``k`` neglected; those of the polynomial
projection are propagated exactly into σ_G, not into the per-point σ_S, σ_F):
:math:`\sigma_F = Q k \sigma_c/\langle f\rangle^2`,
:math:`\sigma_S = k\sigma_c/\langle f\rangle^2`,
:math:`\sigma_G(r)^2 = (2/\pi)^2 \sum_{kl} w_k M_k \sin(Q_k r) C_{kl} w_l M_l \sin(Q_l r)`,
:math:`C` the covariance of the interpolated F (diagonal plus the
neighbour terms that linear interpolation creates).
Neighbouring G points are correlated; about
:math:`(r_{max}-r_{min}) q_{max}/\pi` of them are independent [3]_.

References
----------
.. [1] P. Juhás, T. Davis, C. L. Farrow, S. J. L. Billinge, "PDFgetX3: a rapid
       and highly automatable program for processing powder diffraction data
       into total scattering pair distribution functions", J. Appl. Cryst. 46
       (2013) 560–566. https://doi.org/10.1107/S0021889813005190
.. [2] E. Lorch, J. Phys. C 2 (1969) 229. https://doi.org/10.1088/0022-3719/2/2/305
.. [3] C. L. Farrow, M. Shaw, H. Kim, P. Juhás, S. J. L. Billinge, Phys. Rev. B
       84 (2011) 134105. https://doi.org/10.1103/PhysRevB.84.134105
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError, InputWarning
from xrdpdf._core.pattern import Pattern
from xrdpdf._core.results import Result
from xrdpdf.stages.pdf._background import _auto_bkg_scale, _interp_background
from xrdpdf.stages.pdf._composition import composition_factors, parse_composition
from xrdpdf.stages.pdf._fourier import _gr, _is_regular, _r_grid, sine_transform
from xrdpdf.stages.pdf._reduce import _auto_qmax, _last_nonzero_q, _Prepared, _reduce

__all__ = [
    "PdfConfig",
    "PdfResult",
    "parse_composition",
    "composition_factors",
    "sine_transform",
    "transform",
]


# ---------------------------------------------------------------------- config
@dataclass(frozen=True)
class PdfConfig:
    """Settings of the ad hoc transform (PDFgetX3 names in brackets).

    Parameters
    ----------
    composition : str
        Sample formula, e.g. ``"TiO2"`` [composition].
    qmin_invA : float
        Lowest Q used, Å⁻¹ [qmin].
    qmax_invA : float, "auto" or None
        Upper Q of the Fourier transform, Å⁻¹ [qmax].  ``"auto"``: where the
        noise of F(Q) overtakes its signal (see :func:`transform`); ``None``:
        equal to the resolved ``qmaxinst``.
    qmaxinst_invA : float or None
        Upper Q of the data used for the polynomial correction, Å⁻¹
        [qmaxinst]; ``None``: the last non-zero intensity of the data.
    rpoly_A : float
        r limit (Å) of the correction polynomial [rpoly]; degree
        ``round(rpoly·qmaxinst/π)``.
    rmin_A, rmax_A, rstep_A : float
        Output r grid in Å [rmin, rmax, rstep]; ``rmax`` included.
    lorch : bool
        Multiply F(Q) by the Lorch function sinc(Q/qmax) before the transform.
    bkg_scale : float or "auto"
        Background scale [bgscale]; ``"auto"`` matches the container's sharp
        features in the sample pattern, capped so that the subtracted
        intensity stays non-negative, or refuses for a container without
        sharp features (see :func:`transform`).
    fq_grid : bool
        Interpolate F(Q) linearly onto Q_k = kΔQ (ΔQ the input step) before
        the transform, as PDFgetX3's ``FQgrid`` step [FQgrid].  With an input
        grid offset from kΔQ this damps G(r) by up to cos(rΔQ/2); it is on by
        default because PDFgetX3 files are the reference.
    """

    composition: str
    qmin_invA: float = 0.0
    qmax_invA: float | str | None = None
    qmaxinst_invA: float | None = None
    rpoly_A: float = 0.9
    rmin_A: float = 0.0
    rmax_A: float = 30.0
    rstep_A: float = 0.01
    lorch: bool = False
    bkg_scale: float | str = 1.0
    fq_grid: bool = True

    def __post_init__(self) -> None:
        parse_composition(self.composition)

        def num(name: str, v: Any, lo: float = 0.0, strict: bool = False) -> float:
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise InputError(f"{name} must be a number, got {v!r}") from None
            if not np.isfinite(x) or x < lo or (strict and x <= lo):
                rel = ">" if strict else "≥"
                raise InputError(f"{name} must be a finite number {rel} {lo}, got {v!r}")
            return x

        num("qmin", self.qmin_invA)
        num("rpoly", self.rpoly_A)
        num("rmin", self.rmin_A)
        num("rstep", self.rstep_A, strict=True)
        if num("rmax", self.rmax_A, strict=True) <= self.rmin_A:
            raise InputError(f"rmax ({self.rmax_A}) must exceed rmin ({self.rmin_A})")
        npts = (self.rmax_A - self.rmin_A) / self.rstep_A
        if npts > 2_000_000:
            raise InputError(f"r grid of {npts:.3g} points is too fine; increase rstep")
        if self.qmax_invA is not None and not _is_auto(self.qmax_invA):
            if num("qmax", self.qmax_invA, strict=True) <= self.qmin_invA:
                raise InputError(f"qmax ({self.qmax_invA}) must exceed qmin ({self.qmin_invA})")
        if self.qmaxinst_invA is not None:
            if num("qmaxinst", self.qmaxinst_invA, strict=True) <= self.qmin_invA:
                raise InputError(
                    f"qmaxinst ({self.qmaxinst_invA}) must exceed qmin ({self.qmin_invA})"
                )
        if not _is_auto(self.bkg_scale):
            num("bkg_scale", self.bkg_scale)


def _is_auto(v: Any) -> bool:
    return isinstance(v, str) and v.strip().lower() == "auto"


# ---------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class PdfResult(Result):
    """Outputs of :func:`transform` and the settings actually used.

    Attributes
    ----------
    iq : Pattern
        Background-subtracted intensity I_c(Q) on [qmin, qmaxinst] (σ if known).
    sq, fq : Pattern
        S(Q) and F(Q) = Q[S(Q) − 1] (Å⁻¹) on the input points of
        [qmin, qmax] (as xPDFsuite writes them), after the polynomial
        correction, before any Lorch window or regridding.
    gr : Pattern
        G(r) in Å⁻² on the r grid (unit ``"r_A"``), σ if σ(I) was known.
    qmin_invA, qmax_invA, qmaxinst_invA : float
        Resolved Q limits (Å⁻¹).
    qmax_auto, bkg_scale_auto : bool
        Whether Q_max / the background scale were chosen automatically.
    bkg_scale : float
        Background scale used (0 without a background).
    poly_degree : float
        Effective degree n = rpoly·(Q_last − Q_first)/π of the correction
        (module Notes; non-integer n blends degrees ⌊n⌋ and ⌊n⌋+1).
    scale : float
        Normalisation k of I_c (electrons² per count).
    config : PdfConfig
        The requested settings.
    header : dict
        PDFgetX3-style ``key = value`` settings for the output files.
    """

    iq: Pattern
    sq: Pattern
    fq: Pattern
    gr: Pattern
    qmin_invA: float
    qmax_invA: float
    qmaxinst_invA: float
    qmax_auto: bool
    bkg_scale: float
    bkg_scale_auto: bool
    poly_degree: float
    scale: float
    config: PdfConfig
    header: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The resolved settings and figures of merit (as :meth:`summary`)."""
        return dict(self.summary())

    def summary(self) -> dict[str, Any]:
        """Plain-JSON summary of the resolved settings."""
        return {
            "composition": self.config.composition,
            "qmin_invA": self.qmin_invA,
            "qmax_invA": self.qmax_invA,
            "qmax_auto": self.qmax_auto,
            "qmaxinst_invA": self.qmaxinst_invA,
            "rpoly_A": self.config.rpoly_A,
            "poly_degree": self.poly_degree,
            "bkg_scale": self.bkg_scale,
            "bkg_scale_auto": self.bkg_scale_auto,
            "lorch": self.config.lorch,
            "rmin_A": float(self.gr.x[0]),
            "rmax_A": float(self.gr.x[-1]),
            "rstep_A": self.config.rstep_A,
            "npoints_r": int(self.gr.x.size),
            "scale": self.scale,
        }

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in self.summary().items())
        return f"<table><tr><th colspan=2>PdfResult</th></tr>{rows}</table>"


# ------------------------------------------------------------------- transform


def transform(pattern: Pattern, config: PdfConfig, background: Pattern | None = None) -> PdfResult:
    """I(Q) (or I(2θ)) → S(Q), F(Q), G(r) by the PDFgetX3 ad hoc method.

    Parameters
    ----------
    pattern : Pattern
        Sample intensity in Q (Å⁻¹) or 2θ (with wavelength); σ optional.
    config : PdfConfig
        Settings; see :class:`PdfConfig`.
    background : Pattern, optional
        Container / Kapton intensity, linearly interpolated onto the sample
        grid; it must cover the sample's [qmin, qmaxinst].

    Returns
    -------
    PdfResult
        iq, sq, fq, gr Patterns with σ and the resolved settings.

    Raises
    ------
    InputError
        r-space input, Q limits outside the data, a background that does not
        cover the sample range, too few points for the polynomial, or a
        background-subtracted intensity that is mostly negative.

    Notes
    -----
    See the module docstring for the formulas.  ``qmax="auto"``: F(Q) on
    [qmin, qmaxinst] is cut into 1 Å⁻¹ windows; Q_max is the lower edge of the
    first window above 3 Å⁻¹ whose signal variance ⟨F²⟩ − ⟨σ_F²⟩ falls below
    the noise variance ⟨σ_F²⟩ (σ_F from σ(I), else from second differences
    of F), or qmaxinst if none does.  ``bkg_scale="auto"``: the scale s
    that matches the container's sharp features (narrower than ~0.05 Å⁻¹, where
    the sample is smooth) in the sample pattern, by a robust least-squares fit
    of the two patterns' parts that a local quartic does not follow, capped
    at the largest s that keeps the smoothed I_s − s·I_bg non-negative on
    [qmin, qmaxinst]; a container without sharp features is refused
    (InputError: the correction polynomial absorbs a smooth one whatever its
    scale).  Simulated Ni-like crystalline and amorphous-like powders + the
    real Kapton pattern: within 4 % of the truth for s = 0.5–1.5; real
    Ni + Kapton: 0.408 (the cap; the user of PDFgetXgui chose 0.4)
    (tests/test_pdf_bkg.py, tests/test_pdf.py).

    Examples
    --------
    >>> import numpy as np
    >>> from xrdpdf import Pattern
    >>> q = np.linspace(0.5, 20, 976)
    >>> fake = Pattern(q, 50 + np.sin(2.5 * q) * np.exp(-0.02 * q * q), "q_A^-1")
    >>> res = transform(fake, PdfConfig("Ni", rmax_A=10))
    >>> round(res.poly_degree, 3), res.gr.unit
    (5.586, 'r_A')
    """
    if not isinstance(pattern, Pattern):
        raise InputError(f"transform needs a Pattern, got {type(pattern).__name__}")
    if pattern.unit == units.R_A:
        raise InputError(f"{pattern.source}: input is already in r space; give I(Q) or I(2θ)")
    if background is not None and background.unit == units.R_A:
        raise InputError(f"{background.source}: background must be I(Q) or I(2θ), not r space")
    m, qmin, qmaxinst, degree, qmax_auto = _q_range(pattern, config)
    q = pattern.q[m]
    i_s = pattern.y[m]
    s_s = None if pattern.sigma is None else pattern.sigma[m]
    i_b = s_b = None
    if background is not None:
        i_b, s_b = _interp_background(q, background, q[0], q[-1])
        if s_s is None:
            s_b = None
    f2avg, favg2 = composition_factors(config.composition, q)
    prep = _Prepared(q, i_s, s_s, i_b, s_b, f2avg, favg2, qmin, qmaxinst, degree, _is_regular(q))

    bscale, bkg_auto = _background_scale(pattern, background, config, qmin, qmaxinst)

    ic, sc, k, s, ss, f, sf = _reduce(prep, bscale)
    if qmax_auto:
        qmax = _auto_qmax(q, f, sf, qmin)
    elif config.qmax_invA is None:
        qmax = qmaxinst
    else:
        qmax = float(config.qmax_invA)
    if np.count_nonzero(q <= qmax + 1e-9) < 2:
        raise InputError(f"fewer than 2 data points in [{qmin:g}, {qmax:g}] Å⁻¹")

    r = _r_grid(config.rmin_A, config.rmax_A, config.rstep_A)
    g, sg = _gr(prep, f, sf, qmax, config.lorch, r, config.fq_grid)

    header = _header(
        pattern, background, config, qmin, qmax, qmaxinst, bscale, degree, k, qmax_auto, bkg_auto
    )
    return _result(pattern, config, header, q, r, (ic, sc, s, ss, f, sf, g, sg), qmax,
                   (qmin, qmaxinst, qmax_auto, bscale, bkg_auto, degree, k))  # fmt: skip


def _cut(a: np.ndarray | None, m: np.ndarray) -> np.ndarray | None:
    return None if a is None else a[m]


def _header(
    pattern, background, config, qmin, qmax, qmaxinst, bscale, degree, k, qmax_auto, bkg_auto
) -> dict[str, Any]:
    from pathlib import Path

    def name(p: Pattern | None) -> str:
        if p is None:
            return ""
        src = p.metadata.get("source")
        return Path(str(src)).name if src else ""

    fmt = "QA" if pattern.unit == units.Q_A else "twotheta"
    wl = pattern.wavelength_A
    # xPDFsuite's [PDF] keys in its order (so a diff is line by line), then ours;
    # "none" where xPDFsuite writes an unused placeholder wavelength for Q data
    h: dict[str, Any] = {
        "wavelength": "none" if wl is None else float(wl),
        "dataformat": fmt,
        "inputfile": name(pattern),
        "backgroundfile": name(background),
        "mode": "xray",
        "bgscale": float(f"{bscale:.10g}"),
        "composition": config.composition,
        "outputtype": "gr",
        "qmaxinst": round(float(qmaxinst), 6),
        "qmin": float(qmin),
        "qmax": round(float(qmax), 6),
        "rmax": float(config.rmax_A),
        "rmin": float(config.rmin_A),
        "rstep": float(config.rstep_A),
        "rpoly": float(config.rpoly_A),
        "lorch": bool(config.lorch),
        "qmax_auto": bool(qmax_auto),
        "bgscale_auto": bool(bkg_auto),
        "polydegree": round(float(degree), 6),
        "fqgrid": bool(config.fq_grid),
        "normalization_k": float(f"{k:.8g}"),
    }
    return h


def _q_range(pattern: Pattern, config: PdfConfig):
    """The points used (mask), qmin, qmaxinst, the polynomial degree and whether qmax is auto.

    Raises
    ------
    InputError
        A Q range that is empty, beyond the data, or too short for the correction polynomial.
    """
    q_all = pattern.q
    qmin = float(config.qmin_invA)
    if config.qmaxinst_invA is None:
        qmaxinst = _last_nonzero_q(q_all, pattern.y)
    else:
        qmaxinst = float(config.qmaxinst_invA)
        step = float(np.median(np.diff(q_all)))
        if qmaxinst > q_all[-1] + 0.5 * step:
            raise InputError(
                f"qmaxinst = {qmaxinst:g} Å⁻¹ is beyond the data (Q ≤ {q_all[-1]:.4g} Å⁻¹)"
            )
    if qmin >= qmaxinst:
        raise InputError(f"qmin = {qmin:g} Å⁻¹ is not below qmaxinst = {qmaxinst:g} Å⁻¹")
    m = (q_all >= qmin - 1e-9) & (q_all <= qmaxinst + 1e-9)
    q = q_all[m]
    if q.size < 2:
        raise InputError(f"fewer than 2 data points in [{qmin:g}, {qmaxinst:g}] Å⁻¹")
    degree = float(config.rpoly_A * (q[-1] - q[0]) / np.pi)
    if q.size < degree + 5:
        raise InputError(
            f"only {q.size} points in [{qmin:g}, {qmaxinst:g}] Å⁻¹; the correction polynomial "
            f"of degree {degree:.3g} needs at least {int(degree) + 5}"
        )
    qmax_auto = _is_auto(config.qmax_invA)
    if not qmax_auto and config.qmax_invA is not None:
        qmax_req = float(config.qmax_invA)
        if qmax_req > qmaxinst + 1e-9:
            raise InputError(
                f"qmax = {qmax_req:g} Å⁻¹ is beyond the data used (qmaxinst = {qmaxinst:.4g} Å⁻¹)"
            )
    return m, qmin, qmaxinst, degree, qmax_auto


def _background_scale(pattern, background, config, qmin: float, qmaxinst: float):
    """The background scale (0 without one; ``"auto"`` resolved) and whether it was automatic."""
    bkg_auto = background is not None and _is_auto(config.bkg_scale)
    if background is None:
        bscale = 0.0
    elif bkg_auto:
        bscale, wanted = _auto_bkg_scale(pattern, background, qmin, qmaxinst)
        if wanted is not None:
            warnings.warn(
                f"bkg_scale 'auto' = {bscale:.4g} is the largest scale that keeps "
                f"I_sample - s*I_background non-negative; the background's sharp features "
                f"ask for {wanted:.4g} (is it the container of this sample, measured alike?)",
                InputWarning,
                stacklevel=4,
            )
    else:
        bscale = float(config.bkg_scale)
    return bscale, bkg_auto


def _result(pattern, config, header, q, r, curves, qmax, numbers) -> PdfResult:
    """The I(Q), S(Q), F(Q) and G(r) Patterns with the xPDFsuite header, as a PdfResult."""
    ic, sc, s, ss, f, sf, g, sg = curves
    qmin, qmaxinst, qmax_auto, bscale, bkg_auto, degree, k = numbers
    wl = pattern.wavelength_A
    iq = Pattern(q, ic, units.Q_A, wl, sc, {**header, "outputtype": "iq"})
    mq = q <= qmax + 1e-9
    sq = Pattern(q[mq], s[mq], units.Q_A, wl, _cut(ss, mq), {**header, "outputtype": "sq"})
    fq = Pattern(q[mq], f[mq], units.Q_A, wl, _cut(sf, mq), {**header, "outputtype": "fq"})
    gr = Pattern(r, g, units.R_A, None, sg, {**header, "outputtype": "gr"})
    return PdfResult(
        iq=iq,
        sq=sq,
        fq=fq,
        gr=gr,
        qmin_invA=qmin,
        qmax_invA=float(qmax),
        qmaxinst_invA=qmaxinst,
        qmax_auto=qmax_auto,
        bkg_scale=bscale,
        bkg_scale_auto=bkg_auto,
        poly_degree=round(degree, 6),
        scale=k,
        config=config,
        header=header,
    )
