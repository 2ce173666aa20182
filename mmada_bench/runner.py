"""``mmada-bench run``: evaluate one model on a suite of tasks, resumably, into one output folder.

Order of work, chosen so that mistakes fail fast and nothing finished is lost:

1. resolve task names, validate and stage all data (a malformed row fails here, before the model
   loads);
2. load the model (adapter) and claim the output folder (a folder holding another model's run is
   refused);
3. per task: run lm-eval on the staged task with our ``mmada`` LM, whose answers go to the request log
   as they are produced and are served from it on a rerun; then write the per-sample records and the
   results file (rewritten after every task, so an interrupted suite keeps its finished tasks);
4. print a summary table.

Under ``accelerate launch -m mmada_bench.cli run ...`` each process evaluates the documents lm-eval
assigns to its rank (its own request log), rank 0 gathers per-sample metrics and costs and writes the
results; a rerun with the same number of processes resumes exactly.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mmada_bench import __version__
from mmada_bench.adapters.base import Adapter, Cost
from mmada_bench.adapters.settings import TextSettings, parse_assignments
from mmada_bench.errors import ConfigError, DataError
from mmada_bench.results import ResultsStore, bootstrap_stderr
from mmada_bench.tasks import TaskSpec, resolve_tasks

if TYPE_CHECKING:
    from mmada_bench.adapters.lm_eval_bridge import Distributed
    from mmada_bench.results import RequestLog
    from mmada_bench.tasks.text.lm_eval_tasks import PreparedTask

#: lm-eval's own default seeds (python random, numpy, torch, few-shot sampler), used without --seed.
LM_EVAL_DEFAULT_SEEDS = (0, 1234, 1234, 1234)
DEFAULT_ADAPTER_SEED = 1234


@dataclass
class RunConfig:
    """Everything a run depends on (written into ``results.json`` as ``config``)."""

    model: str
    tasks: list[str]
    output: Path
    data_dir: Path | None = None
    sample_data: bool = False
    limit: int | float | None = None
    batch_size: int = 8
    device: str = "auto"
    dtype: str = "float32"
    seed: int | None = None
    num_fewshot: int | None = None
    sampler: dict[str, str] = field(default_factory=dict)
    label: str | None = None
    bootstrap_iters: int = 1000
    progress: bool = True
    vq_model: str | None = None
    tokenizer: str | None = None

    def seeds(self) -> dict[str, int]:
        py, np_, torch_, shots = LM_EVAL_DEFAULT_SEEDS if self.seed is None else (self.seed,) * 4
        adapter = DEFAULT_ADAPTER_SEED if self.seed is None else self.seed
        return {"random": py, "numpy": np_, "torch": torch_, "fewshot": shots, "adapter": adapter}

    def data_root(self) -> Path | None:
        if self.sample_data and self.data_dir is not None:
            raise ConfigError("use either --data-dir or --sample-data, not both")
        if self.sample_data:
            from mmada_bench.tasks.text import SAMPLE_DATA_DIR

            return SAMPLE_DATA_DIR
        return self.data_dir


def sampler_overrides(assignments: dict[str, str], task: str) -> dict[str, str]:
    """``--sampler`` entries for ``task``: plain ``key=value`` apply to every task, ``task.key=value`` to one."""
    out = {k: v for k, v in assignments.items() if "." not in k}
    out.update({k.split(".", 1)[1]: v for k, v in assignments.items() if k.startswith(task + ".")})
    return out


def task_settings(spec: TaskSpec, assignments: dict[str, str]) -> TextSettings:
    """The settings a task runs with: package defaults, then the task's, then the user's overrides."""
    return TextSettings().updated(spec.sampler).updated(sampler_overrides(assignments, spec.name))


def check_sampler(assignments: dict[str, str], tasks: list[str]) -> None:
    """Refuse, before any work, unknown settings, ill-typed values, ``task.`` prefixes naming tasks not
    in the run, and generation schedules the sampler cannot run (e.g. gen_length % block_length)."""
    from mmada_bench.sampling import check_text_schedule

    for key in assignments:
        if "." in key and key.split(".", 1)[0] not in tasks:
            raise ConfigError(f"--sampler {key}: {key.split('.', 1)[0]!r} is not one of the tasks of this run")
    for spec in resolve_tasks(tasks):
        settings = task_settings(spec, assignments)
        try:
            check_text_schedule(settings.gen_length, settings.steps, settings.block_length)
        except ConfigError as exc:
            raise ConfigError(f"task {spec.name}: {exc}") from None


def _quiet_third_party() -> None:
    """lm-eval and datasets log every step at INFO and draw their own bars; keep warnings only."""
    for name in ("lm_eval", "lm-eval", "datasets", "httpx", "filelock"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # "Overwriting default num_fewshot ..." once per subtask (57 for MMLU): the override is ours and
    # the value is recorded in results.json.
    logging.getLogger("lm_eval.evaluator").setLevel(logging.ERROR)
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - datasets comes with lm-eval
        pass


def prepare_tasks(specs: list[TaskSpec], config: RunConfig, store: ResultsStore, rank_dir: str) -> dict[str, Any]:
    """Validate and stage every task's data (or point at the hub); errors name file, line and field."""
    data_root = config.data_root()
    if data_root is not None and not data_root.is_dir():
        raise DataError(f"--data-dir {data_root} is not a folder (expected <task>/<split>.jsonl|.parquet inside)")
    prepared = {}
    for spec in specs:
        if spec.backend != "lm-eval":
            raise ConfigError(f"task {spec.name}: backend {spec.backend!r} is not runnable yet")
        if spec.name == "math":
            from mmada_bench.tasks.text.competition_math import check_dependencies

            check_dependencies()
        folder = None
        if data_root is not None:
            folder = data_root / spec.name
            if not folder.is_dir():
                raise DataError(f"{folder} not found: --data-dir needs a {spec.name}/ folder with its split files")
        shots = spec.num_fewshot if config.num_fewshot is None else config.num_fewshot
        prepared[spec.name] = spec.impl.prepare(store.tasks_dir / rank_dir / spec.name, folder, shots)
    return prepared


