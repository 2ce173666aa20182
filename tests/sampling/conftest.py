"""Fixtures shared by the sampler tests."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: on a small shared CPU, tiny-model ops with 2+ threads stall on each other
    (the sampler tests ran ~15x faster single-threaded). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def golden_text(golden_dir):
    return load_file(str(golden_dir / "text_generate.safetensors"))
