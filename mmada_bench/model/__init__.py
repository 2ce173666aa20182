"""MMaDA model, MAGVIT-v2 image tokenizer, prompting and checkpoint loading.

Exports resolve lazily so that image-only code (MAGVIT-v2, image processing) does not pay for
importing transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "MMaDAConfig": "mmada_bench.model.configuration_mmada",
    "MMaDAModelLM": "mmada_bench.model.modeling_mmada",
    "MMaDAOutput": "mmada_bench.model.modeling_mmada",
    "MAGVITv2": "mmada_bench.model.magvitv2",
    "MAGVITv2Config": "mmada_bench.model.magvitv2",
}

__all__ = ["MAGVITv2", "MAGVITv2Config", "MMaDAConfig", "MMaDAModelLM", "MMaDAOutput"]

if TYPE_CHECKING:
    from mmada_bench.model.configuration_mmada import MMaDAConfig
    from mmada_bench.model.magvitv2 import MAGVITv2, MAGVITv2Config
    from mmada_bench.model.modeling_mmada import MMaDAModelLM, MMaDAOutput


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mmada_bench.model' has no attribute {name!r}")
