"""The model under test, as tasks see it: requests, results, settings, and the MMaDA adapter.

Exports are resolved lazily so that importing this package (e.g. from the CLI parser) does not import torch.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Adapter": "mmada_bench.adapters.base",
    "CapabilityError": "mmada_bench.adapters.base",
    "Cost": "mmada_bench.adapters.base",
    "ImageQuestion": "mmada_bench.adapters.base",
    "ImageRequest": "mmada_bench.adapters.base",
    "ImageResult": "mmada_bench.adapters.base",
    "LoglikelihoodRequest": "mmada_bench.adapters.base",
    "LoglikelihoodResult": "mmada_bench.adapters.base",
    "TextRequest": "mmada_bench.adapters.base",
    "TextResult": "mmada_bench.adapters.base",
    "ImageSettings": "mmada_bench.adapters.settings",
    "TextSettings": "mmada_bench.adapters.settings",
    "UnderstandingSettings": "mmada_bench.adapters.settings",
    "MMaDAAdapter": "mmada_bench.adapters.mmada",
    "FixedAnswerAdapter": "mmada_bench.adapters.fixed",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mmada_bench.adapters' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
