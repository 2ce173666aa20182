"""What a task defined in this project provides to the native backend.

The flow is one way: rows (validated before any model loads) -> adapter requests -> results ->
per-sample scores -> aggregate metrics. A task never sees the request log, the process rank or the
results file; the backend and the request engine do resume, seeding, batching and sharding the same
way for every native task, of any modality.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmada_bench.adapters.settings import Settings
from mmada_bench.results.schema import MetricValue, SampleRecord
from mmada_bench.scorers.bootstrap import bootstrap_method, bootstrap_stderr


@dataclass(frozen=True)
class NativeRequest:
    """One adapter call a row needs: ``method`` (an adapter capability), the request object, and a
    JSON-able ``content`` that identifies it in the request key (the prompt, an image's hash...)."""

    method: str
    request: Any
    content: Any
    length: int = 0
    group: str = ""


@dataclass
class LoadedRows:
    """A task's validated rows and where they came from (recorded in results)."""

    rows: Sequence[Any]
    source: str
    files_sha256: dict[str, str] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        return {"source": self.source, "files_sha256": dict(self.files_sha256), "rows": len(self.rows)}


@dataclass
class ScoredRow:
    """What a task makes of one row's results: the record fields a person and a re-scorer need."""

    prompt: str
    target: Any
    predictions: dict[str, Any]
    metrics: dict[str, float | int | bool | None]
    doc: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class NativeTask(ABC):
    """Subclass per benchmark; see the module docstring for the flow."""

    #: The rule that produced the metrics (recorded with every number).
    rule: str = ""

    @abstractmethod
    def load(self, data_root: Path | None, sample_data: bool) -> LoadedRows:
        """Read and check every row (errors name file, row and field); no model is loaded yet."""

    @abstractmethod
    def doc_id(self, row: Any) -> int | str:
        """A stable id of the row (its index in the benchmark)."""

    @abstractmethod
    def requests(self, row: Any, settings: Settings) -> list[NativeRequest]:
        """The adapter calls one row needs."""

    @abstractmethod
    def score(self, row: Any, results: list[Any]) -> ScoredRow:
        """Per-sample scores from the row's results (in the order of :meth:`requests`)."""

    def aggregate(self, records: Sequence[SampleRecord], bootstrap_iters: int) -> dict[str, MetricValue]:
        """Default: the mean of every numeric per-sample metric, with a bootstrap stderr."""
        return mean_metrics(records, bootstrap_iters, self.rule)

    def write_outputs(self, records: Sequence[SampleRecord], folder: Path) -> None:
        """Files a person looks at beside the results (contact sheets, exports); default none."""
        return None


def mean_metrics(records: Sequence[SampleRecord], iters: int, rule: str) -> dict[str, MetricValue]:
    """Mean of each numeric per-sample metric over the records that have it."""
    values: dict[str, list[float]] = {}
    for record in records:
        for name, value in record.metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, str):
                values.setdefault(name, []).append(float(value))
    return {
        name: MetricValue(
            value=sum(vs) / len(vs), stderr=bootstrap_stderr(vs, iters), stderr_method=bootstrap_method(iters),
            rule=rule, extra={"n": len(vs)},
        )
        for name, vs in sorted(values.items())
    }


def group_mean(records: Sequence[SampleRecord], metric: str, by: str, iters: int, rule: str) -> Mapping[str, MetricValue]:
    """``metric`` averaged within each value of ``record.doc[by]`` (e.g. accuracy per question type)."""
    groups: dict[str, list[float]] = {}
    for record in records:
        value = record.metrics.get(metric)
        key = (record.doc or {}).get(by) if isinstance(record.doc, dict) else None
        if isinstance(value, (int, float)) and key is not None:
            groups.setdefault(str(key), []).append(float(value))
    return {
        f"{metric}[{by}={key}]": MetricValue(sum(vs) / len(vs), bootstrap_stderr(vs, iters), bootstrap_method(iters),
                                              rule, {"n": len(vs)})
        for key, vs in sorted(groups.items())
    }
