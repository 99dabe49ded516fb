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


def _result_classes():
    for m in pkgutil.walk_packages(xrdpdf.__path__, "xrdpdf."):
        mod = importlib.import_module(m.name)
        for n, v in vars(mod).items():
            if inspect.isclass(v) and n.endswith("Result") and v.__module__ == m.name:
                yield v


def test_every_result_has_to_dict_and_html():
    classes = set(_result_classes())
    assert len(classes) >= 10  # size, frame, phase, refinement, calibration, pdffit, corrlen, …
    for cls in classes:
        assert callable(getattr(cls, "to_dict", None)), cls
        assert callable(getattr(cls, "_repr_html_", None)), cls


def test_default_to_dict_keeps_values_and_drops_arrays():
    import dataclasses
    import json

    import numpy as np

    from xrdpdf._core.results import Result

    @dataclasses.dataclass(frozen=True)
    class Demo(Result):
        a_A: float
        name: str
        cell: tuple
        y: np.ndarray
        extra: dict

    d = Demo(4.2, "RS", (4.2, 4.2, 4.2), np.zeros(5000), {"n": np.int64(3)}).to_dict()
    assert d == {"a_A": 4.2, "name": "RS", "cell": [4.2, 4.2, 4.2], "extra": {"n": 3}}
    assert isinstance(d["extra"]["n"], int)
    json.dumps(d)
    html = Demo(4.2, "RS", (), np.zeros(3), {})._repr_html_()
    assert "<caption>Demo</caption>" in html and "a_A" in html and "4.2" in html


def test_a_real_result_round_trips_through_json():
    import json

    import numpy as np

    from xrdpdf import Pattern
    from xrdpdf.stages.corrlen import sphere_envelope

    r = np.arange(0.01, 80.0, 0.02)
    g = sphere_envelope(r, 20.0) * np.sin(2 * np.pi * r / 2.5) / r
    xi = xrdpdf.correlation_length(Pattern(r, g, "r_A"))
    d = json.loads(json.dumps(xi.to_dict()))
    assert d["xi_A"] == pytest.approx(xi.xi_A, rel=1e-15)
    assert "xi_A" in xi._repr_html_()
