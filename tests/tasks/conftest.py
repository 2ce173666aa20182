"""Fixtures for the text-task tests: hermetic Hugging Face caches and one scored run per task."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mmada_bench.tasks.text import SAMPLE_DATA_DIR

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP (see mmada_bench.cli)


@pytest.fixture(scope="session", autouse=True)
def offline_hf(tmp_path_factory):
    """No hub, and datasets' cache in a temporary folder (set on the module too: it reads env at import)."""
    cache = tmp_path_factory.mktemp("hf")
    patch = pytest.MonkeyPatch()
    for name, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("HF_HOME", str(cache)),
                        ("HF_DATASETS_CACHE", str(cache / "datasets"))):
        patch.setenv(name, value)
    import datasets

    patch.setattr(datasets.config, "HF_DATASETS_CACHE", Path(cache / "datasets"))
    yield cache
    patch.undo()


@pytest.fixture
def data_copy(tmp_path) -> Path:
    """A writable copy of the bundled sample data, for tests that break it on purpose."""
    target = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA_DIR, target, ignore=shutil.ignore_patterns("README.md"))
    return target
