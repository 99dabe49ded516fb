"""Tests of the notebook callback layer (xrdpdf.notebook), without a browser.

Truths: a simulated rocksalt NaTiO2 pattern of known a, size and Na occupancy (drawn with
:func:`xrdpdf.physics.powder.powder_pattern`, Poisson noise, seeded) for the refinement session; an
analytic F(Q) = Σ c_j sin(Q r_j) e^{-σ²Q²/2} with c_j following a sphere envelope of known
diameter for the PDF session, whose truncated G(r) is computed here by direct quadrature; and
a series output folder written here for the explorer.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf.notebook import (
    PdfSession,
    RefinementSession,
    SeriesExplorer,
    figure_png,
    pdf_panel,
    refinement_panel,
    require_ipywidgets,
    series_panel,
)
from xrdpdf.physics.cif import get_phase
from xrdpdf.simulate.images import simulate_pattern
from xrdpdf.stages.corrlen import correlation_length, sphere_envelope
from xrdpdf.stages.pdf import composition_factors

A_TRUE, SIZE_TRUE, NA_TRUE = 4.18, 40.0, 0.40
PNG = b"\x89PNG"


# ---------------------------------------------------------------------------- refinement
@pytest.fixture(scope="module")
def rs_pattern():
    """NaTiO2 I(Q) with a = 4.18 Å, L = 40 Å, Na1 = 0.40, Gaussian instrument 0.03 Å⁻¹."""
    ph = get_phase("NaTiO2").with_cell(a=A_TRUE).with_sites(occupancy={"Na1": NA_TRUE})
    p = simulate_pattern(
        ph,
        qmin_invA=1.0,
        qmax_invA=12.0,
        npt=1400,
        wavelength_A=0.1173,
        fwhm_invA=0.03,
        eta=0.0,
        size_A=SIZE_TRUE,
        peak_max=2000.0,
        background=200.0,
    )
    y = np.random.default_rng(0).poisson(p.y).astype(float)
    return Pattern(p.x, y, p.unit, p.wavelength_A, np.sqrt(np.maximum(y, 1.0)))


def test_session_refines_known_lattice_size_occupancy(rs_pattern):
    # start from the built-in cell (a = 4.20464 Å, 0.6 % off) and a wrong size and occupancy
    s = RefinementSession(rs_pattern, "NaTiO2", size_A=60.0, fwhm_inst=0.03)
    # drawn with vacancies (Na1 0.40, Ti1 0.5): the vacancy model, not the exchange default
    s.set(occupancy={"Na1": 0.5}, free_occupancy=["Na1"], occupancy_sum=False)
    res = s.refine()
    ph = res.phases[0]
    assert res.converged
    # |p - p_true| < 4 esd (lmfit esd scaled by χ²; the data are Poisson draws of the model)
    assert abs(ph.a_A - A_TRUE) < 4 * ph.a_esd_A
    assert abs(ph.size_A - SIZE_TRUE) < 4 * ph.size_esd_A
    assert abs(ph.occupancy["Na1"] - NA_TRUE) < 4 * ph.occupancy_esd["Na1"]
    rows = {r["quantity"]: r for r in s.table()}
    assert rows["NaTiO2 a (Å)"]["refined"] is True
    assert rows["NaTiO2 occupancy Na1"]["refined"] is True
    assert rows["NaTiO2 occupancy O1"]["refined"] is False
    assert len(s.history) == 1 and s.history[0]["result"]["a_A"] == ph.a_A
    # adopt: the refined values become the start values
    s.adopt()
    start = s.settings()["phases"][0]
    assert start["cell"]["a"] == pytest.approx(ph.a_A, abs=1e-12)
    assert start["occupancy"]["Na1"] == pytest.approx(ph.occupancy["Na1"], abs=1e-12)


def test_session_fixed_size_and_occupancy(rs_pattern):
    # size fixed at its true value, occupancy fixed at a wrong one: neither may move
    s = RefinementSession(rs_pattern, "NaTiO2", fwhm_inst=0.03)
    s.set(size_A=SIZE_TRUE, refine_size=False, occupancy={"Na1": 0.45}, free_occupancy=[])
    res = s.refine()
    ph = res.phases[0]
    assert ph.size_A is None  # not refined
    assert ph.occupancy["Na1"] == 0.45
    assert "p0_width" in res.parameters and not res.parameters["p0_width"]["vary"]
    rows = {r["quantity"]: r for r in s.table()}
    assert rows["NaTiO2 size (Å)"]["value"] == SIZE_TRUE
    assert rows["NaTiO2 size (Å)"]["refined"] is False
    # the lattice is still found: 0.1 % bound (occupancy 0.05 off moves a by < 5 esd ≈ 0.005 Å)
    assert abs(ph.a_A - A_TRUE) < 0.005


def test_session_background_terms_reach_refine(rs_pattern):
    s = RefinementSession(rs_pattern, "NaTiO2", fwhm_inst=0.03, n_background=3)
    res = s.refine()
    assert len(res.background_coeffs) == 3
    s.set(n_background=9)
    assert len(s.refine().background_coeffs) == 9


def test_session_lattice_flag(rs_pattern):
    s = RefinementSession(rs_pattern, "NaTiO2", fwhm_inst=0.03)
    s.set(refine_lattice=False, a=4.19)
    # a fixed cell comes back exactly as set (only float round-trips in between)
    assert s.refine().phases[0].a_A == pytest.approx(4.19, abs=1e-12)


def test_session_set_refuses_bad_settings(rs_pattern):
    s = RefinementSession(rs_pattern, "NaTiO2")
    before = s.settings()
    with pytest.raises(InputError, match="not free in the cubic"):
        s.set(c=5.0)
    with pytest.raises(InputError, match="unknown setting"):
        s.set(n_backgroud=4)
    with pytest.raises(InputError, match="no site 'Xx1'"):
        s.set(a=4.1, free_occupancy=["Xx1"])
    with pytest.raises(InputError, match="n_background"):
        s.set(n_background=0)
    with pytest.raises(InputError, match="no phase"):
        s.set(phase="anatase", a=3.8)
    with pytest.raises(InputError, match="size_A"):
        s.set(size_A=-5)
    assert s.settings() == before  # a refused call changes nothing
    with pytest.raises(InputError, match="refine"):
        s.figure()


# ---------------------------------------------------------------------------------- PDF
D_TRUE, SIG_R = 30.0, 0.05
R_J = np.arange(2.5, 40.0, 2.5)
C_J = 0.2 * sphere_envelope(R_J, D_TRUE)
Q = np.arange(0.5, 25.0 + 1e-9, 0.01)
F_TRUE = (C_J[None, :] * np.sin(np.outer(Q, R_J))).sum(1) * np.exp(-0.5 * SIG_R**2 * Q**2)


def _g_truncated(qmax: float, r: np.ndarray) -> np.ndarray:
    """G(r) = (2/π) Σ_{Q ≤ qmax} F(Q) sin(Qr) ΔQ of the analytic F (rectangle rule)."""
    m = Q <= qmax + 1e-9
    return (2 / np.pi) * (0.01 * F_TRUE[m]) @ np.sin(np.outer(Q[m], r))


@pytest.fixture(scope="module")
def ni_like():
    """I(Q) = f²(Q) S(Q) of one element with S = 1 + F/Q (so the ad hoc k is ≈ 1)."""
    f2, _ = composition_factors("Ni", Q)
    return Pattern(Q, f2 * (1 + F_TRUE / Q), "q_A^-1", 0.1173)


def test_pdf_session_qmax_changes_gr_and_xi(ni_like):
    s = PdfSession(ni_like, composition="Ni", qmin_invA=0.5, qmax_invA=20.0, rmax_A=50.0)
    r = s.result.gr.x
    sel = r > 1.5
    xi = []
    for qmax in (20.0, 12.0):
        upd = s.update(qmax=qmax)
        assert upd.qmax_invA == qmax and s.config.qmax_invA == qmax
        g, gt = upd.result.gr.y, _g_truncated(qmax, r)
        # 3 %: the degree-7 correction polynomial absorbs F's projection on Q·P6(Q), and the
        # ad hoc k = ΣS/ΣS² is 0.997, not 1 (measured 0.8-1.0 %); the two Q_max differ by 40 %
        rel = np.sqrt(np.mean((g - gt)[sel] ** 2) / np.mean(gt[sel] ** 2))
        assert rel < 0.03
        # ξ is recomputed from this G(r) and recovers the envelope diameter (estimator
        # documented at −3…+10 %)
        assert upd.xi_A == correlation_length(upd.result.gr).xi_A
        assert abs(upd.xi_A / D_TRUE - 1) < 0.10
        xi.append(upd.xi_A)
    assert xi[0] != xi[1]
    assert [h["qmax_invA"] for h in s.history] == [20.0, 20.0, 12.0]
    g20, g12 = _g_truncated(20.0, r), _g_truncated(12.0, r)
    # negative control: the two truths differ far beyond the tolerance above
    assert np.sqrt(np.mean((g20 - g12)[sel] ** 2) / np.mean(g20[sel] ** 2)) > 0.2


def test_pdf_session_rpoly_and_refusal(ni_like):
    s = PdfSession(ni_like, composition="Ni", qmin_invA=0.5, rmax_A=20.0)
    # degree n = rpoly·(Q_last − Q_first)/π over the points used (xrdpdf.stages.pdf Notes)
    for rpoly in (1.5, 0.9):
        res = s.update(rpoly=rpoly).result
        span = res.iq.x[-1] - res.iq.x[0]
        assert res.poly_degree == pytest.approx(rpoly * span / math.pi, abs=1e-5)
    before = s.current
    with pytest.raises(InputError, match="beyond the data"):
        s.update(qmax=30.0)
    with pytest.raises(InputError, match="unknown PDF setting"):
        s.update(qmaxx=10.0)
    assert s.current is before and s.config.qmax_invA is None


def test_pdf_session_background_scale(ni_like):
    # measured = sample + container; subtracting exactly the container recovers the sample
    bkg_y = 3.0 + 20.0 * np.exp(-(((Q - 1.5) / 1.0) ** 2))
    meas = ni_like.replace(y=ni_like.y + bkg_y)
    bkg = Pattern(Q, bkg_y, "q_A^-1", 0.1173)
    ref = PdfSession(ni_like, composition="Ni", qmin_invA=0.5, rmax_A=20.0)
    s = PdfSession(meas, composition="Ni", qmin_invA=0.5, rmax_A=20.0, background=bkg)
    upd = s.update(bkg_scale=1.0)
    assert upd.bkg_scale == 1.0
    g, g0 = upd.result.gr.y, ref.result.gr.y
    # round-off only: the same numbers after an exact subtraction
    assert np.max(np.abs(g - g0)) < 1e-9 * np.max(np.abs(g0))
    half = s.update(bkg_scale=0.5)
    assert half.bkg_scale == 0.5
    assert np.max(np.abs(half.result.gr.y - g0)) > 0.01 * np.max(np.abs(g0))
    # a smooth container is absorbed by the correction polynomial whatever its scale, so
    # the automatic scale is not determined: refused, and the session keeps its state
    before = s.current
    with pytest.raises(InputError, match="give bkg_scale"):
        s.update(bkg_scale="auto")
    assert s.current is before


# ------------------------------------------------------------------------------- series
def _fake_series(tmp_path):
    from xrdpdf.io import write_pattern
    from xrdpdf.workflows.series import SUMMARY_COLUMNS, write_summary_csv

    rng = np.random.default_rng(3)
    rows = []
    q = np.linspace(0.5, 20, 400)
    r = np.arange(0.0, 30.0, 0.02)
    for k, (name, state, xi) in enumerate(
        [("c03_sod", "sodiated", 21.5), ("c03_desod", "desodiated", float("nan"))]
    ):
        row = dict.fromkeys(SUMMARY_COLUMNS, float("nan"))
        row.update(
            name=name,
            cycle=3,
            state=state,
            phase="NaTiO2",
            a_A=4.2 - 0.03 * k,
            a_esd_A=1e-4,
            xi_A=xi,
            n_images=1,
            input_hash="x",
            error="",
        )
        rows.append(row)
        y = 100 + rng.normal(0, 1, q.size)
        write_pattern(
            Pattern(q, y, "q_A^-1", 0.1173, np.ones_like(q)), tmp_path / name / f"{name}.xye"
        )
        if k == 0:
            write_pattern(
                Pattern(r, np.sin(r) * np.exp(-r / 10), "r_A"), tmp_path / name / f"{name}.gr"
            )
    write_summary_csv(rows, tmp_path / "summary.csv")
    return rows, q


def test_series_explorer_reads_the_folder(tmp_path):
    rows, q = _fake_series(tmp_path)
    ex = SeriesExplorer(tmp_path)
    assert ex.names == ["c03_sod", "c03_desod"]
    assert ex.row("c03_desod")["a_A"] == rows[1]["a_A"]  # written with repr: exact
    assert math.isnan(ex.row("c03_desod")["xi_A"])
    assert np.allclose(ex.pattern("c03_sod").x, q)
    assert ex.gr("c03_desod") is None and ex.gr("c03_sod") is not None
    assert ex.refinement("c03_sod") is None
    assert "c03_desod" in ex.table_html()
    assert figure_png(ex.figure("c03_desod")).startswith(PNG)  # no G(r): still a figure
    assert set(ex.trend_figures()) == {"xi", "lattice"}
    with pytest.raises(InputError, match="no sample 'c99'"):
        ex.row("c99")
    with pytest.raises(InputError, match="summary.csv: not found"):
        SeriesExplorer(tmp_path / "c03_sod")


# -------------------------------------------------------------------------------- widgets
def test_missing_ipywidgets_raises_importerror(monkeypatch, rs_pattern):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import now raises ImportError
    with pytest.raises(ImportError, match="pip install ipywidgets"):
        require_ipywidgets()
    with pytest.raises(ImportError, match="ipywidgets"):
        refinement_panel(RefinementSession(rs_pattern, "NaTiO2"))


def test_refinement_panel_button(rs_pattern):
    pytest.importorskip("ipywidgets")
    s = RefinementSession(rs_pattern, "NaTiO2", fwhm_inst=0.03)
    panel = refinement_panel(s)
    panel.free_occ[(0, "Na1")].value = True
    panel.size[0].value = 55.0
    panel.n_background.value = 5
    panel.button.click()  # the Refine button's callback, as a click in the browser
    assert s.result is not None
    assert s.options["n_background"] == 5 and len(s.result.background_coeffs) == 5
    assert s.settings()["phases"][0]["free_occupancy"] == ["Na1"]
    assert abs(s.result.phases[0].a_A - A_TRUE) < 4 * s.result.phases[0].a_esd_A
    assert bytes(panel.plot.value).startswith(PNG)
    assert "NaTiO2 a (Å)" in panel.table.value and "converged" in panel.status.value
    panel.on_adopt()
    assert panel.cell[(0, "a")].value == pytest.approx(s.result.phases[0].a_A, abs=1e-6)
    before = s.settings()
    panel.n_background.value = 7
    panel.cell[(0, "a")].value = -1.0  # refused: shown, not raised, and nothing applied
    assert panel.on_refine() is None and "refused" in panel.status.value
    assert s.settings() == before


def test_pdf_panel_sliders(ni_like):
    pytest.importorskip("ipywidgets")
    s = PdfSession(ni_like, composition="Ni", qmin_invA=0.5, rmax_A=50.0)
    panel = pdf_panel(s)
    assert panel.bkg_scale.disabled  # no background
    xi0 = s.current.xi_A
    panel.qmax.value = 12.0  # fires the observer, as a slider move does
    assert s.config.qmax_invA == 12.0 and s.current.qmax_invA == 12.0
    assert s.current.xi_A != xi0 and "12" in panel.status.value
    panel.rpoly.value = 1.5
    span = s.result.iq.x[-1] - s.result.iq.x[0]
    assert s.result.poly_degree == pytest.approx(1.5 * span / math.pi, abs=1e-5)
    panel.qmax_auto.value = True
    assert s.result.qmax_auto and panel.qmax.disabled
    assert bytes(panel.plot_gr.value).startswith(PNG) and bytes(panel.plot_fq.value).startswith(PNG)


def test_series_panel_dropdown(tmp_path):
    pytest.importorskip("ipywidgets")
    _fake_series(tmp_path)
    panel = series_panel(tmp_path)
    assert list(panel.sample.options) == ["c03_sod", "c03_desod"]
    panel.sample.value = "c03_desod"
    assert "4.17" in panel.details.value  # a_A of c03_desod
    assert bytes(panel.plot.value).startswith(PNG)
