"""Make ``lm_eval --model mmada`` work from lm-eval's own CLI, and export offline task folders.

``install-plugin`` writes ``mmada_bench_lm_eval.pth`` into the interpreter's site-packages; Python runs
its single line at start-up, which imports :mod:`mmada_bench._lm_eval_hook` (cheap; see there). The
line is guarded, so uninstalling mmada-bench without removing the file breaks nothing.

``export-tasks`` writes lm-eval task folders for the text tasks on local data (validated and staged
exactly as ``mmada-bench run`` does), for ``lm_eval --include_path DIR``.
"""

from __future__ import annotations

import argparse
import sysconfig
from pathlib import Path

PTH_NAME = "mmada_bench_lm_eval.pth"
PTH_LINE = (
    "import importlib.util as _u; _u.find_spec('mmada_bench') is not None and __import__('mmada_bench._lm_eval_hook')\n"
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lm-eval", help="lm-eval integration: install the 'mmada' model plugin, export task folders")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    inst = actions.add_parser("install-plugin", help="let `lm_eval --model mmada` work (writes a .pth file)")
    inst.add_argument("--site-dir", type=Path, default=None, help="folder to write into (default: site-packages)")
    inst.add_argument("--uninstall", action="store_true", help="remove the file instead")
    inst.set_defaults(func=run)
    exp = actions.add_parser("export-tasks", help="write lm-eval task folders for --include_path")
    exp.add_argument("--tasks", default="mmlu,gsm8k,math,gpqa", help="comma-separated registry names")
    exp.add_argument("--data-dir", type=Path, default=None, help="DIR/<task>/<split>.jsonl|.parquet (default: hub)")
    exp.add_argument("--sample-data", action="store_true", help="use the bundled sample rows")
    exp.add_argument("--num-fewshot", type=int, default=None, help="checks the data has enough examples")
    exp.add_argument("--out", type=Path, required=True, help="folder to write")
    exp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "install-plugin":
        if args.uninstall:
            removed = uninstall(args.site_dir)
            print(f"{'removed' if removed else 'no'} {PTH_NAME} in {args.site_dir or site_packages()}")
        else:
            print(f"wrote {install(args.site_dir)}; `lm_eval --model mmada` now works in this environment")
        return 0
    from mmada_bench.tasks.text import SAMPLE_DATA_DIR

    data_dir = SAMPLE_DATA_DIR if args.sample_data else args.data_dir
    names = export_tasks(args.out, args.tasks.split(","), data_dir, args.num_fewshot)
    print(f"wrote {args.out}; run: lm_eval --model mmada --include_path {args.out} --tasks {','.join(names)} ...")
    return 0
