"""Vendor and foreign pattern formats, each on a real public file (tests/data/formats/LICENSE.md).

Truth comes from outside the reader: the vendor's own ASCII export of the same
file (Bruker XCH ``.UXD``), the file's plain-text members read here with
numpy, the header's closed-form axis (start + i·step), or the reference values
another reader stored beside the file (FAIRmat readers-xrd; xrdpattern through xylib),
or the same scan in a second layout from the same repository (GSAS-II ``.gda``/``.dat``).
"""

import bz2
import gzip
import json
import lzma
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from xrdpdf import InputError, InputWarning, Pattern
from xrdpdf.io import read_pattern, read_patterns, write_pattern

DATA = Path(__file__).parent / "data" / "formats"


def _uxd(path: Path) -> tuple[dict[str, str], np.ndarray]:
    """Bruker XCH export: ``_KEY=value`` lines, then ``2θ counts`` rows."""
    keys, rows = {}, []
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("_"):
            k, _, v = line[1:].partition("=")
            keys.setdefault(k, v.strip("'"))
        elif line.strip() and not line.startswith(";"):
            rows.append([float(v) for v in line.split()])
    return keys, np.asarray(rows)


def test_bruker_raw_v3_matches_the_vendor_export():
    p = read_pattern(DATA / "BT86.raw")
    keys, table = _uxd(DATA / "BT86_.UXD")
    counts = table[:, 1]
    assert p.unit == "2th_deg"
    assert p.metadata["anode"] == keys["ANODE"] == "Cu"
    # the export prints 6 decimals of the stored float64 values
    assert p.wavelength_A == pytest.approx(float(keys["WL1"]), abs=5e-7)
    assert p.metadata["wavelength_ka2_A"] == pytest.approx(float(keys["WL2"]), abs=5e-7)
    assert p.metadata["ka2_ka1_ratio"] == pytest.approx(float(keys["WLRATIO"]), abs=5e-7)
    assert p.metadata["step_time_s"] == pytest.approx(float(keys["STEPTIME"]), abs=5e-7)
    np.testing.assert_array_equal(p.y, counts)  # integer counts, exactly
    # the export prints 2θ with 4 significant digits (3.016, 39.97): up to 5e-3° off
    np.testing.assert_allclose(p.x, table[:, 0], atol=5e-3)
    assert p.x[0] == float(keys["START"])


def test_bruker_raw_multi_range_separate_and_merged(tmp_path):
    ranges = read_patterns(DATA / "format1.raw")
    assert [r.metadata["range"] for r in ranges] == [1, 2, 3]
    assert [(r.x[0], r.x[-1], r.x.size) for r in ranges] == [
        (10.0, 20.0, 101),
        (30.0, 35.0, 26),
        (40.0, 45.0, 51),
    ]
    with pytest.raises(InputError, match="3 ranges"):
        read_pattern(DATA / "format1.raw")
    merged = read_pattern(DATA / "format1.raw", merge=True)
    assert merged.x.size == 101 + 26 + 51
    assert merged.metadata["y_unit"] == "counts/s"  # step times 0.1, 0.2, 0.1 s differ
    t = [r.metadata["step_time_s"] for r in ranges]
    np.testing.assert_allclose(
        merged.y, np.concatenate([r.y / tt for r, tt in zip(ranges, t, strict=True)])
    )
    # content, not suffix, decides the format
    shutil.copy(DATA / "format1.raw", tmp_path / "renamed.dat")
    assert len(read_patterns(tmp_path / "renamed.dat")) == 3


def test_xrdml_against_its_xml_text():
    path = DATA / "empyrean.xrdml"
    p = read_pattern(path)
    text = path.read_text().split("<dataPoints>")[1]
    start = float(re.search(r"<startPosition>([^<]+)", text.split('axis="2Theta"')[1])[1])
    end = float(re.search(r"<endPosition>([^<]+)", text.split('axis="2Theta"')[1])[1])
    y = np.asarray(re.search(r"<intensities[^>]*>([^<]+)", text)[1].split(), float)
    np.testing.assert_array_equal(p.y, y)
    np.testing.assert_allclose(p.x, np.linspace(start, end, y.size), rtol=1e-15)
    assert p.wavelength_A == 1.5405980 and p.metadata["anode"] == "Cu"
    assert p.metadata["wavelength_ka2_A"] == 1.5444260


