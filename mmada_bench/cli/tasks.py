"""``mmada-bench tasks``: list the registry (what each task is, its data layout, metrics, defaults)."""

from __future__ import annotations

import argparse
import json

from mmada_bench.tasks import all_tasks


def format_table(verbose: bool = False) -> str:
    header = ("task", "modality", "source", "splits", "metrics", "shots", "sampler")
    rows = []
    for spec in all_tasks():
        splits = ", ".join(f"{role}={split}" for role, split in spec.splits.items())
        sampler = ",".join(f"{k}={v}" for k, v in spec.sampler.items())
        rows.append((spec.name, spec.modality, spec.source, splits, " ".join(spec.metrics), str(spec.num_fewshot), sampler))
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if verbose:
        lines.append("")
        for spec in all_tasks():
            lines.append(f"{spec.name}: {spec.description}")
            lines.append(f"  built on: {spec.variant}; columns: {', '.join(spec.columns)}")
            lines.append(f"  why: {spec.why}")
    lines.append("")
    lines.append("offline data (--data-dir DIR): text tasks read DIR/<task>/<split>.jsonl or .parquet (splits as "
                 "above); understanding tasks read VLMEvalKit's TSVs (POPE.tsv, MME.tsv, GQA_TestDev_Balanced.tsv, "
                 "MMMU_DEV_VAL.tsv) and VQAv2's official files from DIR, else from $LMUData (~/LMUData); "
                 "easyvqa needs none")
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="list the available tasks")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--verbose", "-v", action="store_true", help="also say what each task is built on and why")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps([spec.summary() for spec in all_tasks()], indent=2))
    else:
        print(format_table(args.verbose))
    return 0
