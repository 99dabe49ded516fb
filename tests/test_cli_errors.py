"""Outputs: written atomically, with the user's umask, checked before any work.

The promise (README, "Errors"): a user mistake is one ``xrdpdf: error:`` line
and exit 2, and nothing is left half-written or replaced by surprise.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest

from xrdpdf._core.errors import InputError
from xrdpdf.cli import _main
from xrdpdf.io import atomic_path, check_output, check_outputs, write_text

ROOT = Path(__file__).resolve().parents[1]
PONI = ROOT / "calib" / "11idc_default.poni"


def _one_error(capsys: pytest.CaptureFixture[str], code: int, fragment: str) -> str:
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in out + err
    lines = [ln for ln in err.splitlines() if ln.startswith("xrdpdf: error:")]
    assert len(lines) == 1, err
    assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def test_written_file_keeps_the_umask(tmp_path: Path, umask_027: int) -> None:
    target = write_text("x\n", tmp_path / "a.txt")
    # what open(path, "w") would give: 0o666 less the umask
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask_027


def test_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    target.chmod(0o640)
    write_text("new\n", target, overwrite=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.read_text() == "new\n"


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "a.xye") as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_interrupt_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "a.xye") as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_rerun_cleans_stale_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "a.xye"
    old = time.time() - 3600.0
    dead = tmp_path / ".a.xye.999999999.k3jd8x.part.xye"  # PID beyond pid_max
    legacy = tmp_path / ".a.xye.k3jd8x.part"  # an older writer's name, no PID
    live = tmp_path / f".a.xye.{os.getpid()}.zz1.part.xye"  # this process: in use
    young = tmp_path / ".a.xye.999999998.yy2.part.xye"  # may be another host's live write
    other = tmp_path / ".b.xye.999999999.k3jd8x.part.xye"  # another target's
    for p in (dead, legacy, live, young, other):
        p.write_bytes(b"")
    for p in (dead, legacy, live, other):
        os.utime(p, (old, old))
    write_text("x\n", target)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["a.xye", live.name, young.name, other.name])


def test_check_output_folder_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError, match="not a folder"):
        check_output(tmp_path / "f" / "out.xye", overwrite=False)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a read-only /proc")
def test_check_output_unwritable_place() -> None:
    # /proc refuses new files even to root, for whom os.access always says yes
    with pytest.raises(InputError, match="cannot write"):
        check_output("/proc/xrdpdf_out.xye", overwrite=False)


def test_check_outputs_same_file_twice(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="two outputs"):
        check_outputs([tmp_path / "s.npy", None, tmp_path / "." / "s.npy"], overwrite=True)


@pytest.fixture
def ceo2_xye(tmp_path: Path) -> Path:
    q = np.linspace(0.5, 12.0, 600)
    y = 10.0 + sum(np.exp(-((q - c) ** 2) / 2e-3) for c in (2.0, 2.3, 3.3, 3.9))
    path = tmp_path / "p.xye"
    np.savetxt(path, np.column_stack([q, y]), header="xrdpdf unit = q_A^-1")
    return path


def test_simulate_image_same_output_twice(
    tmp_path: Path, ceo2_xye: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s.npy"
    argv = ["simulate", "image", str(ceo2_xye), "--xtype", "q", "--poni", str(PONI)]
    code = _main([*argv, "-o", str(out), "--mask-out", str(out)])
    _one_error(capsys, code, "s.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.xye"]


@pytest.mark.parametrize("command", ["refine", "pdf", "corrlen", "pdffit"])
def test_plot_with_unknown_extension_refused_first(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "out.xyz"
    # the input does not exist: the figure path must be refused before it is read
    args = {
        "refine": ["refine", str(tmp_path / "none.xye"), "--phase", "CeO2"],
        "pdf": ["pdf", str(tmp_path / "none.xye"), "--composition", "Ni", "-o"]
        + [str(tmp_path / "n.gr")],
        "corrlen": ["corrlen", str(tmp_path / "none.gr")],
        "pdffit": ["pdffit", str(tmp_path / "none.gr"), str(tmp_path / "m.toml")],
    }[command]
    code = _main([*args, "--plot", str(plot)])
    _one_error(capsys, code, "out.xyz")
    assert list(tmp_path.iterdir()) == []


def test_integrate_into_a_place_that_cannot_be_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = tmp_path / "f.npy"
    np.save(frame, np.ones((64, 64), np.float32))
    (tmp_path / "afile").write_text("")
    code = _main(["integrate", str(frame), "--poni", str(PONI), "-o", str(tmp_path / "afile")])
    _one_error(capsys, code, "afile")
    code = _main(["integrate", str(frame), "--poni", str(PONI), "-o", str(tmp_path / "afile/x")])
    _one_error(capsys, code, "not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "f.npy"]


@pytest.mark.parametrize("name", ["", " ", "."])
def test_empty_or_folder_phase_name(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _main(["simulate", "pattern", name, "-o", str(tmp_path / "p.xye")])
    line = _one_error(capsys, code, "unknown phase")
    assert repr(name) in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "name", "fragment"),
    [
        ("data_CeO2\n_cell_length_a 5.41\n", "c.cif", "a CIF is not a calibrant"),
        ("data_x\n", "c.D", "d-spacing"),
    ],
)
def test_calibrant_file_that_is_not_one(
    tmp_path: Path, text: str, name: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = tmp_path / "f.npy"
    np.save(frame, np.ones((64, 64), np.float32))
    (tmp_path / name).write_text(text)
    code = _main(
        ["calib", str(frame), "--calibrant", str(tmp_path / name), "--wavelength", "0.1173"]
        + ["--pixel-size", "1e-4", "-o", str(tmp_path / "c.poni")]
    )
    _one_error(capsys, code, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["f.npy", name])


def _peaks_file(path: Path, shift_invA: float = 0.0) -> np.ndarray:
    """Rocksalt NaTiO2 (a = 4.20464 Å) 111/200/220 as Gaussians of σ 0.03 Å⁻¹, no noise."""
    q = np.linspace(1.0, 8.0, 1400)
    y = 100.0 + sum(
        1000.0 * np.exp(-0.5 * ((q - 2 * np.pi * np.sqrt(n) / 4.20464) / 0.03) ** 2)
        for n in (3, 4, 8)
    )
    np.savetxt(path, np.c_[q + shift_invA, y], fmt="%.6f")
    return np.c_[q, y]


@pytest.mark.parametrize("shift", [-3.0, -10.0])
def test_size_and_pdf_refuse_negative_q(tmp_path, capsys, shift):
    f = tmp_path / "neg.xy"
    _peaks_file(f, shift)
    line = _one_error(capsys, _main(["size", str(f), "--xtype", "q"]), str(f))
    assert "Q values must be ≥ 0" in line
    gr = tmp_path / "neg.gr"
    _one_error(capsys, _main(["pdf", str(f), "--xtype", "q", "--composition", "TiO2",
                              "-o", str(gr)]), "Q values must be ≥ 0")  # fmt: skip
    assert not gr.exists()


@pytest.mark.parametrize("variant", ["decimal_comma", "utf16", "utf8_bom"])
def test_size_reads_decimal_commas_and_utf16_like_the_plain_file(tmp_path, capsys, variant):
    """The same numbers written three other ways give the very same sizes."""
    import json

    plain = tmp_path / "plain.xy"
    _peaks_file(plain)
    text = plain.read_text()
    other = tmp_path / f"{variant}.xy"
    if variant == "decimal_comma":
        other.write_text(text.replace(".", ",").replace(" ", "\t"))
    else:
        other.write_text(text, encoding="utf-16" if variant == "utf16" else "utf-8-sig")
    results = []
    for f in (plain, other):
        assert _main(["size", str(f), "--xtype", "q", "--peaks", "2.59,2.99,4.23", "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert len(results[0]["peaks"]) == 3
    for a, b in zip(results[0]["peaks"], results[1]["peaks"], strict=True):
        assert a == b  # the same parsed numbers: bit-identical fits
