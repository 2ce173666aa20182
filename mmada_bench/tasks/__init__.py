"""Named benchmark tasks by modality: ``text`` (run by lm-eval), ``mmu`` and ``t2i`` (native).

Use :func:`get_task`, :func:`resolve_tasks` or :func:`all_tasks` (:mod:`mmada_bench.tasks.catalog`);
a task is described by a :class:`~mmada_bench.tasks.spec.TaskSpec`.
"""

from mmada_bench.tasks.catalog import all_tasks, get_task, register, resolve_tasks, unregister
from mmada_bench.tasks.spec import TaskSpec

__all__ = ["TaskSpec", "all_tasks", "get_task", "register", "resolve_tasks", "unregister"]
