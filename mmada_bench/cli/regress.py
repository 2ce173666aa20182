"""``mmada-bench regress``: the CI gate -- exit 1 when the candidate run is significantly worse."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "regress", help="regression gate: paired test on shared samples (exit 1 on a significant drop)",
        description="Compare a candidate run with a baseline run task by task: exact McNemar (0/1 metrics) or a "
        "paired bootstrap on the samples both scored, beside lm-eval's unpaired z-test. Exit 0 pass, 1 a primary "
        "metric dropped by more than --max-drop points with paired p < --alpha, 2 unreadable or incomparable runs. "
        "Prompt, document and protocol drift is reported separately.",
    )
    p.add_argument("baseline", type=Path, help="baseline run folder")
    p.add_argument("candidate", type=Path, help="candidate run folder")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the paired test (default 0.05)")
    p.add_argument("--max-drop", type=float, default=1.0,
                   help="tolerated drop in metric points (x100 for proportions; default 1.0)")
    p.add_argument("--allow-different-samples", action="store_true",
                   help="compare runs over different sample sets on the samples they share")
    p.add_argument("--report", type=Path, default=None, help="also write the markdown report here (for a CI comment)")
    p.add_argument("--csv", type=Path, default=None, help="also write the per-metric comparison as CSV")
    p.add_argument("--write-samples", type=Path, default=None, metavar="FILE",
                   help='write the shared sample ids as {"task": [id, ...]} for `mmada-bench run --samples FILE`')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmada_bench.reports.regress import compare, gate_markdown, write_samples_file
    from mmada_bench.results.reader import RunFolder

    baseline, candidate = RunFolder.open(args.baseline), RunFolder.open(args.candidate)
    report = compare(baseline, candidate, args.alpha, args.max_drop, args.allow_different_samples)
    text = gate_markdown(report)
    sys.stdout.write(text + "\n")
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n", encoding="utf-8")
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        report.frame().to_csv(args.csv, index=False)
    if args.write_samples:
        write_samples_file(report, args.write_samples)
    return 1 if report.failed else 0
