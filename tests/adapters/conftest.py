"""Fixtures for adapter tests: the tiny preset (built once per session in a temporary cache)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory):
    from mmada_bench.model.presets import materialize_preset

    # A fixed folder under the session's base temp dir, so every test module reuses one build.
    return materialize_preset("tiny", root=tmp_path_factory.getbasetemp() / "presets")


@pytest.fixture(scope="session")
def tiny_adapter(tiny_path):
    from mmada_bench.adapters.mmada import MMaDAAdapter

    return MMaDAAdapter.from_checkpoint(str(tiny_path), device="cpu", batch_size=4)
