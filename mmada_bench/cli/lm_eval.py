"""``mmada-bench lm-eval``: install the ``mmada`` model plugin for lm-eval's CLI, export task folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmada_bench.backends.lm_eval.plugin import PTH_NAME, export_tasks, install, site_packages, uninstall


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lm-eval", help="lm-eval integration: install the 'mmada' model plugin, export task folders")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    inst = actions.add_parser("install-plugin", help="let `lm_eval --model mmada` work (writes a .pth file; a "
                              "non-editable pip install ships it already)")
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
