"""Cost accounting for samplers: forward passes, tokens and wall time per call.

Sweeps and leaderboards compare sampler settings by what they cost, so every sampler call adds its
cost to a caller-owned :class:`SamplingStats` instead of returning it: the return value stays the
plain token tensor the rest of the harness expects, and one stats object can accumulate a whole
evaluation (``calls`` says how many sampler calls it covers).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields

import torch


@dataclass
class SamplingStats:
    """Accumulated cost of one or more sampler calls.

    Attributes:
        nfe: number of model forward calls ("number of function evaluations"). A batched call
            counts once whatever its batch size, and a classifier-free-guidance pair run as one
            batch counts once -- the convention of Fast-dLLM's ``nfe`` counter, so figures compare.
            A cached segment forward counts once, like a full one (it is cheaper; ``seconds`` shows by
            how much).
        generated_tokens: output positions produced, summed over rows (text: ``batch * gen_length``,
            including any EOS filled in by an early stop; image: ``batch * num_image_tokens``).
            ``tokens_per_second`` divides this, so modes that return the same shape compare on
            the same workload.
        decoded_tokens: positions whose token the sampler actually chose from model predictions
            (smaller than ``generated_tokens`` only when an early stop filled the tail).
        seconds: wall time inside the sampler, with the accelerator synchronised at both ends.
        calls: number of sampler calls accumulated.
    """

    nfe: int = 0
    generated_tokens: int = 0
    decoded_tokens: int = 0
    seconds: float = 0.0
    calls: int = 0

    @property
    def tokens_per_second(self) -> float:
        """``generated_tokens / seconds`` (0.0 before any time was recorded)."""
        return self.generated_tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def nfe_per_call(self) -> float:
        return self.nfe / self.calls if self.calls else 0.0

    def merge(self, other: SamplingStats) -> SamplingStats:
        """Add ``other`` into this object (in place) and return it, so totals can be chained."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def as_dict(self) -> dict[str, float | int]:
        """Plain dict (JSON-ready) with the derived ``tokens_per_second`` and ``nfe_per_call``."""
        out: dict[str, float | int] = asdict(self)
        out["tokens_per_second"] = self.tokens_per_second
        out["nfe_per_call"] = self.nfe_per_call
        return out


def _synchronize(device: torch.device) -> None:
    """Wait for queued kernels so wall time covers the work, not just its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@contextmanager
def timed_call(stats: SamplingStats | None, device: torch.device) -> Iterator[SamplingStats]:
    """Time one sampler call into a fresh local record, then merge it into ``stats`` (if any).

    The sampler fills ``nfe``/tokens on the yielded record; this adds ``seconds`` and ``calls``.
    Merging only at the end keeps a caller's totals consistent if the sampler raises.
    """
    local = SamplingStats(calls=1)
    _synchronize(device)
    start = time.perf_counter()
    yield local
    _synchronize(device)
    local.seconds = time.perf_counter() - start
    if stats is not None:
        stats.merge(local)