def test_rasx_against_its_profile_member():
    path = DATA / "omega2theta_high_temperature.rasx"
    p = read_pattern(path)
    with zipfile.ZipFile(path) as z:
        rows = np.loadtxt(z.read("Data0/Profile0.txt").decode("utf-8-sig").splitlines())
    np.testing.assert_array_equal(p.x, rows[:, 0])
    np.testing.assert_allclose(p.y, rows[:, 1] * rows[:, 2], rtol=1e-15)  # counts × attenuation
    assert p.metadata["anode"] == "Cu" and p.wavelength_A == 1.540593


def test_brml_against_readers_xrd_reference():
    p = read_pattern(DATA / "23-012-AG_2thomegascan_rawdata.brml")
    # FAIRmat readers-xrd's stored result for the same measurement
    # (tests/data/23-012-AG_2thomegascan_long.brml.json): 2001 points, Cu, Kα1 1.5406 Å
    ref = json.loads(
        '{"n": 2001, "anode": "Cu", "kAlpha1": 1.5406, "kAlpha2": 1.54439, "ratio": 0.5}'
    )
    assert p.x.size == ref["n"] and p.metadata["anode"] == ref["anode"]
    assert p.wavelength_A == ref["kAlpha1"] and p.metadata["wavelength_ka2_A"] == ref["kAlpha2"]
    assert p.metadata["ka2_ka1_ratio"] == ref["ratio"]
    with zipfile.ZipFile(DATA / "23-012-AG_2thomegascan_rawdata.brml") as z:
        xml = z.read("Experiment0/RawData0.xml").decode()
    rows = [r.split(",") for r in re.findall(r"<Datum>([^<]+)</Datum>", xml)]
    np.testing.assert_array_equal(p.x, [float(r[2]) for r in rows])
    np.testing.assert_array_equal(p.y, [float(r[-1]) for r in rows])


def test_gsas_std_bank():
    with pytest.raises(InputError, match="wavelength"):  # "Cu Ka" in the title only
        read_pattern(DATA / "PBSO4.XRA")
    p = read_pattern(DATA / "PBSO4.XRA", wavelength_A=1.5406)
    # BANK 1 6001 601 CONST 1000 2.5 0 0 STD: 2θ = (1000 + 2.5 i) centidegrees
    np.testing.assert_allclose(p.x, 10.0 + 0.025 * np.arange(6001), rtol=1e-14)
    lines = (DATA / "PBSO4.XRA").read_text().splitlines()
    first = [float(lines[2][j : j + 8]) for j in range(0, 80, 8)]
    np.testing.assert_array_equal(p.y[:10], first)
    np.testing.assert_allclose(p.sigma, np.sqrt(p.y))  # one counter: σ² = counts
    assert p.metadata["gsas_bank"] == 1


def test_gsas_esd_and_fxye(tmp_path):
    x = np.array([10.0, 10.02, 10.04])
    y, s = np.array([100.0, 250.0, 90.0]), np.array([10.0, 15.8, 9.5])
    esd = "".join(f"{a:8.1f}{b:8.2f}" for a, b in zip(y, s, strict=True))
    (tmp_path / "a.gsa").write_text(f"title\nBANK 1 3 1 CONST 1000.0 2.0 0 0 ESD\n{esd}\n")
    (tmp_path / "b.fxye").write_text(
        "title\nBANK 2 3 3 CONST 1000 2 0 0 FXYE\n"
        + "".join(f"{100 * a} {b} {c}\n" for a, b, c in zip(x, y, s, strict=True))
    )
    for name in ("a.gsa", "b.fxye"):
        p = read_pattern(tmp_path / name, wavelength_A=1.54)
        np.testing.assert_allclose(p.x, x, rtol=1e-12)
        np.testing.assert_allclose(p.y, y)
        np.testing.assert_allclose(p.sigma, s)
    (tmp_path / "t.gsa").write_text("title\nBANK 1 3 1 RALF 1 2 3 4 ALT\n1 2 3\n")
    with pytest.raises(InputError, match="time-of-flight"):
        read_pattern(tmp_path / "t.gsa")


