"""``mmada-bench train CONFIG``: run or resume a training stage from a YAML config.

Multi-process runs go through accelerate, e.g.
``accelerate launch --config_file configs/accelerate/ddp.yaml -m mmada_bench.cli train CONFIG``.
"""

from __future__ import annotations

import argparse
import json

import yaml

from mmada_bench.errors import ConfigError


def _assignment(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE (dotted key), got {text!r}")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"--set {text!r}: value is not valid YAML") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a stage (1: pretraining, 2: mixed CoT, 3: UniGRPO) from a YAML config; resumable",
        description="Train MMaDA with the stage, data mix, loss, optimiser and runtime settings of CONFIG. "
        "Checkpoints go to OUTPUT_DIR/checkpoint-STEP in the released folder layout (loadable with "
        "`mmada-bench run --model`); --resume auto continues exactly from the newest one.",
    )
    p.add_argument("config", help="YAML training config (see configs/train/)")
    p.add_argument("--resume", metavar="auto|DIR", help="continue from the newest checkpoint (auto) or DIR")
    p.add_argument(
        "--set", dest="overrides", type=_assignment, action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.max_steps=100 (repeatable)",
    )
    p.add_argument("--check", action="store_true", help="validate config and data, print the config, do not train")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from mmada_bench.train.config import load_config

    config = load_config(args.config, dict(args.overrides))
    if args.check:
        from mmada_bench.train.checkpointing import resolve_resume
        from mmada_bench.train.data import read_source

        for task in ("t2i", "lm", "mmu"):
            for source in config.sources(task):
                read_source(task, source)
        resolve_resume(args.resume, config.output_dir)
        print(json.dumps(config.to_dict(), indent=2, default=str))
        return 0
    from mmada_bench.train.trainer import train

    result = train(config, resume=args.resume)
    if result.final_checkpoint is None:
        raise ConfigError("training produced no checkpoint")
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(f"trained {result.steps} steps; final checkpoint: {result.final_checkpoint}")
    return 0
