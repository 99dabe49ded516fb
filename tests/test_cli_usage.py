"""The installed ``xrdpdf`` script on usage mistakes: one error line, exit 2, no traceback.

These run the console script in a subprocess, as a user does, so that the
exception classes typer and click actually raise are the ones handled.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from xrdpdf.cli import app

SCRIPT = Path(sys.executable).with_name("xrdpdf")
TREE = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.exists():
        pytest.skip(f"console script not installed beside {sys.executable}")
    # The installed script must run this tree's code, whichever checkout installed it.
    env = {**os.environ, "PYTHONPATH": str(TREE)}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def _command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = []
    for name, cmd in sorted(root.commands.items()):
        sub = getattr(cmd, "commands", None)
        if sub:
            paths.extend([name, s] for s in sorted(sub))
        else:
            paths.append([name])
    return paths


def _assert_usage_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("xrdpdf: error:")]
    assert len(errors) == 1, proc.stderr
    assert fragment in errors[0]


def _leaf(path: list[str]) -> object:
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


def _is_number(param: object) -> bool:
    """Whether an option takes an int or float, under click's or typer's own layout."""
    click_type = getattr(param, "type", None)
    if click_type is not None:
        # click: "integer", "float"; the click typer 0.28 vendors: "int", "float"
        return getattr(click_type, "name", "").removesuffix(" range") in {"integer", "int", "float"}
    descriptor = getattr(param, "type_descriptor", None)
    return getattr(descriptor, "annotation", None) in (int, float)


def _value_option(path: list[str], numeric: bool = False) -> str | None:
    """The first option of a command that takes a value (a numeric one if asked)."""
    for param in _leaf(path).params:  # type: ignore[attr-defined]
        if param.param_type_name != "option" or param.is_flag or param.multiple:
            continue
        if numeric and not _is_number(param):
            continue
        return str(param.opts[-1] if param.opts[-1].startswith("--") else param.opts[0])
    return None


@pytest.mark.parametrize("path", _command_paths(), ids=" ".join)
def test_unknown_option_every_command(path: list[str]) -> None:
    _assert_usage_error(_run(*path, "--no-such-flag"), "--no-such-flag")


def _in_process(capsys: pytest.CaptureFixture[str], *args: str) -> None:
    """Run ``_main`` (what the script calls) and check the usage-error promise.

    The exception classes are those the subprocess tests above see; running
    in-process keeps one case per command to milliseconds.
    """
    from xrdpdf.cli import _main

    code = _main(list(args))
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in out + err
    errors = [ln for ln in err.splitlines() if ln.startswith("xrdpdf: error:")]
    assert len(errors) == 1, err
    assert args[-1] in errors[0] or args[-2] in errors[0], err


@pytest.mark.parametrize("path", _command_paths(), ids=" ".join)
def test_option_without_value_every_command(
    path: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    opt = _value_option(path)
    assert opt is not None, f"{path} has no option that takes a value"
    _in_process(capsys, *path, "x", opt)


def test_number_options_are_recognised() -> None:
    # the case list below comes from typer's/click's option types, whose layout changes
    # between versions; integrate --npt (int) and demo --workers (int) must be in it
    assert _value_option(["integrate"], numeric=True) == "--npt"
    assert _value_option(["demo"], numeric=True) == "--workers"


@pytest.mark.parametrize(
    "path", [p for p in _command_paths() if _value_option(p, numeric=True)], ids=" ".join
)
def test_malformed_number_every_command(
    path: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    opt = _value_option(path, numeric=True)
    assert opt is not None
    _in_process(capsys, *path, "x", opt, "abc")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--bogus"], "--bogus"),
        (["nosuchcommand"], "nosuchcommand"),
        (["integrate"], "Missing argument"),
        (["integrate", "x.tif", "--npt", "abc"], "--npt"),
        (
            [
                "integrate",
                "x.tif",
                "--poni",
                "calib/11idc_default.poni",
                "-o",
                "out",
                "--unit",
                "furlong",
            ],
            "furlong",
        ),
        (["refine", "x.xye", "--bogus"], "--bogus"),
        (["integrate", "x.tif", "--npt", "1e10"], "--npt"),
    ],
)
def test_usage_errors(args: list[str], fragment: str) -> None:
    _assert_usage_error(_run(*args), fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["size", "{xye}", "--xtype", "q", "--peaks", "a,b"], "a,b"),
        (
            ["calib", "{npy}", "--calibrant", "CeO2", "--wavelength", "0.1173"]
            + ["-o", "{poni}", "--shape", "abc"],
            "abc",
        ),
    ],
)
def test_bad_parameter_from_a_command(tmp_path: Path, args: list[str], fragment: str) -> None:
    import numpy as np

    xye = tmp_path / "p.xye"
    q = np.linspace(0.5, 10.0, 200)
    np.savetxt(xye, np.column_stack([q, 1.0 + np.exp(-((q - 3.0) ** 2) / 0.01)]))
    npy = tmp_path / "f.npy"
    np.save(npy, np.ones((64, 64), np.float32))
    names = {"xye": xye, "npy": npy, "poni": tmp_path / "c.poni"}
    _assert_usage_error(_run(*[a.format(**names) for a in args]), fragment)


def test_no_arguments_shows_help() -> None:
    proc = _run()
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "Usage" in proc.stderr + proc.stdout


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(flag: str) -> None:
    proc = _run(flag)
    assert proc.returncode == 0, proc.stderr
    assert "integrate" in proc.stdout


def test_version() -> None:
    from importlib.metadata import version

    proc = _run("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"xrdpdf {version('xrdpdf')}"
