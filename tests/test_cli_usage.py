"""The installed ``xrdpdf`` script on usage mistakes: one error line, exit 2, no traceback.

These run the console script in a subprocess, as a user does, so that the
exception classes typer and click actually raise are the ones handled.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from xrdpdf.cli import app

SCRIPT = Path(sys.executable).with_name("xrdpdf")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.exists():
        pytest.skip(f"console script not installed beside {sys.executable}")
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
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


@pytest.mark.parametrize("path", _command_paths(), ids=" ".join)
def test_unknown_option_every_command(path: list[str]) -> None:
    _assert_usage_error(_run(*path, "--no-such-flag"), "--no-such-flag")


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
    ],
)
def test_usage_errors(args: list[str], fragment: str) -> None:
    _assert_usage_error(_run(*args), fragment)


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
