"""Shared test set-up: the operator cache out of the user's home; a small test geometry."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _operator_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("XRDPDF_CACHE", str(tmp_path_factory.mktemp("operator_cache")))
    yield
    mp.undo()


#: A small flat-panel geometry (200 × 220 pixels of 200 µm, 0.2 m, slightly tilted, 0.1173 Å)
#: for integration tests that need a PONI file but not a full detector.
SMALL_SHAPE = (200, 220)
SMALL_PONI = """poni_version: 2.1
Detector: Detector
Detector_config: {"pixel1": 0.0002, "pixel2": 0.0002, "max_shape": [200, 220], "orientation": 3}
Distance: 0.2
Poni1: 0.0201
Poni2: 0.0219
Rot1: 0.003
Rot2: -0.002
Rot3: 0.0
Wavelength: 1.173e-11
"""
