"""CIF sites on special positions given with rounded coordinates, and the contents check.

Truths: hand counts of the International Tables Wyckoff positions (zincite P6₃mc: Zn and O
on 2b, 2 + 2 atoms; corundum R-3c: Al 12c, O 18e; fluorite Fm-3m: Ca 4a, F 8c) and densities
from them with the IUPAC atomic masses written here (not xraydb's).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from xrdpdf._core.errors import InputError, InputWarning
from xrdpdf.physics.cif import get_phase, phase_from_cif
from xrdpdf.stages.pdffit._model import load_crystal

# IUPAC standard atomic weights (abridged, 2021)
MASS_U = {"Zn": 65.38, "O": 15.999, "Al": 26.9815, "Ca": 40.078, "F": 18.998}
AMU_G = 1.66053906660e-24  # g
DATA = Path(__file__).parent / "data" / "cif_qpa"
A_ZNO, C_ZNO = 3.2498, 5.2066

ZNO_SYMOPS = """loop_
_symmetry_equiv_pos_as_xyz
'x, y, z'
'-y, x-y, z'
'-x+y, -x, z'
'-x, -y, z+1/2'
'y, -x+y, z+1/2'
'x-y, x, z+1/2'
'-y, -x, z'
'-x+y, y, z'
'x, x-y, z'
'y, x, z+1/2'
'x-y, -y, z+1/2'
'-x, -x+y, z+1/2'
"""


def zno_cif(third: str, two_thirds: str, statements: str = "") -> str:
    """Zincite with the 1/3, 2/3 coordinates written as the given strings."""
    return f"""data_zincite
{statements}
_cell_length_a {A_ZNO}
_cell_length_b {A_ZNO}
_cell_length_c {C_ZNO}
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 120
_symmetry_space_group_name_H-M 'P 63 m c'
_symmetry_Int_Tables_number 186
{ZNO_SYMOPS}
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
_atom_site_B_iso_or_equiv
Zn1 Zn {third} {two_thirds} 0.0 1.0 0.6
O1 O {third} {two_thirds} 0.3819 1.0 0.8
"""


def _zno_density() -> float:
    vol_cm3 = math.sqrt(3) / 2 * A_ZNO**2 * C_ZNO * 1e-24
    return 2 * (MASS_U["Zn"] + MASS_U["O"]) * AMU_G / vol_cm3  # Z = 2 by hand count


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("third", "two_thirds"),
    [("0.3333", "0.6667"), ("0.333", "0.667"), ("0.33333", "0.66667")],
)
def test_rounded_special_positions_give_the_exact_phase(tmp_path, third, two_thirds):
    exact = get_phase(_write(tmp_path, "exact.cif", zno_cif("0.333333333", "0.666666667")))
    rounded = get_phase(_write(tmp_path, "zno.cif", zno_cif(third, two_thirds)))
    # hand count: Zn 2b and O 2b, two positions each
    assert [s.multiplicity for s in rounded.sites] == [2, 2]
    assert len(rounded.structure) == 4
    # the site is moved onto 1/3, 2/3 (round-off of the symmetry average only)
    np.testing.assert_allclose(rounded.sites[0].xyz, (1 / 3, 2 / 3, 0.0), atol=1e-9)
    # density from the hand count; 1e-3 relative covers xraydb's masses vs IUPAC's
    assert rounded.density_g_cm3 == pytest.approx(_zno_density(), rel=1e-3)
    # same reflections and |F|² as the exact CIF (positions agree to 1e-9)
    r1, r2 = exact.reflections(6.0), rounded.reflections(6.0)
    np.testing.assert_array_equal(r1.hkl, r2.hkl)
    np.testing.assert_array_equal(r1.multiplicity, r2.multiplicity)
    np.testing.assert_allclose(r2.f2, r1.f2, rtol=1e-7)


def test_contents_check_warns_on_a_wrong_expansion(tmp_path):
    stated = "_chemical_formula_sum 'O Zn'\n_cell_formula_units_Z 2\n"
    stated += "_exptl_crystal_density_diffrn 5.675(2)\n"
    p = _write(tmp_path, "zno.cif", zno_cif("0.3333", "0.6667", stated))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = phase_from_cif(p)  # consistent with its statements: no warning
    assert ok.density_g_cm3 == pytest.approx(5.675, rel=2e-3)
    # diffpy's own tolerance (1e-5) keeps 0.3333 off 1/3: 3 × too many atoms, and it says so
    with pytest.warns(InputWarning, match=r"Zn 6 O 6.*17\.0.*Z = 2 .*density of 5\.675"):
        bad = phase_from_cif(p, special_position_tol=1e-5)
    assert len(bad.structure) == 12


def test_contents_check_formula_and_z(tmp_path):
    # Z stated wrong: the cell (Zn 2 O 2) is not 4 × ZnO
    p = _write(
        tmp_path,
        "z4.cif",
        zno_cif("0.3333", "0.6667", "_cell_formula_units_Z 4\n_chemical_formula_sum 'Zn O'\n"),
    )
    with pytest.warns(InputWarning, match="Z = 4"):
        get_phase(p)
    # formula without Z: the cell must be a multiple of it (Zn2O2 is not of ZnO2)
    p = _write(tmp_path, "f.cif", zno_cif("0.3333", "0.6667", "_chemical_formula_sum 'Zn O2'\n"))
    with pytest.warns(InputWarning, match="not a multiple"):
        get_phase(p)


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("corundum", {"Al1": 12, "O1": 18}),
        ("fluorite", {"Ca1": 4, "F1": 8}),
        ("zincite_rounded", {"Zn1": 2, "O1": 2}),
    ],
)
def test_wyckoff_multiplicities_by_hand(name, counts):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Z, formula and density agree: no warning
        ph = get_phase(DATA / f"{name}.cif")
    assert {s.label: s.multiplicity for s in ph.sites} == counts


def test_special_position_tol_range(tmp_path):
    p = _write(tmp_path, "zno.cif", zno_cif("0.3333", "0.6667"))
    with pytest.raises(InputError, match="special_position_tol"):
        phase_from_cif(p, special_position_tol=0.2)


def test_pdffit_crystal_from_rounded_cif_has_the_hand_count():
    # the real-space model reads the same CIF through diffpy: 2 Zn + 2 O, on 1/3, 2/3
    cr = load_crystal(str(DATA / "zincite_rounded.cif"))
    assert len(cr.xyz) == 4
    np.testing.assert_allclose(np.sort(cr.xyz[:, 0]), [1 / 3, 1 / 3, 2 / 3, 2 / 3], atol=1e-9)
