"""What a run folder holds, as types: one task result per (task, settings), per-sample records, cost.

``results.json`` carries ``schema_version``; readers refuse other versions instead of guessing. A task
entry is keyed by the task name *and* a hash of everything that decides its numbers (sampler
settings, few-shot count, limit, sample selection), so one folder can hold many settings of one task
-- a step sweep, or a rerun with other settings -- without one overwriting the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mmada_bench.adapters.base import Cost
from mmada_bench.hashing import json_sha256

#: Version of the results.json / samples layout; bump on any incompatible change.
SCHEMA_VERSION = 2


def settings_hash(decisive: Mapping[str, Any]) -> str:
    """Short hash of the settings that decide a task's numbers (first 10 hex digits of sha256)."""
    return json_sha256(dict(decisive))[:10]


def entry_key(task: str, shash: str) -> str:
    """``task@hash``: the name of a task entry in results.json and of its samples file."""
    return f"{task}@{shash}"


@dataclass
class MetricValue:
    """One number and where it came from.

    ``rule`` names what produced it (an lm-eval metric and filter, a VLMEvalKit rule, the official VQA
    accuracy...), so two numbers under one name can be told apart in reports. ``unit`` is ``"points"``
    where the producer already scaled a proportion x100 (VLMEvalKit prints accuracies that way, and the
    MMU tasks keep its numbers); empty means as stored (lm-eval's proportions in [0, 1]), so reports
    never scale a number twice.
    """

    value: float | None
    stderr: float | None = None
    stderr_method: str = ""
    rule: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricValue:
        known = {k: data[k] for k in ("value", "stderr", "stderr_method", "rule", "extra", "unit") if k in data}
        return cls(**known)


@dataclass
class SampleRecord:
    """One scored example: what was asked, what came back, how it scored and what it cost."""

    task: str
    doc_id: int | str
    subtask: str = ""
    prompt: str = ""
    prompt_hash: str | None = None
    doc_hash: str | None = None
    target: Any = None
    predictions: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=lambda: Cost().to_dict())
    doc: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cost_summary(costs: list[Cost], computed: int, from_log: int) -> dict[str, Any]:
    """Totals over a task's samples, with tokens per forward (TPF) and request counts."""
    total = Cost()
    for cost in costs:
        total.add(cost)
    return {**total.to_dict(), "tokens_per_forward": total.tokens_per_forward,
            "requests_computed": computed, "requests_from_log": from_log}


@dataclass
class TaskResult:
    """The results-file entry of one task at one setting."""

    task: str
    settings_hash: str
    modality: str
    backend: str
    primary_metric: str
    metrics: dict[str, MetricValue]
    n_samples: int
    settings: dict[str, Any]
    num_fewshot: int | None = None
    limit: float | int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    spec: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    #: the ``--samples`` ids evaluated (None: the whole split, or its first ``limit`` rows).
    sample_ids: list[str] | None = None

    @property
    def key(self) -> str:
        return entry_key(self.task, self.settings_hash)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["key"] = self.key
        out["metrics"] = {name: m.to_dict() for name, m in self.metrics.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskResult:
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        values["metrics"] = {name: MetricValue.from_dict(m) for name, m in data.get("metrics", {}).items()}
        return cls(**values)
