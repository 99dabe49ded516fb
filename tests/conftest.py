"""Shared test set-up: keep the fast-integration operator cache out of the user's home."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _operator_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("XRDPDF_CACHE", str(tmp_path_factory.mktemp("operator_cache")))
    yield
    mp.undo()
