"""pyFAI integration configs (``WorkerConfig`` JSON, as pyFAI-integrate and Dioptas save them).

Parsing and writing go through :class:`pyFAI.io.integration_config.WorkerConfig`,
which also upgrades the older layouts (versions 1–4) that Dioptas and earlier
pyFAI-integrate wrote; this module only maps its fields onto xrdpdf's names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from xrdpdf._core.errors import InputError

__all__ = ["is_worker_config", "read_worker_config", "worker_config_dict"]

_UNITS = ("q_A^-1", "2th_deg")


def is_worker_config(path: str | os.PathLike) -> bool:
    """True when ``path`` is a JSON object with pyFAI integration keys (not a PONI)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(1).lstrip()
            if head != b"{":
                return False
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(d, dict) and (
        d.get("application") in ("worker", "pyfai-integrate") or "nbpt_rad" in d
    )


def read_worker_config(path: str | os.PathLike) -> dict[str, Any]:
    """The pieces of a WorkerConfig JSON in xrdpdf's terms.

    Returns
    -------
    dict
        ``poni`` (a dict pyFAI's ``load`` takes), ``mask``, ``darks`` (list),
        ``flat`` (paths or None), ``npt``, ``unit`` (pyFAI name),
        ``polarization_factor`` (None when off), ``correct_solid_angle``,
        ``error_model`` (``"poisson"``, ``"azimuthal"`` or None),
        ``radial_range``.

    Raises
    ------
    InputError
        Unreadable JSON, a 2-D (cake) configuration, no geometry.
    """
    from pyFAI.io.integration_config import WorkerConfig

    path = Path(path)
    try:
        cfg = WorkerConfig.from_dict(json.loads(path.read_text(encoding="utf-8")), inplace=True)
    except Exception as exc:  # pyFAI raises assorted errors on a malformed config
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise InputError(f"{path}: not a pyFAI integration config ({reason})") from None
    if cfg.do_2D:
        raise InputError(f"{path}: a 2-D (cake) integration config; xrdpdf integrates 1-D")
    if cfg.poni is None:
        raise InputError(f"{path}: the integration config holds no geometry")
    poni = cfg.poni.as_dict() if hasattr(cfg.poni, "as_dict") else dict(cfg.poni)
    unit = str(cfg.unit) if cfg.unit is not None else None
    if unit is not None and unit not in _UNITS:
        raise InputError(f"{path}: radial unit {unit!r}; xrdpdf integrates to q_A^-1 or 2th_deg")
    darks = cfg.dark_current
    if isinstance(darks, str):
        darks = [d.strip() for d in darks.split(",") if d.strip()]
    em = str(getattr(cfg.error_model, "name", cfg.error_model) or "").lower()
    return {
        "poni": poni,
        "mask": cfg.mask_file or None,
        "darks": list(darks) if darks else None,
        "flat": cfg.flat_field or None,
        "npt": cfg.nbpt_rad,
        "unit": unit,
        "polarization_factor": cfg.polarization_factor,
        "correct_solid_angle": bool(cfg.correct_solid_angle),
        "error_model": {"poisson": "poisson", "azimuthal": "azimuthal"}.get(em),
        "radial_range": tuple(cfg.radial_range) if cfg.radial_range else None,
    }


def worker_config_dict(
    poni: dict[str, Any],
    *,
    npt: int,
    unit: str,
    polarization_factor: float | None,
    correct_solid_angle: bool,
    error_model: str,
    mask: str | None = None,
    darks: list[str] | None = None,
    flat: str | None = None,
    radial_range: tuple[float, float] | None = None,
    method: tuple[str, str, str] | None = None,
) -> dict[str, Any]:
    """A WorkerConfig (current pyFAI version) as a JSON-ready dict, made by pyFAI."""
    from pyFAI.io.integration_config import WorkerConfig

    cfg = WorkerConfig(
        poni=dict(poni),
        nbpt_rad=int(npt),
        unit=unit,
        correct_solid_angle=bool(correct_solid_angle),
        mask_file=mask,
        dark_current=list(darks) if darks else None,
        flat_field=flat,
        error_model=error_model,
        radial_range=list(radial_range) if radial_range else None,
        method=list(method) if method else None,
    )
    if polarization_factor is not None:
        cfg.polarization_factor = float(polarization_factor)
    return json.loads(json.dumps(cfg.as_dict(), default=_plain))


def _plain(obj: Any) -> Any:
    if hasattr(obj, "value") and hasattr(obj, "name"):  # enums (detector orientation)
        return obj.value
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
