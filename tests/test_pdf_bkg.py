"""``bkg_scale="auto"`` on simulated sample + container mixtures of known scale.

Forward model written here, apart from the code under test: Debye-equation I(Q) of fcc Ni
spheres (pair distances binned at 0.002 Å, Waasmaier–Kirfel f0 from xraydb), powders of
nine diameters over ±30 % of the mean (a powder, whose small-angle fringes wash out):

- crystalline: mean 30 Å, U = 0.005 Å²;
- amorphous-like: mean 20 Å with 0.25 Å random static displacements (broad peaks).

Container: the real Kapton pattern of tests/data/ni_xpd (BSD 3-Clause, LICENSE_SOURCE.txt)
scaled to the sample's mean intensity, taken as the true container.  Sample measurement =
sample + s_true·container + noise; background measurement = container + its own noise
(independent, 0.2 % each), so no noise realisation is shared between the two files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xraydb
from scipy.spatial.distance import pdist

from xrdpdf import InputError, Pattern
from xrdpdf.io import read_pattern
from xrdpdf.stages.pdf import PdfConfig, transform

DATA = Path(__file__).parent / "data"
A_NI = 3.524
SAMPLES = {"crystalline": (30.0, 0.0), "amorphous": (20.0, 0.25)}
SCALES = (0.5, 0.8, 1.2, 1.5)
NOISE = 0.002


def _fcc_sphere(d: float, rng: np.random.Generator, jitter: float) -> np.ndarray:
    n = int(np.ceil(d / A_NI)) + 1
    g = np.arange(-n, n + 1)
    cells = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    xyz = (cells[:, None, :] + basis[None] + rng.random(3)).reshape(-1, 3) * A_NI
    xyz -= xyz.mean(0)
    xyz = xyz[np.linalg.norm(xyz, axis=1) <= d / 2]
    return xyz + rng.normal(0.0, jitter, xyz.shape)


def _debye(xyz: np.ndarray, q: np.ndarray, u: float = 0.005) -> np.ndarray:
    """I(Q) per atom (e²): f²[1 + (2/N) Σ_{i<j} sin(Q r_ij)/(Q r_ij) e^{−U Q²}]."""
    h, edges = np.histogram(pdist(xyz), bins=np.arange(0.0, 80.0, 0.002))
    rc = 0.5 * (edges[1:] + edges[:-1])[h > 0]
    pair = np.sinc(np.outer(q, rc) / np.pi) @ h[h > 0] * 2.0 / len(xyz)
    f = np.asarray(xraydb.f0("Ni", q / (4 * np.pi)), float).ravel()
    return f**2 * (1.0 + pair * np.exp(-u * q**2))


@pytest.fixture(scope="module")
def parts():
    kap = read_pattern(DATA / "ni_xpd" / "kapton.chi")
    m = (kap.x >= 0.3) & (kap.x <= 25.0)
    q = kap.x[m]
    out = {}
    for name, (d_mean, jitter) in SAMPLES.items():
        rng = np.random.default_rng(5)
        spheres = [_fcc_sphere(d, rng, jitter) for d in d_mean * np.linspace(0.7, 1.3, 9)]
        natoms = sum(len(x) for x in spheres)
        sample = sum(_debye(x, q) * len(x) for x in spheres) / natoms
        out[name] = (q, sample, kap.y[m] / np.mean(kap.y[m]) * np.mean(sample))
    return out


def _mixture(q, sample, container, s_true, seed):
    rng = np.random.default_rng(seed)
    tot = sample + s_true * container
    meas = Pattern(q, tot + rng.normal(0, NOISE * tot), "q_A^-1", sigma=NOISE * tot)
    bkg = container + rng.normal(0, NOISE * container)
    return meas, Pattern(q, bkg, "q_A^-1", sigma=NOISE * container)


CFG = dict(qmin_invA=0.8, qmax_invA=22.0, rmax_A=10.0, bkg_scale="auto")


@pytest.mark.parametrize("s_true", SCALES)
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_auto_scale_within_5_percent(parts, name, s_true):
    """Issue acceptance: the automatic scale within 5 % of the truth."""
    q, sample, container = parts[name]
    meas, bkg = _mixture(q, sample, container, s_true, seed=int(10 * s_true))
    res = transform(meas, PdfConfig("Ni", **CFG), bkg)
    assert res.bkg_scale_auto and res.header["bgscale_auto"]
    # acceptance floor 5 %; measured −3.0…+3.3 % with these seeds, a statistical error
    # (esd 1–3 %: the 0.2 % noise of the sample measurement against Kapton's features)
    assert abs(res.bkg_scale / s_true - 1) < 0.05, res.bkg_scale


def test_no_container_in_the_sample_gives_zero(parts):
    """Negative control: a sample measured without the container gets a scale ≈ 0."""
    q, sample, container = parts["crystalline"]
    meas, bkg = _mixture(q, sample, container, 0.0, seed=3)
    res = transform(meas, PdfConfig("Ni", **CFG), bkg)
    # bounded at 0; the noise of the two measurements alone gives < 0.01 (measured 0.0)
    assert res.bkg_scale < 0.02


def test_smooth_container_is_refused(parts):
    """A container without sharp features does not determine its scale: refused, not 0."""
    q, sample, container = parts["crystalline"]
    smooth = np.mean(container) * (0.5 + np.exp(-(((q - 1.2) / 0.8) ** 2)))
    meas, bkg = _mixture(q, sample, smooth, 0.8, seed=4)
    with pytest.raises(InputError, match="give bkg_scale"):
        transform(meas, PdfConfig("Ni", **CFG), bkg)


def test_true_scale_reproduces_the_container_free_gr(parts):
    q, sample, container = parts["crystalline"]
    cfg = {**CFG, "bkg_scale": 0.8}
    clean = transform(Pattern(q, sample, "q_A^-1"), PdfConfig("Ni", **{**cfg, "bkg_scale": 0}))
    meas, bkg = _mixture(q, sample, container, 0.8, seed=1)
    mixed = transform(meas, PdfConfig("Ni", **cfg), bkg)
    rw = np.sqrt(np.sum((mixed.gr.y - clean.gr.y) ** 2) / np.sum(clean.gr.y**2))
    assert rw < 0.02  # noise 0.2 % of each I, amplified by Q at high Q
