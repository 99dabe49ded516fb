"""xrdpdf.stages.pdffit against closed forms, a refine-back simulation and bad input.

PDFfit2 itself is the oracle of ``test_pdffit_pdffit2.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf.cli import _main
from xrdpdf.stages.pdffit import calculate, fit, model_text, read_model
from xrdpdf.stages.pdffit._model import parse_model

DATA = Path(__file__).parent / "data" / "pdffit"

PAIR_CIF = """data_pair
_symmetry_space_group_name_H-M 'P 1'
_cell_length_a 30.0
_cell_length_b 30.0
_cell_length_c 30.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_U_iso_or_equiv
Ni1 Ni 0.0 0.0 0.0 0.004
Ni2 Ni 0.1 0.0 0.0 0.004
"""


def _write(tmp_path: Path, text: str, name: str = "model.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("delta2", [0.0, 2.0])
def test_single_pair_closed_form(tmp_path, delta2):
    """Two atoms 3 Å apart in a 30 Å cube: one Gaussian over the density line."""
    (tmp_path / "pair.cif").write_text(PAIR_CIF)
    model = parse_model(
        f'[data]\nrmin = 1.0\nrmax = 12.0\n[[phase]]\nstructure = "pair.cif"\ndelta2 = {delta2}',
        base_dir=str(tmp_path),
    )
    g = calculate(model)
    r = g.x
    d, n_atoms, volume = 3.0, 2.0, 30.0**3
    sigma = np.sqrt(2 * 0.004 * (1 - delta2 / d**2))
    # G = (1/N r)·2·gauss(r − d) − 4πρ₀r; the i≠j pair counts twice, N = 2
    gauss = np.exp(-0.5 * ((r - d) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)
    expected = 2 * gauss / (n_atoms * r) - 4 * np.pi * n_atoms / volume * r
    # round-off, and the ±5σ window edge (a 3.7e-6 step relative to the peak)
    np.testing.assert_allclose(g.y, expected, atol=5e-6 * expected.max())


def _brute_force_gr(crystal, r, delta1, delta2, qbroad):
    """PDFfit2's G(r) summed pair by pair over a block of cells, written out here.

    Every ordered pair (i in the cell, j anywhere), X-ray weights Z/⟨Z⟩, σ'² from
    both atoms' Uij projected in fractional components as PDFfit2's
    ``Phase::msdAtoms`` does, each Gaussian by ``np.exp`` within ±5σ.
    """
    import xraydb

    a, b, c, al, be, ga = crystal.cell
    ca, cb, cg = np.cos(np.radians([al, be, ga]))
    sg = np.sin(np.radians(ga))
    cy = (ca - cb * cg) / sg
    m = np.array([[a, 0, 0], [b * cg, b * sg, 0], [c * cb, c * cy, c * np.sqrt(1 - cb**2 - cy**2)]])
    metric = m @ m.T
    astar = np.sqrt(np.diag(np.linalg.inv(metric)))
    z = np.array([xraydb.atomic_number(e) for e in crystal.elements], float)
    occ = crystal.occupancy
    w = z / ((occ * z).sum() / occ.sum())
    dr = r[1] - r[0]
    out = np.zeros_like(r)
    reach = r[-1] + 2.0  # beyond every ±5σ window
    axes = [np.arange(-k, k + 1) for k in np.ceil(reach * astar).astype(int) + 1]
    cells = np.stack(np.meshgrid(*axes), -1).reshape(-1, 3)
    for i in range(len(z)):
        for j in range(len(z)):
            d = crystal.xyz[i] - crystal.xyz[j] - cells
            dist = np.sqrt(np.einsum("kc,cd,kd->k", d, metric, d))
            keep = (dist > 0.1) & (dist < reach)
            h = (d[keep] @ metric) / dist[keep, None] * astar
            msd = np.einsum("kc,cd,kd->k", h, crystal.u_cif[i] + crystal.u_cif[j], h)
            for rij, u in zip(dist[keep], msd, strict=True):
                s = np.sqrt(u * (1 - delta1 / rij - delta2 / rij**2 + (qbroad * rij) ** 2))
                k = np.arange(np.ceil((rij - 5 * s - r[0]) / dr),
                              np.floor((rij + 5 * s - r[0]) / dr) + 1)  # fmt: skip
                k = k[(k >= 0) & (k < r.size)].astype(int)
                out[k] += (occ[i] * occ[j] * w[i] * w[j] / (np.sqrt(2 * np.pi) * s)
                           * np.exp(-0.5 * ((r[k] - rij) / s) ** 2))  # fmt: skip
    volume = abs(np.linalg.det(m))
    return out / (occ.sum() * r) - 4 * np.pi * occ.sum() / volume * r


def test_hexagonal_anisotropic_gr_equals_a_pair_by_pair_sum():
    """Wurtzite CdSe (Uij, a free z, γ = 120°) against an explicit pair sum.

    Checks the symmetry grouping of the neighbour list, the Cartesian
    displacement tensors and the product-recurrence Gaussians, window tails
    included, at round-off level.
    """
    from xrdpdf.stages.pdffit._phase import PhaseState

    model = parse_model(
        f'[data]\nrmin = 1.0\nrmax = 9.0\nqbroad = 0.02\n[[phase]]\nstructure = "{DATA}/'
        'CdSe_wurtzite.cif"\ndelta1 = 0.3\ndelta2 = 1.2\n'
    )
    ours = calculate(model)
    crystal = PhaseState(model.phases[0], model).crystal
    expected = _brute_force_gr(crystal, ours.x, 0.3, 1.2, 0.02)
    # round-off of the product recurrence (~1e-13 of a peak over a window) summed
    # over ~10² peaks per point
    np.testing.assert_allclose(ours.y, expected, rtol=0, atol=1e-10 * np.abs(expected).max())


def test_structure_file_is_read_again_when_it_changes(tmp_path):
    from xrdpdf.stages.pdffit._model import load_crystal

    cif = tmp_path / "pair.cif"
    cif.write_text(PAIR_CIF)
    first = load_crystal("pair.cif", str(tmp_path))
    assert load_crystal(str(cif)) is first  # one read per file content
    cif.write_text(PAIR_CIF.replace("_cell_length_a 30.0", "_cell_length_a 30.25"))
    assert load_crystal("pair.cif", str(tmp_path)).cell[0] == 30.25


def test_sphere_envelope_closed_form():
    text = '[data]\nrmin = 1.0\nrmax = 40.0\n[[phase]]\nstructure = "Ni"\n'
    bulk = calculate(parse_model(text)).y
    nano = calculate(parse_model(text + "spdiameter = 30.0\n"))
    x = nano.x / 30.0
    envelope = np.where(x < 1, 1 - 1.5 * x + 0.5 * x**3, 0.0)
    np.testing.assert_allclose(nano.y, bulk * envelope, atol=1e-12)
    assert np.all(nano.y[nano.x > 30.0] == 0.0)


def test_toml_round_trip(tmp_path):
    text = (
        "[data]\nqmax = 24.0\nqdamp = 0.04\nqbroad = 0.01\nrmin = 1.5\nrmax = 50.0\n"
        'rstep = 0.01\nvary = ["qdamp"]\n\n[[phase]]\nstructure = "NaTiO2"\nscale = 1.0\n'
        "delta1 = 0.0\ndelta2 = 0.0\nspdiameter = 0.0\n"
        "uiso = { Na = 0.01, Ti = 0.006, O = 0.008 }\n"
        'vary = ["scale", "lattice", "delta2", "spdiameter", "uiso"]\n'
    )
    model = read_model(_write(tmp_path, text))
    again = parse_model(model_text(model), base_dir=str(tmp_path))
    assert dataclass_values(again) == dataclass_values(model)
    assert model.qmax_invA == 24.0 and model.phases[0].uiso_A2["Ti"] == 0.006


def dataclass_values(model):
    phases = [(p.structure, p.scale, p.delta2_A2, dict(p.uiso_A2), p.vary) for p in model.phases]
    return (model.qmax_invA, model.qdamp_invA, model.qbroad_invA, model.rmin_A, model.rmax_A,
            model.rstep_A, model.vary, phases)  # fmt: skip


def _nanoparticle(noise_sigma: float, seed: int = 7):
    truth = parse_model(
        "[data]\nqdamp = 0.04\nrmin = 1.5\nrmax = 30.0\nrstep = 0.02\n[[phase]]\n"
        'structure = "NaTiO2"\nscale = 0.9\ndelta2 = 2.2\nspdiameter = 30.0\n'
        "uiso = { Na = 0.012, Ti = 0.007, O = 0.009 }\n"
    )
    clean = calculate(truth)
    rng = np.random.default_rng(seed)
    y = clean.y + rng.normal(0, noise_sigma, clean.x.size)
    return Pattern(clean.x, y, "r_A", None, sigma=np.full(y.size, noise_sigma))


def test_nanoparticle_refines_back():
    data = _nanoparticle(0.01)
    start = parse_model(
        "[data]\nqdamp = 0.04\nrmin = 1.5\nrmax = 30.0\nrstep = 0.02\n[[phase]]\n"
        'structure = "NaTiO2"\nscale = 0.9\ndelta2 = 1.54\nspdiameter = 39.0\n'
        "lattice = [4.2887, 4.2887, 4.2887, 90.0, 90.0, 90.0]\n"  # a + 2 %
        "uiso = { Na = 0.012, Ti = 0.007, O = 0.009 }\n"
        'vary = ["scale", "lattice", "delta2", "spdiameter", "uiso"]\n'
    )  # δ2 and spdiameter 30 % off
    res = fit(data, start)
    p = res.phases[0]
    assert res.converged
    assert abs(p["a_A"] - 4.20464) < 1e-3  # the bound
    assert abs(p["spdiameter_A"] - 30.0) < 0.03 * 30.0
    assert abs(p["delta2_A2"] - 2.2) < 0.1 * 2.2
    # white noise of the stated σ: χ²ν ≈ 1 (±5·sqrt(2/N))
    assert abs(res.chi2_red - 1.0) < 5 * np.sqrt(2 / res.fit.x.size)
    # esds are honest: the truth within 4 esd
    assert abs(p["a_A"] - 4.20464) < 4 * p["a_A_esd"] + 1e-12


def test_polar_group_fit_is_not_singular():
    """Wurtzite P6₃mc: both z free by symmetry, the first is held (floating origin)."""
    model = parse_model(
        f'[data]\nrmin = 1.5\nrmax = 12.0\nrstep = 0.02\n[[phase]]\nstructure = "{DATA}/'
        'CdSe_wurtzite.cif"\nuiso = { Cd = 0.01, Se = 0.008 }\nvary = ["scale", "xyz"]\n'
    )
    truth = calculate(model)
    start = parse_model(
        f'[data]\nrmin = 1.5\nrmax = 12.0\nrstep = 0.02\n[[phase]]\nstructure = "{DATA}/'
        'CdSe_wurtzite.cif"\nuiso = { Cd = 0.01, Se = 0.008 }\nxyz = { z2 = 0.38 }\n'
        'vary = ["scale", "xyz"]\n'
    )
    res = fit(Pattern(truth.x, truth.y, "r_A", None), start)
    p = res.phases[0]
    assert p["xyz"]["z0"] == 0.0 and p["xyz_esd"]["z0"] == 0.0  # held
    assert abs(p["xyz"]["z2"] - 0.375) < 1e-5  # noise-free data: exact up to tolerance
    assert res.converged


# ------------------------------------------------------------------ bad input
GOOD = (
    '[data]\nrmin = 1.5\nrmax = 20.0\n[[phase]]\nstructure = "NaTiO2"\n'
    'vary = ["scale", "lattice"]\n'
)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (GOOD.replace("rmin", "rminn"), "rminn"),
        (GOOD + "delta3 = 0.1\n", "delta3"),
        (GOOD.replace('"NaTiO2"', '"missing.cif"'), "missing.cif"),
        (GOOD.replace('"lattice"', '"lattices"'), "lattices"),
        (GOOD.replace('"lattice"', '"xyz"'), "xyz"),  # rocksalt has no free coordinate
        (GOOD + "uiso = { Zr = 0.01 }\n", "Zr"),
    ],
)
def test_bad_model_is_one_line_exit_2(tmp_path, capsys, text, needle):
    model = _write(tmp_path, text)
    rc = _main(["pdfcalc", str(model), "-o", str(tmp_path / "out.gr")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("xrdpdf: error:") and "\n" not in err and needle in err
    assert not (tmp_path / "out.gr").exists()


def test_rmax_beyond_data_is_an_error(tmp_path, capsys):
    model = _write(tmp_path, GOOD)
    assert _main(["pdfcalc", str(model), "-o", str(tmp_path / "d.gr")]) == 0
    longer = _write(tmp_path, GOOD.replace("rmax = 20.0", "rmax = 25.0"), "long.toml")
    capsys.readouterr()
    rc = _main(["pdffit", str(tmp_path / "d.gr"), str(longer)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "rmax" in err and "\n" not in err
    with pytest.raises(InputError, match="beyond the data"):
        fit(calculate(read_model(model)), read_model(longer))


def test_cli_pdffit_json_keys(tmp_path, capsys):
    import json

    model = _write(tmp_path, GOOD.replace("rmax = 20.0", "rmax = 10.0"))
    assert _main(["pdfcalc", str(model), "-o", str(tmp_path / "d.gr")]) == 0
    start = _write(tmp_path, model.read_text() + "scale = 0.8\n", "start.toml")
    capsys.readouterr()
    rc = _main(["pdffit", str(tmp_path / "d.gr"), str(start), "-o", str(tmp_path / "fit.toml"),
                "--plot", str(tmp_path / "fit.png"), "--json"])  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("rw", "chi2_red", "converged", "qdamp", "qbroad", "phases"):
        assert key in out
    ph = out["phases"][0]
    assert ph["name"] == "NaTiO2"
    for key in (
        "a_A",
        "b_A",
        "c_A",
        "alpha_deg",
        "beta_deg",
        "gamma_deg",
        "scale",
        "delta1_A",
        "delta2_A2",
        "spdiameter_A",
        "uiso_A2",
    ):
        assert key in ph and key + "_esd" in ph
    assert abs(ph["scale"] - 1.0) < 1e-6 and out["rw"] < 1e-6
    refit = read_model(tmp_path / "fit.toml")
    assert abs(refit.phases[0].scale - 1.0) < 1e-6
    assert (tmp_path / "fit.png").stat().st_size > 0


def test_session_and_panel_fit_adopt():
    from xrdpdf.notebook._pdffit_panel import PdfFitSession, pdffit_panel

    pytest.importorskip("ipywidgets", reason="the panel needs ipywidgets (dev extra)")
    truth = parse_model('[data]\nrmax = 10.0\n[[phase]]\nstructure = "Ni"\nscale = 0.7\n')
    session = PdfFitSession(calculate(truth), truth)
    with pytest.raises(InputError, match="delta3"):
        session.set(delta3=1.0)
    with pytest.raises(InputError, match="lattices"):
        session.set(vary=["lattices"])
    panel = pdffit_panel(session.set(scale=0.9))
    panel.vary["scale"].value = True
    result = panel.on_fit()
    assert result is not None and abs(result.phases[0]["scale"] - 0.7) < 1e-6
    panel.on_adopt()
    assert abs(session.model.phases[0].scale - 0.7) < 1e-6 and abs(panel.scale.value - 0.7) < 1e-6
    panel.vary["xyz"].value = True  # Ni has no free coordinate: refused, one message
    assert panel.on_fit() is None and "refused" in panel.status.value


def test_two_phase_refines_scales_qdamp_and_fractions():
    text = (
        "[data]\nqdamp = {qd}\nrmin = 1.5\nrmax = 15.0\nrstep = 0.02\n{vary}\n"
        '[[phase]]\nstructure = "NaTiO2"\nscale = {s1}\n{pv}\n'
        '[[phase]]\nstructure = "anatase"\nscale = {s2}\n{pv}\n'
    )
    truth = parse_model(text.format(qd=0.04, s1=0.6, s2=0.4, vary="", pv=""))
    data = calculate(truth)
    start = parse_model(text.format(qd=0.03, s1=0.5, s2=0.5, vary='vary = ["qdamp"]',
                                    pv='vary = ["scale"]'))  # fmt: skip
    res = fit(data, start)
    out = res.to_dict()
    # noise-free data: the truth up to the optimiser's tolerance
    assert abs(out["qdamp"] - 0.04) < 1e-6 and "qdamp_esd" in out
    s1, s2 = (p["scale"] for p in res.phases)
    assert abs(s1 - 0.6) < 1e-6 and abs(s2 - 0.4) < 1e-6
    # PDFfit2's mass fraction x = s·⟨M⟩/⟨Z⟩², written out from the cells' contents
    # (NaTiO2: 2 Na, 2 Ti, 4 O in 8 atoms; anatase: 4 Ti, 8 O in 12 atoms)
    z1, m1 = (2 * 11 + 2 * 22 + 4 * 8) / 8, (2 * 22.98977 + 2 * 47.867 + 4 * 15.999) / 8
    z2, m2 = (4 * 22 + 8 * 8) / 12, (4 * 47.867 + 8 * 15.999) / 12
    x1, x2 = 0.6 * m1 / z1**2, 0.4 * m2 / z2**2
    # atomic masses of xraydb vs the 5-digit values above: 1e-4 relative
    assert abs(res.phases[0]["fraction"] - x1 / (x1 + x2)) < 1e-4
    assert abs(res.phases[0]["fraction"] + res.phases[1]["fraction"] - 1) < 1e-12


def test_pdffit_stru_file_gives_the_builtin_gr(tmp_path):
    """A PDFfit .stru (full cell, P1) and the built-in phase are one structure."""
    from xrdpdf.physics.cif import get_phase

    (tmp_path / "ni.stru").write_text(get_phase("Ni").structure.writeStr("pdffit"))
    text = '[data]\nrmax = 12.0\n[[phase]]\nstructure = "{}"\nuiso = {{ Ni = 0.005 }}\n'
    builtin = calculate(parse_model(text.format("Ni")))
    stru = calculate(read_model(_write(tmp_path, text.format("ni.stru"))))
    np.testing.assert_allclose(stru.y, builtin.y, atol=1e-10)  # round-off


def test_result_row_for_a_series_table():
    truth = parse_model('[data]\nrmax = 10.0\n[[phase]]\nstructure = "Ni"\nspdiameter = 40.0\n')
    start = parse_model('[data]\nrmax = 10.0\n[[phase]]\nstructure = "Ni"\nspdiameter = 30.0\n'
                        'vary = ["spdiameter"]\n')  # fmt: skip
    row = fit(calculate(truth), start).row()
    assert abs(row["pdffit_Ni_spdiameter_A"] - 40.0) < 1e-4  # noise-free: exact
    assert row["pdffit_Ni_a_A_esd"] == 0.0 and "pdffit_rw" in row
