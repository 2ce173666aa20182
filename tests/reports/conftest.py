"""The toy task of :mod:`jobs_helpers` as a fixture."""

from __future__ import annotations

import pytest
from jobs_helpers import toy_task


@pytest.fixture
def toy():
    with toy_task() as spec:
        yield spec
