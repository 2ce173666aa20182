"""What a benchmark task is: :class:`TaskSpec`, independent of the machinery that runs it.

A spec says what a task is (modality, data source and schema, metrics, default few-shot count and
sampler settings, the adapter capabilities it needs); ``backend`` names what runs it (``lm-eval`` or
``native``) and ``impl`` is that backend's object. The catalog (:mod:`mmada_bench.tasks.catalog`)
lists the built-in specs; the runner, the results store and ``mmada-bench tasks`` know only this type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmada_bench.adapters.settings import ImageSettings, Settings, TextSettings, UnderstandingSettings

MODALITIES = ("text", "mmu", "t2i")
BACKENDS = ("lm-eval", "native")

#: The settings record each modality's sampler takes.
SETTINGS_TYPES: dict[str, type[Settings]] = {"text": TextSettings, "mmu": UnderstandingSettings, "t2i": ImageSettings}


@dataclass(frozen=True)
class TaskSpec:
    """What a named task is.

    Attributes:
        name: registry name used on the command line (``gsm8k``).
        modality: ``text`` | ``mmu`` (image understanding) | ``t2i`` (text-to-image).
        description: one line for listings.
        source: Hugging Face dataset id (and config) the offline files mirror.
        splits: role -> split file name under ``--data-dir/<name>/`` (``{"eval": "test", "fewshot": "train"}``).
        columns: required columns of a data row, in the source dataset's own names.
        metrics: result keys (lm-eval style ``metric,filter``), the primary metric first.
        num_fewshot: default number of in-context examples.
        sampler: default sampler settings for the adapter (overridable per run).
        backend: what runs it (``lm-eval`` for text, ``native`` for tasks defined here).
        variant: which upstream task definition it is built on.
        why: why that variant (shown by ``mmada-bench tasks --verbose`` and in results).
        impl: backend-specific object (lm-eval: a :class:`~mmada_bench.tasks.text.lm_eval_tasks.LmEvalTask`;
            native: a :class:`~mmada_bench.tasks.native.NativeTask`).
        requires: adapter capabilities the task calls (checked before the run; see ``Adapter.capabilities``).
        presets: named sampler settings (e.g. ``cot``) a run can pick with ``--sampler preset=NAME``.
        bundled_data: a folder laid out as ``--data-dir`` (``<name>/<split>.jsonl``) that ships with the
            package and is read when no ``--data-dir`` is given (the toy world's tasks); None = the hub.
    """

    name: str
    modality: str
    description: str
    source: str
    splits: Mapping[str, str]
    columns: tuple[str, ...]
    metrics: tuple[str, ...]
    num_fewshot: int
    sampler: Mapping[str, Any]
    backend: str
    variant: str
    why: str
    impl: Any = field(default=None, repr=False, compare=False)
    requires: tuple[str, ...] = ()
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    bundled_data: Path | None = None

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"task {self.name}: unknown modality {self.modality!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"task {self.name}: unknown backend {self.backend!r}")

    @property
    def settings_type(self) -> type[Settings]:
        return SETTINGS_TYPES[self.modality]

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (no implementation object) for listings and results files."""
        return {
            "name": self.name,
            "modality": self.modality,
            "description": self.description,
            "source": self.source,
            "splits": dict(self.splits),
            "columns": list(self.columns),
            "metrics": list(self.metrics),
            "num_fewshot": self.num_fewshot,
            "sampler": dict(self.sampler),
            "backend": self.backend,
            "variant": self.variant,
            "why": self.why,
            "requires": list(self.requires),
            "presets": {k: dict(v) for k, v in self.presets.items()},
        }