def test_free_format_cr_lines_and_pairs_on_one_line_compressed(tmp_path):
    with pytest.raises(InputError, match="xtype"):
        read_pattern(DATA / "CPD-Y2O3.PRN.xz")
    # MAUD's file: one (2θ, counts) pair per CR-terminated line, no final newline
    p = read_pattern(DATA / "CPD-Y2O3.PRN.xz", xtype="tth", wavelength_A=1.5405981)
    assert p.x.size == 7251 and (p.x[0], p.y[0]) == (5.0, 484.0) and p.x[-1] == 150.0
    assert p.metadata["compression"] == "xz"
    # the same numbers with every pair on one line
    one = lzma.decompress((DATA / "CPD-Y2O3.PRN.xz").read_bytes()).replace(b"\r", b" ")
    (tmp_path / "one.prn").write_bytes(one)
    q = read_pattern(tmp_path / "one.prn", xtype="tth", wavelength_A=1.5405981)
    assert q.metadata["layout"] == "pairs"
    np.testing.assert_array_equal(q.x, p.x)
    np.testing.assert_array_equal(q.y, p.y)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_every_text_format_compressed(tmp_path, compress):
    q = np.linspace(0.5, 20, 50)
    pat = Pattern(q, 1 + q**2, "q_A^-1", 0.1173, sigma=np.sqrt(q), metadata={})
    for suffix in (".xye", ".chi", ".gr", ".iq"):
        plain = write_pattern(
            pat if suffix != ".gr" else pat.replace(unit="r_A"), tmp_path / f"p{suffix}"
        )
        packed = tmp_path / f"p{suffix}.{compress.__module__}"
        packed.write_bytes(compress(plain.read_bytes()))
        a, b = read_pattern(plain), read_pattern(packed)
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
        assert b.metadata["compression"] in ("gzip", "bzip2", "xz")


def test_utf16_bom_and_decimal_commas(tmp_path):
    text = "# xrdpdf 1\n# unit = q_A^-1\n1.0 10.0\n2.0 20.0\n3.0 15.0\n"
    (tmp_path / "u16.xy").write_bytes(text.encode("utf-16"))  # with BOM
    (tmp_path / "u8bom.xy").write_bytes(b"\xef\xbb\xbf" + text.encode())
    for name in ("u16.xy", "u8bom.xy"):
        p = read_pattern(tmp_path / name)
        np.testing.assert_array_equal(p.y, [10.0, 20.0, 15.0])
    (tmp_path / "comma.xy").write_text("10,5\t100,25\n10,6\t101,5\n10,7\t99,75\n")
    p = read_pattern(tmp_path / "comma.xy", xtype="tth", wavelength_A=1.54)
    np.testing.assert_allclose(p.x, [10.5, 10.6, 10.7])
    np.testing.assert_allclose(p.y, [100.25, 101.5, 99.75])
    assert p.metadata["decimal_comma"] is True
    # commas both as decimal marks and between columns: ambiguous, named as such
    (tmp_path / "both.csv").write_text("10,5,100,25\n10,6,101,5\n10,7,99,75\n")
    with pytest.raises(InputError, match="decimal commas"):
        read_pattern(tmp_path / "both.csv", xtype="q")
    (tmp_path / "semi.csv").write_text("10,5;100,25\n10,6;101,5\n")
    assert read_pattern(tmp_path / "semi.csv", xtype="q").x[1] == pytest.approx(10.6)


def test_maud_dat_title_line(tmp_path):
    (tmp_path / "m.dat").write_text(
        "Y2O3 MAUD example, 2theta counts\n 5.00 484\n 5.02 484\n 5.04 457\n"
    )
    p = read_pattern(tmp_path / "m.dat", xtype="tth", wavelength_A=1.5406)
    assert p.metadata["title"].startswith("Y2O3") and p.y.tolist() == [484, 484, 457]


def _xpd_chi(n: int, declared: int) -> str:
    # the layout xpdtools' save_output writes (header text, '#' ruler, then x I)
    x = np.linspace(0.5, 25.0, n)
    body = "\n".join(f"{a:.18e} {b:.18e}" for a, b in zip(x, 1e3 / (1 + x), strict=True))
    return (
        "sample_0001\n        This file contains integrated powder x-ray diffraction\n"
        "        intensities.\n        First column represents Q values (Angstroms) and"
        " second column represents intensities\n"
        f"        Number of data points in the file : {declared}\n"
        "        ######################################################\n" + body + "\n"
    )


def test_xpd_pipeline_chi(tmp_path):
    (tmp_path / "a.chi").write_text(_xpd_chi(2108, 2108))
    p = read_pattern(tmp_path / "a.chi")
    assert p.unit == "q_A^-1" and p.x.size == 2108 and p.metadata["format"] == "xpd_chi"
    (tmp_path / "b.chi").write_text(_xpd_chi(2000, 2108))
    with pytest.raises(InputError, match="2108 data points but 2000"):
        read_pattern(tmp_path / "b.chi")


