r"""Rietveld-lite whole-pattern refinement on lmfit.

One call, :func:`refine`, fits a powder pattern (I(Q) from the synchrotron, or
I(2θ) at any wavelength, or lab Cu Kα1/Kα2 Bragg–Brentano data) with one or
more crystal phases from :mod:`xrdpdf.physics`:

* per phase: scale, free cell parameters of its crystal system, crystallite size
  (spheres of diameter D, :mod:`xrdpdf.physics.crystallite`), optional microstrain (2εQ),
  Biso per element, occupancies (by default those sites that share a position,
  e.g. Na on the NaTiO2 4a site; vacancies allowed, or a sum constraint);
* global: zero offset (or Bragg–Brentano displacement/transparency for lab data),
  Chebyshev background (n terms), optional broad amorphous hump (a Gaussian in x).

The instrument profile comes from a resolution file, or a stated Gaussian width
(``fwhm_inst``); it is never refined.  Without either, all broadening is attributed
to the crystallites and the sizes are reported as lower bounds
(``size_is_lower_bound``), as in a Scherrer analysis without instrument correction.

The release is staged: scale + background → (isotropic lattice search) →
lattice + zero → profile → Biso/occupancy, each stage a bounded Levenberg–
Marquardt least-squares fit (lmfit ``leastsq``) with weights 1/σ².

Notes
-----
Model (Q data; 2θ data without Cu Kα are the Q model evaluated at Q(2θ − zero)):

.. math::

    y_c(Q) = y_b(Q) + \sum_p S_p \sum_h \frac{m_h |F_h|^2}{V_p^2 Q_h^2}
             \,\mathrm{pV}(Q - Q_h - Z;\ \Gamma_h, \eta_h)

For lab Cu Kα data each reflection contributes a Kα1 and a Kα2 (½) line with
area :math:`S_p m|F|^2 L_p/V_p^2` and :math:`L_p=(1+\cos^2 2\theta)/(\sin^2\theta\cos\theta)`.
Widths (in Q, mapped to 2θ by dQ/d2θ): the instrument's Gaussian and Lorentzian
FWHMs and those of the sphere size profile, :math:`\Gamma_G^2 = \Gamma_{G,i}^2 +
(0.823\cdot2\pi/D)^2`, :math:`\Gamma_L = \Gamma_{L,i} + 0.361\cdot2\pi/D + 2\varepsilon Q`,
combined by Thompson–Cox–Hastings (:func:`xrdpdf.physics.crystallite.combined_fwhm_eta`).
The size is reported as D and as the Scherrer length K·D/1.10665 for the K given.

Figures of merit (Toby 2006 [1]_), w = 1/σ², N points, P varied parameters;
the background is *included* in the denominators:

.. math::

    R_{wp} = \sqrt{\frac{\sum w(y_o-y_c)^2}{\sum w y_o^2}},\quad
    R_p = \frac{\sum|y_o-y_c|}{\sum y_o},\quad
    R_{exp} = \sqrt{\frac{N-P}{\sum w y_o^2}},\quad
    \chi^2 = \frac{\sum w(y_o-y_c)^2}{N-P},\quad \mathrm{GoF}=\sqrt{\chi^2}

:math:`R_{Bragg} = \sum_h |I_{o,h}-I_{c,h}|/\sum_h I_{o,h}` with the Rietveld
partition :math:`I_{o,h} = \sum_i c_{ih}(y_o-y_b)_i/(y_c-y_b)_i` [2]_.
Weight fractions (Hill & Howard 1987 [3]_): the scale multiplies
m|F|²/V², so it is proportional to the volume fraction and
:math:`w_p = S_p\rho_p/\sum_i S_i\rho_i`, ρ the crystallographic density.

Estimated standard deviations are lmfit's (covariance scaled by χ²); derived values
(D, Scherrer length, weight and crystalline fractions) are lmfit ``expr`` parameters,
whose esds lmfit propagates from the covariance.

The work is split into private modules: ``_setup`` (options, parameters),
``_model`` (forward model), ``_fit`` (staged least squares),
``_report`` (figures of merit, verdict, results), ``_fractions``.

References
----------
.. [1] B. H. Toby (2006). Powder Diffr. 21, 67. https://doi.org/10.1154/1.2179804
.. [2] H. M. Rietveld (1969). J. Appl. Cryst. 2, 65. https://doi.org/10.1107/S0021889869006558
.. [3] R. J. Hill & C. J. Howard (1987). J. Appl. Cryst. 20, 467.
       https://doi.org/10.1107/S0021889887086199
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

from xrdpdf._core.pattern import Pattern
from xrdpdf.physics.crystal import Phase
from xrdpdf.physics.resolution import Resolution, scherrer_size_definition
from xrdpdf.stages.refinement import _fit, _report, _setup
from xrdpdf.stages.refinement._results import PhaseResult, RefinementResult
from xrdpdf.stages.refinement._setup import STAGES

__all__ = ["refine", "RefinementResult", "PhaseResult", "RefinementWarning", "STAGES"]

#: Goniometer radius (mm) assumed when none is given: the PANalytical X'Pert / Empyrean
#: and Bruker D8 standard circles are 240 and 250 mm (Philips PW1050: 173 mm).
DEFAULT_GONIOMETER_RADIUS_MM = 240.0

size_definition = scherrer_size_definition


class RefinementWarning(UserWarning):
    """Issued when a refinement did not converge (the result says ``converged=False``)."""


def refine(
    pattern: Pattern,
    phases: Phase | str | Sequence[Phase | str],
    *,
    cuka: bool = False,
    resolution: Resolution | None = None,
    anode: str | None = None,
    kbeta: bool = False,
    displacement: bool | None = None,
    transparency: bool = False,
    goniometer_radius_mm: float = DEFAULT_GONIOMETER_RADIUS_MM,
    refine_zero: bool | None = None,
    refine_ka2_ratio: bool = False,
    fwhm_inst: float | None = None,
    n_background: int = 6,
    k_scherrer: float = 0.9,
    size_start_A: float | Sequence[float] = 50.0,
    refine_size: bool = True,
    refine_lattice: bool = True,
    refine_strain: bool = False,
    refine_biso: bool = True,
    refine_occupancy: Mapping[str, Sequence[str]] | None = None,
    occupancy_sum: bool = True,
    amorphous: bool = False,
    amorphous_start: tuple[float, float] | None = None,
    background_pattern: Pattern | None = None,
    lattice_search: float = 0.03,
    xrange: tuple[float | None, float | None] | None = None,
    max_nfev: int = 2000,
    reference_composition: str | Mapping[str, float] | None = None,
    warn: bool = True,
) -> RefinementResult:
    r"""Refine crystal phases against a powder pattern.

    Parameters
    ----------
    pattern : Pattern
        I(Q) (``"q_A^-1"``) or I(2θ) (``"2th_deg"``, with its wavelength; for
        ``cuka`` the wavelength is ignored).  Points with σ ≤ 0 are dropped;
        without σ, Poisson σ = √max(y, 1) is used and a warning says so.
    phases : Phase, str or sequence
        Phases or built-in names / CIF paths (:func:`xrdpdf.physics.cif.get_phase`).
    cuka : bool
        Lab Cu Kα1 + Kα2 Bragg–Brentano data in 2θ (same as ``anode="Cu"``).
    anode : str, optional
        Lab tube anode (``"Cu"``, ``"Mo"``, ``"Co"``, ``"Ag"``, ``"Cr"``): Bragg–Brentano
        2θ data with its Kα1/Kα2 doublet (:func:`xrdpdf.physics.scattering.anode_lines`).
    kbeta : bool
        Add the Kβ1,3 line with a refined intensity (lab data only).
    displacement : bool, optional
        Refine the sample displacement s (mm; 2θ shift −2s cosθ/R).  Default: refined
        for lab (Bragg–Brentano) data, absent (zero) for Debye–Scherrer/transmission data.
    transparency : bool
        Also refine the transparency length t = 1/(2μ) (mm; shift −t sin2θ/R), lab only.
    goniometer_radius_mm : float
        Goniometer radius R (mm) that converts the shifts to s and t; default
        :data:`DEFAULT_GONIOMETER_RADIUS_MM`.
    refine_zero : bool, optional
        Refine the 2θ (or Q) zero offset.  Default: yes, except when displacement or
        transparency is refined (a zero offset and s cosθ are nearly collinear; the
        zero of a Bragg–Brentano goniometer is set by its alignment).
    refine_ka2_ratio : bool
        Refine the Kα2/Kα1 intensity ratio (start 0.5, bounds 0.3–0.7); it is only
        determined where the doublet is resolved (sharp peaks, high angles).
    resolution : Resolution, optional
        Instrument FWHM/η model (from a calibrant measured in the same geometry).
    fwhm_inst : float, optional
        Gaussian instrument FWHM in the pattern's x unit, used without
        ``resolution``.  Without either, the instrument width is zero: all
        broadening is the crystallites' and sizes are lower bounds.
    n_background : int
        Chebyshev background terms (≥ 1).
    k_scherrer : float
        Scherrer K (FWHM) of the reported ``size_A`` = K·D/1.10665: 0.9 ⇒ ≈ V^⅓;
        1.107 ⇒ the sphere diameter D (always reported as ``diameter_A``).
    size_start_A : float or sequence
        Start value of the size per phase (Å, as ``size_A``).
    refine_size, refine_strain, refine_biso : bool
        Free flags of these parameter groups.
    refine_lattice : bool
        Free the cell parameters (default); False keeps every cell as given (and skips
        the isotropic lattice search).
    refine_occupancy : mapping, optional
        Phase name → site labels whose occupancy is refined.  Default: on each shared
        position every site but the last (Na1 of NaTiO2).
    occupancy_sum : bool
        True (default): the occupancies on a shared position keep their starting sum,
        the split is refined and the last site is dependent (exchange, Ti1 = 1 − Na1,
        its esd propagated).  False: vacancies allowed, each free occupancy bounded so
        the position is at most full (desodiation: Na leaves, Ti stays).
        (:mod:`xrdpdf.stages.refinement._sites`).
    amorphous : bool
        Add a broad Gaussian hump (amplitude ≥ 0, centre, FWHM refined).
    background_pattern : Pattern, optional
        A measured pattern added to the background with a refined scale ≥ 0, e.g. the
        fully amorphous electrode as the reference for the amorphous matrix of a
        partly crystalline one.  It must be in the same unit as ``pattern`` and cover
        the fitted range; it is interpolated linearly onto the data points.
    amorphous_start : (centre, fwhm), optional
        In x units; default Q = 2.0, FWHM 1.5 Å⁻¹ (converted for 2θ).
    lattice_search : float
        Before the lattice least squares, scan an isotropic scale of all cells
        over ±``lattice_search`` (relative) and start from the best; 0 to skip.
    xrange : (xmin, xmax), optional
        Fit range in x units.
    max_nfev : int
        Function evaluations allowed per stage.
    reference_composition : str or mapping, optional
        Composition of the amorphous reference (``"TiO2"``); with ``background_pattern``
        on Q data it gives each phase's ``crystalline_fraction``
        (:mod:`xrdpdf.stages.refinement._fractions`).
    warn : bool
        Issue a :class:`RefinementWarning` when the refinement did not converge and for
        each parameter left at a bound (default).  False for a caller that reports
        ``converged``, ``message`` and ``warnings`` of the result itself (a series row, a
        notebook panel), so that it need not filter warnings: ``warnings.catch_warnings``
        changes process-wide state and is not thread-safe.

    Returns
    -------
    RefinementResult

    Raises
    ------
    InputError
        Bad pattern, phase, unit, wavelength or settings.

    Warns
    -----
    RefinementWarning
        With ``warn``, when the refinement did not converge (``converged`` is False) and
        for each parameter at a bound (also in ``warnings``).
    """
    args = dict(locals())  # the keyword arguments, validated into one Options
    plist = _setup.as_phases(phases)
    opts = _setup.check_options(pattern, plist, args)
    notes: list[str] = []
    pat = _setup.fit_points(pattern, xrange, notes)
    model = _setup.build_model(pat, plist, opts, background_pattern)
    params, groups = _setup.build_parameters(model, opts)
    y, w = pat.y, 1.0 / pat.sigma**2
    fit = _fit.staged_fit(params, groups, model, y, w, opts)
    verdict = _report.judge(fit, model, opts, notes)
    _report.add_derived(fit, model, opts, verdict)
    result = _assemble(pat, model, fit, opts, verdict, notes)
    if not warn:
        return result
    if not verdict.converged:
        warnings.warn(
            f"refinement did not converge: {verdict.message}", RefinementWarning, stacklevel=2
        )
    for txt in verdict.bound_notes:
        warnings.warn(txt, RefinementWarning, stacklevel=2)
    return result


def _assemble(pat, model, fit, opts, verdict, notes) -> RefinementResult:
    params = fit.params
    v = params.valuesdict()
    y, w = pat.y, 1.0 / pat.sigma**2
    y_calc, y_bkg = model.calc(v), model.background(v)
    n_par = int(fit.last.nvarys)
    fom = _report.figures_of_merit(y, w, y_calc, n_par)
    aberr = tuple(
        t
        for t, n in (("zero", "zero"), ("displacement", "displ_mm"), ("transparency", "transp_mm"))
        if n in params and params[n].vary
    )
    displ = params.get("displ_mm")
    return RefinementResult(
        pattern=pat,
        y_calc=y_calc,
        y_background=y_bkg,
        phases=tuple(_report.phase_results(model, fit, y, y_calc, y_bkg, opts, verdict)),
        zero=float(v["zero"]),
        zero_esd=_report.esd(params["zero"]),
        **fom,
        n_points=int(y.size),
        n_params=n_par,
        converged=verdict.converged,
        message=verdict.message,
        warnings=tuple(notes),
        correlations=_report.correlations(params),
        parameters=_report.parameter_table(params),
        stages=fit.stages,
        k_scherrer=opts.k_scherrer,
        size_definition=size_definition(opts.k_scherrer),
        unit=pat.unit,
        background_coeffs=tuple(float(v[f"bkg_{j}"]) for j in range(model.nb)),
        displacement_mm=None if displ is None else float(displ.value),
        displacement_esd_mm=None if displ is None else _report.esd(displ),
        aberrations=aberr,
    )
