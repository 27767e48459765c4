"""Shared fixtures: the reference data (skipped with a reason when absent) and small images."""

from __future__ import annotations

import pytest
from notebook_helpers import write_quick_notebook

from lab.utils import benchmarks_dir, reference_data_dir


@pytest.fixture(scope="session", autouse=True)
def ledger_cache(tmp_path_factory):
    """The ledger's row cache in a temporary folder, not the user's ~/.cache (CLI subprocesses inherit it)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LAB_LEDGER_CACHE", str(tmp_path_factory.mktemp("ledger-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def ref_dir():
    """The shared reference data folder, or skip: a fresh clone does not ship it."""
    d = reference_data_dir()
    if d is None:
        pytest.skip("reference data not found: set LAB_REFERENCE_DATA or place it at ../shared/data beside the repo")
    return d


@pytest.fixture(scope="session")
def set5_dir():
    """The Set5 benchmark folder, or skip with the reason."""
    root = benchmarks_dir()
    if root is None or not (root / "Set5" / "HR").is_dir():
        pytest.skip("Set5 benchmark not found: set LAB_BENCHMARKS or LAB_REFERENCE_DATA (expects <root>/Set5/HR)")
    return root / "Set5"


@pytest.fixture
def quick(tmp_path):
    """A notebook that records a run in a second (no torch): for execution, sweep and sharing tests."""
    return write_quick_notebook(tmp_path / "quick.ipynb")
