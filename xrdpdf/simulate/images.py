r"""Simulated data with real physics: powder patterns of a phase and detector images.

* :func:`simulate_pattern` — a 1-D I(Q) of a crystalline phase (the
  crystallography lives in :mod:`xrdpdf.physics`).
* :func:`simulate_image` — a 2-D detector frame from any 1-D I(Q) for a given
  pyFAI geometry: the expected counts of pixel *i* are

  .. math::

      \langle n_i \rangle = s\, I(Q_i)\, P_i\, \Omega_i\, f_i + b,

  with :math:`Q_i` pyFAI's own pixel-centre Q (``array_from_unit``),
  :math:`P_i` pyFAI's polarisation factor, :math:`\Omega_i` its relative solid
  angle (cos³ of the incidence angle), :math:`f_i` an optional flat field and
  :math:`s` a scale (counts per unit intensity).  The frame is a Poisson draw
  of that (seeded), plus a dark current with Gaussian read noise; a beamstop
  with its arm, dead pixels (0) and hot pixels (saturated) can be added.
  An azimuthal integration with the same corrections therefore returns I(Q).

Nothing here calls :mod:`xrdpdf.stages.integrate`: tests use these images as truth
for the integration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern

__all__ = [
    "Beamstop",
    "SimulatedImage",
    "simulate_image",
    "simulate_dark",
    "simulate_pattern",
    "beam_centre_px",
]


@dataclass(frozen=True)
class Beamstop:
    """A round beamstop at the beam centre, held by a straight arm to the detector edge.

    Attributes
    ----------
    radius_px : float
        Radius of the disc in pixels.
    arm_width_px : float
        Full width of the arm in pixels (0: no arm).
    arm_angle_deg : float
        Direction of the arm from the centre, in degrees from the +column
        (fast) axis towards +row.
    transmission : float
        Fraction of the signal that passes (0 = opaque).
    """

    radius_px: float = 40.0
    arm_width_px: float = 12.0
    arm_angle_deg: float = 90.0
    transmission: float = 0.0

    def __post_init__(self) -> None:
        if self.radius_px < 0 or self.arm_width_px < 0:
            raise InputError("beamstop radius and arm width must be ≥ 0 pixels")
        if not 0.0 <= self.transmission <= 1.0:
            raise InputError(f"beamstop transmission must be in [0, 1], got {self.transmission}")

    def mask(self, shape: tuple[int, int], centre_rc: tuple[float, float]) -> np.ndarray:
        """Boolean map (``True`` = shadowed) for a detector ``shape`` and beam centre (row, col)."""
        rows, cols = np.indices(shape, dtype=float)
        dr = rows + 0.5 - centre_rc[0]  # pixel centres, in pixel units
        dc = cols + 0.5 - centre_rc[1]
        shadow = dr**2 + dc**2 <= self.radius_px**2
        if self.arm_width_px > 0:
            a = np.radians(self.arm_angle_deg)
            along = dc * np.cos(a) + dr * np.sin(a)
            across = -dc * np.sin(a) + dr * np.cos(a)
            shadow |= (along >= 0) & (np.abs(across) <= self.arm_width_px / 2)
        return shadow


@dataclass(frozen=True, eq=False)
class SimulatedImage:
    """A simulated frame and its ground truth.

    Attributes
    ----------
    data : (rows, cols) ndarray
        The frame as a detector would record it (float64 counts).
    expected : (rows, cols) ndarray
        Noise-free signal ⟨n⟩ without dark, beamstop, dead or hot pixels.
    dark : (rows, cols) ndarray
        The noise-free dark level added to ``data`` (subtract it as the dark).
    beamstop : (rows, cols) ndarray of bool
        Pixels shadowed by the beamstop and its arm.
    dead : (rows, cols) ndarray of bool
        Pixels that read 0.
    hot : (rows, cols) ndarray of bool
        Pixels stuck at the saturation value.
    q_invA : (rows, cols) ndarray
        Q of each pixel centre (Å⁻¹).
    """

    data: np.ndarray
    expected: np.ndarray
    dark: np.ndarray
    beamstop: np.ndarray
    dead: np.ndarray
    hot: np.ndarray
    q_invA: np.ndarray

    @property
    def bad(self) -> np.ndarray:
        """Everything a user would mask: beamstop, dead and hot pixels."""
        return self.beamstop | self.dead | self.hot


def beam_centre_px(ai) -> tuple[float, float]:
    """Beam centre (row, column) in pixel coordinates (pixel edges at integers)."""
    f2d = ai.getFit2D()
    return float(f2d["centerY"]), float(f2d["centerX"])


def _shape(ai, shape: tuple[int, int] | None) -> tuple[int, int]:
    if shape is None:
        shape = ai.detector.shape or ai.detector.max_shape
    if shape is None:
        raise InputError("the detector has no shape; give shape=(rows, cols)")
    return int(shape[0]), int(shape[1])


def simulate_dark(
    shape: tuple[int, int],
    dark_counts: float,
    *,
    read_noise: float = 0.0,
    seed: int | None = 0,
) -> np.ndarray:
    """A dark frame: constant level ``dark_counts`` plus Gaussian read noise (seeded)."""
    rng = np.random.default_rng(seed)
    dark = np.full(shape, float(dark_counts))
    if read_noise > 0:
        dark = dark + rng.normal(0.0, read_noise, shape)
    return dark


def simulate_image(
    pattern: Pattern,
    ai,
    *,
    shape: tuple[int, int] | None = None,
    scale: float = 1.0,
    polarization_factor: float | None = 0.99,
    correct_solid_angle: bool = True,
    flat: np.ndarray | None = None,
    noise: bool = True,
    dark_counts: float = 0.0,
    read_noise: float = 0.0,
    beamstop: Beamstop | None = None,
    dead_fraction: float = 0.0,
    hot_fraction: float = 0.0,
    hot_value: float = 65535.0,
    seed: int | None = 0,
    defect_seed: int | None = None,
) -> SimulatedImage:
    r"""Simulate a detector frame from a 1-D pattern I(Q) and a pyFAI geometry.

    Parameters
    ----------
    pattern : Pattern
        I(Q) (or I(2θ) with its wavelength; converted to Q).  Pixels outside
        its Q range get 0.
    ai : pyFAI AzimuthalIntegrator
        Geometry (e.g. ``pyFAI.load("calib/11idc_default.poni")``).
    shape : (int, int), optional
        Frame shape; default the detector's.
    scale : float
        Counts per unit of I at unit solid angle and polarisation.
    polarization_factor : float or None
        pyFAI polarisation factor (+1 horizontal, 0 unpolarised, ``None``: no
        polarisation effect).
    correct_solid_angle : bool
        Multiply by the relative solid angle (what integration divides by).
    flat : (rows, cols) ndarray, optional
        Relative pixel efficiency multiplied into the signal.
    noise : bool
        Draw Poisson counts; otherwise the frame is the expectation.
    dark_counts, read_noise : float
        Dark level added to every pixel, and its Gaussian read noise (σ).
    beamstop : Beamstop, optional
        Shadow at the beam centre (its ``transmission`` times the signal).
    dead_fraction, hot_fraction : float
        Fractions of pixels that read 0, or ``hot_value``.
    seed : int or None
        Seed of the random generator of the noise.
    defect_seed : int or None
        Seed of the dead/hot pixel map (default ``seed``); the map depends on it
        and the shape only, so frames with the same ``defect_seed`` share their
        bad pixels, as frames of one detector do.

    Returns
    -------
    SimulatedImage

    Notes
    -----
    :math:`\langle n_i\rangle = s\,I(Q_i)\,P_i\,\Omega_i\,f_i` with
    :math:`P = \tfrac12[1+\cos^2 2\theta - p\cos 2\chi\,(1-\cos^2 2\theta)]`
    and :math:`\Omega = \cos^3\alpha` (α the incidence angle), as pyFAI
    defines them [1]_.  I(Q) is interpolated linearly at pixel centres.

    References
    ----------
    .. [1] Ashiotis et al., J. Appl. Cryst. 48, 510 (2015).
       https://doi.org/10.1107/S1600576715004306
    """
    if pattern.unit == units.TTH_DEG:
        pattern = pattern.to_q()
    elif pattern.unit != units.Q_A:
        raise InputError(
            f"{pattern.source}: image simulation needs I(Q) or I(2θ), got {pattern.unit}"
        )
    if not np.isfinite(scale) or scale <= 0:
        raise InputError(f"scale must be > 0 counts per unit intensity, got {scale}")
    for name, frac in (("dead_fraction", dead_fraction), ("hot_fraction", hot_fraction)):
        if not 0.0 <= frac < 1.0:
            raise InputError(f"{name} must be in [0, 1), got {frac}")
    if dark_counts < 0 or read_noise < 0:
        raise InputError("dark counts and read noise must be ≥ 0")
    shape = _shape(ai, shape)
    rng = np.random.default_rng(seed)
    defect_rng = np.random.default_rng(
        np.random.SeedSequence(seed if defect_seed is None else defect_seed).spawn(1)[0]
    )
    q = np.asarray(ai.array_from_unit(shape, "center", units.Q_A, scale=True), dtype=float)
    y = np.interp(q, pattern.x, pattern.y, left=0.0, right=0.0)
    if np.any(pattern.y < 0):
        raise InputError(f"{pattern.source}: intensities must be ≥ 0 to simulate counts")
    expected = scale * y
    if polarization_factor is not None:
        expected = expected * np.asarray(ai.polarization(shape, factor=polarization_factor))
    if correct_solid_angle:
        expected = expected * np.asarray(ai.solidAngleArray(shape))
    if flat is not None:
        flat = np.asarray(flat, dtype=float)
        if flat.shape != shape:
            raise InputError(f"flat shape {flat.shape} differs from the frame shape {shape}")
        expected = expected * flat
    signal = expected
    shadow = np.zeros(shape, bool)
    if beamstop is not None:
        shadow = beamstop.mask(shape, beam_centre_px(ai))
        signal = np.where(shadow, expected * beamstop.transmission, expected)
    data = rng.poisson(signal).astype(np.float64) if noise else signal.astype(np.float64)
    dark = np.full(shape, float(dark_counts))
    if dark_counts > 0 or read_noise > 0:
        data = data + dark
        if read_noise > 0:
            data = data + rng.normal(0.0, read_noise, shape)
    dead = np.zeros(shape, bool)
    hot = np.zeros(shape, bool)
    n = shape[0] * shape[1]
    if dead_fraction > 0 or hot_fraction > 0:
        picks = defect_rng.permutation(n)
        nd, nh = int(round(dead_fraction * n)), int(round(hot_fraction * n))
        dead.flat[picks[:nd]] = True
        hot.flat[picks[nd : nd + nh]] = True
        data[dead] = 0.0
        data[hot] = float(hot_value)
    return SimulatedImage(data, expected, dark, shadow, dead, hot, q)


def simulate_pattern(
    phase: Any,
    *,
    qmin_invA: float = 0.5,
    qmax_invA: float = 25.0,
    npt: int = 5000,
    wavelength_A: float | None = None,
    fwhm_invA: float = 0.05,
    eta: float = 0.3,
    size_A: float | None = None,
    strain: float = 0.0,
    peak_max: float = 100.0,
    background: float = 5.0,
    **kwargs: Any,
) -> Pattern:
    r"""Powder pattern I(Q) of a crystalline phase, for image simulation and demos.

    Parameters
    ----------
    phase : str or Phase
        A built-in phase name (``"CeO2"``, ``"anatase"``, ``"NaTiO2"``, ``"Ni"``, ...),
        a CIF path, or a :class:`xrdpdf.physics.crystal.Phase`.
    qmin_invA, qmax_invA : float
        Q range (Å⁻¹).
    npt : int
        Number of points of the regular Q grid.
    wavelength_A : float, optional
        Stored with the pattern (I(Q) itself does not depend on it).
    fwhm_invA, eta : float
        Instrument pseudo-Voigt FWHM (Å⁻¹) and Lorentzian fraction.
    size_A, strain : float, optional
        Scherrer size (Å) and microstrain, as in :func:`xrdpdf.physics.powder.powder_pattern`.
    peak_max : float
        The strongest point of the Bragg part is scaled to this value (``<= 0``:
        keep the absolute scale of ``powder_pattern``).
    background : float
        Constant added everywhere (diffuse and air scattering stand-in).
    **kwargs
        Passed on to :func:`xrdpdf.physics.powder.powder_pattern`.

    Returns
    -------
    Pattern
        I(Q) on a regular Q grid; metadata names the phase and the settings.

    Notes
    -----
    The area of a reflection group in Q is :math:`S\,m|F|^2/(V^2Q^2)`
    (Debye–Scherrer geometry, polarisation removed, as after integration);
    see :mod:`xrdpdf.physics`.
    """
    from xrdpdf import physics as phases

    if not 0 <= qmin_invA < qmax_invA:
        raise InputError(f"need 0 ≤ qmin < qmax (Å⁻¹), got {qmin_invA}, {qmax_invA}")
    if int(npt) < 2:
        raise InputError(f"npt must be ≥ 2, got {npt}")
    if background < 0:
        raise InputError(f"background must be ≥ 0, got {background}")
    ph = phases.get_phase(phase)
    q = np.linspace(qmin_invA, qmax_invA, int(npt))
    y = np.asarray(
        phases.powder_pattern(
            ph,
            q,
            unit=units.Q_A,
            fwhm_inst=fwhm_invA,
            eta_inst=eta,
            size_A=size_A,
            strain=strain,
            **kwargs,
        ),
        dtype=float,
    )
    if peak_max > 0 and y.max() > 0:
        y = y * (peak_max / y.max())
    name = getattr(ph, "name", None) or str(phase)
    md = {
        "source": f"simulated:{name}",
        "phase": name,
        "fwhm_invA": fwhm_invA,
        "eta": eta,
        "size_A": size_A,
        "strain": strain,
        "background": background,
    }
    return Pattern(
        q,
        y + background,
        units.Q_A,
        wavelength_A,
        metadata={k: v for k, v in md.items() if v is not None},
    )