def build_adapter(config: RunConfig, device: str | None = None) -> Adapter:
    from mmada_bench.adapters.mmada import MMaDAAdapter, resolve_device

    return MMaDAAdapter.from_checkpoint(
        config.model, dtype=config.dtype, device=device or resolve_device(config.device),
        batch_size=config.batch_size, label=config.label, vq_model=config.vq_model, tokenizer=config.tokenizer,
    )


def run_suite(config: RunConfig, adapter: Adapter | None = None, out: TextIO | None = None) -> dict[str, Any] | None:
    """Run every task of ``config``; returns the results dict (None on non-zero ranks)."""
    out = out or sys.stdout
    start = time.perf_counter()
    _quiet_third_party()
    from mmada_bench.adapters.lm_eval_bridge import Distributed

    dist = Distributed()
    specs = resolve_tasks(config.tasks)
    store = ResultsStore(config.output)
    prepared = prepare_tasks(specs, config, store, f"rank{dist.rank}" if dist.world_size > 1 else "")
    adapter = adapter or build_adapter(config, str(dist.device) if dist.device else None)
    seeds = config.seeds()
    if dist.rank == 0:
        resumed = store.claim({"model": adapter.identity(), "seed": seeds["adapter"]})
        if resumed:
            out.write(f"resuming in {config.output}: finished requests are read from {store.requests_dir}\n")
    dist.barrier()
    log = store.request_log(dist.rank)
    results = _results_header(config, adapter, seeds)
    try:
        for spec in specs:
            task_result = _run_task(spec, prepared[spec.name], config, adapter, log, dist, seeds, store)
            if dist.rank == 0:
                results["tasks"][spec.name] = task_result
                results["wall_seconds"] = time.perf_counter() - start
                store.write_results(results)
    finally:
        log.close()
    if dist.rank != 0:
        return None
    results["wall_seconds"] = time.perf_counter() - start
    store.write_results(results)
    out.write(format_summary(results) + "\n")
    out.write(f"results: {store.results_path}\n")
    return results


def _results_header(config: RunConfig, adapter: Adapter, seeds: dict[str, int]) -> dict[str, Any]:
    from mmada_bench.provenance import git_revision, machine_info, package_versions

    config_dict = asdict(config)
    config_dict["data_root"] = config.data_root()
    return {
        "mmada_bench_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "config": config_dict,
        "model": adapter.describe(),
        "seeds": seeds,
        "tasks": {},
        "environment": {"packages": package_versions(), "machine": machine_info(), "git": git_revision()},
        "wall_seconds": None,
    }


