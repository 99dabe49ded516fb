"""The README's API example runs as written (from the repository root)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_api_example_runs(monkeypatch, capsys, tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- api-example.*?-->\s*```python\n(.*?)```", text, re.S)
    assert block, "README lost its API example"
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("XRDPDF_CACHE", str(tmp_path / "cache"))
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    a = float(re.search(r"a = ([\d.]+)", out).group(1))
    # simulate_pattern draws NaTiO2 at the built-in a = 4.20464 Å; 30 Å grains, 2048² frame:
    # the refinement tests give a within 2e-4 Å; allow 1e-3 for the simulated frame's pixels
    assert abs(a - 4.20464) < 1e-3
    xi = float(re.search(r"xi = ([\d.]+)", out).group(1))
    # truth: 30 Å Scherrer size with K = 0.9 (FWHM) is V^⅓ of the grains; a sphere of that
    # volume has D = V^⅓/0.806 = 37.2 Å (sphere: V^⅓ = (π/6)^⅓ D).  ξ is that D to the estimator's
    # 15 % band (measured 41.3 Å with rmax 80 Å; the peaks are the sphere profile as one
    # pseudo-Voigt, xrdpdf.physics.crystallite)
    assert abs(xi / (30.0 / 0.806) - 1) < 0.15
