"""``mmada-bench stages``: a training-stage table (rows stages, columns task metrics, deltas)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmada_bench.cli.sweep import add_run_flags, run_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stages", help="training-stage table: rows stages, columns task metrics, deltas to the previous stage",
        description="Evaluate each stage's checkpoint on --tasks (into OUTPUT/<stage>/, resumable) or read an "
        "existing run folder (one holding results.json), then write stages.csv, stages.md and stages.png in OUTPUT.",
    )
    p.add_argument("--model", required=True, metavar="STAGE=FOLDER,...",
                   help="stages in table order, e.g. stage1=ckpt/s1,stage2=ckpt/s2,stage3=runs/s3 (checkpoint, "
                   "preset or run folder)")
    p.add_argument("--output", required=True, type=Path, help="folder for the table (and the runs it makes)")
    p.add_argument("--all-metrics", action="store_true", help="a column per metric, not only each task's primary")
    add_run_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmada_bench.reports.stages import parse_stages, run_stages, write_stage_report

    stages = parse_stages(args.model)
    runs = run_stages(stages, lambda name, model: run_config(args, model, args.output / name, name), out=sys.stdout)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    report = write_stage_report(runs, args.output, tasks, args.all_metrics)
    sys.stdout.write(report["paths"]["md"].read_text(encoding="utf-8"))
    for name, path in report["paths"].items():
        sys.stdout.write(f"{name}: {path}\n")
    return 0
