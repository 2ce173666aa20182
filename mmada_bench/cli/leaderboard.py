"""``mmada-bench leaderboard``: run folders -> one table in OpenCompass's summary shape."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard", help="leaderboard CSV + markdown from run folders (dataset, version, metric, mode, models)",
        description="One row per task metric, one column per run (named by its --label, else its model). Cells "
        "whose protocol (few-shot, sampler settings, data hash, scorer rule, limit) differs from the majority of "
        "their row are marked with a footnote. Writes leaderboard.csv and leaderboard.md in --output.",
    )
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folders (each holding results.json)")
    p.add_argument("--output", type=Path, default=Path("."), help="folder for the table (default: here)")
    p.add_argument("--reported", nargs="?", const="MMaDA-8B", default=None, metavar="MODELS",
                   help="add the paper's reported numbers as separate '(paper)' columns: MMaDA-8B by default, "
                   "'all', or a comma-separated list of the paper's models (e.g. MMaDA-8B,LLaDA-8B)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmada_bench.reports.leaderboard import write_leaderboard
    from mmada_bench.reports.reported import reported_models

    reported = reported_models(args.reported) if args.reported else []
    report = write_leaderboard(args.runs, args.output, reported)
    sys.stdout.write(report["paths"]["md"].read_text(encoding="utf-8"))
    for name, path in report["paths"].items():
        sys.stdout.write(f"{name}: {path}\n")
    return 0