def test_pdfgetx2_gr_four_columns(tmp_path):
    r = np.arange(1, 6) * 0.5
    rows = "\n".join(f"{a:.3f} {a * 2:.4f} 0.000 {0.01 * a:.4f}" for a in r)
    (tmp_path / "x2.gr").write_text(
        "History written: Mon Jan 1 2007\nproduced by pdfgetx2\n##### start data\n"
        "#O0 rg_int sig_rg_int low_int sig_low_int rmax rhofit\n#S 1 - PDF from PDFgetX2\n"
        f"#L r G(r) dr dG(r)\n{rows}\n"
    )
    p = read_pattern(tmp_path / "x2.gr")
    assert p.unit == "r_A" and p.metadata["format"] == "pdfgetx2"
    np.testing.assert_allclose(p.sigma, 0.01 * r, atol=5e-5)  # dG, not dr


def test_rigaku_ras(tmp_path):
    rows = "\n".join(f"{10 + 0.02 * i:.2f} {100 + i} 1.5" for i in range(5))
    text = (
        '*RAS_DATA_START\n*RAS_HEADER_START\n*HW_XG_TARGET_NAME "Cu"\n'
        '*HW_XG_WAVE_LENGTH_ALPHA1 "1.540593"\n*MEAS_SCAN_UNIT_X "deg"\n'
        f"*RAS_HEADER_END\n*RAS_INT_START\n{rows}\n*RAS_INT_END\n*RAS_DATA_END\n"
    )
    (tmp_path / "s.ras").write_bytes(text.encode("latin-1"))
    p = read_pattern(tmp_path / "s.ras")
    assert p.wavelength_A == 1.540593 and p.metadata["anode"] == "Cu"
    np.testing.assert_allclose(p.y, 1.5 * (100 + np.arange(5)))


def test_pdfgetx2_gr_real_file_gzipped():
    # diffpy.pdfgui's test file written by PDFgetX2 (2005): "##### start data", r G dr dG
    p = read_pattern(DATA / "Ni_2-8.chi.gr.gz")
    text = gzip.decompress((DATA / "Ni_2-8.chi.gr.gz").read_bytes()).decode()
    rows = np.loadtxt(text.split("##### start data")[1].splitlines(), comments="#")
    assert p.unit == "r_A" and p.metadata["format"] == "pdfgetx2"
    np.testing.assert_array_equal(p.x, rows[:, 0])
    np.testing.assert_array_equal(p.y, rows[:, 1])
    np.testing.assert_array_equal(p.sigma, rows[:, 3])  # dG, not dr


# ---- Bruker RAW v1, v2, v4 with two ranges (the real files hold one range each), built
# from the layouts of the DIFFRAC-AT manual as xylib (bruker_raw.cpp) documents them
def _raw_v4(ranges, scan="Locked Coupled"):
    import struct

    head = b"RAW4.00\x00" + b"\x00" * 4 + b"03/04/10".ljust(12, b"\x00")
    head += b"20:59:14".ljust(10, b"\x00") + b"\x00" * 27
    hw = bytearray(120)
    struct.pack_into("<II", hw, 0, 30, 120)
    struct.pack_into("<5d", hw, 72, 1.5418, 1.5406, 1.54439, 1.39222, 0.5)
    hw[116:118] = b"Cu"
    body = bytes(head) + bytes(hw)
    for x0, step, t, y in ranges:
        rh = bytearray(160)
        rh[32 : 32 + len(scan)] = scan.encode()
        struct.pack_into("<ddIf", rh, 72, x0, step, len(y), t)
        struct.pack_into("<d", rh, 112, 1.5406)
        struct.pack_into("<II", rh, 136, 4, 0)
        body += bytes(rh) + np.asarray(y, "<f4").tobytes()
    return body


def _raw_v2(ranges):
    import struct

    head = bytearray(256)
    head[:4] = b"RAW2"
    struct.pack_into("<H", head, 4, len(ranges))
    head[188:190] = b"Cu"
    struct.pack_into("<fff", head, 190, 1.5406, 1.54439, 0.5)
    body = bytes(head)
    for x0, step, t, y in ranges:
        rh = bytearray(48)
        struct.pack_into("<HH", rh, 0, 48, len(y))
        struct.pack_into("<fff", rh, 8, t, step, x0)
        body += bytes(rh) + np.asarray(y, "<f4").tobytes()
    return body


