"""The task-backend protocol: check before any model loads, then run into records and metrics.

``plan`` reads and checks a task's data and settings and returns a :class:`TaskPlan` without writing
anything; ``run`` gets the plan, the run context and the request engine and returns the task's
per-sample records and metrics (on the main process; other ranks return None after contributing
their shard). Backends never write results: the runner does, through the results store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mmada_bench.adapters.settings import Settings
from mmada_bench.engine.distributed import Distributed
from mmada_bench.engine.serve import RequestEngine
from mmada_bench.results.schema import MetricValue, SampleRecord, entry_key, settings_hash
from mmada_bench.results.store import ResultsStore
from mmada_bench.tasks.spec import TaskSpec


@dataclass
class RunContext:
    """What every backend may read about the run (never the model: that is in the engine)."""

    store: ResultsStore
    dist: Distributed
    data_root: Path | None
    sample_data: bool
    limit: int | float | Mapping[str, int | float] | None  # a mapping: per task, the others in full
    bootstrap_iters: int
    progress: bool
    seeds: Mapping[str, int]
    sample_ids: Mapping[str, list[str]] = field(default_factory=dict)  # --samples: task -> ids

    def limit_for(self, task: str) -> int | float | None:
        """``--limit`` as it applies to ``task``."""
        if isinstance(self.limit, Mapping):
            return self.limit.get(task)
        return self.limit


@dataclass
class TaskPlan:
    """A task checked and ready: its resolved settings and whatever the backend prepared (no model yet)."""

    spec: TaskSpec
    settings: Settings
    num_fewshot: int | None
    limit: int | float | None
    prepared: Any
    data: dict[str, Any]
    samples: list[str] | None = None  # the ``--samples`` ids, in the order given

    def decisive(self) -> dict[str, Any]:
        """Everything that decides this task's numbers besides the model (hashed into its entry key).

        The sample list enters only when given, so entries of runs without ``--samples`` keep their keys."""
        out = {"settings": self.settings.to_dict(), "num_fewshot": self.num_fewshot, "limit": self.limit}
        if self.samples is not None:
            out["samples"] = list(self.samples)
        return out

    @property
    def key(self) -> str:
        return entry_key(self.spec.name, settings_hash(self.decisive()))


@dataclass
class TaskOutput:
    """What a backend returns on the main process."""

    records: list[SampleRecord]
    metrics: dict[str, MetricValue]
    details: dict[str, Any] = field(default_factory=dict)


class TaskBackend(Protocol):
    name: str

    def plan(self, spec: TaskSpec, settings: Settings, num_fewshot: int | None, context: RunContext) -> TaskPlan:
        """Check data and settings; raise a one-line user error on any problem. Writes nothing."""
        ...

    def run(self, plan: TaskPlan, context: RunContext, engine: RequestEngine) -> TaskOutput | None:
        """Evaluate the task; None on non-main processes."""
        ...
