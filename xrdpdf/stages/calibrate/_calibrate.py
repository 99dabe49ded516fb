r"""Headless detector calibration from a calibrant image, automatic masks, instrument resolution.

A calibrant (CeO2, LaB6, Ni, Si, ...) image is turned into a pyFAI geometry without a GUI:

1. :func:`auto_mask` flags module gaps, dead (zero, negative, non-finite) and hot pixels.
2. A robust *start geometry* is built from the image alone: the beam centre from the point
   symmetry of the rings (an FFT auto-convolution, then the sharpest radial profile), the ring
   radii from that radial profile, and the ring order and distance from the *ratios* of the ring
   radii matched to the calibrant d-spacings (independent of the distance).
3. pyFAI does the rest: ``SingleGeometry.extract_cp`` (ring extraction, ``Massif`` peak picking)
   and ``GeometryRefinement.refine3`` (least squares in 2θ), repeated with more rings each time,
   with outlier points dropped between passes.
4. The result is refused with :class:`~xrdpdf.CalibrationError` when the rings are not found
   where the refined geometry predicts them (wrong calibrant, wrong wavelength, blank image),
   whatever the residual.

:func:`instrument_resolution` integrates the calibrant with the refined geometry, fits each
resolved calibrant peak with a pseudo-Voigt and stores the peak widths as a smooth model.

References
----------
.. [1] G. Caglioti, A. Paoletti, F. P. Ricci, "Choice of collimators for a crystal spectrometer
   for neutron diffraction", Nucl. Instrum. 3 (1958) 223, doi:10.1016/0369-643X(58)90029-X.
.. [2] G. Ashiotis et al., "The fast azimuthal integration Python library: pyFAI",
   J. Appl. Cryst. 48 (2015) 510, doi:10.1107/S1600576715004306.
.. [3] J. Kieffer, V. Valls, N. Blanc, C. Hennig, "New tools for calibrating diffraction setups",
   J. Synchrotron Rad. 27 (2020) 558, doi:10.1107/S1600577520000776.
"""

from __future__ import annotations

import copy
import io as _io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import signal

from xrdpdf._core.errors import CalibrationError, InputError
from xrdpdf._core.results import Result
from xrdpdf.stages.calibrate._start import (
    _assign_rings,
    _centre_from_symmetry,
    _inner_centre,
    _pixels,
    _profile_peaks,
    _radial_profile,
    _refine_centre,
)
from xrdpdf.stages.calibrate.calibrants import (
    _check_wavelength,
    _unique_tth,
    get_calibrant,
    make_detector,
)
from xrdpdf.stages.calibrate.masks import auto_mask

__all__ = [
    "CalibrationResult",
    "calibrate",
]