def _raw_v1(ranges):
    import struct

    body = b"RAW "
    for k, (x0, step, t, y) in enumerate(ranges):
        rh = bytearray(152)
        struct.pack_into("<Iff", rh, 0, len(y), t, step)
        struct.pack_into("<f", rh, 20, x0)
        struct.pack_into("<ff", rh, 68, 1.5406, 1.54439)
        struct.pack_into("<I", rh, 148, 1 if k + 1 < len(ranges) else 0)
        body += bytes(rh) + np.asarray(y, "<f4").tobytes()
    return body


@pytest.mark.parametrize("build", [_raw_v1, _raw_v2, _raw_v4])
def test_bruker_raw_v1_v2_v4_layouts(tmp_path, build):
    y1, y2 = np.arange(5.0) + 100, np.arange(4.0) * 3 + 7
    ranges = [(10.0, 0.5, 1.0, y1), (30.0, 0.25, 2.0, y2)]
    (tmp_path / "a.raw").write_bytes(build(ranges))
    got = read_patterns(tmp_path / "a.raw")
    assert len(got) == 2
    for p, (x0, step, t, y) in zip(got, ranges, strict=True):
        np.testing.assert_array_equal(p.y, y)
        np.testing.assert_allclose(p.x, x0 + step * np.arange(y.size), rtol=1e-7)  # float32
        assert p.wavelength_A == pytest.approx(1.5406, rel=1e-7)
        assert p.metadata["step_time_s"] == t
        assert p.metadata.get("anode") == (None if build is _raw_v1 else "Cu")
    (tmp_path / "short.raw").write_bytes(build(ranges)[:-6])
    with pytest.raises(InputError, match="truncated"):
        read_patterns(tmp_path / "short.raw")


def test_bruker_raw_v4_other_scan_types_refused(tmp_path):
    (tmp_path / "r.raw").write_bytes(_raw_v4([(10.0, 0.1, 1.0, [1.0, 2.0])], scan="Rocking Curve"))
    with pytest.raises(InputError, match="Rocking Curve"):
        read_pattern(tmp_path / "r.raw")


