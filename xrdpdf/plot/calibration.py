"""Figure of a detector calibration: the image with the fitted rings, residuals per ring."""

from __future__ import annotations

from typing import Any

import numpy as np

from xrdpdf.plot import new_figure

__all__ = ["ai_calibrant_tth", "calibration_figure"]


def calibration_figure(image: np.ndarray, result: Any, max_side: int = 1024):
    """The calibrant image with control points and fitted rings, and the 2θ residuals per ring.

    Parameters
    ----------
    image : (ny, nx) ndarray
        The calibrant frame.
    result : xrdpdf.stages.calibrate.CalibrationResult
        Geometry, control points, residuals and mask.
    max_side : int
        The image is shown binned down to at most this many pixels a side.

    Returns
    -------
    matplotlib.figure.Figure
    """
    img = np.asarray(image, dtype=float)
    ai = result.integrator()
    ny, nx = img.shape
    b = max(1, int(np.ceil(max(ny, nx) / max_side)))
    shown = np.where(result.mask, np.nan, img)[::b, ::b]
    pos = shown[np.isfinite(shown) & (shown > 0)]
    lo, hi = np.percentile(pos, [5, 99.5]) if pos.size else (1.0, 10.0)
    fig, (ax0, ax1) = new_figure(1, 2, figsize=(11.0, 5.0))
    from matplotlib.colors import LogNorm

    ax0.imshow(
        np.clip(shown, max(lo, 1e-3), None),
        origin="upper",
        cmap="gray_r",
        norm=LogNorm(vmin=max(lo, 1e-3), vmax=max(hi, 2 * max(lo, 1e-3))),
        extent=(0, nx, ny, 0),
        interpolation="nearest",
    )
    tth = np.degrees(ai.array_from_unit(img.shape, "center", "2th_rad", scale=False))[::b, ::b]
    rings = np.unique(result.control_points[:, 2].astype(int)) if result.n_points else []
    cal_tth = np.degrees(np.array([t for t in ai_calibrant_tth(result)], dtype=float))
    levels = np.sort(cal_tth[[r for r in rings if r < cal_tth.size]])
    if levels.size:
        yy, xx = np.mgrid[0:ny:b, 0:nx:b]
        ax0.contour(
            xx + 0.5 * b, yy + 0.5 * b, tth, levels=levels, colors="tab:red", linewidths=0.6
        )
    cp = result.control_points
    if cp.size:
        ax0.scatter(cp[:, 1] + 0.5, cp[:, 0] + 0.5, s=2, c=cp[:, 2], cmap="viridis")
    cx, cy = result.beam_center_px
    ax0.plot([cx], [cy], "+", color="tab:orange", ms=12)
    ax0.set_xlim(0, nx)
    ax0.set_ylim(ny, 0)
    ax0.set_title(
        f"{result.calibrant}: D = {result.direct_distance_m * 1e3:.2f} mm, "
        f"centre ({cx:.1f}, {cy:.1f}) px"
    )
    ax0.set_xlabel("column (px)")
    ax0.set_ylabel("row (px)")

    res = np.asarray(result.residuals_deg)
    if cp.size:
        ring = cp[:, 2].astype(int)
        t_ring = cal_tth[np.clip(ring, 0, cal_tth.size - 1)]
        ax1.plot(t_ring, res * 1e3, ".", ms=2, alpha=0.4, color="tab:blue")
        for r in rings:
            sel = ring == r
            ax1.errorbar(
                cal_tth[r],
                np.mean(res[sel]) * 1e3,
                yerr=np.std(res[sel]) * 1e3,
                fmt="o",
                color="tab:red",
                ms=4,
                capsize=2,
            )
    ax1.axhline(0.0, color="k", lw=0.6)
    ax1.set_xlabel("ring 2θ (°)")
    ax1.set_ylabel("2θ_obs − 2θ_calc (m°)")
    ax1.set_title(
        f"RMS {result.rms_2theta_deg * 1e3:.2f} m°, {result.n_rings} rings, "
        f"{result.n_points} points"
    )
    return fig


def ai_calibrant_tth(result: Any) -> list[float]:
    """2θ (rad) of the calibrant rings of ``result`` (pyFAI numbering of distinct rings)."""
    from xrdpdf.stages.calibrate import get_calibrant

    cal = get_calibrant(result.calibrant, result.wavelength_A)
    return [t for t in cal.get_2th() if t is not None]