def _run_task(
    spec: TaskSpec,
    prepared: PreparedTask,
    config: RunConfig,
    adapter: Adapter,
    log: RequestLog,
    dist: Distributed,
    seeds: dict[str, int],
    store: ResultsStore,
) -> dict[str, Any] | None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    from mmada_bench.adapters.lm_eval_bridge import MMaDALM

    settings = task_settings(spec, config.sampler)
    shots = spec.num_fewshot if config.num_fewshot is None else config.num_fewshot
    lm = MMaDALM(
        adapter=adapter, seed=seeds["adapter"], store=log, batch_size=config.batch_size,
        task_settings={name: settings for name in prepared.subtasks}, progress=config.progress,
        progress_label=spec.name, distributed=dist,
    )
    lm.settings = settings
    manager = TaskManager(include_path=str(prepared.include_dir), include_defaults=False)
    begin = time.perf_counter()
    raw = lm_eval.simple_evaluate(
        model=lm, tasks=[prepared.lm_eval_name], task_manager=manager, num_fewshot=shots, limit=config.limit,
        bootstrap_iters=config.bootstrap_iters, log_samples=True, random_seed=seeds["random"],
        numpy_random_seed=seeds["numpy"], torch_random_seed=seeds["torch"], fewshot_random_seed=seeds["fewshot"],
    )
    costs = {}
    for part in dist.gather_object({k: v.to_dict() for k, v in lm.costs.items()}):
        costs.update(part)
    counts = dist.gather_object(dict(lm.counts))
    if dist.rank != 0 or raw is None:
        return None
    records = sample_records(spec.name, raw.get("samples", {}), costs)
    store.write_samples(spec.name, records)
    return task_result(spec, prepared, raw, records, settings, shots, config, counts, time.perf_counter() - begin)


def _prediction(sample: dict[str, Any]) -> Any:
    """Generation: the filtered answer; multiple choice: the continuation with the highest log-likelihood."""
    filtered = sample.get("filtered_resps") or []
    arguments = sample.get("arguments") or []
    if len(arguments) > 1 and all(len(a) > 1 and isinstance(a[1], str) for a in arguments):
        scores = [f[0] if isinstance(f, (list, tuple)) else f for f in filtered]
        best = max(range(len(scores)), key=lambda i: float(scores[i]))
        return arguments[best][1]
    return filtered[0] if filtered else None


