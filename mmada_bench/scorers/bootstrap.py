"""Standard errors by bootstrap over examples, the same for every task and backend.

lm-eval's own stderr formulas differ by metric and are absent for some aggregations; one seeded
bootstrap gives every number in a results file a comparable error bar (lm-eval's value is kept too).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bootstrap_stderr(values: Sequence[float], iters: int = 1000, seed: int = 1234) -> float | None:
    """Bootstrap standard error of the mean (resampling examples with replacement, seeded).

    None with fewer than two values or ``iters == 0``.
    """
    data = np.asarray([float(v) for v in values], dtype=np.float64)
    if data.size < 2 or iters <= 0:
        return None
    rng = np.random.default_rng(seed)
    means = np.empty(iters, dtype=np.float64)
    for start in range(0, iters, 100):  # chunks keep memory flat on large test sets
        count = min(100, iters - start)
        means[start : start + count] = data[rng.integers(0, data.size, size=(count, data.size))].mean(axis=1)
    return float(means.std(ddof=1))


def bootstrap_method(iters: int) -> str:
    return f"bootstrap over examples ({iters} resamples)"
