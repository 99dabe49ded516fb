"""The one data container: a 1-D pattern with its unit, wavelength and provenance."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from xrdpdf._core import units
from xrdpdf._core.errors import InputError

__all__ = ["Pattern"]


def _frozen_array(a, name: str) -> np.ndarray:
    arr = np.array(a, dtype=float, copy=True)
    if arr.ndim != 1:
        raise InputError(f"Pattern.{name} must be 1-D, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False, slots=True)
class Pattern:
    """A powder pattern, S(Q), F(Q) or G(r): radial values, intensities and units.

    Parameters
    ----------
    x : (N,) ndarray
        Radial values in ``unit``, strictly increasing, ≥ 0 (2θ ≤ 180°).
    y : (N,) ndarray
        Intensity (or S, F, G) at each ``x``.
    unit : str
        ``"q_A^-1"`` (Q in Å⁻¹), ``"2th_deg"`` (2θ in degrees) or ``"r_A"`` (r in Å).
    wavelength_A : float or None
        X-ray wavelength in Å.  Required for 2θ data; ``None`` is allowed for Q
        or r data whose source states none.
    sigma : (N,) ndarray or None
        One-standard-deviation uncertainty of ``y``; ``None`` if unknown.
    metadata : Mapping
        Provenance: source file, frame, integration settings.  Read-only.

    Notes
    -----
    Arrays are copied and made read-only; transforms return a new Pattern via
    :func:`dataclasses.replace` (see :meth:`replace`).  ``eq=False`` because
    array equality is ambiguous: compare with :func:`numpy.allclose`.
    """

    x: np.ndarray
    y: np.ndarray
    unit: str
    wavelength_A: float | None = None
    sigma: np.ndarray | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        src = dict(self.metadata or {}).get("source", "pattern")
        x = _frozen_array(self.x, "x")
        y = _frozen_array(self.y, "y")
        if x.shape != y.shape:
            raise InputError(f"{src}: x and y differ in length ({x.size} vs {y.size})")
        if x.size < 2:
            raise InputError(f"{src}: a pattern needs at least 2 points, got {x.size}")
        if self.unit not in units.KNOWN_UNITS:
            raise InputError(
                f"{src}: unknown unit {self.unit!r}; allowed: {', '.join(units.KNOWN_UNITS)}"
            )
        if not np.all(np.isfinite(x)):
            raise InputError(f"{src}: radial values contain NaN or inf")
        if not np.all(np.isfinite(y)):
            n = int(np.sum(~np.isfinite(y)))
            raise InputError(f"{src}: {n} intensities are NaN or inf")
        if np.any(np.diff(x) <= 0):
            raise InputError(f"{src}: radial values must be strictly increasing")
        if x[0] < 0:  # Q = 4π sin θ/λ, 2θ and r are never negative
            name, unit = {units.Q_A: ("Q", "Å⁻¹"), units.TTH_DEG: ("2θ", "°")}.get(
                self.unit, ("r", "Å")
            )
            raise InputError(
                f"{src}: {name} values must be ≥ 0, the first is {x[0]:g} {unit} "
                "(a shifted or mislabelled x column?)"
            )
        if self.unit == units.TTH_DEG and x[-1] > 180:
            raise InputError(f"{src}: 2θ values must be ≤ 180°, the last is {x[-1]:g}")
        wl = self.wavelength_A
        if wl is not None:
            wl = units.check_wavelength(wl)
        elif self.unit == units.TTH_DEG:
            raise InputError(f"{src}: 2θ data need a wavelength; give wavelength_A")
        sig = None
        if self.sigma is not None:
            sig = _frozen_array(self.sigma, "sigma")
            if sig.shape != y.shape:
                raise InputError(f"{src}: sigma and y differ in length ({sig.size} vs {y.size})")
            if not np.all(np.isfinite(sig)) or np.any(sig < 0):
                raise InputError(f"{src}: uncertainties must be finite and ≥ 0")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "sigma", sig)
        object.__setattr__(self, "wavelength_A", wl)
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata or {})))

    # ------------------------------------------------------------------ helpers
    def __len__(self) -> int:
        return int(self.x.size)

    def __repr__(self) -> str:
        wl = "None" if self.wavelength_A is None else f"{self.wavelength_A:g} Å"
        return (
            f"Pattern({self.unit}, n={self.x.size}, x={self.x[0]:.4g}…{self.x[-1]:.4g}, "
            f"λ={wl}, sigma={'yes' if self.sigma is not None else 'no'})"
        )

    def replace(self, **changes: Any) -> Pattern:
        """Return a copy with fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def with_metadata(self, **extra: Any) -> Pattern:
        """Return a copy whose metadata has ``extra`` added."""
        md = dict(self.metadata)
        md.update(extra)
        return dataclasses.replace(self, metadata=md)

    @property
    def source(self) -> str:
        """The file this pattern came from, or ``"pattern"``."""
        return str(self.metadata.get("source", "pattern"))

    # -------------------------------------------------------------- conversions
    @property
    def q(self) -> np.ndarray:
        """Q values in Å⁻¹ (converted from 2θ with the pattern's wavelength)."""
        if self.unit == units.Q_A:
            return self.x
        if self.unit == units.TTH_DEG:
            return units.tth_to_q(self.x, self.wavelength_A)
        raise InputError(f"{self.source}: {self.unit} data have no Q axis")

    @property
    def tth_deg(self) -> np.ndarray:
        """2θ values in degrees (needs the wavelength for Q data)."""
        if self.unit == units.TTH_DEG:
            return self.x
        if self.unit == units.Q_A:
            units.check_wavelength(self.wavelength_A, f"{self.source}: Q → 2θ")
            return units.q_to_tth(self.x, self.wavelength_A)
        raise InputError(f"{self.source}: {self.unit} data have no 2θ axis")

    @property
    def d_A(self) -> np.ndarray:
        """d-spacings in Å (2π/Q)."""
        return units.q_to_d(self.q)

    def to_q(self) -> Pattern:
        """The same samples with the radial axis as Q in Å⁻¹.

        Point values are kept (pyFAI's output is an azimuthal mean per solid
        angle, not a density, so no Jacobian is applied; re-integrate in Q for
        a regular Q grid).
        """
        if self.unit == units.Q_A:
            return self
        return dataclasses.replace(self, x=self.q, unit=units.Q_A)

    def to_tth(self, wavelength_A: float | None = None) -> Pattern:
        """The same samples on a 2θ axis (degrees) for ``wavelength_A`` (Å).

        With a different wavelength than the pattern's, the conversion goes
        through Q (the physics is in Q).
        """
        wl = self.wavelength_A if wavelength_A is None else wavelength_A
        wl = units.check_wavelength(wl, f"{self.source}: conversion to 2θ")
        q = self.q
        return dataclasses.replace(
            self, x=units.q_to_tth(q, wl), unit=units.TTH_DEG, wavelength_A=wl
        )

    def crop(self, xmin: float | None = None, xmax: float | None = None) -> Pattern:
        """Points with ``xmin <= x <= xmax`` (in the pattern's own unit)."""
        keep = np.ones(self.x.size, bool)
        if xmin is not None:
            keep &= self.x >= xmin
        if xmax is not None:
            keep &= self.x <= xmax
        if keep.sum() < 2:
            raise InputError(f"{self.source}: fewer than 2 points in [{xmin}, {xmax}] {self.unit}")
        sig = None if self.sigma is None else self.sigma[keep]
        return dataclasses.replace(self, x=self.x[keep], y=self.y[keep], sigma=sig)
