"""Shared fixtures: the real test clips of ../shared/testdata (or $LIPDUB_TESTDATA)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("LIPDUB_TESTDATA", REPO.parent / "shared" / "testdata"))


@pytest.fixture(scope="session")
def testdata() -> Path:
    """Directory of the shared test clips; tests are skipped with a clear reason when it is absent."""
    if not TESTDATA.is_dir():
        pytest.skip(f"test clips not found at {TESTDATA}; set LIPDUB_TESTDATA")
    return TESTDATA
