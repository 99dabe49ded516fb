r"""The crystallite-size model shared by whole-pattern refinement and single-peak sizes.

Both :func:`xrdpdf.stages.refinement.refine` and :func:`xrdpdf.stages.size.scherrer` describe size
broadening by spheres of diameter D and report D (and, for a Scherrer constant K, the
Scherrer length of those spheres).  The instrument profile enters only from a resolution
file or a stated width; it is never a free catch-all width.

Notes
-----
**Sphere profile.**  The size-broadened line of a powder of spheres of diameter D is the
cosine transform of the common-volume function :math:`A(L) = 1 - 3L/2D + L^3/2D^3`
(Stokes & Wilson 1942 [1]_; Langford & Wilson 1978 [2]_).  In Q, with unit area:

.. math::

    \phi(\Delta Q) = \frac{1}{\pi}\int_0^D A(L)\cos(\Delta Q\,L)\,dL

(closed form in :func:`sphere_profile`).  Its FWHM is :math:`1.10665\cdot 2\pi/D` and its
integral breadth :math:`\tfrac43\cdot 2\pi/D` (so ⟨L⟩_vol = ¾D).

**Pseudo-Voigt form.**  The refinement and the single-peak fits use Thompson–Cox–Hastings
pseudo-Voigts [3]_.  The sphere profile is written as one with Gaussian and Lorentzian
FWHMs :math:`\Gamma_G = c_G\,2\pi/D`, :math:`\Gamma_L = c_L\,2\pi/D`, where
:data:`SPHERE_GAUSS_FWHM` = c_G and :data:`SPHERE_LORENTZ_FWHM` = c_L are the weighted
least-squares match of the TCH pseudo-Voigt to :func:`sphere_profile` over ±80/D Å⁻¹ with
Poisson weights :math:`1/(\phi + 0.1\,\phi_{max})` (a peak on a background of a tenth of
its height, as in a powder fit; rms misfit 0.75 % of the peak height).  The matched
pseudo-Voigt's FWHM is :data:`SPHERE_PV_FWHM` = 1.0286·2π/D, 7 % narrower than the exact
profile's, because a weighted least-squares pseudo-Voigt trades the rounded top of the
sphere profile against its 1/ΔQ² tails; a pseudo-Voigt fitted to a measured
sphere-broadened peak therefore gives :math:`D = 2\pi\cdot 1.0286/\Gamma`
(:func:`diameter_from_fwhm`).

**Instrument.**  Gaussian FWHMs of instrument and sample add in quadrature, Lorentzian
ones linearly (the Voigt convolution rule), microstrain adds :math:`2\varepsilon Q` to the
Lorentzian (:func:`combined_fwhm_eta`).

**Scherrer length.**  For a Scherrer constant K used with the FWHM, spheres of diameter D
have :math:`L = K D / 1.10665` (K = 1.107: D; K = 0.89–0.9: V^⅓ ≈ 0.81 D; K = 0.83:
⟨L⟩_vol = ¾D) (:func:`scherrer_length`).

References
----------
.. [1] A. R. Stokes & A. J. C. Wilson (1942). Proc. Camb. Phil. Soc. 38, 313.
       https://doi.org/10.1017/S0305004100021988
.. [2] J. I. Langford & A. J. C. Wilson (1978). J. Appl. Cryst. 11, 102.
       https://doi.org/10.1107/S0021889878012844
.. [3] P. Thompson, D. E. Cox & J. B. Hastings (1987). J. Appl. Cryst. 20, 79.
       https://doi.org/10.1107/S0021889887085211
"""

from __future__ import annotations

import math

import numpy as np

from xrdpdf._core.errors import InputError
from xrdpdf.physics.profiles import tch_fwhm_eta

__all__ = [
    "SPHERE_GAUSS_FWHM",
    "SPHERE_LORENTZ_FWHM",
    "SPHERE_PV_FWHM",
    "SPHERE_K_FWHM",
    "SPHERE_K_BETA",
    "sphere_profile",
    "sphere_widths",
    "diameter_from_fwhm",
    "scherrer_length",
    "diameter_from_scherrer",
    "combined_fwhm_eta",
]

#: Gaussian FWHM of the sphere size profile as a TCH pseudo-Voigt, in units of 2π/D.
SPHERE_GAUSS_FWHM = 0.82334
#: Lorentzian FWHM of the sphere size profile as a TCH pseudo-Voigt, in units of 2π/D.
SPHERE_LORENTZ_FWHM = 0.36098
#: FWHM of that pseudo-Voigt (TCH of the two above), in units of 2π/D.
SPHERE_PV_FWHM = 1.02861
#: FWHM of the exact sphere profile in units of 2π/D (Scherrer K of D with the FWHM).
SPHERE_K_FWHM = 1.10665
#: Integral breadth of the exact sphere profile in units of 2π/D (Scherrer K of D, breadth).
SPHERE_K_BETA = 4.0 / 3.0


