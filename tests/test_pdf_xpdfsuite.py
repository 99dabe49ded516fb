"""xrdpdf.stages.pdf against xPDFsuite on a real compound: TiO2 film on ITO glass (Qnm input).

Truth: xPDFsuite's own ``.iq``, ``.fq`` and ``.gr`` made from the two ``.chi`` files
(tests/data/tio2_film_xpd, BSD 3-Clause, see LICENSE_SOURCE.txt).  Settings from the
``.gr`` header: composition TiO2, bgscale 1.010394815, rpoly 1.0, qmaxinst 20, qmin 0.7,
qmax 16 Å⁻¹, r 0–100 Å step 0.01.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xrdpdf.io import read_pattern, write_pattern
from xrdpdf.stages.pdf import PdfConfig, transform

DATA = Path(__file__).parent / "data" / "tio2_film_xpd"
STEM = "tio2-ito-glass-250"
HEADER = dict(
    composition="TiO2",
    bkg_scale=1.010394815,
    rpoly_A=1.0,
    qmaxinst_invA=20.0,
    qmin_invA=0.7,
    qmax_invA=16.0,
    rmin_A=0.0,
    rmax_A=100.0,
    rstep_A=0.01,
)


def _rw(g, gref):
    return float(np.sqrt(np.sum((g - gref) ** 2) / np.sum(gref**2)))


@pytest.fixture(scope="module")
def film():
    sample = read_pattern(DATA / f"{STEM}.chi", xtype="qnm")
    ito = read_pattern(DATA / "ito-glass-conv.chi", xtype="qnm")
    refs = {ext: read_pattern(DATA / f"{STEM}.{ext}") for ext in ("iq", "fq", "gr")}
    return sample, ito, refs


def _run(film, **kw):
    sample, ito, _ = film
    return transform(sample, PdfConfig(**{**HEADER, **kw}), ito)


def test_header_keys_match_xpdfsuite(film, tmp_path):
    """Our .iq/.sq/.fq/.gr carry every [PDF] key of xPDFsuite's header."""
    res = _run(film)
    ref_keys = set()
    for line in (DATA / f"{STEM}.gr").read_text().splitlines():
        if line.startswith("####"):
            break
        if " = " in line:
            ref_keys.add(line.split(" = ")[0].strip())
    for ext in ("iq", "sq", "fq", "gr"):
        p = write_pattern(getattr(res, ext), tmp_path / f"out.{ext}")
        ours = {ln.split(" = ")[0].strip() for ln in p.read_text().splitlines() if " = " in ln}
        assert ref_keys <= ours, ref_keys - ours
        assert f"outputtype = {ext}" in p.read_text()


def test_iq_and_fq_match_xpdfsuite(film):
    """Acceptance: .iq and .fq within 1 % of xPDFsuite's where they carry signal."""
    res = _run(film)
    _, _, refs = film
    for ours, ref in ((res.iq, refs["iq"]), (res.fq, refs["fq"])):
        assert ours.x.size == ref.x.size
        # xPDFsuite prints 6 significant digits: Q to ±5e-5 Å⁻¹
        np.testing.assert_allclose(ours.x, ref.x, atol=6e-5)
        scale = float(np.max(np.abs(ref.y)))
        signal = np.abs(ref.y) > 0.05 * scale
        rel = np.abs(ours.y - ref.y)[signal] / np.abs(ref.y[signal])
        # measured max 1e-5 (.iq) and 4e-4 (.fq); the acceptance band is 1 %
        assert rel.max() < 0.01
        # and everywhere within 1e-4 of the largest value (6-digit print + form factors)
        assert np.max(np.abs(ours.y - ref.y)) < 1e-4 * scale


def test_gr_matches_xpdfsuite_unscaled(film):
    """Acceptance: G(r) Rw <= 0.01 unscaled over 1–100 Å (measured 0.0007)."""
    res = _run(film)
    ref = film[2]["gr"]
    np.testing.assert_allclose(res.gr.x, ref.x, atol=1e-9)
    m = (ref.x >= 1.0) & (ref.x <= 100.0)
    assert _rw(res.gr.y[m], ref.y[m]) < 0.002  # 2x measured; the acceptance is 0.01
    # negative controls: without the FQgrid step (F kept on the offset Fit2D grid),
    # or with the integer degree round(n) instead of the blend, Rw is far worse
    nogrid = _run(film, fq_grid=False)
    assert _rw(nogrid.gr.y[m], ref.y[m]) > 0.02  # measured 0.030
    n = res.poly_degree  # 6.136
    integer = _run(film, rpoly_A=round(n) * np.pi / (res.iq.x[-1] - res.iq.x[0]))
    assert _rw(integer.gr.y[m], ref.y[m]) > 0.005  # measured 0.009


def test_wrong_normalisation_would_fail(film):
    """⟨f⟩² is the compound's: normalising as if pure Ti misses the .fq by far."""
    res = _run(film, composition="Ti")
    ref = film[2]["fq"]
    assert _rw(res.fq.y, ref.y) > 0.05
