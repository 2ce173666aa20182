"""Shared test fixtures: paths to the golden vectors copied from ../shared/golden."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP (see mmada_bench.cli)

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


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory):
    """The tiny preset, built once per session in a fixed folder under the session's base temp dir."""
    from mmada_bench.model.presets import materialize_preset

    return materialize_preset("tiny", root=tmp_path_factory.getbasetemp() / "presets")


@pytest.fixture(scope="session")
def tiny_adapter(tiny_path):
    from mmada_bench.adapters.mmada import MMaDAAdapter

    return MMaDAAdapter.from_checkpoint(str(tiny_path), device="cpu", batch_size=4)
