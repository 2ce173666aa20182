"""``mmada-bench run``: evaluate a checkpoint or preset on tasks (flags -> :class:`RunConfig`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmada_bench.adapters.settings import parse_assignments
from mmada_bench.errors import ConfigError
from mmada_bench.runner import RunConfig, run_suite


def _one_limit(text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--limit must be a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"--limit must be a positive finite number, got {text!r}")
    if value > 1 and not value.is_integer():
        raise argparse.ArgumentTypeError(f"--limit above 1 must be a whole number of examples, got {text!r}")
    return int(value) if value >= 1 else value


def parse_limit(text: str) -> int | float | dict[str, int | float]:
    """``--limit N`` (every task) or ``--limit task=N,task=M`` (those tasks; the others run in full)."""
    if "=" not in text:
        return _one_limit(text)
    limits: dict[str, int | float] = {}
    for part in text.split(","):
        task, sep, value = part.partition("=")
        if not sep or not task.strip():
            raise argparse.ArgumentTypeError(f"--limit: expected task=N in {part!r}")
        limits[task.strip()] = _one_limit(value.strip())
    return limits


LIMIT_HELP = ("first N examples per (sub)task, or a fraction; per task: easyvqa=1000,toy_count=50 "
              "(tasks not named run in full)")


def read_sample_ids(path: Path) -> dict[str, list[str]]:
    """``--samples FILE``: a JSON object ``{"task": [id, ...]}``; ids are ``doc_id`` (or ``subtask/doc_id`` for a
    task lm-eval splits into subtasks), as ``mmada-bench regress --write-samples`` writes them."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ConfigError(f"--samples {path}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--samples {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f'--samples {path}: expected a JSON object {{"task": [id, ...]}}')
    out = {}
    for task, ids in data.items():
        if not isinstance(ids, list) or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids):
            raise ConfigError(f"--samples {path}: task {task!r} must map to a list of ids (strings or integers)")
        out[task] = [str(i) for i in ids]
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="evaluate a model on tasks (resumable: rerun the same command to continue)",
        description="Evaluate a checkpoint folder or preset on registry tasks; writes samples and results.json "
        "under --output. Re-running the same command resumes from the request log; other settings of a "
        "task go into the same folder as a separate entry.",
    )
    p.add_argument("--model", required=True, help="checkpoint folder or preset name (e.g. tiny)")
    p.add_argument("--tasks", required=True, help="comma-separated task names (see `mmada-bench tasks`)")
    p.add_argument("--output", required=True, type=Path, help="run folder (created; reused to resume)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="offline data: DIR/<task>/<split>.jsonl|.parquet for text tasks, VLMEvalKit TSVs "
                   "for understanding tasks")
    p.add_argument("--sample-data", action="store_true", help="use the few bundled sample rows per task")
    p.add_argument("--limit", type=parse_limit, default=None, help=LIMIT_HELP)
    p.add_argument("--samples", type=Path, default=None, metavar="FILE",
                   help='evaluate only these samples: JSON {"task": [id, ...]} (ids as in samples files: doc_id, '
                   'or subtask/doc_id; `mmada-bench regress --write-samples` writes one)')
    p.add_argument("--batch-size", type=int, default=8, help="requests per model call (default 8)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default auto)")
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16 (default float32)")
    p.add_argument("--seed", type=int, default=None, help="one seed for lm-eval and the sampler (default: lm-eval's)")
    p.add_argument("--num-fewshot", type=int, default=None, help="override every text task's few-shot count")
    p.add_argument("--sampler", default="",
                   help="sampler settings: key=value for every task that has the key, mmu.key=value for a "
                   "modality (text, mmu, t2i), task.key=value for one task, preset=NAME for a task preset "
                   "(e.g. steps=128,gen_length=128,gpqa.mc_num=32)")
    p.add_argument("--label", default=None, help="free-form label of the model under test (e.g. stage-2)")
    p.add_argument("--bootstrap-iters", type=int, default=1000, help="bootstrap resamples for stderr (default 1000; 0: no stderr)")
    p.add_argument("--vq-model", default=None, help="MAGVIT-v2 folder (default: <model>/vq_model if present)")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the checkpoint's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = RunConfig(
        model=args.model, tasks=[t for t in args.tasks.split(",") if t.strip()], output=args.output,
        data_dir=args.data_dir, sample_data=args.sample_data, limit=args.limit, batch_size=args.batch_size,
        device=args.device, dtype=args.dtype, seed=args.seed, num_fewshot=args.num_fewshot,
        sampler=parse_assignments(args.sampler), label=args.label, bootstrap_iters=args.bootstrap_iters,
        progress=not args.no_progress, vq_model=args.vq_model, tokenizer=args.tokenizer,
        samples=read_sample_ids(args.samples) if args.samples is not None else None,
    )
    run_suite(config)
    return 0