@dataclass(frozen=True, eq=False)
class CalibrationResult(Result):
    """A refined detector geometry and how well the calibrant rings support it.

    Attributes
    ----------
    dist_m, poni1_m, poni2_m : float
        pyFAI distance and point of normal incidence (m).
    rot1_rad, rot2_rad, rot3_rad : float
        pyFAI detector rotations (rad).
    wavelength_A : float
        Wavelength (Å), refined only when asked.
    rms_2theta_deg : float
        RMS of 2θ_obs − 2θ_calc over the control points (degrees).
    n_rings, n_points : int
        Rings and control points used in the final refinement.
    beam_center_px : (float, float)
        Direct-beam position (x = column, y = row) in pixels, Fit2D convention.
    direct_distance_m : float
        Sample to direct-beam-spot distance (m), Fit2D convention.
    control_points : (N, 3) ndarray
        Row, column (pixels) and calibrant ring index of each control point.
    residuals_deg : (N,) ndarray
        2θ_obs − 2θ_calc of each control point (degrees).
    rings_expected, rings_found : int
        Resolvable calibrant rings inside the image and how many of them a 1-D integration
        shows at the predicted place.
    mask : (ny, nx) ndarray of bool
        The mask used (True = masked).
    poni_text : str
        The PONI file (version 2.1) as text.
    geometry : dict
        pyFAI ``get_config()`` of the geometry (JSON-able).
    detector_name : str
    calibrant : str
    start : dict
        The start geometry (centre, distance) that the robust search found.
    """

    dist_m: float
    poni1_m: float
    poni2_m: float
    rot1_rad: float
    rot2_rad: float
    rot3_rad: float
    wavelength_A: float
    rms_2theta_deg: float
    n_rings: int
    n_points: int
    beam_center_px: tuple[float, float]
    direct_distance_m: float
    control_points: np.ndarray
    residuals_deg: np.ndarray
    rings_expected: int
    rings_found: int
    mask: np.ndarray
    poni_text: str
    geometry: dict
    detector_name: str
    calibrant: str
    start: dict = field(default_factory=dict)

    def integrator(self):
        """A pyFAI ``AzimuthalIntegrator`` with this geometry."""
        from pyFAI.integrator.azimuthal import AzimuthalIntegrator

        ai = AzimuthalIntegrator()
        ai.set_config(dict(self.geometry))
        return ai

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON summary (the CLI report)."""
        return {
            "dist_m": self.dist_m,
            "poni1_m": self.poni1_m,
            "poni2_m": self.poni2_m,
            "rot1_rad": self.rot1_rad,
            "rot2_rad": self.rot2_rad,
            "rot3_rad": self.rot3_rad,
            "wavelength_A": self.wavelength_A,
            "rms_2theta_deg": self.rms_2theta_deg,
            "n_rings": self.n_rings,
            "n_points": self.n_points,
            "beam_center_x_px": self.beam_center_px[0],
            "beam_center_y_px": self.beam_center_px[1],
            "direct_distance_m": self.direct_distance_m,
            "rings_expected": self.rings_expected,
            "rings_found": self.rings_found,
            "masked_fraction": float(np.mean(self.mask)),
            "detector": self.detector_name,
            "calibrant": self.calibrant,
            "start": dict(self.start),
        }


def _poni_text(ai) -> str:
    from pyFAI.io.ponifile import PoniFile

    buf = _io.StringIO()
    PoniFile(ai).write(buf)
    return buf.getvalue()


def calibrate(
    image: np.ndarray,
    *,
    calibrant: str,
    wavelength_A: float,
    detector=None,
    mask: np.ndarray | None = None,
    distance_guess_m: float | None = None,
    center_guess_px: tuple[float, float] | None = None,
    refine_wavelength: bool = False,
    refine_rot3: bool = False,
    max_rings: int | None = 24,
    auto_masking: bool = True,
    progress: Callable[[str], None] | None = None,
) -> CalibrationResult:
    """Calibrate the detector geometry from one calibrant image, without a GUI.

    Parameters
    ----------
    image : (ny, nx) ndarray
        Calibrant frame (raw or dark-subtracted).
    calibrant : str
        pyFAI calibrant name (``"CeO2"``, ``"LaB6"``, ``"Ni"``, ``"Si"``, ...).
    wavelength_A : float
        Wavelength in Å.  Fixed unless ``refine_wavelength``.
    detector : pyFAI Detector, optional
        Default: a 200 µm detector of the image's shape (:func:`make_detector`).
    mask : (ny, nx) ndarray, optional
        User mask (non-zero = bad), combined with the automatic mask.
    distance_guess_m : float, optional
        Sample–detector distance guess (m).  Without it 0.05–5 m are searched.
    center_guess_px : (float, float), optional
        Beam centre guess (x = column, y = row), pixels.  Without it the whole image is searched.
    refine_wavelength, refine_rot3 : bool
        Free the wavelength / rot3 in the last refinement (both fixed by default).
    max_rings : int, optional
        Use at most this many calibrant rings (default 24; None: all inside the image).
    auto_masking : bool
        Add :func:`auto_mask` to ``mask`` (default True).
    progress : callable, optional
        Called with a short text at each step (e.g. to log on stderr).

    Returns
    -------
    CalibrationResult

    Raises
    ------
    InputError
        Bad arguments (wavelength, shapes, ...).
    CalibrationError
        Blank image, rings that do not match the calibrant at this wavelength, too few control
        points, or rings not found where the refined geometry predicts them.

    Notes
    -----
    The refinement minimises Σ(2θ_obs − 2θ_calc)² over the control points
    (pyFAI ``GeometryRefinement.refine3``) [2]_ [3]_.  The start geometry (centre, distance, ring
    order) comes from ratios of ring radii, R_i = D tan 2θ_i / p, with 2θ_i = 2 asin(λ/2d_i).
    """
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    say = progress or (lambda _msg: None)
    img, cal, detector = _checked_inputs(image, calibrant, wavelength_A, detector, distance_guess_m)
    pixel_m = float(math.sqrt(detector.pixel1 * detector.pixel2))
    say("masking")
    bad, spread = _usable_pixels(img, detector.mask, mask, auto_masking)
    cx, cy, asg = _start_geometry(
        img, ~bad, cal, pixel_m, center_guess_px, distance_guess_m, spread, say
    )
    start = {"center_x_px": cx, "center_y_px": cy, "distance_m": asg.distance_m}

    ai0 = AzimuthalIntegrator(detector=detector, wavelength=wavelength_A * 1e-10)
    ai0.setFit2D(asg.distance_m * 1e3, cx, cy)
    geo, cp, res_deg, n_rings = _refine(
        img, bad, cal, detector, ai0, refine_wavelength, refine_rot3, max_rings, say
    )
    ai = AzimuthalIntegrator()
    ai.set_config(geo.get_config())
    expected, found, rms_deg = _verified(ai, img, bad, cal, res_deg, pixel_m)
    f2d = ai.getFit2D()
    return CalibrationResult(
        dist_m=float(ai.dist),
        poni1_m=float(ai.poni1),
        poni2_m=float(ai.poni2),
        rot1_rad=float(ai.rot1),
        rot2_rad=float(ai.rot2),
        rot3_rad=float(ai.rot3),
        wavelength_A=float(f"{ai.wavelength * 1e10:.12g}"),
        rms_2theta_deg=rms_deg,
        n_rings=n_rings,
        n_points=int(cp.shape[0]),
        beam_center_px=(float(f2d["centerX"]), float(f2d["centerY"])),
        direct_distance_m=float(f2d["directDist"]) * 1e-3,
        control_points=cp,
        residuals_deg=res_deg,
        rings_expected=expected,
        rings_found=found,
        mask=bad,
        poni_text=_poni_text(ai),
        geometry=ai.get_config(),
        detector_name=str(detector.name),
        calibrant=calibrant,
        start=start,
    )


def _checked_inputs(image, calibrant: str, wavelength_A: float, detector, distance_guess_m):
    """The image as float64, the pyFAI calibrant and a detector of the image's shape."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise InputError(f"image must be 2-D, got shape {img.shape}")
    _check_wavelength(wavelength_A)
    if distance_guess_m is not None and not (0.01 <= distance_guess_m <= 10.0):
        raise InputError(f"distance guess {distance_guess_m!r} m out of range [0.01, 10] m")
    cal = get_calibrant(calibrant, wavelength_A)
    if detector is None:
        detector = make_detector(shape=img.shape)
    if detector.shape is not None and tuple(detector.shape) != img.shape:
        raise InputError(
            f"image shape {img.shape} differs from detector {detector.name} shape "
            f"{tuple(detector.shape)}"
        )
    if detector.shape is None:
        detector = copy.deepcopy(detector)  # the caller's detector keeps its own (unset) shape
        detector.shape = img.shape
        detector.max_shape = img.shape
    finite = img[np.isfinite(img)]
    if finite.size == 0 or float(np.ptp(finite)) == 0.0:
        raise CalibrationError("blank image: all pixels are equal or not finite")
    return img, cal, detector


