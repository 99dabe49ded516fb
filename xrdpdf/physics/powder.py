r"""The powder forward model: phases → a pattern in Q or 2θ with size and strain broadening.

Notes
-----
Integrated intensity of a reflection group of multiplicity :math:`m`
(Debye–Scherrer geometry, polarization removed by the integration) is, in Q,

.. math::  A_Q = S\, m |F|^2 / (V^2 Q^2)

and in 2θ for lab Bragg–Brentano data :math:`A_{2\theta} = S\, m|F|^2 L_p / V^2`,
:math:`L_p = (1+\cos^2 2\theta)/(\sin^2\theta\cos\theta)`.  Dividing by the
squared cell volume :math:`V^2` makes the scale :math:`S` proportional to the
volume fraction of the phase, so weight fractions are
:math:`w_p = S_p\rho_p/\sum_i S_i\rho_i` (Hill & Howard [1]_).

Size (Scherrer) and microstrain broadening are Lorentzian:
:math:`\Gamma_{L,Q} = 2\pi K/L + 2\varepsilon Q` (Williamson–Hall in Q); profiles from
:mod:`xrdpdf.physics.profiles`, the instrument from :mod:`xrdpdf.physics.resolution`.

References
----------
.. [1] R. J. Hill & C. J. Howard (1987). J. Appl. Cryst. 20, 467.
       https://doi.org/10.1107/S0021889887086199
.. [2] B. H. Toby (2006). Powder Diffr. 21, 67. https://doi.org/10.1154/1.2179804
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf.physics.crystal import Phase
from xrdpdf.physics.profiles import lp_bragg_brentano, pseudo_voigt, tch_split
from xrdpdf.physics.resolution import Resolution, peak_widths
from xrdpdf.physics.scattering import CU_KA1_A, CU_KA2_A, CU_KA2_RATIO

__all__ = [
    "powder_pattern",
]


def _per_phase(value, n: int, what: str) -> list:
    if value is None or np.isscalar(value):
        return [value] * n
    vals = list(value)
    if len(vals) != n:
        raise InputError(f"{what}: give one value or one per phase ({n}), got {len(vals)}")
    return vals


def powder_pattern(
    phases: Phase | Sequence[Phase],
    x,
    *,
    unit: str = units.Q_A,
    wavelength_A: float | None = None,
    cuka: bool = False,
    scale: float | Sequence[float] = 1.0,
    size_A: float | Sequence[float | None] | None = None,
    k_scherrer: float = 0.9,
    strain: float | Sequence[float] = 0.0,
    fwhm_inst: float | None = None,
    eta_inst: float = 0.0,
    resolution: Resolution | None = None,
    zero: float = 0.0,
) -> np.ndarray:
    r"""Powder pattern of one or more phases on the grid ``x`` (peaks only, no background).

    Parameters
    ----------
    phases : Phase or sequence of Phase
        From :func:`get_phase`.
    x : (N,) array_like
        Grid in ``unit``.
    unit : str
        ``"q_A^-1"`` (Q, Å⁻¹) or ``"2th_deg"`` (2θ, degrees).
    wavelength_A : float, optional
        Wavelength (Å); required for ``"2th_deg"`` unless ``cuka``.
    cuka : bool
        Lab Cu Kα1 + Kα2 (I₂/I₁ = 0.5) in Bragg–Brentano geometry with its
        Lorentz-polarization factor; ``unit`` must be ``"2th_deg"``.
    scale : float or sequence
        Scale per phase; the intensity is ``scale · m|F|²/V²`` × geometry factor,
        so the scale is proportional to the phase's volume fraction.
    size_A : float, sequence or None
        Scherrer length L (Å) per phase of spheres of diameter D = 1.10665·L/K,
        whose size profile broadens the peaks (:mod:`xrdpdf.physics.crystallite`).
        ``None``: no size broadening.
    k_scherrer : float
        Scherrer constant K for the FWHM (0.9 ⇒ ``size_A`` ≈ V^⅓ of spheres;
        1.107 ⇒ sphere diameter D).
    strain : float or sequence
        Microstrain ε per phase: Lorentzian Γ_L = 2εQ (Williamson–Hall).
    fwhm_inst, eta_inst : float, optional
        Constant instrument FWHM in ``unit`` (Å⁻¹ or degrees 2θ) and its η.
        Ignored if ``resolution`` is given.
    resolution : Resolution, optional
        Instrument FWHM(x) and η(x) model (see :class:`Resolution`).
    zero : float
        Zero offset in ``unit``: a peak calculated at x₀ appears at x₀ + zero.

    Returns
    -------
    (N,) ndarray
        Intensity at each x (arbitrary absolute scale: electrons²/Å⁶ × scale).

    Raises
    ------
    InputError
        No width at all (neither size, strain nor instrument), unknown unit,
        or a missing wavelength.

    Notes
    -----
    In Q the integrated area of a reflection group is
    :math:`S\,m|F|^2/(V^2Q^2)` (Debye–Scherrer, polarization removed).  For 2θ
    data without ``cuka`` the Q model is evaluated at Q(2θ − zero): pyFAI's
    2θ output holds point values, not densities.  With ``cuka`` areas in 2θ are
    :math:`S\,m|F|^2 L_p/V^2` per line, Lp from :func:`lp_bragg_brentano`.
    Profiles: pseudo-Voigt with TCH widths from :func:`peak_widths`; the
    instrument's (FWHM, η) is split into Gaussian and Lorentzian parts by
    :func:`tch_split`.
    """
    plist, x, scales, sizes, strains = _checked(
        phases, x, unit, scale, size_A, strain, cuka, resolution, fwhm_inst
    )
    widths = {"k_scherrer": k_scherrer, "resolution": resolution, "fwhm_inst": fwhm_inst,
              "eta_inst": eta_inst}  # fmt: skip
    if cuka:
        return _lab_pattern(plist, x, scales, sizes, strains, zero, widths)
    return _synchrotron_pattern(plist, x, unit, wavelength_A, scales, sizes, strains, zero, widths)


def _checked(phases, x, unit, scale, size_A, strain, cuka, resolution, fwhm_inst):
    """The phases as a list, x as a float grid and the per-phase values, checked."""
    plist = [phases] if isinstance(phases, Phase) else list(phases)
    if not plist:
        raise InputError("powder_pattern needs at least one phase")
    x = np.asarray(x, float)
    if x.ndim != 1 or x.size < 1:
        raise InputError(f"x must be a 1-D grid, got shape {x.shape}")
    n = len(plist)
    scales = _per_phase(scale, n, "scale")
    sizes = _per_phase(size_A, n, "size_A")
    strains = _per_phase(strain, n, "strain")
    for s in sizes:
        if s is not None and (not np.isfinite(s) or s <= 0):
            raise InputError(f"size_A must be positive Å, got {s}")
    if unit not in (units.Q_A, units.TTH_DEG):
        raise InputError(f"unit must be q_A^-1 or 2th_deg, got {unit!r}")
    if cuka and unit != units.TTH_DEG:
        raise InputError("cuka patterns are computed in 2θ: use unit='2th_deg'")
    if resolution is None and fwhm_inst is None:
        if any(s is None and not st for s, st in zip(sizes, strains, strict=True)):
            raise InputError("give size_A, strain or an instrument width (fwhm_inst/resolution)")

    return plist, x, scales, sizes, strains


def _synchrotron_pattern(plist, x, unit, wavelength_A, scales, sizes, strains, zero, widths):
    """Debye–Scherrer peaks of one wavelength on a Q or 2θ grid (areas ∝ m|F|²/(V²Q²))."""
    k_scherrer, resolution = widths["k_scherrer"], widths["resolution"]
    fwhm_inst, eta_inst = widths["fwhm_inst"], widths["eta_inst"]
    y = np.zeros_like(x)
    if unit == units.TTH_DEG:
        wl = units.check_wavelength(wavelength_A, "a 2θ powder pattern")
        qgrid = units.tth_to_q(np.clip(x - zero, 0.0, 179.9), wl)
        zero_q = 0.0
    else:
        qgrid, zero_q, wl = x, zero, wavelength_A
    qmax = float(np.max(qgrid))
    for ph, sc, sz, st in zip(plist, scales, sizes, strains, strict=True):
        refl = ph.reflections(qmax + 1.0)
        if len(refl) == 0:
            continue
        qh = refl.q_invA
        if resolution is not None:
            fw_i, eta_i = resolution.fwhm_eta_q(qh, wl)
        elif fwhm_inst is not None:
            # constant width in the grid's unit; for 2θ convert at each peak
            conv = (
                1.0
                if unit == units.Q_A
                else ((2 * np.pi / wl) * np.cos(np.arcsin(qh * wl / (4 * np.pi))) * np.radians(1.0))
            )
            fw_i, eta_i = np.full_like(qh, fwhm_inst) * conv, np.full_like(qh, eta_inst)
        else:
            fw_i, eta_i = np.zeros_like(qh), np.zeros_like(qh)
        ig, il = tch_split(fw_i, eta_i)
        fw, eta = peak_widths(
            qh, size_A=sz, k_scherrer=k_scherrer, strain=st, inst_gauss_q=ig, inst_lorentz_q=il
        )
        area = sc * refl.intensity / (ph.volume_A3**2 * qh**2)
        y += (area[None, :] * pseudo_voigt(qgrid[:, None], qh[None, :] + zero_q, fw, eta)).sum(
            axis=1
        )
    return y


def _lab_pattern(plist, x, scales, sizes, strains, zero, widths):
    """Lab Cu Kα1/Kα2 Bragg–Brentano peaks on a 2θ grid (areas ∝ m|F|²·Lp/V²)."""
    k_scherrer, resolution = widths["k_scherrer"], widths["resolution"]
    fwhm_inst, eta_inst = widths["fwhm_inst"], widths["eta_inst"]
    y = np.zeros_like(x)
    lines = ((CU_KA1_A, 1.0), (CU_KA2_A, CU_KA2_RATIO))
    qmax = float(units.tth_to_q(min(np.max(x) + 5.0, 179.0), CU_KA1_A))
    for ph, sc, sz, st in zip(plist, scales, sizes, strains, strict=True):
        refl = ph.reflections(qmax)
        if len(refl) == 0:
            continue
        base = sc * refl.intensity / ph.volume_A3**2
        for wl, ratio in lines:
            ok = refl.q_invA * wl / (4 * np.pi) < 0.999
            qh = refl.q_invA[ok]
            tth = units.q_to_tth(qh, wl)
            th = np.radians(tth) / 2
            dq_per_deg = (2 * np.pi / wl) * np.cos(th) * np.radians(1.0)
            if resolution is not None:
                fw_i, eta_i = resolution.fwhm_eta_tth(tth, wl)
            elif fwhm_inst is not None:
                fw_i, eta_i = np.full_like(tth, fwhm_inst), np.full_like(tth, eta_inst)
            else:
                fw_i, eta_i = np.zeros_like(tth), np.zeros_like(tth)
            ig, il = tch_split(fw_i * dq_per_deg, eta_i)
            fw_q, eta = peak_widths(
                qh, size_A=sz, k_scherrer=k_scherrer, strain=st, inst_gauss_q=ig, inst_lorentz_q=il
            )
            fw = fw_q / dq_per_deg
            area = ratio * base[ok] * lp_bragg_brentano(tth)
            y += (area[None, :] * pseudo_voigt(x[:, None], tth[None, :] + zero, fw, eta)).sum(
                axis=1
            )
    return y
