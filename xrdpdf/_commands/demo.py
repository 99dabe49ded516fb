"""``xrdpdf demo``: simulate CeO2 and anatase frames at 11-ID-C and reduce them to I(Q).

Every step is a plain function so that later issues can grow the demo into a
whole ex situ series: :func:`demo_geometry`, :func:`simulate_demo_images`,
:func:`integrate_demo_images`, :func:`plot_demo`, and :func:`run_demo` which
chains them.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ._common import emit_json, handle_errors, info

#: The nominal 11-ID-C geometry, identical to ``calib/11idc_default.poni``
#: (used when the package runs outside a source checkout).
DEFAULT_PONI_TEXT = """# Default (nominal) geometry of APS 11-ID-C: NOT a calibration.
poni_version: 2.1
Detector: Perkin
Detector_config: {"orientation": 3}
Distance: 0.35
Poni1: 0.2050
Poni2: 0.2046
Rot1: 0.0
Rot2: 0.0
Rot3: 0.0
Wavelength: 1.173e-11
"""
WAVELENGTH_A = 0.1173
PHASES = ("CeO2", "anatase")


@dataclass(frozen=True)
class DemoConfig:
    """What the demo simulates: phases, counts and detector defects."""

    phases: tuple[str, ...] = PHASES
    qmax_invA: float = 37.0  # beyond the detector corner (≈ 36.3 Å⁻¹ at 350 mm)
    fwhm_invA: float = 0.06
    scale: float = 60.0  # counts per unit of the simulated I(Q) (peaks at 100)
    dark_counts: float = 200.0
    read_noise: float = 4.0
    beamstop_radius_px: float = 45.0
    arm_width_px: float = 16.0
    arm_angle_deg: float = 120.0
    dead_fraction: float = 2e-4
    hot_fraction: float = 5e-5
    npt: int = 3000
    seed: int = 2024


def _calib_poni() -> Path | None:
    here = Path(__file__).resolve()
    for root in here.parents:
        cand = root / "calib" / "11idc_default.poni"
        if cand.is_file():
            return cand
    return None


def demo_geometry(outdir: Path, *, overwrite: bool = False, source: Path | None = None) -> Path:
    """Copy the geometry (default: 11-ID-C's nominal PONI) into ``outdir``; return its path."""
    from ..io import check_output, write_text

    target = check_output(Path(outdir) / "geometry.poni", overwrite)
    src = _calib_poni() if source is None else Path(source)
    if source is not None and not src.is_file():
        from ..errors import InputError

        raise InputError(f"{src}: PONI file not found")
    if src is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(".geometry.poni.tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(target)
        return target
    return write_text(DEFAULT_PONI_TEXT, target, overwrite=overwrite)


def simulate_demo_images(
    outdir: Path, poni: Path, config: DemoConfig = DemoConfig(), *, overwrite: bool = False
) -> dict[str, Any]:
    """Simulate one 2048² frame per phase, plus the dark and the mask a user would have.

    Returns
    -------
    dict
        ``images`` (phase → TIFF), ``models`` (phase → the I(Q) simulated from),
        ``dark`` and ``mask`` paths.
    """
    from .. import images
    from ..integrate import load_poni
    from ..io import write_pattern
    from ..simulate import Beamstop, simulate_dark, simulate_image, simulate_pattern

    outdir = Path(outdir)
    ai = load_poni(poni)
    stop = Beamstop(config.beamstop_radius_px, config.arm_width_px, config.arm_angle_deg)
    result: dict[str, Any] = {"images": {}, "models": {}}
    bad = None
    for k, name in enumerate(config.phases):
        model = simulate_pattern(name, qmin_invA=0.2, qmax_invA=config.qmax_invA, npt=8000,
                                 wavelength_A=WAVELENGTH_A, fwhm_invA=config.fwhm_invA)
        sim = simulate_image(
            model, ai, scale=config.scale, dark_counts=config.dark_counts,
            read_noise=config.read_noise, beamstop=stop, dead_fraction=config.dead_fraction,
            hot_fraction=config.hot_fraction, seed=config.seed + k,
            defect_seed=config.seed,  # one detector: the same dead and hot pixels
        )
        bad = sim.bad
        result["models"][name] = write_pattern(
            model, outdir / "models" / f"{name}_model.xye", overwrite=overwrite
        )
        result["images"][name] = images.write_image(
            sim.data, outdir / "images" / f"{name}.tif", overwrite=overwrite
        )
    dark = simulate_dark(bad.shape, config.dark_counts, read_noise=config.read_noise,
                         seed=config.seed + 1)
    result["dark"] = images.write_image(dark, outdir / "images" / "dark.tif",
                                        overwrite=overwrite)
    result["mask"] = images.write_image(bad.astype(np.uint8), outdir / "images" / "mask.tif",
                                        overwrite=overwrite, dtype=np.uint8)
    return result


def integrate_demo_images(
    outdir: Path, poni: Path, sims: dict[str, Any], config: DemoConfig = DemoConfig(), *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Integrate the simulated frames to I(Q) files in ``outdir/iq`` (the CLI's code path)."""
    from ..errors import InputError
    from .integrate import run_integrate

    res = run_integrate(
        list(sims["images"].values()), poni=poni, outdir=Path(outdir) / "iq",
        mask=sims["mask"], darks=[sims["dark"]], npt=config.npt, overwrite=overwrite,
    )
    if res["failed"]:
        raise InputError(f"demo integration failed: {res['failed'][0]['error']}")
    return res


def _centroid(x: np.ndarray, y: np.ndarray, centre: float, half_width: float) -> float:
    sel = np.abs(x - centre) <= half_width
    w = y[sel] - np.min(y[sel])
    return float(np.sum(x[sel] * w) / np.sum(w))


def compare_to_models(iq_files: dict[str, Path], models: dict[str, Path]) -> dict[str, Any]:
    """How well each integrated I(Q) reproduces the model it was simulated from.

    For each phase: the scale k = ⟨I⟩/⟨model⟩ (≈ counts per unit intensity;
    a ratio of areas, which pixel broadening keeps), the rms of I − k·model
    relative to the mean of k·model over 1 < Q < 20 Å⁻¹, and the centroid of
    the strongest peak in both.
    """
    from ..io import read_pattern

    out = {}
    for name, path in iq_files.items():
        got = read_pattern(path)
        model = read_pattern(models[name])
        sel = (got.x > 1.0) & (got.x < 20.0)
        m = np.interp(got.x[sel], model.x, model.y)
        k = float(np.mean(got.y[sel]) / np.mean(m))  # areas survive pixel broadening
        rel_rms = float(np.sqrt(np.mean((got.y[sel] - k * m) ** 2)) / np.mean(k * m))
        peak = float(model.x[np.argmax(model.y)])
        out[name] = {
            "scale": k,
            "relative_rms_difference": rel_rms,
            "peak_centroid_q_invA": _centroid(got.x, got.y, peak, 0.1),
            "model_peak_centroid_q_invA": _centroid(model.x, model.y, peak, 0.1),
        }
    return out


def plot_demo(iq_files: dict[str, Path], models: dict[str, Path], path: Path) -> Path:
    """PNG of the integrated patterns over their models."""
    from ..io import read_pattern
    from ..plot import save_figure
    from ..plot.patterns import plot_patterns

    names = list(iq_files)
    pats = [read_pattern(iq_files[n]) for n in names]
    mods = [read_pattern(models[n]) for n in names]
    fig = plot_patterns(pats, names, models=mods,
                        title=f"Simulated 11-ID-C frames (λ = {WAVELENGTH_A} Å), integrated")
    return save_figure(fig, path)


def run_demo(outdir: Path, *, overwrite: bool = False, config: DemoConfig = DemoConfig(),
             geometry: Path | None = None) -> dict[str, Any]:
    """Simulate, integrate and plot; return a summary of what was written.

    ``geometry`` replaces the default 11-ID-C PONI (tests use a small detector).
    """
    from ..io import check_output

    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        from ..errors import InputError

        raise InputError(f"{outdir}: exists and is not a folder")
    check_output(outdir / "demo_patterns.png", overwrite)
    poni = demo_geometry(outdir, overwrite=overwrite, source=geometry)
    sims = simulate_demo_images(outdir, poni, config, overwrite=overwrite)
    res = integrate_demo_images(outdir, poni, sims, config, overwrite=overwrite)
    iq = {name: Path(w["path"]) for name, w in zip(config.phases, res["written"], strict=True)}
    png = plot_demo(iq, sims["models"], outdir / "demo_patterns.png")
    return {
        "geometry": str(poni),
        "images": {k: str(v) for k, v in sims["images"].items()},
        "dark": str(sims["dark"]),
        "mask": str(sims["mask"]),
        "models": {k: str(v) for k, v in sims["models"].items()},
        "patterns": {k: str(v) for k, v in iq.items()},
        "plot": str(png),
        "method": res["method"],
        "comparison": compare_to_models(iq, sims["models"]),
    }


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the CLI."""

    @app.command("demo")
    @handle_errors
    def demo(
        outdir: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")],
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace existing outputs.")
        ] = False,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Simulate CeO2 and anatase frames at 11-ID-C (0.1173 Å) and integrate them.

        Writes the geometry, the frames with their dark and mask, the model and
        integrated I(Q) files, and demo_patterns.png.

        Example: xrdpdf demo -o demo_out --overwrite
        """
        summary = run_demo(outdir, overwrite=overwrite)
        if json_mode:
            emit_json({"command": "demo", **summary})
        else:
            for name, path in summary["patterns"].items():
                c = summary["comparison"][name]
                info(f"{name}: wrote {path} (strongest peak at Q = "
                     f"{c['peak_centroid_q_invA']:.4f} Å⁻¹, model "
                     f"{c['model_peak_centroid_q_invA']:.4f}; rms difference "
                     f"{100 * c['relative_rms_difference']:.1f} %)")
            info(f"plot: {summary['plot']}")
