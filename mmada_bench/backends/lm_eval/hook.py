"""Registers ``mmada`` with lm-eval's model registry as soon as lm-eval builds it -- in any process.

lm-eval 0.4.x has no plugin discovery for models: a model class is only known once its module is
imported, which lm-eval's own CLI (``lm_eval --model mmada``) never does. A one-line ``.pth`` file in
site-packages (written by ``mmada-bench lm-eval install-plugin``) imports this module at interpreter
start. It must stay cheap: it imports nothing heavy, only adds an import hook that, right after
``lm_eval.api.registry`` is executed, registers ``mmada`` as a *lazy* entry
(``mmada_bench.backends.lm_eval.bridge:MMaDALM``), so torch and our code load only when the model is
actually requested.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

TARGET_MODULE = "lm_eval.api.registry"
LAZY_TARGET = "mmada_bench.backends.lm_eval.bridge:MMaDALM"
MODEL_NAME = "mmada"
TASK_INDEX_LOGGER = "lm_eval.tasks._index"


def register(registry_module) -> None:
    """Add the lazy ``mmada`` entry unless something already registered that name."""
    registry = getattr(registry_module, "model_registry", None)
    if registry is not None and MODEL_NAME not in registry:
        registry.register(MODEL_NAME, target=LAZY_TARGET)


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        self.inner.exec_module(module)
        try:
            register(module)
        except Exception as exc:  # never break lm-eval itself because of us
            sys.stderr.write(f"mmada_bench: could not register lm-eval model 'mmada' ({exc})\n")


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


class _OneOverrideNotice:
    """lm-eval warns once per task that an ``--include_path`` folder redefines (fifteen lines for a folder
    from ``mmada-bench lm-eval export-tasks``, whose whole point is to override the packaged tasks): keep
    the first notice, saying that the rest are suppressed."""

    def __init__(self) -> None:
        self.seen = False

    def filter(self, record) -> bool:
        if "overrides existing task" not in str(record.msg):
            return True
        if self.seen:
            return False
        self.seen = True
        record.msg = str(record.msg) + " (and so on for the folder's other tasks: further notices suppressed)"
        return True


def quiet_override_warnings() -> None:
    import logging

    logger = logging.getLogger(TASK_INDEX_LOGGER)
    if not any(isinstance(f, _OneOverrideNotice) for f in logger.filters):
        logger.addFilter(_OneOverrideNotice())


def install() -> None:
    """Idempotent: add the finder once; if lm-eval's registry is already imported, register now."""
    quiet_override_warnings()
    if TARGET_MODULE in sys.modules:
        register(sys.modules[TARGET_MODULE])
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


install()
