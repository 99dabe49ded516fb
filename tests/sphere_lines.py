"""Exact powder lines of spheres: an independent forward model for the refinement and size tests.

Written here, not taken from xrdpdf: the line of a sphere of diameter D is the cosine transform
of its common-volume function A(L) (Stokes & Wilson), the model xrdpdf approximates.
"""

import numpy as np

GL_T, GL_W = np.polynomial.legendre.leggauss(512)


def sphere_line(dq, diameter, sigma_q, gamma_q=0.0):
    """Unit-area line of spheres of diameter D (Å) ⊗ Gaussian σ ⊗ Lorentzian HWHM γ (Å⁻¹).

    φ(ΔQ) = (1/π)∫₀ᴰ A(L) e^(−σ²L²/2 − γL) cos(ΔQ L) dL with A(L) = 1 − 3L/2D + L³/2D³
    (a product in L is a convolution in ΔQ), by 512-point Gauss–Legendre quadrature where
    |ΔQ|·D < 300; beyond, the 1/ΔQ² tail 3/(2πDΔQ²) of the kink of A at L = 0.
    """
    dq = np.asarray(dq, float)
    L = 0.5 * diameter * (GL_T + 1.0)
    w = 0.5 * diameter * GL_W
    u = L / diameter
    a = (1 - 1.5 * u + 0.5 * u**3) * np.exp(-0.5 * (sigma_q * L) ** 2 - gamma_q * L) * w
    out = 3.0 / (2 * np.pi * diameter * np.maximum(dq * dq, 1e-300))
    near = np.abs(dq) * diameter < 300.0
    out[near] = np.cos(np.multiply.outer(dq[near], L)) @ a / np.pi
    return out
