"""The catalog: every task ``mmada-bench`` can run, by name.

Built-in tasks are the ``SPECS`` lists of the modality packages (``text``, ``mmu``, ``t2i``), read
the first time the catalog is asked. More tasks come from plugins: every module named in
``MMADA_BENCH_TASK_MODULES`` (comma-separated, importable) is imported then and may call
:func:`register` -- so a new benchmark is one new module, with no change to the harness, and it is
known in every process of a sharded run. Names are unique across modalities so one suite can mix them.
"""

from __future__ import annotations

import importlib
import os

from mmada_bench.errors import ConfigError
from mmada_bench.tasks.spec import MODALITIES, TaskSpec

#: Environment variable naming extra task modules to import (see the module docstring).
PLUGIN_ENV = "MMADA_BENCH_TASK_MODULES"

_REGISTRY: dict[str, TaskSpec] = {}
_BUILTIN_LOADED = False


def register(spec: TaskSpec) -> TaskSpec:
    """Add ``spec``; registering the same object twice is a no-op, another spec of that name is refused."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"task {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def _load_builtin() -> None:
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    # Imported here, not at module level, so listing flags (the CLI parser) stays cheap.
    from mmada_bench.tasks import mmu, t2i, text

    for package in (text, mmu, t2i):
        for spec in package.SPECS:
            register(spec)
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGIN_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"{PLUGIN_ENV}: cannot import task module {module!r} ({exc})") from None


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
