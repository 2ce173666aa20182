"""The task registry: every benchmark ``mmada-bench`` can run, by name.

A :class:`TaskSpec` says what a task is (modality, data source and schema, metrics, default few-shot
count and sampler settings) independently of how it is run; ``backend`` names the machinery that runs
it. Text tasks are run by lm-eval on its own packaged task configs; multimodal-understanding and
text-to-image tasks will register here with their own backends and the same spec fields, so the
runner, the results store and ``mmada-bench tasks`` need no change when they arrive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mmada_bench.errors import ConfigError

MODALITIES = ("text", "mmu", "t2i")


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
        backend: what runs it (``lm-eval`` for text).
        variant: which upstream task definition it is built on.
        why: why that variant (shown by ``mmada-bench tasks --verbose`` and in results).
        impl: backend-specific object (for text: a :class:`~mmada_bench.tasks.text.lm_eval_tasks.LmEvalTask`).
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
        }


_REGISTRY: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Add ``spec``; names are unique across modalities so a suite can mix them."""
    if spec.modality not in MODALITIES:
        raise ValueError(f"task {spec.name}: unknown modality {spec.modality!r}")
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"task {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def _load_builtin() -> None:
    # Importing the modality packages registers their tasks; done lazily so importing the registry
    # (e.g. from the CLI's argument parser) stays cheap.
    from mmada_bench.tasks import mmu, t2i, text  # noqa: F401


def all_tasks() -> list[TaskSpec]:
    """Every registered task, grouped by modality then name."""
    _load_builtin()
    return sorted(_REGISTRY.values(), key=lambda s: (MODALITIES.index(s.modality), s.name))


def get_task(name: str) -> TaskSpec:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(f"unknown task {name!r}; known tasks: {known}") from None


def resolve_tasks(names: str | list[str]) -> list[TaskSpec]:
    """Parse ``"gsm8k,mmlu"`` (or a list) into specs, keeping order and dropping repeats."""
    items = names.split(",") if isinstance(names, str) else list(names)
    cleaned = [n.strip() for n in items if n.strip()]
    if not cleaned:
        raise ConfigError("no tasks given; see `mmada-bench tasks` for the list")
    seen: dict[str, TaskSpec] = {}
    for name in cleaned:
        seen.setdefault(name, get_task(name))
    return list(seen.values())