def sample_records(task: str, samples: dict[str, list], costs: dict) -> list[dict[str, Any]]:
    """lm-eval's logged samples (one per document and filter) -> one record per document."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for subtask, items in samples.items():
        for sample in items:
            doc_id = int(sample["doc_id"])
            record = merged.get((subtask, doc_id))
            if record is None:
                arguments = sample.get("arguments") or [[""]]
                cost = costs.get((subtask, doc_id), {})
                record = merged[(subtask, doc_id)] = {
                    "task": task,
                    "subtask": subtask,
                    "doc_id": doc_id,
                    "prompt": arguments[0][0],
                    "prompt_hash": sample.get("prompt_hash"),
                    "doc_hash": sample.get("doc_hash"),
                    "target": sample.get("target"),
                    "target_hash": sample.get("target_hash"),
                    "predictions": {},
                    "metrics": {},
                    "responses": sample.get("resps"),
                    "cost": cost if isinstance(cost, dict) else Cost().to_dict(),
                    "doc": sample.get("doc"),
                }
            flt = sample.get("filter", "none")
            record["predictions"][flt] = _prediction(sample)
            for metric in sample.get("metrics", []):
                record["metrics"][f"{metric},{flt}"] = sample.get(metric)
    return [merged[key] for key in sorted(merged)]


def task_result(
    spec: TaskSpec,
    prepared: PreparedTask,
    raw: dict[str, Any],
    records: list[dict[str, Any]],
    settings: TextSettings,
    shots: int,
    config: RunConfig,
    counts: list[dict[str, int]],
    seconds: float,
) -> dict[str, Any]:
    """The results-file entry of one task: metrics (lm-eval's values, our bootstrap stderr), cost, provenance."""
    name = prepared.lm_eval_name
    lm_results = raw["results"].get(name, {})
    values: dict[str, list[float]] = defaultdict(list)
    for record in records:
        for key, value in record["metrics"].items():
            if isinstance(value, (int, float, bool)):
                values[key].append(float(value))
    metrics = {}
    for key, value in lm_results.items():
        if "," not in key or "_stderr," in key or key.startswith("alias"):
            continue
        metric, flt = key.split(",", 1)
        lm_stderr = lm_results.get(f"{metric}_stderr,{flt}")
        metrics[key] = {
            "value": value,
            "stderr": bootstrap_stderr(values.get(key, []), config.bootstrap_iters, seed=1234),
            "stderr_method": f"bootstrap over examples ({config.bootstrap_iters} resamples)",
            "lm_eval_stderr": lm_stderr if isinstance(lm_stderr, (int, float)) else None,
        }
    total = Cost()
    for record in records:
        total.add(Cost(**record["cost"]))
    return {
        "lm_eval_task": name,
        "variant": spec.variant,
        "primary_metric": spec.primary_metric,
        "metrics": metrics,
        "n_samples": len(records),
        "num_fewshot": shots,
        "limit": config.limit,
        "sampler": settings.to_dict(),
        "data": {"source": prepared.source, "files_sha256": prepared.data_files, "rows": {str(k): v for k, v in prepared.rows.items()}},
        "cost": {**total.to_dict(), "requests_computed": sum(c["computed"] for c in counts),
                 "requests_from_log": sum(c["cached"] for c in counts)},
        "seconds": seconds,
        "lm_eval": {
            "results": raw.get("results"),
            "groups": raw.get("groups"),
            "group_subtasks": raw.get("group_subtasks"),
            "configs": raw.get("configs"),
            "versions": raw.get("versions"),
            "n-shot": raw.get("n-shot"),
            "higher_is_better": raw.get("higher_is_better"),
            "n-samples": raw.get("n-samples"),
            "lm_eval_version": raw.get("lm_eval_version"),
        },
        "spec": spec.summary(),
    }


def format_summary(results: dict[str, Any]) -> str:
    """Fixed-width table: one row per task and metric (primary metric first)."""
    model = results.get("model", {})
    title = f"{model.get('model', '?')}" + (f" [{model['label']}]" if model.get("label") else "")
    header = ("task", "metric", "value", "stderr", "n", "shots", "NFE", "tokens", "seconds")
    rows = []
    for name, task in results.get("tasks", {}).items():
        if not task:
            continue
        keys = sorted(task["metrics"], key=lambda k: (k != task["primary_metric"], k))
        for i, key in enumerate(keys):
            entry = task["metrics"][key]
            cost = task["cost"]
            rows.append((
                name if i == 0 else "", key, _fmt(entry["value"]), _fmt(entry["stderr"]),
                str(task["n_samples"]) if i == 0 else "", str(task["num_fewshot"]) if i == 0 else "",
                str(cost["nfe"]) if i == 0 else "", str(cost["tokens"]) if i == 0 else "",
                f"{task['seconds']:.1f}" if i == 0 else "",
            ))
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    lines = [f"results for {title} (wall {results.get('wall_seconds') or 0:.1f}s)"]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


# -- command line ----------------------------------------------------------------------------------
def _limit(text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--limit must be a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("--limit must be positive")
    return int(value) if value >= 1 and value.is_integer() else value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="evaluate a model on tasks (resumable: rerun the same command to continue)",
        description="Evaluate a checkpoint folder or preset on registry tasks; writes samples and results.json "
        "under --output. Re-running the same command resumes from the request log.",
    )
    p.add_argument("--model", required=True, help="checkpoint folder or preset name (e.g. tiny)")
    p.add_argument("--tasks", required=True, help="comma-separated task names (see `mmada-bench tasks`)")
    p.add_argument("--output", required=True, type=Path, help="run folder (created; reused to resume)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="offline data: DIR/<task>/<split>.jsonl|.parquet in the source datasets' schemas")
    p.add_argument("--sample-data", action="store_true", help="use the few bundled sample rows per task")
    p.add_argument("--limit", type=_limit, default=None, help="first N examples per (sub)task, or a fraction")
    p.add_argument("--batch-size", type=int, default=8, help="requests per model call (default 8)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default auto)")
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16 (default float32)")
    p.add_argument("--seed", type=int, default=None, help="one seed for lm-eval and the sampler (default: lm-eval's)")
    p.add_argument("--num-fewshot", type=int, default=None, help="override every task's few-shot count")
    p.add_argument("--sampler", default="",
                   help="sampler overrides: key=value for every task, task.key=value for one "
                   "(e.g. steps=128,gen_length=128,gpqa.mc_num=32)")
    p.add_argument("--label", default=None, help="free-form label of the model under test (e.g. stage-2)")
    p.add_argument("--bootstrap-iters", type=int, default=1000, help="bootstrap resamples for stderr (default 1000)")
    p.add_argument("--vq-model", default=None, help="MAGVIT-v2 folder (default: <model>/vq_model if present)")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the checkpoint's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    config = RunConfig(
        model=args.model, tasks=[t for t in args.tasks.split(",") if t.strip()], output=args.output,
        data_dir=args.data_dir, sample_data=args.sample_data, limit=args.limit, batch_size=args.batch_size,
        device=args.device, dtype=args.dtype, seed=args.seed, num_fewshot=args.num_fewshot,
        sampler=parse_assignments(args.sampler), label=args.label, bootstrap_iters=args.bootstrap_iters,
        progress=not args.no_progress, vq_model=args.vq_model, tokenizer=args.tokenizer,
    )
    check_sampler(config.sampler, config.tasks)  # refuse unknown/ill-typed settings before any work
    run_suite(config)
    return 0
