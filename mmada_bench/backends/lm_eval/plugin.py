"""Make ``lm_eval --model mmada`` work from lm-eval's own CLI, and export offline task folders.

``install-plugin`` writes ``mmada_bench_lm_eval.pth`` into the interpreter's site-packages; Python runs
its single line at start-up, which imports :mod:`mmada_bench.backends.lm_eval.hook` (cheap; see there). The
line is guarded, so uninstalling mmada-bench without removing the file breaks nothing.

``export-tasks`` writes lm-eval task folders for the text tasks on local data (validated and staged
exactly as ``mmada-bench run`` does), for ``lm_eval --include_path DIR``.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

PTH_NAME = "mmada_bench_lm_eval.pth"
_HOOK = "mmada_bench.backends.lm_eval.hook"
PTH_LINE = (
    "import importlib.util as _u; _u.find_spec('mmada_bench') is not None and "
    f"_u.find_spec('{_HOOK}') is not None and __import__('{_HOOK}')\n"
)


def site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def install(folder: Path | None = None) -> Path:
    """Write the ``.pth`` file (idempotent); returns its path."""
    path = (folder or site_packages()) / PTH_NAME
    path.write_text(PTH_LINE, encoding="utf-8")
    return path


def uninstall(folder: Path | None = None) -> bool:
    path = (folder or site_packages()) / PTH_NAME
    if path.is_file():
        path.unlink()
        return True
    return False


def export_tasks(out: Path, tasks: list[str], data_dir: Path | None, num_fewshot: int | None) -> list[str]:
    """Stage each task under ``out/<task>/``; returns the lm-eval names to pass to ``--tasks``."""
    from mmada_bench.tasks import resolve_tasks

    names = []
    for spec in resolve_tasks(tasks):
        shots = spec.num_fewshot if num_fewshot is None else num_fewshot
        prepared = spec.impl.prepare(out / spec.name, data_dir / spec.name if data_dir else None, shots)
        names.append(prepared.lm_eval_name)
    return names
