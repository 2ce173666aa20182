"""Named benchmark tasks, by modality: ``text`` (lm-eval based), ``mmu`` and ``t2i`` (to come).

Use :func:`get_task`, :func:`resolve_tasks` or :func:`all_tasks`; see :mod:`mmada_bench.tasks.registry`.
"""

from mmada_bench.tasks.registry import TaskSpec, all_tasks, get_task, register, resolve_tasks

__all__ = ["TaskSpec", "all_tasks", "get_task", "register", "resolve_tasks"]