def _usable_pixels(img, det_mask, mask, auto_masking: bool) -> tuple[np.ndarray, float]:
    """The bad-pixel mask (True = bad) and the robust noise level of the good pixels."""
    if auto_masking:
        bad = auto_mask(img, detector_mask=det_mask, user_mask=mask)
    else:
        bad = ~np.isfinite(img)
        for m in (det_mask, mask):
            if m is not None:
                if np.shape(m) != img.shape:
                    raise InputError(f"mask shape {np.shape(m)} differs from image {img.shape}")
                bad |= np.asarray(m) != 0
    valid = ~bad
    if valid.mean() < 0.05:
        raise CalibrationError(f"only {valid.mean():.1%} of the pixels are usable")
    vals = img[valid]
    spread = 1.4826 * float(np.median(np.abs(vals - np.median(vals))))
    if float(np.std(vals)) <= 1e-12 or float(np.percentile(vals, 99.9) - np.median(vals)) <= 0:
        raise CalibrationError("blank image: the unmasked pixels are (nearly) constant")
    return bad, spread


def _start_geometry(img, valid, cal, pixel_m, center_guess_px, distance_guess_m, spread, say):
    """Beam centre (x, y px) and the ring assignment (order, distance) from the image alone."""
    say("beam centre from ring symmetry")
    ny, nx = img.shape
    window = max(50.0, 0.1 * max(ny, nx))
    cx, cy = _centre_from_symmetry(img, valid, center_guess_px, window)
    cx, cy = _inner_centre(img, valid, cx, cy)
    px = _pixels(img, valid, 400_000)
    # profile around the rough centre -> ring radii -> radius that holds ~8 rings
    rad, prof, sem = _radial_profile(img, valid, cx, cy)
    pos, _ = _profile_peaks(rad, prof, min_sep=2.0, sem=sem)
    rmax_c = float(
        np.clip(pos[min(7, pos.size - 1)] if pos.size else 300.0, 150.0, 0.6 * max(ny, nx))
    )
    cx, cy = _refine_centre(px, cx, cy, rmax_c)
    rad, prof, sem = _radial_profile(img, valid, cx, cy, step=0.5)
    pos, strength = _profile_peaks(rad, prof, min_sep=2.0, sem=sem)
    if pos.size < 3:
        raise CalibrationError(
            f"blank image or no rings: found {pos.size} ring(s) in the radial profile around "
            f"({cx:.1f}, {cy:.1f}) px, need at least 3 (noise level {spread:.3g})"
        )
    tth_all = _unique_tth(cal)
    if distance_guess_m is not None:
        drange = (0.75 * distance_guess_m, 1.25 * distance_guess_m)
    else:
        drange = (0.03, 5.0)
    # fit the ratios on the inner rings, where tilts distort least
    use = pos < max(rmax_c * 1.5, np.sort(pos)[min(11, pos.size - 1)] + 1)
    asg = _assign_rings(pos[use], strength[use], tth_all, pixel_m, drange)
    say(
        f"start: centre ({cx:.1f}, {cy:.1f}) px, distance {asg.distance_m * 1e3:.1f} mm, "
        f"{asg.matched}/{asg.observed} rings matched"
    )
    if not (asg.matched >= 3 and asg.matched >= 0.6 * asg.observed and asg.missing <= asg.matched):
        raise CalibrationError(
            f"the rings do not match calibrant {cal.name} at {cal.wavelength * 1e10:.6g} Å: best "
            f"distance {asg.distance_m * 1e3:.1f} mm explains {asg.matched} of {asg.observed} "
            f"rings seen ({asg.missing} predicted rings missing); check the calibrant and "
            "wavelength_A"
        )
    return cx, cy, asg


