"""The public API: every public module declares ``__all__``; the lazy names and their stub agree."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
from pathlib import Path

import pytest

import xrdpdf

PUBLIC_MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(xrdpdf.__path__, "xrdpdf.")
    if not any(part.startswith("_") for part in m.name.split(".")[1:])
)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_module_all_is_complete(name):
    mod = importlib.import_module(name)
    assert hasattr(mod, "__all__"), f"{name} has no __all__"
    for item in mod.__all__:
        exists = hasattr(mod, item) or importlib.util.find_spec(f"{name}.{item}") is not None
        assert exists, f"{name}.__all__ lists {item!r}, which does not exist"
    defined = {
        n
        for n, v in vars(mod).items()
        if not n.startswith("_")
        and (inspect.isfunction(v) or inspect.isclass(v))
        and v.__module__ == name
    }
    missing = defined - set(mod.__all__)
    assert not missing, f"{name}: public but not in __all__: {sorted(missing)}"


def _stub_names() -> dict[str, str]:
    """Name → ``module.attr`` as the stub imports it."""
    tree = ast.parse(Path(xrdpdf.__file__).with_suffix(".pyi").read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return out


def test_stub_lists_every_lazy_name_and_the_same_object():
    stub = _stub_names()
    expected = set(xrdpdf.__all__) | set(xrdpdf._SUBMODULES) | {"__version__"}
    assert set(stub) == expected
    for name, target in stub.items():
        module, attr = target.rsplit(".", 1)
        assert getattr(importlib.import_module(module), attr) is getattr(xrdpdf, name), name


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'refine_pattern'"):
        xrdpdf.refine_pattern  # noqa: B018
