"""The import contract covers the package: every module named, none loaded around it.

``lint-imports`` (``make test``) checks the imports against the contracts in
``pyproject.toml``; it cannot see a module that no contract names (such a module may
import anything below the top-level layer), an import made with
``importlib.import_module`` or ``__import__``, or library code that changes process-wide
warning filters.  These tests do.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "xrdpdf"

#: Modules allowed to load xrdpdf modules by name, and why that stays inside the contract.
DYNAMIC_IMPORTS = {
    # the lazy public names: the root sits above every layer, and each name is declared
    # statically in xrdpdf/__init__.pyi (tests/test_api.py checks the two agree)
    "xrdpdf": "lazy public names",
    # the command modules of its own sub-package, cli._commands, registered by name
    "xrdpdf.cli": "command registry",
}

#: Calls that change the process-wide warning filters (not thread-safe).
WARNING_FILTER_CALLS = {"catch_warnings", "simplefilter", "filterwarnings", "resetwarnings"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(package.rglob("*.py"))}


def _named(config: dict) -> set[str]:
    """Every module a contract names: containers, layers (under their containers), modules."""
    names = {config["root_package"]}
    for contract in config["contracts"]:
        containers = contract.get("containers", [])
        names.update(containers)
        names.update(contract.get("modules", []))
        for layer in contract.get("layers", []):
            for entry in re.split(r"[|:]", layer):
                entry = entry.strip().strip("()").strip()
                if containers:
                    names.update(f"{c}.{entry}" for c in containers)
                else:
                    names.add(entry)
    return names


def _contracts() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _unnamed(modules, named: set[str]) -> list[str]:
    return sorted(m for m in modules if m not in named)


def _extension_modules() -> list[str]:
    """The compiled modules ``pyproject.toml`` builds (no Python source to walk)."""
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [ext["name"] for ext in doc["tool"]["setuptools"].get("ext-modules", [])]


def test_every_module_is_named_by_a_contract():
    missing = _unnamed([*_modules(), *_extension_modules()], _named(_contracts()))
    assert not missing, (
        "modules no import-linter contract names (add each to the layers of its package's "
        f"contract in pyproject.toml): {missing}"
    )


def test_an_unnamed_module_is_found(tmp_path):
    # negative control: a module added next to named ones is reported
    pkg = tmp_path / "xrdpdf" / "stages" / "refinement"
    pkg.mkdir(parents=True)
    for name in ("__init__.py", "_fit.py", "_extra.py"):
        (pkg / name).write_text("")
    modules = {".".join(p.relative_to(tmp_path).with_suffix("").parts) for p in pkg.glob("*.py")}
    modules = {m.removesuffix(".__init__") for m in modules}
    assert _unnamed(modules, _named(_contracts())) == ["xrdpdf.stages.refinement._extra"]


def _calls(tree: ast.AST):
    """(dotted name, node) of every call whose function is a name or an attribute chain."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func, parts = node.func, []
            while isinstance(func, ast.Attribute):
                parts.append(func.attr)
                func = func.value
            if isinstance(func, ast.Name):
                parts.append(func.id)
                yield ".".join(reversed(parts)), node


def _dynamic_imports(source: str) -> list[str]:
    found = []
    for name, node in _calls(ast.parse(source)):
        if name.split(".")[-1] in ("import_module", "__import__"):
            found.append(f"line {node.lineno}: {name}")
    return found


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_module_is_loaded_around_the_contract(name):
    found = _dynamic_imports(_modules()[name].read_text(encoding="utf-8"))
    if name in DYNAMIC_IMPORTS:
        assert found, f"{name} no longer imports by name: drop it from DYNAMIC_IMPORTS"
    else:
        assert not found, f"{name} imports by name, which import-linter cannot see: {found}"


def test_dynamic_import_detector_sees_each_spelling():
    src = (
        "import importlib\nfrom importlib import import_module\n"
        "importlib.import_module('xrdpdf.stages.size')\nimport_module('x')\n__import__('x')\n"
    )
    assert len(_dynamic_imports(src)) == 3
    assert _dynamic_imports("import importlib.util\nimportlib.util.find_spec('pyFAI')\n") == []


def _warning_filter_calls(source: str) -> list[str]:
    return [
        f"line {node.lineno}: {name}"
        for name, node in _calls(ast.parse(source))
        if name.split(".")[-1] in WARNING_FILTER_CALLS
    ]


@pytest.mark.parametrize("name", sorted(m for m in _modules() if not m.startswith("xrdpdf.cli")))
def test_library_code_sets_no_warning_filters(name):
    # the CLI is the application and may; library code runs in Dask and reader threads
    found = _warning_filter_calls(_modules()[name].read_text(encoding="utf-8"))
    assert not found, f"{name} changes process-wide warning filters: {found}"


def test_warning_filter_detector_sees_a_filter():
    src = "import warnings\nwith warnings.catch_warnings():\n    warnings.simplefilter('ignore')\n"
    assert len(_warning_filter_calls(src)) == 2
