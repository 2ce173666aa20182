"""Task backends: the machinery that runs a task (lm-eval for text, native for tasks defined here).

The runner knows only :class:`~mmada_bench.backends.base.TaskBackend`; :func:`get_backend` maps a
spec's ``backend`` name to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # this package is imported by the lm-eval hook at interpreter start: keep it light
    from mmada_bench.backends.base import TaskBackend


def get_backend(name: str) -> TaskBackend:
    if name == "lm-eval":
        from mmada_bench.backends.lm_eval.backend import LmEvalBackend

        return LmEvalBackend()
    if name == "native":
        from mmada_bench.backends.native import NativeBackend

        return NativeBackend()
    raise ValueError(f"unknown task backend {name!r}")


__all__ = ["get_backend"]