def _verified(ai, img, bad, cal, res_deg, pixel_m) -> tuple[int, int, float]:
    """Refuse a refined geometry whose rings are not where it predicts them, or a poor fit.

    Returns the resolvable rings expected, those found, and the RMS 2θ residual (degrees).
    """
    expected, found, extra = _check_rings(ai, img, bad, cal)
    if expected < 3 or found < max(3, math.ceil(0.8 * expected)) or extra > 1:
        raise CalibrationError(
            f"rings not found where predicted: {found} of {expected} resolvable {cal.name} "
            f"rings seen at the refined geometry, {extra} strong unexplained peak(s); "
            "check the calibrant, wavelength_A and the guesses"
        )
    rms_deg = float(np.sqrt(np.mean(res_deg**2)))
    pix_deg = math.degrees(pixel_m / ai.dist)
    if rms_deg > pix_deg:
        raise CalibrationError(
            f"poor fit: RMS 2θ residual {rms_deg:.4f}° exceeds one pixel ({pix_deg:.4f}°)"
        )
    return expected, found, rms_deg


def _refine(img, bad, cal, detector, ai0, refine_wavelength, refine_rot3, max_rings, say):
    """pyFAI ring extraction + refinement, with growing ring count and outlier rejection."""
    from pyFAI.goniometer import SingleGeometry

    det = detector
    old_mask = det.mask
    det.mask = bad.astype(np.int8)
    try:
        sg = SingleGeometry(
            "calib", image=img, calibrant=cal, detector=det, geometry=ai0.get_config()
        )
        gr = sg.geometry_refinement
        fix = ["rot3", "wavelength"]
        ntot = _unique_tth(cal).size
        limit = ntot if max_rings is None else min(max_rings, ntot)
        schedule = [n for n in (4, 10) if n < limit] + [limit]
        cp = np.empty((0, 3))
        res = np.empty(0)
        for step, nr in enumerate(schedule):
            say(f"extracting up to {nr} rings")
            sg.extract_cp(max_rings=nr, pts_per_deg=1.0)
            data = np.asarray(gr.data, dtype=float) if gr.data is not None else np.empty((0, 3))
            if data.shape[0] < 10:
                raise CalibrationError(
                    f"too few control points ({data.shape[0]}) on the first {nr} rings"
                )
            if step == 0:
                # first pass: tilts fixed to 0, then free
                gr.refine3(fix=["rot1", "rot2", "rot3", "wavelength"])
            for _ in range(3):
                gr.refine3(fix=fix)
                data = np.asarray(gr.data, dtype=float)
                res = gr.tth(data[:, 0], data[:, 1]) - gr.calc_2th(data[:, 2].astype(int))
                mad = 1.4826 * np.median(np.abs(res - np.median(res)))
                keep = np.abs(res - np.median(res)) < max(5.0 * mad, 1e-7)
                if keep.all():
                    break
                gr.data = data[keep]
            if step == len(schedule) - 1:
                final_fix = []
                if not refine_rot3:
                    final_fix.append("rot3")
                if not refine_wavelength:
                    final_fix.append("wavelength")
                if final_fix != fix:
                    gr.refine3(fix=final_fix)
            data = np.asarray(gr.data, dtype=float)
            cp = data[:, :3].copy()
            res = gr.tth(data[:, 0], data[:, 1]) - gr.calc_2th(data[:, 2].astype(int))
        n_rings = int(np.unique(cp[:, 2]).size)
        return gr, cp, np.degrees(res), n_rings
    finally:
        det.mask = old_mask


