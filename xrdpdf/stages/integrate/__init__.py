r"""Azimuthal integration of detector frames to I(Q) or I(2θ) through pyFAI.

An :class:`Integrator` is built once per geometry (PONI), detector shape,
mask, dark, flat and settings, and reused for every frame: pyFAI keeps the
sparse (CSR) pixel-splitting matrix it builds on the first call, so later
frames cost one sparse product.  :func:`integrate_frames` is the batch loop
the CLI uses; it reads the next frame in a thread while the current one is
integrated.

Two engines give the same answer:

``"pyfai"``
    ``AzimuthalIntegrator.integrate1d`` (or ``sigma_clip_ng`` for outlier
    rejection) — the reference.
``"fast"``
    :class:`xrdpdf.stages._fastint.SparseIntegrator`: pyFAI's own CSR coefficients
    with the constant per-bin normalisation folded in once.

Notes
-----
Per radial bin :math:`k`, pyFAI returns the ratio of sums over the pixels
:math:`i` (with splitting fractions :math:`c_{ik}`)

.. math::

    I_k = \frac{\sum_i c_{ik}\,(r_i - d_i)}{\sum_i c_{ik}\, f_i\, \Omega_i\, P_i},
    \qquad
    \sigma_k = \frac{\sqrt{\sum_i c_{ik}^2\, v_i}}{\sum_i c_{ik}\, f_i\, \Omega_i\, P_i},

with raw counts :math:`r`, dark :math:`d`, flat :math:`f`, relative solid angle
:math:`\Omega` and polarisation factor
:math:`P = \tfrac12[1 + \cos^2 2\theta - p\cos 2\chi\,(1 - \cos^2 2\theta)]`
(:math:`p` = ``polarization_factor``, +1 horizontal); the Poisson model sets
:math:`v_i = r_i` (raw counts, before dark subtraction).  Pixels masked, NaN
or negative in the raw frame are left out.

References
----------
.. [1] Ashiotis et al., "The fast azimuthal integration Python library:
   pyFAI", J. Appl. Cryst. 48, 510 (2015). https://doi.org/10.1107/S1600576715004306
.. [2] Kieffer et al., "Application of signal separation to diffraction image
   compression and serial crystallography", J. Synchrotron Rad. 27, 558 (2020).
   https://doi.org/10.1107/S1600577520000776
"""

from xrdpdf.stages._geomsnap import GeometrySnapshot
from xrdpdf.stages.integrate._files import (
    cached_integrator,
    integrate_frames,
    integrate_image,
    integrator_from_files,
    settings_from_worker_config,
)
from xrdpdf.stages.integrate._integrator import (
    Integrator,
    worker_config,
)
from xrdpdf.stages.integrate._settings import (
    DEFAULT_METHOD,
    MAX_NPT,
    METHODS,
    SPLIT_METHODS,
    FrameResult,
    IntegrationSettings,
    default_method,
    load_poni,
    poni_wavelength_A,
)

__all__ = [
    "DEFAULT_METHOD",
    "MAX_NPT",
    "default_method",
    "METHODS",
    "SPLIT_METHODS",
    "IntegrationSettings",
    "FrameResult",
    "Integrator",
    "load_poni",
    "poni_wavelength_A",
    "integrate_image",
    "integrate_frames",
    "integrator_from_files",
    "cached_integrator",
    "GeometrySnapshot",
    "settings_from_worker_config",
    "worker_config",
]
