"""Process sharding under ``accelerate launch`` / ``torchrun``: rank, world size, collectives, teardown.

A single process (no ``WORLD_SIZE`` > 1) needs no process group and every call is a no-op. Under a
launcher, :meth:`Distributed.close` ends the run with a barrier and destroys the process group while
every rank is still alive: a rank that returned straight after its last gather, with the group left
to interpreter shutdown, could have gloo's worker thread free the gather's buffers during
finalisation (the "terminate called without an active exception" abort seen at exit).
"""

from __future__ import annotations

import os
from typing import Any


class Distributed:
    """Rank/world size and collectives; a no-op single process when not launched in parallel."""

    def __init__(self) -> None:
        self.rank, self.world_size, self.device = 0, 1, None
        self._state = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            import torch
            from accelerate import PartialState

            # Without CUDA, accelerate only sets up a process group (gloo) when told it runs on CPU.
            self._state = PartialState(cpu=not torch.cuda.is_available())
            self.rank, self.world_size = self._state.process_index, self._state.num_processes
            self.device = self._state.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_gather(self, tensor):
        import torch

        if self.world_size == 1:
            return tensor.reshape(1, *tensor.shape)
        import torch.distributed as dist

        parts = [torch.zeros_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor)
        return torch.stack(parts)

    def gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank (plain Python objects)."""
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, obj)
        return parts

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (e.g. an error found by rank 0 only)."""
        if self.world_size == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Synchronise and tear the process group down while every rank is alive (see module doc)."""
        if self.world_size == 1 or self._state is None:
            return
        import gc

        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            gc.collect()  # drop gathered buffers before the group that owns their work objects goes
            dist.destroy_process_group()
        self._state = None
        self.world_size = 1