def _check_rings(ai, img, bad, cal) -> tuple[int, int, int]:
    """Resolvable calibrant rings inside the image, how many are seen, unexplained peaks.

    The image is averaged in 1-pixel 2θ bins with the refined geometry; a calibrant ring counts
    as found when the highest bin of its neighbourhood lies within 1.5 bins of its predicted 2θ
    and stands 5 robust σ above the neighbourhood's background.
    """
    tth_map = ai.array_from_unit(img.shape, "center", "2th_deg", scale=True)
    t = tth_map[~bad]
    lo, hi = float(t.min()), float(np.percentile(t, 99))
    pix_deg = math.degrees(ai.detector.pixel1 / ai.dist)
    step = pix_deg
    nb = max(16, int((hi - lo) / step))
    k = ((t - lo) / step).astype(np.int64)
    ok = (k >= 0) & (k < nb)
    s = np.bincount(k[ok], img[~bad][ok], minlength=nb)
    c = np.bincount(k[ok], minlength=nb)
    good = c > 20
    x = lo + (np.arange(nb) + 0.5) * step
    prof = np.where(good, s / np.maximum(c, 1), np.nan)
    x, prof = x[good], prof[good]
    tth = np.degrees(_unique_tth(cal))
    inside = (tth > x[0] + 3 * step) & (tth < x[-1] - 3 * step)
    gaps = np.diff(tth)
    sep = np.minimum(np.r_[np.inf, gaps], np.r_[gaps, np.inf])
    # resolvable: 4 bins (4 pixels) from its neighbours; only the first 12, where rings stand
    # out from the overlap continuum
    resolvable = np.nonzero(inside & (sep > 4 * step))[0][:12]
    tol = 1.5 * step
    found = 0
    for i in resolvable:
        half = min(0.5 * sep[i], 10 * step)
        win = np.abs(x - tth[i]) <= half
        if win.sum() < 5:
            continue
        xw, yw = x[win], prof[win]
        base = np.percentile(yw, 20)
        low = yw[yw <= np.median(yw)]
        scatter = 1.4826 * np.median(np.abs(low - np.median(low))) + 1e-12 * abs(base)
        j = int(np.argmax(yw))
        if abs(xw[j] - tth[i]) <= tol and yw[j] - base > 5 * scatter:
            found += 1
    # strong peaks (prominence > 10 % of the strongest) below the last tested ring that no
    # calibrant ring explains
    extra = 0
    if resolvable.size:
        upto = tth[resolvable[-1]] + tol
        sel = x <= upto
        pk, props = signal.find_peaks(prof[sel], prominence=0.0)
        if pk.size:
            prom = props["prominences"]
            strong = x[sel][pk[prom > 0.1 * prom.max()]]
            extra = int(sum(not np.any(np.abs(tth - p) < tol) for p in strong))
    return int(resolvable.size), int(found), extra
