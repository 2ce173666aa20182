"""Registry of training stages: ``config.stage`` -> factory building a :class:`TrainingStage`.

Factories import their module only when called (by dotted name, see :func:`lazy_stage`), so the
config can check a stage name without importing any stage, and a stage's dependencies (reward
models, samplers) load only for runs of that stage. Register a stage with
``STAGES["stage3"] = lazy_stage("mmada_bench.train.stage3", "build_stage3")``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mmada_bench.errors import ConfigError
from mmada_bench.train.stage import StageContext, StageFactory, TrainingStage

if TYPE_CHECKING:
    from mmada_bench.train.config import TrainConfig


def lazy_stage(module: str, factory: str) -> StageFactory:
    """A factory that imports ``module`` on first use and calls its ``factory(ctx)``."""

    def build(ctx: StageContext) -> TrainingStage:
        return getattr(importlib.import_module(module), factory)(ctx)

    build.__qualname__ = f"lazy_stage({module}.{factory})"
    return build


STAGES: dict[str, StageFactory] = {
    "stage1": lazy_stage("mmada_bench.train.stage1", "build_stage1"),
    "stage2": lazy_stage("mmada_bench.train.stage2", "build_stage2"),
    "stage3": lazy_stage("mmada_bench.train.stage3", "build_stage3"),
}


#: Model-free checks of ``stage_options`` per stage (``module``, ``function(config)``), run when the config is
#: read, so ``train --check`` and a real run refuse bad options before any model loads. A stage without an
#: entry takes no options.
STAGE_OPTION_CHECKS: dict[str, tuple[str, str]] = {"stage3": ("mmada_bench.train.stage3", "plan_stage3")}


def check_stage_options(config: TrainConfig, where: str = "config") -> None:
    """``config.stage_options`` as its stage reads them; a stage that reads none refuses any."""
    target = STAGE_OPTION_CHECKS.get(config.stage)
    if target is None:
        if config.stage_options:
            raise ConfigError(f"{where}: stage_options: {config.stage} takes none, got {sorted(config.stage_options)}")
        return
    module, function = target
    try:
        getattr(importlib.import_module(module), function)(config)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def build_stage(ctx: StageContext) -> TrainingStage:
    """The stage named by ``ctx.config.stage``, or a one-line error listing the known stages."""
    name = ctx.config.stage
    if name not in STAGES:
        raise ConfigError(f"unknown stage {name!r}; known stages: {', '.join(sorted(STAGES))}")
    return STAGES[name](ctx)
