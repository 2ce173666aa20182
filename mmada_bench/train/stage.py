"""The contract between the trainer and a training stage.

The trainer (:mod:`mmada_bench.train.trainer`) owns everything that is the same for every stage --
accelerate, optimiser, schedule, accumulation, clipping, checkpoints, logging, resume -- and asks a
:class:`TrainingStage` for only two things: micro-batches and a loss. Stages 1, 2 and 3 (UniGRPO)
plug in through :data:`mmada_bench.train.stages.STAGES`, so a new stage never touches the loop.

Resume must be exact, so both the batch iterator and the stage expose ``state_dict`` /
``load_state_dict``: the iterator for its data position (and its own RNG), the stage for anything
it keeps between steps (cached rollouts, a reference model's identity, its RNG).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

from mmada_bench.errors import ConfigError

if TYPE_CHECKING:
    from mmada_bench.train.config import TrainConfig


@runtime_checkable
class ResumableIterator(Protocol):
    """An endless iterator of micro-batches whose position can be saved and restored exactly.

    ``state_dict()`` taken after the k-th ``next()`` and loaded into a fresh iterator makes that
    iterator yield exactly what the original yields from its (k+1)-th call on.
    """

    def __iter__(self) -> Iterator[Any]: ...

    def __next__(self) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class CountedBatches:
    """A :class:`ResumableIterator` whose whole state is a counter: item ``k`` of this process is
    ``make(k, rank, world_size)``, so a stage that derives every batch from its position resumes exactly
    by restoring one integer (and refuses a different process count, which would renumber the rows)."""

    def __init__(self, make: Callable[[int, int, int], Any], rank: int, world_size: int) -> None:
        self.make, self.rank, self.world_size = make, rank, world_size
        self.position = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        item = self.make(self.position, self.rank, self.world_size)
        self.position += 1
        return item

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "rank": self.rank, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("world_size", self.world_size) != self.world_size:
            raise ConfigError(
                f"checkpoint data position was saved with {state['world_size']} processes, this run has "
                f"{self.world_size}; exact resume needs the same number of processes"
            )
        self.position = int(state["position"])


@runtime_checkable
class TrainingStage(Protocol):
    """One training stage: where micro-batches come from and how a micro-batch becomes a loss."""

    name: str  # "stage1" | "stage2" | "stage3"

    def batches(self, rank: int, world_size: int) -> ResumableIterator:
        """Micro-batches for this process (``rank`` of ``world_size``); disjoint across ranks."""
        ...

    def loss(self, model: torch.nn.Module, batch: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss to backpropagate for one micro-batch, plus floats to log (per-task losses, rewards).

        ``step`` is the optimiser step about to be taken (0-based), for stages whose behaviour
        depends on it. Log values named ``tokens`` are summed into the tokens/s figure.
        """
        ...

    def state_dict(self) -> dict[str, Any]:
        """Stage-owned state saved in ``trainer_state/`` (must be torch.save-able)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class StageContext:
    """What a stage factory receives: the full config, the model being trained and its tokenizer.

    ``vq_model`` is the frozen MAGVIT-v2 of the checkpoint (``None`` when the checkpoint has none,
    e.g. when image tokens come from a cache); ``device`` is where batches should be built.
    """

    config: TrainConfig
    model: torch.nn.Module
    tokenizer: Any
    vq_model: torch.nn.Module | None = None
    device: torch.device = torch.device("cpu")


StageFactory = Callable[[StageContext], TrainingStage]
