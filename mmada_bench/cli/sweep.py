"""``mmada-bench sweep``: one model, a grid of sampler settings, one run folder per point, one table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmada_bench.adapters.settings import parse_assignments
from mmada_bench.cli.run import LIMIT_HELP, parse_limit
from mmada_bench.errors import ConfigError
from mmada_bench.runner import RunConfig


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """The ``run`` flags a sweep or stage table passes on to every run it makes (same meaning)."""
    p.add_argument("--tasks", help="comma-separated task names (see `mmada-bench tasks`)")
    p.add_argument("--data-dir", type=Path, default=None, help="offline data folder (as for `run`)")
    p.add_argument("--sample-data", action="store_true", help="use the few bundled sample rows per task")
    p.add_argument("--limit", type=parse_limit, default=None, help=LIMIT_HELP)
    p.add_argument("--batch-size", type=int, default=8, help="requests per model call (default 8)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default auto)")
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16 (default float32)")
    p.add_argument("--seed", type=int, default=None, help="one seed for lm-eval and the sampler")
    p.add_argument("--num-fewshot", type=int, default=None, help="override every text task's few-shot count")
    p.add_argument("--sampler", default="", help="settings every run shares (as for `run`), e.g. gen_length=64")
    p.add_argument("--bootstrap-iters", type=int, default=1000, help="bootstrap resamples for stderr (default 1000)")
    p.add_argument("--vq-model", default=None, help="MAGVIT-v2 folder (default: <model>/vq_model if present)")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the checkpoint's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_config(args: argparse.Namespace, model: str, output: Path, label: str | None) -> RunConfig:
    if not args.tasks:
        raise ConfigError("--tasks is required to run a model")
    return RunConfig(
        model=model, tasks=[t for t in args.tasks.split(",") if t.strip()], output=output, data_dir=args.data_dir,
        sample_data=args.sample_data, limit=args.limit, batch_size=args.batch_size, device=args.device,
        dtype=args.dtype, seed=args.seed, num_fewshot=args.num_fewshot, sampler=parse_assignments(args.sampler),
        label=label, bootstrap_iters=args.bootstrap_iters, progress=not args.no_progress, vq_model=args.vq_model,
        tokenizer=args.tokenizer,
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="sampler-setting sweep (e.g. steps): one run per grid point, table + plots",
        description="Run one model at every point of a grid of sampler settings (cartesian product), each point "
        "a resumable run in OUTPUT/<point>/, sharing one model load. Points the sampler cannot run are listed "
        "with the nearest valid values and skipped before any work. Writes sweep.csv, sweep.md, "
        "sweep_steps.png and sweep_seconds.png in OUTPUT.",
    )
    p.add_argument("--model", help="checkpoint folder or preset name (e.g. tiny)")
    p.add_argument("--grid", nargs="+", action="extend", default=[], metavar="KEY=V1,V2",
                   help="settings to sweep, e.g. steps=16,32,64 block_length=8,16 (steps also sets t2i timesteps; "
                   "guidance sets cfg_scale / guidance_scale; task.key scopes one task)")
    p.add_argument("--output", required=True, type=Path, help="sweep folder (created; reused to resume)")
    p.add_argument("--label", default=None, help="label of the model under test")
    p.add_argument("--report-only", action="store_true", help="rebuild the table and plots of OUTPUT without running")
    add_run_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmada_bench.reports.sweep import parse_grid, run_sweep, write_report

    if args.report_only:
        if not (args.output / "sweep.json").is_file():
            raise ConfigError(f"{args.output}: no sweep.json (not a sweep folder)")
        report = write_report(args.output)
    else:
        if not args.model:
            raise ConfigError("--model is required (or --report-only to rebuild an existing sweep's table)")
        config = run_config(args, args.model, args.output, args.label)
        report = run_sweep(config, parse_grid(args.grid), out=sys.stdout)
    sys.stdout.write(report["paths"]["md"].read_text(encoding="utf-8"))
    for name, path in report["paths"].items():
        sys.stdout.write(f"{name}: {path}\n")
    return 0