# ---- real files for RAW v4 and GSAS ESD / FXYE (tests/data/formats/LICENSE.md)
def test_bruker_raw_v4_matches_xylib_export_and_the_installed_convert(tmp_path):
    # aimat-lab/xrdpattern's bruker.raw (RAW4.00, DIFFRAC.SUITE 2021) and the JSON that
    # xrdpattern wrote from it through xylib (another reader, another language)
    path = DATA / "xrdpattern_bruker_v4.raw"
    p = read_pattern(path)
    ref = json.loads(gzip.decompress((DATA / "xrdpattern_bruker_v4.aimat.json.gz").read_bytes()))
    x_ref, y_ref = np.asarray(ref["two_theta_values"]), np.asarray(ref["intensities"])
    assert p.unit == "2th_deg" and p.x.size == x_ref.size == 4059
    np.testing.assert_array_equal(p.y, y_ref)  # integer counts, exactly
    # the JSON prints 2θ with 6 decimals: round-off ≤ 5e-7°
    np.testing.assert_allclose(p.x, x_ref, rtol=0, atol=5e-7 + 1e-12)
    tube = json.loads(json.loads(ref["label"])["xray_info"])
    assert p.wavelength_A == float(tube["primary_wavelength"]) == 1.5406
    assert p.metadata["wavelength_ka2_A"] == float(tube["secondary_wavelength"])
    assert p.metadata["anode"] == "Cu" and p.metadata["scan_type"] == "Locked Coupled"
    exe = Path(sys.executable).parent / "xrdpdf"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "xrdpdf.cli"]
    out = subprocess.run(
        [*cmd, "convert", str(path), "-o", str(tmp_path), "--format", "xye", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    rec = json.loads(out.stdout)["written"][0]
    assert (rec["x_unit"], rec["anode"], rec["n_points"]) == ("2th_deg", "Cu", 4059)
    assert rec["wavelength_A"] == 1.5406
    back = read_pattern(rec["path"])
    np.testing.assert_allclose(back.x, x_ref, rtol=0, atol=5e-7 + 1e-12)
    np.testing.assert_array_equal(back.y, y_ref)


def test_gsas_esd_real_file_matches_its_dat_export():
    # GSAS-II Exercises/MCSA: 3-aminoquinoline as a GSAS ESD bank (Quinoli.gda) and the
    # same scan as Quinoli.dat (start step end, then rows of 10 counts and 10 σ)
    p = read_pattern(DATA / "Quinoli.gda.xz", wavelength_A=1.0)
    lines = lzma.decompress((DATA / "Quinoli.dat.xz").read_bytes()).decode().splitlines()
    start, step, end = (float(v) for v in lines[0].split())
    rows = [np.asarray(ln.split(), float) for ln in lines[1:] if ln.strip()]
    y, s = np.concatenate(rows[0::2]), np.concatenate(rows[1::2])
    assert p.metadata["gsas_record"] == "ESD" and p.metadata["title"] == "3-aminoquinoline"
    assert p.x.size == y.size == 7361
    np.testing.assert_allclose(p.x, start + step * np.arange(y.size), rtol=1e-14)
    assert p.x[-1] == pytest.approx(end, abs=1e-12)
    np.testing.assert_array_equal(p.y, y)  # both print counts with one decimal
    # the .gda prints σ with 1 decimal, the .dat with 2: they differ by ≤ 0.05 + 0.005
    np.testing.assert_allclose(p.sigma, s, rtol=0, atol=0.055)


def test_gsas_fxye_real_11bm_file_with_its_long_header():
    # GSAS-II Exercises/sucrose/11bmb_0842.fxye: 59 '#' header lines before BANK,
    # "# Mean wavelength is:     0.589183", BANK 1 23699 23699 CONS 49.900 0.100 0 0 FXYE
    text = lzma.decompress((DATA / "11bmb_0842.fxye.xz").read_bytes()).decode()
    p = read_pattern(DATA / "11bmb_0842.fxye.xz")
    assert p.unit == "2th_deg" and p.wavelength_A == 0.589183
    assert p.metadata["gsas_record"] == "FXYE" and p.x.size == 23699
    body = text.split("FXYE", 1)[1].splitlines()[1:]
    rows = np.asarray([ln.split() for ln in body if ln.strip()], float)
    np.testing.assert_array_equal(p.x, rows[:, 0] / 100.0)  # centidegrees
    np.testing.assert_array_equal(p.y, rows[:, 1])
    np.testing.assert_array_equal(p.sigma, rows[:, 2])
    assert (p.x[0], p.y[0], p.sigma[0]) == (0.499, 36.198, 6.17527)  # read by hand
    assert (p.x[-1], p.y[-1], p.sigma[-1]) == (24.197, 12.4583, 3.48224)


def test_maud_venezia_dat_real_files():
    # luttero/maud src/examples/alzrc.dat (CR line ends): "Al2O3 + CeO2-stabilized ZrO2",
    # "2660 .05 22 1.540598 1" (npts step start λ ncols, MAUD VeneziaDataFile.java),
    # then one count a line: 49, 61, 69, ..., 162, 194 (read by hand)
    p = read_pattern(DATA / "maud_alzrc.dat")
    assert p.unit == "2th_deg" and p.metadata["format"] == "maud_dat"
    assert p.metadata["title"] == "Al2O3 + CeO2-stabilized ZrO2"
    assert p.wavelength_A == 1.540598 and p.x.size == 2660
    np.testing.assert_allclose(p.x, 22 + 0.05 * np.arange(2660), rtol=1e-15)
    assert p.y[:3].tolist() == [49, 61, 69] and p.y[-2:].tolist() == [162, 194]
    # bbm48bis.dat: "1800 0.05 25 1.5405981 1" above 1801 counts; MAUD reads the first 1800
    with pytest.warns(InputWarning, match="says 1800 points, the file holds 1801"):
        q = read_pattern(DATA / "maud_bbm48bis.dat")
    assert q.x.size == 1800 and q.x[-1] == pytest.approx(25 + 0.05 * 1799, abs=1e-12)
    assert q.y[:3].tolist() == [142, 130, 169] and q.y[-1] == 262  # 286, the 1801st, is left


def test_rigaku_ras_real_smartlab_file():
    # thomasgredig/rigakuXRD inst/extdata/MB120718Si3.ras (SmartLab, Shift-JIS names, CRLF):
    # MEAS_SCAN_START 2, MEAS_SCAN_STEP 0.02, MEAS_SCAN_STOP 30, MEAS_DATA_COUNT 1401,
    # HW_XG_TARGET_NAME Cu, Kα1 1.540593, Kα2 1.544414; first row 2.0000 7994 1, last
    # 30.0000 1150 1 (read by hand)
    path = DATA / "rigakuXRD_MB120718Si3.ras"
    p = read_pattern(path)
    assert p.unit == "2th_deg" and p.metadata["anode"] == "Cu"
    assert p.wavelength_A == 1.540593 and p.metadata["wavelength_ka2_A"] == 1.544414
    assert p.x.size == 1401
    np.testing.assert_allclose(p.x, 2.0 + 0.02 * np.arange(1401), rtol=0, atol=5e-5)
    assert (p.x[0], p.y[0]) == (2.0, 7994.0) and (p.x[-1], p.y[-1]) == (30.0, 1150.0)
    text = path.read_bytes().decode("latin-1")
    rows = np.loadtxt(text.split("*RAS_INT_START")[1].split("*RAS_INT_END")[0].splitlines())
    np.testing.assert_array_equal(p.y, rows[:, 1] * rows[:, 2])  # counts × attenuation


def test_xpd_pipeline_chi_real_file_gzipped():
    # xpdAcq/PDFstream's Ni.chi from the NSLS-II XPD pipeline (Ni powder, 2020-02-14):
    # free-text header "First column represents Q values (Angstroms)", "Number of data
    # points in the file : 2108", a '#' ruler; first row 1.653429657921934998e-02
    # 8.000000476837186625e+00, last 3.321874230314269738e+01 0 (read by hand)
    path = DATA / "pdfstream_Ni_xpd.chi.gz"
    p = read_pattern(path)
    assert p.unit == "q_A^-1" and p.metadata["format"] == "xpd_chi"
    assert p.metadata["title"].endswith("b14f98_0001_dark_corrected_img")
    assert p.x.size == 2108 and p.wavelength_A is None  # the file gives none; Q needs none
    assert (p.x[0], p.y[0]) == (1.653429657921934998e-02, 8.000000476837186625e00)
    assert (p.x[-1], p.y[-1]) == (3.321874230314269738e01, 0.0)
    text = gzip.decompress(path.read_bytes()).decode()
    rows = np.loadtxt(text.split("#" * 54)[1].splitlines())
    np.testing.assert_array_equal(p.x, rows[:, 0])
    np.testing.assert_array_equal(p.y, rows[:, 1])


@pytest.mark.parametrize(
    ("name", "version", "n", "start", "step", "t_s", "ka2", "first", "last"),
    [
        # header read by hand (xxd): "RAW " u32 876 at 4, f32 4.0 s at 8, 0.04° at 12,
        # 4.98° at 24, Kα1/Kα2 at 72/76; 152-byte range header, 876 float32 counts:
        # 4 + 152 + 4·876 = 3660 bytes, the file's size
        ("pyxrd_brk_raw1.raw", "RAW v1", 876, 4.98, 0.04, 4.0, 1.54443, [665, 632, 637], 266),
        # "RAW2", 1 range, "Cu" at 188, Kα1 Kα2 ratio at 190; range header of 60 bytes:
        # 7251 steps, 3.0 s, 0.02°, 5.0°: 256 + 60 + 4·7251 = 29320 bytes
        ("pyxrd_brk_raw2.raw", "RAW v2", 7251, 5.0, 0.02, 3.0, 1.5443, [222, 187, 198], 65),
    ],
)
def test_bruker_raw_v1_v2_real_files(name, version, n, start, step, t_s, ka2, first, last):
    # PyXRD's parser test files (test/test_generic/test_io/test_xrd_parsers/)
    p = read_pattern(DATA / name)
    assert p.metadata["format_version"] == version and p.x.size == n
    assert (DATA / name).stat().st_size == {"RAW v1": 4 + 152, "RAW v2": 256 + 60}[version] + 4 * n
    # float32 fields: relative round-off ≤ 6e-8
    assert p.wavelength_A == pytest.approx(1.5406, rel=1e-7)
    assert p.metadata["wavelength_ka2_A"] == pytest.approx(ka2, rel=1e-7)
    assert p.metadata["step_time_s"] == t_s
    np.testing.assert_allclose(p.x, start + step * np.arange(n), rtol=1e-6)
    assert p.y[:3].tolist() == first and p.y[-1] == last
    assert p.metadata.get("anode") == (None if version == "RAW v1" else "Cu")
