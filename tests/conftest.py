"""Shared test fixtures: paths to the golden vectors copied from ../shared/golden."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "fixtures" / "golden"


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return GOLDEN


@pytest.fixture(scope="session")
def golden_meta() -> dict:
    return json.loads((GOLDEN / "meta.json").read_text())


@pytest.fixture(scope="session")
def golden_model():
    from mmada_bench.model import MMaDAModelLM

    return MMaDAModelLM.from_pretrained(GOLDEN / "mmada_tiny")
