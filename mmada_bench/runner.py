"""Run one model on a suite of tasks, resumably, into one output folder.

Order of work, chosen so that mistakes fail fast and nothing finished is lost:

1. resolve task names and settings, check every schedule, and let each task's backend read and check
   its data (a malformed row fails here, before the model loads; nothing is written yet);
2. load the model (adapter), refuse tasks it cannot do, then lock and claim the output folder (a
   folder holding another model's run, or in use by another run, is refused);
3. per task: the backend runs it through the shared request engine (answers are logged as they are
   produced and served from the log on a rerun); the task's records and results entry are merged into
   the folder as soon as it finishes, so an interrupted suite keeps its finished tasks;
4. print a summary table.

Under ``accelerate launch -m mmada_bench.cli run ...`` (or ``torchrun``) each process evaluates its
shard with its own request log; the main process gathers records and writes the results.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from mmada_bench import __version__
from mmada_bench.adapters.base import Adapter, CapabilityError, Cost
from mmada_bench.adapters.settings import Settings
from mmada_bench.backends import get_backend
from mmada_bench.backends.base import RunContext, TaskPlan
from mmada_bench.engine.distributed import Distributed
from mmada_bench.engine.request_log import RequestLog
from mmada_bench.engine.serve import RequestEngine
from mmada_bench.errors import ConfigError
from mmada_bench.reports.summary import format_summary
from mmada_bench.results.schema import SampleRecord, TaskResult, cost_summary, settings_hash
from mmada_bench.results.store import ResultsStore
from mmada_bench.tasks import TaskSpec, resolve_tasks
from mmada_bench.tasks.spec import MODALITIES

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
    limit: int | float | dict[str, int | float] | None = None  # a dict: per task
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
    #: ``--samples``: task -> sample ids (``doc_id``, or ``subtask/doc_id`` for lm-eval tasks with subtasks).
    samples: dict[str, list[str]] | None = None

    def seeds(self) -> dict[str, int]:
        py, np_, torch_, shots = LM_EVAL_DEFAULT_SEEDS if self.seed is None else (self.seed,) * 4
        adapter = DEFAULT_ADAPTER_SEED if self.seed is None else self.seed
        return {"random": py, "numpy": np_, "torch": torch_, "fewshot": shots, "adapter": adapter}

    def check(self) -> None:
        if self.sample_data and self.data_dir is not None:
            raise ConfigError("use either --data-dir or --sample-data, not both")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.num_fewshot is not None and self.num_fewshot < 0:
            raise ConfigError(f"--num-fewshot must be 0 or more, got {self.num_fewshot}")
        if self.bootstrap_iters < 0 or self.bootstrap_iters == 1:
            raise ConfigError(f"--bootstrap-iters must be 0 (no standard errors) or at least 2, "
                              f"got {self.bootstrap_iters}")
        if self.samples is not None and self.limit is not None:
            raise ConfigError("use either --limit or --samples, not both")
        if isinstance(self.limit, dict):
            stray = sorted(set(self.limit) - set(self.tasks))
            if stray:
                raise ConfigError(f"--limit names {', '.join(stray)}, not in --tasks ({', '.join(self.tasks)})")
        check_device(self.device)
        if self.samples is not None:
            check_sample_tasks(self.samples, self.tasks)


def check_device(device: str) -> None:
    """``--device`` names a device torch knows and this machine has (a CUDA-less machine fails here, in
    one line, instead of deep inside weight loading)."""
    if device in ("", "auto"):
        return
    import torch

    try:
        target = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {device!r} is not a device; use auto, cpu, cuda, cuda:1, mps, ...") from None
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: torch sees no CUDA GPU on this machine (torch "
                              f"{torch.__version__}, CUDA build {torch.version.cuda}); use --device cpu")
        if target.index is not None and target.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif target.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {device}: MPS is not available on this machine; use --device cpu")
    elif target.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {device}: only cpu, cuda and mps devices are supported")


def check_sample_tasks(samples: dict[str, list[str]], tasks: list[str]) -> None:
    """``--samples`` must name exactly the tasks of the run (a task left out would silently run in full)."""
    names = [spec.name for spec in resolve_tasks(tasks)]
    unknown = sorted(set(samples) - set(names))
    if unknown:
        raise ConfigError(f"--samples names task {unknown[0]!r}, which is not in --tasks ({', '.join(names)})")
    missing = [name for name in names if name not in samples]
    if missing:
        raise ConfigError(f"--samples has no ids for task {missing[0]!r}; list them or drop it from --tasks")
    for name, ids in samples.items():
        if not ids:
            raise ConfigError(f"--samples lists no ids for task {name!r}")
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ConfigError(f"--samples lists id {repeated[0]!r} of task {name!r} more than once")


# -- settings ----------------------------------------------------------------------------------
def sampler_overrides(assignments: dict[str, str], task: str, modality: str | None = None) -> dict[str, str]:
    """``--sampler`` entries for ``task``: ``key=value`` for every task, ``<modality>.key`` for the tasks
    of a modality, ``<task>.key`` for one task (the most specific wins)."""
    out = {k: v for k, v in assignments.items() if "." not in k}
    if modality:
        out.update({k.split(".", 1)[1]: v for k, v in assignments.items() if k.startswith(modality + ".")})
    out.update({k.split(".", 1)[1]: v for k, v in assignments.items() if k.startswith(task + ".")})
    return out


def task_settings(spec: TaskSpec, assignments: dict[str, str]) -> Settings:
    """Package defaults, then the task's, then a named preset (``preset=NAME``), then the user's overrides.

    A plain ``key=value`` applies to the tasks whose settings have that key (``steps`` means nothing to
    a text-to-image task, whose count is ``timesteps``); a prefixed key must be known to its task.
    """
    overrides = sampler_overrides(assignments, spec.name, spec.modality)
    preset = overrides.pop("preset", None)
    known = set(spec.settings_type.field_names())
    scoped = {k.split(".", 1)[1] for k in assignments if k.startswith((spec.name + ".", spec.modality + "."))}
    overrides = {k: v for k, v in overrides.items() if k in known or k in scoped}
    settings = spec.settings_type().updated(spec.sampler)
    if preset is not None:
        if preset not in spec.presets:
            names = ", ".join(sorted(spec.presets)) or "none"
            raise ConfigError(f"task {spec.name}: unknown sampler preset {preset!r} (presets: {names})")
        settings = settings.updated(spec.presets[preset])
    return settings.updated(overrides)


def check_sampler(assignments: dict[str, str], tasks: list[str]) -> dict[str, Settings]:
    """Every task's settings, refusing (before any work) unknown keys, ill-typed values, prefixes naming
    tasks not in the run, and schedules the sampler cannot run (e.g. gen_length % block_length)."""
    specs = resolve_tasks(tasks)
    names = {s.name for s in specs}
    for key in assignments:
        if "." in key:
            scope = key.split(".", 1)[0]
            if scope not in names and scope not in MODALITIES:
                raise ConfigError(f"--sampler {key}: {scope!r} is not one of the tasks of this run")
        elif key != "preset" and not any(key in s.settings_type.field_names() for s in specs):
            known = sorted({f for s in specs for f in s.settings_type.field_names()})
            raise ConfigError(f"unknown sampler setting {key!r}; known: {', '.join(known)}")
    out = {}
    for spec in specs:
        try:
            settings = task_settings(spec, assignments)
            settings.check()
        except ConfigError as exc:
            raise ConfigError(f"task {spec.name}: {exc}") from None
        out[spec.name] = settings
    return out


# -- the run -----------------------------------------------------------------------------------
def build_adapter(config: RunConfig, device: str | None = None) -> Adapter:
    from mmada_bench.adapters.mmada import MMaDAAdapter, resolve_device

    return MMaDAAdapter.from_checkpoint(
        config.model, dtype=config.dtype, device=device or resolve_device(config.device),
        batch_size=config.batch_size, label=config.label, vq_model=config.vq_model, tokenizer=config.tokenizer,
    )


def check_capabilities(specs: list[TaskSpec], adapter: Adapter) -> None:
    """A task needing something the model cannot do (images from a text-only checkpoint) fails now."""
    have = set(adapter.capabilities())
    for spec in specs:
        missing = [need for need in spec.requires if need not in have]
        if missing:
            raise CapabilityError(f"task {spec.name} needs {', '.join(missing)}, which {adapter.describe().get('model', type(adapter).__name__)} cannot do"
                                  " (an image tokenizer? pass --vq-model)")


def plan_suite(config: RunConfig, dist: Distributed, store: ResultsStore) -> tuple[list[TaskPlan], RunContext]:
    """Steps 1 of the module docstring: everything checked, nothing written, no model loaded."""
    config.check()
    settings = check_sampler(config.sampler, config.tasks)
    store.check_writable()
    context = RunContext(
        store=store, dist=dist, data_root=config.data_dir, sample_data=config.sample_data, limit=config.limit,
        bootstrap_iters=config.bootstrap_iters, progress=config.progress, seeds=config.seeds(),
        sample_ids=dict(config.samples or {}),
    )
    plans = []
    for spec in resolve_tasks(config.tasks):
        backend = get_backend(spec.backend)
        plans.append(backend.plan(spec, settings[spec.name], config.num_fewshot, context))
    return plans, context


def run_suite(config: RunConfig, adapter: Adapter | None = None, out: TextIO | None = None) -> dict[str, Any] | None:
    """Run every task of ``config``; returns the results dict (None on non-main processes)."""
    out = out or sys.stdout
    start = time.perf_counter()
    dist = Distributed()
    store = ResultsStore(config.output)
    log = None
    try:
        plans, context = plan_suite(config, dist, store)
        adapter = adapter or build_adapter(config, str(dist.device) if dist.device else None)
        check_capabilities([p.spec for p in plans], adapter)
        seeds = config.seeds()
        if dist.is_main:
            store.lock()
            if store.claim({"model": adapter.identity(), "seed": seeds["adapter"]}):
                out.write(f"resuming in {config.output}: finished requests are read from {store.requests_dir}\n")
        dist.barrier()
        log = RequestLog(store.requests_dir, dist.rank, artifacts=store.artifacts_dir)
        engine = RequestEngine(adapter, log, seed=seeds["adapter"], batch_size=config.batch_size,
                               progress=config.progress, rank=dist.rank)
        header = _results_header(config, adapter, seeds)
        results = store.read_results() if dist.is_main else None
        suite_start = time.perf_counter()
        for index, plan in enumerate(plans):
            if config.progress and dist.is_main and len(plans) > 1:
                sys.stderr.write(suite_progress(index, len(plans), plan.key, time.perf_counter() - suite_start) + "\n")
                sys.stderr.flush()
            results = _run_task(plan, context, engine, header, start) or results
        if not dist.is_main:
            return None
        header["wall_seconds"] = time.perf_counter() - start
        results = store.merge_results(header)
        out.write(format_summary(results, only=[p.key for p in plans]) + "\n")
        out.write(f"results: {store.results_path}\n")
        return results
    finally:
        if log is not None:
            log.close()
        store.unlock()
        dist.close()


def suite_progress(index: int, total: int, key: str, elapsed: float) -> str:
    """``[2/4] gsm8k@ab12 -- 1m20s elapsed, about 2m40s left``: the ETA assumes the remaining tasks take as
    long on average as the finished ones (tasks differ, so it is a rough guide)."""
    line = f"[{index + 1}/{total}] {key} -- {_duration(elapsed)} elapsed"
    if index:
        line += f", about {_duration(elapsed / index * (total - index))} left"
    return line


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _without_timing(record: SampleRecord) -> SampleRecord:
    """Wall time is the one thing two identical runs do not share: it is kept in the results entry's
    cost only, so samples files of identical runs are byte-identical."""
    return replace(record, cost={k: v for k, v in record.cost.items() if k != "seconds"})


def _run_task(
    plan: TaskPlan, context: RunContext, engine: RequestEngine, header: dict[str, Any], start: float
) -> dict[str, Any] | None:
    backend = get_backend(plan.spec.backend)
    dist = context.dist
    begin = time.perf_counter()
    before = dict(engine.counts)
    output = backend.run(plan, context, engine)
    counts = dist.gather_object({k: engine.counts[k] - before[k] for k in before})
    if not dist.is_main or output is None:
        return None
    spec = plan.spec
    costs = [Cost(**r.cost) for r in output.records]
    details = dict(output.details)
    data = details.pop("data", plan.data)
    result = TaskResult(
        task=spec.name, settings_hash=settings_hash(plan.decisive()), modality=spec.modality,
        backend=spec.backend, primary_metric=spec.primary_metric, metrics=output.metrics,
        n_samples=len(output.records), settings=plan.settings.to_dict(), num_fewshot=plan.num_fewshot,
        limit=plan.limit, data=data, sample_ids=plan.samples,
        cost=cost_summary(costs, sum(c["computed"] for c in counts), sum(c["from_log"] for c in counts)),
        seconds=time.perf_counter() - begin, spec=spec.summary(), details=details,
    )
    header["wall_seconds"] = time.perf_counter() - start
    return context.store.record_task(header, result, [_without_timing(r) for r in output.records])


def _results_header(config: RunConfig, adapter: Adapter, seeds: dict[str, int]) -> dict[str, Any]:
    from mmada_bench.provenance import git_revision, machine_info, package_versions

    return {
        "mmada_bench_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "config": asdict(config),
        "model": adapter.describe(),
        "seeds": seeds,
        "environment": {"packages": package_versions(), "machine": machine_info(), "git": git_revision()},
        "wall_seconds": None,
    }