def sphere_profile(dq_invA, diameter_A: float) -> np.ndarray:
    r"""Unit-area size profile of spheres of diameter D at ΔQ (Å⁻¹) from the peak.

    Notes
    -----
    .. math::

        \phi(\Delta Q) = \frac{1}{\pi}\int_0^D \Big(1-\frac{3L}{2D}+\frac{L^3}{2D^3}\Big)
        \cos(\Delta Q L)\,dL

    evaluated in closed form with x = ΔQ·D (its area over ΔQ is 1, its peak 3D/8π).
    """
    d = float(diameter_A)
    if not d > 0:
        raise InputError(f"diameter_A must be > 0 Å, got {diameter_A!r}")
    x = np.abs(np.asarray(dq_invA, float)) * d
    small = x < 0.05
    xs = np.where(small, 1.0, x)
    s, c = np.sin(xs), np.cos(xs)
    i0 = s / xs
    i1 = (xs * s + c - 1.0) / xs**2
    i3 = (xs**3 * s + 3 * xs**2 * c - 6 * xs * s - 6 * c + 6.0) / xs**4
    val = i0 - 1.5 * i1 + 0.5 * i3
    # the closed form cancels digits as x → 0 (6/x⁴ terms): its series 3/8 − x²/48 + x⁴/1920
    val = np.where(small, 0.375 - x**2 / 48.0 + x**4 / 1920.0, val)
    return d * val / math.pi


def _check_diameter(diameter_A) -> np.ndarray:
    d = np.asarray(diameter_A, float)
    if not np.all(d > 0):
        raise InputError(f"diameter_A must be > 0 Å, got {diameter_A!r}")
    return d


def sphere_widths(diameter_A) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian and Lorentzian FWHM (Å⁻¹) of the size profile of spheres of diameter D (Å)."""
    unit = 2.0 * math.pi / _check_diameter(diameter_A)
    return SPHERE_GAUSS_FWHM * unit, SPHERE_LORENTZ_FWHM * unit


def diameter_from_fwhm(fwhm_invA) -> np.ndarray:
    """D (Å) of spheres whose size profile, as a pseudo-Voigt, has FWHM ``fwhm_invA`` (Å⁻¹)."""
    fw = np.asarray(fwhm_invA, float)
    return 2.0 * math.pi * SPHERE_PV_FWHM / fw


def scherrer_length(diameter_A, k_scherrer: float):
    """Scherrer length L = K·D/1.10665 (Å) of spheres of diameter D for the constant K (FWHM)."""
    return k_scherrer * np.asarray(diameter_A, float) / SPHERE_K_FWHM


def diameter_from_scherrer(length_A, k_scherrer: float):
    """Inverse of :func:`scherrer_length`: D = 1.10665·L/K (Å)."""
    return SPHERE_K_FWHM * np.asarray(length_A, float) / k_scherrer


def combined_fwhm_eta(
    inst_gauss_invA, inst_lorentz_invA, size_fwhm_invA, strain, q_invA
) -> tuple[np.ndarray, np.ndarray]:
    r"""Total (FWHM Å⁻¹, η) of instrument ⊗ sphere size ⊗ microstrain at Q.

    Parameters
    ----------
    inst_gauss_invA, inst_lorentz_invA : array_like
        Instrument Gaussian and Lorentzian FWHM (Å⁻¹).
    size_fwhm_invA : float
        FWHM of the sphere size profile as a pseudo-Voigt, 2π·1.0286/D (Å⁻¹); 0 for none.
    strain : float
        Microstrain ε (Lorentzian FWHM 2εQ).
    q_invA : array_like
        Peak positions (Å⁻¹).

    Notes
    -----
    .. math::

        \Gamma_G^2 = \Gamma_{G,i}^2 + (c_G\,w/c)^2,\qquad
        \Gamma_L = \Gamma_{L,i} + c_L\,w/c + 2\varepsilon Q

    with w the size FWHM and c = :data:`SPHERE_PV_FWHM`, combined by
    :func:`xrdpdf.physics.profiles.tch_fwhm_eta`.
    """
    q = np.asarray(q_invA, float)
    w = abs(float(size_fwhm_invA)) / SPHERE_PV_FWHM
    g = np.sqrt(np.asarray(inst_gauss_invA, float) ** 2 + (SPHERE_GAUSS_FWHM * w) ** 2)
    lo = np.asarray(inst_lorentz_invA, float) + SPHERE_LORENTZ_FWHM * w + 2.0 * abs(strain) * q
    return tch_fwhm_eta(np.broadcast_to(g, q.shape), np.broadcast_to(lo, q.shape))
