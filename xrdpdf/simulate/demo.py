r"""The built-in ex situ series: simulate it as detector images, then analyse it like real data.

The story simulated (Na-ion TiO2 anodes, APS 11-ID-C, λ = 0.1173 Å):

* cycle 0 (pristine): anatase TiO2, crystallites of 10 nm;
* cycle 1: amorphous TiO2 (small, strongly disordered clusters);
* cycles 3, 10, 20, sodiated and desodiated: rocksalt (RS, Fm-3m) NaTiO2
  grains that grow (Scherrer V^⅓ = 20 → 25 → 30 Å) and take a growing share
  of the atoms, inside the amorphous matrix.  Sodiated a = 4.20464 Å,
  desodiated a with a 2 % smaller cell volume and Na on 4a down from 0.5 to
  0.35 (vacancies);
* a separate amorphous-TiO2 electrode series (cycles 0, 1, 20) whose
  clusters grow from 8 to 13 Å.

What is drawn and how (the truth is known exactly):

* crystalline phases: Bragg peaks of the refined model's structure
  (:func:`xrdpdf.physics.powder.powder_pattern`), the size broadening of spheres
  (V^⅓ for K = 0.9) and a Gaussian instrument width, placed on the absolute per-atom
  scale: peak area in Q of a reflection group = 2π²·m|F|²/(V·N_cell·Q²)
  electrons² per atom, plus the self scattering ⟨f²⟩.  Peak maxima therefore
  sit at the Bragg positions of the simulated a, which is what the series
  reports as ``a_A`` (finite-cluster Debye patterns would shift the maxima
  by 0.005–0.015 Å of a at 3 nm — physics, not error — and would leave no
  exact truth for a);
* amorphous TiO2: the Debye equation (:mod:`xrdpdf.simulate.debye`) for spheres cut
  from anatase with a large displacement (U = 0.04 Å² in the TiO2 electrode's matrix,
  0.01 Å² in the amorphous-TiO2 electrode);
* mixtures add the per-atom intensities weighted by atom fractions; a flat
  background, Poisson noise, dark current, a beamstop with its arm, dead and
  hot pixels come from :func:`xrdpdf.simulate.images.simulate_image`.

The analysis (:func:`xrdpdf.workflows.series.run_series`) knows none of these
numbers: it sees only the images, the geometry, the mask, the dark and the
series file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DemoSample",
    "WAVELENGTH_A",
    "A_SODIATED_A",
    "VOLUME_CHANGE",
    "demo_samples",
    "sample_intensity",
    "write_demo_series",
]

WAVELENGTH_A = 0.1173
#: Sodiated rocksalt NaTiO2 lattice parameter (Å).
A_SODIATED_A = 4.20464
#: Relative cell-volume change between sodiated and desodiated RS.
VOLUME_CHANGE = 0.02
A_DESODIATED_A = A_SODIATED_A * (1.0 / (1.0 + VOLUME_CHANGE)) ** (1.0 / 3.0)
#: Gaussian instrument FWHM of the simulated peaks (Å⁻¹).
FWHM_INST_INVA = 0.02
_Q_STEP = 0.004
#: The demo sample used as the amorphous background of the cycled ones (when simulated).
AMORPHOUS_REFERENCE = "c01_sod"


@dataclass(frozen=True)
class DemoSample:
    """The truth of one simulated sample.

    Attributes
    ----------
    name, cycle, state : str, int, str
        As in the series file.
    crystal : str or None
        ``"anatase"`` or ``"NaTiO2"`` (Bragg model), or None.
    crystal_size_A : float
        Scherrer size V^⅓ (K = 0.9) of the crystalline phase (Å).
    crystal_atom_fraction : float
        Fraction of the atoms in the crystalline phase; the rest is amorphous.
    a_A : float
        Cubic lattice parameter of RS (Å); NaN for anatase.
    na_occupancy : float
        Na on 4a of RS (Ti is 0.5).
    amorphous_d_A : float
        Diameter of the amorphous clusters (Å).
    amorphous_u_A2 : float
        Their displacement U (Å²): 0.04 for the matrix of the TiO2 electrode,
        0.01 for the amorphous-TiO2 electrode (better ordered, smaller clusters).
    phases : tuple of str
        What the series file asks to refine.
    """

    name: str
    cycle: int
    state: str
    crystal: str | None
    crystal_size_A: float
    crystal_atom_fraction: float
    a_A: float
    na_occupancy: float
    amorphous_d_A: float
    phases: tuple[str, ...]
    amorphous_u_A2: float = 0.04

    @property
    def composition(self) -> str:
        """Atom-fraction composition of the whole sample (for the PDF)."""
        counts = _element_fractions(self)
        return " ".join(f"{el}{v:.4f}" for el, v in counts.items() if v > 0)


def demo_samples() -> list[DemoSample]:
    """The simulated series: TiO2 electrode (c0 … c20) and the amorphous-TiO2 electrode."""
    nan = float("nan")
    out = [
        DemoSample(
            "c00_pristine", 0, "pristine", "anatase", 100.0, 1.0, nan, 0.0, 16.0, ("anatase",)
        ),
        DemoSample("c01_sod", 1, "sodiated", None, 0.0, 0.0, nan, 0.0, 16.0, ()),
    ]
    for cycle, size, frac in ((3, 20.0, 0.7), (10, 25.0, 0.8), (20, 30.0, 0.9)):
        out.append(
            DemoSample(
                f"c{cycle:02d}_sod",
                cycle,
                "sodiated",
                "NaTiO2",
                size,
                frac,
                A_SODIATED_A,
                0.5,
                16.0,
                ("NaTiO2",),
            )
        )
        out.append(
            DemoSample(
                f"c{cycle:02d}_desod",
                cycle,
                "desodiated",
                "NaTiO2",
                size,
                frac,
                A_DESODIATED_A,
                0.35,
                16.0,
                ("NaTiO2",),
            )
        )
    for cycle, state, d in ((0, "pristine", 8.0), (1, "sodiated", 10.0), (20, "sodiated", 13.0)):
        out.append(
            DemoSample(f"aTiO2_c{cycle:02d}", cycle, state, None, 0.0, 0.0, nan, 0.0, d, (), 0.01)
        )
    return out


def _crystal_phase(s: DemoSample):
    from xrdpdf.physics.cif import get_phase

    phase = get_phase(s.crystal)
    if s.crystal == "NaTiO2":
        phase = phase.with_cell(a=s.a_A).with_sites(occupancy={"Na1": s.na_occupancy})
    return phase


def _site_counts(phase) -> dict[str, float]:
    counts: dict[str, float] = {}
    for site in phase.sites:
        counts[site.element] = counts.get(site.element, 0.0) + site.occupancy * site.multiplicity
    return counts


def _element_fractions(s: DemoSample) -> dict[str, float]:
    fr: dict[str, float] = {"Na": 0.0, "Ti": 0.0, "O": 0.0}
    amorphous = 1.0 - s.crystal_atom_fraction
    fr["Ti"] += amorphous / 3.0
    fr["O"] += 2.0 * amorphous / 3.0
    if s.crystal is not None:
        counts = _site_counts(_crystal_phase(s))
        n = sum(counts.values())
        for el, c in counts.items():
            fr[el] = fr.get(el, 0.0) + s.crystal_atom_fraction * c / n
    return fr


def sample_intensity(s: DemoSample, q_invA: np.ndarray, seed: int = 0) -> np.ndarray:
    r"""Coherent intensity per atom (electrons²) of a demo sample on ``q_invA`` (Å⁻¹).

    Notes
    -----
    Crystalline part: :math:`\langle f^2\rangle + \sum_h 2\pi^2 m_h |F_h|^2
    \,\phi_h(Q) / (V N_{cell} Q^2)` with φ a unit-area pseudo-Voigt (powder
    average of the reciprocal lattice, e.g. Warren, *X-ray Diffraction*,
    ch. 3); amorphous part: Debye equation per atom of anatase spheres with
    displacement U = ``s.amorphous_u_A2``.
    """
    from xrdpdf.physics.powder import powder_pattern
    from xrdpdf.physics.scattering import form_factor
    from xrdpdf.simulate import debye

    q = np.asarray(q_invA, dtype=float)
    total = np.zeros_like(q)
    if s.crystal is not None and s.crystal_atom_fraction > 0:
        phase = _crystal_phase(s)
        counts = _site_counts(phase)
        n_cell = sum(counts.values())
        f2 = sum(c * form_factor(el, q) ** 2 for el, c in counts.items()) / n_cell
        bragg = powder_pattern(
            phase,
            q,
            scale=2 * math.pi**2 * phase.volume_A3 / n_cell,
            size_A=s.crystal_size_A,
            k_scherrer=0.9,
            fwhm_inst=FWHM_INST_INVA,
        )
        total += s.crystal_atom_fraction * (f2 + bragg)
    amorphous = 1.0 - s.crystal_atom_fraction
    if amorphous > 0:
        cluster = debye.sphere_cluster("anatase", s.amorphous_d_A, seed=seed)
        total += amorphous * debye.debye_iq(cluster, q, uiso_A2=s.amorphous_u_A2).y
    return total


def write_demo_series(
    outdir: str | Path,
    *,
    samples: Sequence[DemoSample] | None = None,
    binning: int = 1,
    counts_per_e2: float = 50.0,
    background_e2: float = 5.0,
    seed: int = 7,
    overwrite: bool = False,
    on_progress=None,
) -> Path:
    """Simulate the demo series as detector images and write its series file.

    Parameters
    ----------
    outdir : path
        Gets ``geometry.poni``, ``mask.tif``, ``dark.tif``, ``images/*.tif``,
        ``truth.json`` (what was simulated, for checking) and ``series.toml``.
    samples : sequence of DemoSample, optional
        Default :func:`demo_samples`.
    binning : int
        Detector binning: 1 = the 2048² PerkinElmer with 200 µm pixels; 4 gives
        a 512² detector with 800 µm pixels and the same Q range (for tests).
    counts_per_e2 : float
        Counts per pixel per electron² of per-atom intensity (at unit solid
        angle and polarization).
    background_e2 : float
        Flat background (electrons² per atom), e.g. air and Compton scattering.
    seed : int
        Seeds noise and defects (each sample its own noise).

    Returns
    -------
    Path
        The series file.
    """
    import pyFAI.detectors
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    from xrdpdf import io
    from xrdpdf._core.pattern import Pattern
    from xrdpdf.io import images
    from xrdpdf.simulate.images import Beamstop, simulate_dark, simulate_image

    outdir = Path(outdir)
    samples = list(demo_samples() if samples is None else samples)
    n = 2048 // binning
    pix = 200e-6 * binning
    det = pyFAI.detectors.Detector(pix, pix, max_shape=(n, n))
    ai = AzimuthalIntegrator(
        dist=0.35, poni1=0.2050, poni2=0.2046, detector=det, wavelength=WAVELENGTH_A * 1e-10
    )
    poni = outdir / "geometry.poni"
    io.check_output(poni, overwrite)
    outdir.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(poni, overwrite) as tmp:
        ai.write(str(tmp))
    q = np.arange(0.2, 38.0, _Q_STEP)
    stop = Beamstop(45.0 / binning, 16.0 / binning, 120.0)
    bad = None
    for k, s in enumerate(samples):
        iq = sample_intensity(s, q, seed=seed + k) + background_e2
        pattern = Pattern(q, iq, "q_A^-1", wavelength_A=WAVELENGTH_A)
        sim = simulate_image(
            pattern,
            ai,
            scale=counts_per_e2,
            dark_counts=100.0,
            read_noise=3.0,
            beamstop=stop,
            dead_fraction=2e-4,
            hot_fraction=5e-5,
            seed=seed + 100 + k,
            defect_seed=seed,
        )
        bad = sim.bad
        images.write_image(sim.data, outdir / "images" / f"{s.name}.tif", overwrite=overwrite)
        if on_progress:
            on_progress(k + 1, len(samples), s.name)
    dark = simulate_dark(bad.shape, 100.0, read_noise=3.0, seed=seed + 1)
    images.write_image(dark, outdir / "dark.tif", overwrite=overwrite)
    images.write_image(
        bad.astype(np.uint8), outdir / "mask.tif", overwrite=overwrite, dtype=np.uint8
    )
    io.write_json(
        {
            "wavelength_A": WAVELENGTH_A,
            "a_sodiated_A": A_SODIATED_A,
            "a_desodiated_A": A_DESODIATED_A,
            "volume_change": VOLUME_CHANGE,
            "samples": [_truth(s) for s in samples],
        },
        outdir / "truth.json",
        overwrite=overwrite,
    )
    return io.write_text(_series_toml(samples, n), outdir / "series.toml", overwrite=overwrite)


def _truth(s: DemoSample) -> dict[str, Any]:
    return {
        "name": s.name,
        "cycle": s.cycle,
        "state": s.state,
        "crystal": s.crystal,
        "crystal_size_A": s.crystal_size_A,
        "crystal_atom_fraction": s.crystal_atom_fraction,
        "a_A": None if math.isnan(s.a_A) else s.a_A,
        "na_occupancy": s.na_occupancy,
        "amorphous_d_A": s.amorphous_d_A,
        "composition": s.composition,
    }


def _group(s: DemoSample) -> str:
    """The demo's groups: one per cycle of the TiO2 electrode, one for the amorphous electrode."""
    return "aTiO2" if s.name.startswith("aTiO2") else f"c{s.cycle:02d}"


def _series_toml(samples: Sequence[DemoSample], npix: int) -> str:
    lines = [
        "# The built-in demo series (written by `xrdpdf demo`); paths are relative to this file.",
        "[series]",
        'title = "xrdpdf demo: TiO2 → amorphous → rocksalt NaTiO2 over 20 sodiation cycles"',
        'poni = "geometry.poni"',
        'mask = "mask.tif"',
        'composition = "TiO2"',
        "",
        "[integrate]",
        f"npt = {3000 if npix >= 1024 else 1500}",
        'unit = "q"',
        "polarization = 0.99",
        "",
        "[pdf]",
        "qmin = 0.8",
        "qmax = 24.0",
        "qmaxinst = 26.0",
        "rpoly = 0.9",
        "rmax = 60.0",
        "",
        "[refine]",
        "background_terms = 8",
        "fit_range = [1.5, 24.0]",
        "occupancy_sum = false             # desodiation leaves vacancies on 4a (Ti stays)",
    ]
    if any(s.name == AMORPHOUS_REFERENCE for s in samples):
        lines += [
            "# the fully amorphous electrode after cycle 1 is the background of the amorphous "
            "matrix",
            f'amorphous_reference = "{AMORPHOUS_REFERENCE}"',
        ]
    lines += [
        "# rs_fraction: the crystalline fraction of the rocksalt phase",
        'fraction_phase = "NaTiO2"',
        "",
        "[labels]                          # the columns that place a sample in the story",
        'cycle = "integer"',
        'state = ["pristine", "sodiated", "desodiated"]',
        "",
        "[figures]",
        'x = "cycle"',
        'by = "state"',
        'peaks = "NaTiO2"                  # reflections marked on the waterfall',
        "",
        "[[derived]]                       # ΔV/V of the rocksalt cell on desodiation",
        'name = "volume_change_pct"',
        'kind = "volume_change"',
        'column = "a_A"',
        'label = "state"',
        'from = "desodiated"',
        'to = "sodiated"',
    ]
    groups = {_group(s) for s in samples}
    for g in sorted(groups):
        lines += ["", f"[group.{g}]"]
    for s in samples:
        lines += [
            "",
            "[[sample]]",
            f'name = "{s.name}"',
            f'group = "{_group(s)}"',
            f"cycle = {s.cycle}",
            f'state = "{s.state}"',
            f'images = ["images/{s.name}.tif"]',
            'dark = "dark.tif"',
            f'composition = "{s.composition}"',
            "phases = [" + ", ".join(f'"{p}"' for p in s.phases) + "]",
        ]
        if s.state == "pristine" and s.phases:
            lines.append("amorphous_reference = false   # no amorphous matrix before cycling")
    return "\n".join(lines) + "\n"
