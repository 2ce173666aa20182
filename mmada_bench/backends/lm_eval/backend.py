"""The lm-eval backend: text tasks run by lm-eval on its packaged configs, answered by ``MMaDALM``.

``plan`` checks the data files (or notes that lm-eval reads the hub) without writing; ``run`` stages
the lm-eval task folder under the run folder, runs ``lm_eval.simple_evaluate`` with our LM on the
shared request engine, and turns lm-eval's logged samples and aggregated metrics into typed records
and metric values (lm-eval's values, our bootstrap stderr next to lm-eval's own).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mmada_bench.adapters.base import Cost
from mmada_bench.adapters.settings import Settings
from mmada_bench.backends.base import RunContext, TaskOutput, TaskPlan
from mmada_bench.engine.serve import RequestEngine
from mmada_bench.errors import ConfigError, DataError
from mmada_bench.results.schema import MetricValue, SampleRecord
from mmada_bench.scorers.bootstrap import bootstrap_method, bootstrap_stderr
from mmada_bench.tasks.spec import TaskSpec
from mmada_bench.tasks.text.lm_eval_tasks import LoadedTextData, PreparedTask


def quiet_third_party() -> None:
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


class LmEvalBackend:
    name = "lm-eval"

    def plan(self, spec: TaskSpec, settings: Settings, num_fewshot: int | None, context: RunContext) -> TaskPlan:
        if spec.impl.check_dependencies is not None:
            spec.impl.check_dependencies()
        shots = spec.num_fewshot if num_fewshot is None else num_fewshot
        root = context.data_root
        if spec.bundled_data is not None and (root is None or context.sample_data):
            root = spec.bundled_data  # its data ships with the package: the real rows, not samples
        elif context.sample_data:
            from mmada_bench.tasks.text import SAMPLE_DATA_DIR

            root = SAMPLE_DATA_DIR
        folder = None
        if root is not None:
            if not root.is_dir():
                raise DataError(f"--data-dir {root} is not a folder (expected <task>/<split>.jsonl|.parquet inside)")
            folder = root / spec.name
            if not folder.is_dir():
                raise DataError(f"{folder} not found: --data-dir needs a {spec.name}/ folder with its split files")
        loaded: LoadedTextData = spec.impl.load(folder, shots)
        if loaded.source == "hub":
            check_hub_dataset(spec)
        wanted = context.sample_ids.get(spec.name)
        if wanted is not None:
            loaded.selection = select_samples(spec, loaded, wanted)
        return TaskPlan(spec, settings, shots, context.limit_for(spec.name), loaded, loaded.info(), samples=wanted)

    def run(self, plan: TaskPlan, context: RunContext, engine: RequestEngine) -> TaskOutput | None:
        import lm_eval
        from lm_eval.tasks import TaskManager

        from mmada_bench.backends.lm_eval.bridge import MMaDALM

        quiet_third_party()
        spec, dist = plan.spec, context.dist
        rank_dir = f"rank{dist.rank}" if dist.world_size > 1 else ""
        selection = plan.prepared.selection
        prepared: PreparedTask = spec.impl.write(context.store.staging_dir / rank_dir / plan.key, plan.prepared,
                                                 only=set(selection) if selection is not None else None)
        lm = MMaDALM(engine=engine, task_settings={name: plan.settings for name in prepared.subtasks},
                     progress_label=spec.name, distributed=dist)
        lm.settings = plan.settings
        manager = TaskManager(include_path=str(prepared.include_dir), include_defaults=False)
        seeds = context.seeds
        computed_before, logged_before = engine.counts["computed"], engine.counts["from_log"]
        try:
            with lm_eval_quiet(context.progress):
                raw = lm_eval.simple_evaluate(
                    model=lm, tasks=[prepared.lm_eval_name], task_manager=manager, num_fewshot=plan.num_fewshot,
                    limit=plan.limit, samples=selection, bootstrap_iters=context.bootstrap_iters, log_samples=True,
                    random_seed=seeds["random"], numpy_random_seed=seeds["numpy"], torch_random_seed=seeds["torch"],
                    fewshot_random_seed=seeds["fewshot"],
                )
        except ConnectionError as exc:  # hub data that could not be fetched (the up-front check covers offline)
            raise DataError(f"task {spec.name}: cannot load its Hugging Face dataset ({' '.join(str(exc).split())[:200]});"
                            f" pass --data-dir DIR with {spec.name}/<split>.jsonl files, or --sample-data") from None
        costs: dict[tuple[str, int], dict[str, Any]] = {}
        for part in dist.gather_object({k: v.to_dict() for k, v in lm.costs.items()}):
            costs.update(part)
        if selection is not None:  # lm-eval numbers a selection's requests 0..k-1 and its samples by true doc id
            costs = {(sub, selection[sub][i]): cost for (sub, i), cost in costs.items() if sub in selection}
        counts = dist.gather_object({"computed": engine.counts["computed"] - computed_before,
                                     "from_log": engine.counts["from_log"] - logged_before})
        if not dist.is_main or raw is None:
            return None
        records = sample_records(spec.name, raw.get("samples", {}), costs)
        metrics = task_metrics(raw["results"].get(prepared.lm_eval_name, {}), records, context.bootstrap_iters)
        details = {
            "lm_eval_task": prepared.lm_eval_name,
            "request_counts": {"computed": sum(c["computed"] for c in counts),
                               "from_log": sum(c["from_log"] for c in counts)},
            "lm_eval": {key: raw.get(key) for key in ("results", "groups", "group_subtasks", "configs", "versions",
                                                      "n-shot", "higher_is_better", "n-samples", "lm_eval_version")},
        }
        data = {**plan.data, "rows": {str(k): v for k, v in prepared.rows.items()} or plan.data.get("rows")}
        details["data"] = data
        return TaskOutput(records, metrics, details)


def _offline() -> bool:
    flags = (os.environ.get(name, "").strip().lower() for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return any(flag in ("1", "true", "yes", "on") for flag in flags)


def check_hub_dataset(spec: TaskSpec) -> None:
    """Offline, a task without ``--data-dir`` needs its Hugging Face dataset in the local cache: check that
    now (one line naming the dataset and the way out) rather than after the model loaded."""
    if not _offline():
        return
    path, name = spec.impl.hub_dataset()
    if not path:
        return
    import datasets

    try:
        datasets.load_dataset_builder(path, name)
    except Exception as exc:  # offline, datasets raises ConnectionError, FileNotFoundError or its own types
        what = f"{path} ({name})" if name else path
        raise DataError(
            f"task {spec.name}: the Hugging Face dataset {what} is not in the local cache and downloads are off "
            f"(HF_HUB_OFFLINE/HF_DATASETS_OFFLINE; {type(exc).__name__}); pass --data-dir DIR holding "
            f"{spec.name}/<split>.jsonl (see `mmada-bench tasks --verbose`), or --sample-data"
        ) from None


def select_samples(spec: TaskSpec, loaded: LoadedTextData, wanted: list[str]) -> dict[str, list[int]]:
    """``--samples`` ids (``doc_id`` or ``subtask/doc_id``, as samples files name them) -> lm-eval's
    ``samples=`` argument: sorted document indices per lm-eval subtask (lm-eval maps a selection back to
    document ids assuming ascending order)."""
    impl = spec.impl
    if loaded.source == "local":
        sizes: dict[str, int | None] = {impl.subtask(k).name: len(rows) for k, rows in loaded.eval_parts.items()}
    else:
        sizes = {impl.subtask(k).name: None for k in impl.all_keys()}
    out: dict[str, set[int]] = defaultdict(set)
    for ident in wanted:
        sub, _, doc = ident.rpartition("/")
        if not sub:
            if len(sizes) != 1 and spec.name not in sizes:
                example = next(iter(sizes))
                raise ConfigError(f"--samples: task {spec.name} has subtasks; write id {ident!r} as "
                                  f"subtask/doc_id (e.g. {example}/{ident})")
            sub = spec.name if spec.name in sizes else next(iter(sizes))
        if sub not in sizes:
            raise ConfigError(f"--samples: task {spec.name} has no subtask {sub!r} in its data (id {ident!r})")
        size = sizes[sub]
        if not doc.isdigit() or (size is not None and int(doc) >= size):
            bound = f"0-{size - 1}" if size else "a document index"
            raise ConfigError(f"--samples: task {spec.name} has no sample {ident!r} (doc_id must be {bound})")
        out[sub].add(int(doc))
    return {sub: sorted(ids) for sub, ids in out.items()}


@contextmanager
def lm_eval_quiet(progress: bool) -> Iterator[None]:
    """While lm-eval evaluates: no ``fatal: not a git repository`` (lm-eval runs ``git describe`` with stderr
    shown; our results record the revision via :mod:`mmada_bench.provenance`), no environment probe whose
    output we do not keep, and -- with ``--no-progress`` -- none of lm-eval's own bars."""
    import tqdm as tqdm_module
    from lm_eval import evaluator
    from lm_eval.api import model as model_module
    from lm_eval.api import task as task_module

    patches: list[tuple[Any, str, Any]] = [(evaluator, "get_git_commit_hash", lambda: None),
                                           (evaluator, "add_env_info", lambda storage: None)]
    if not progress:
        silent = _silent_tqdm(tqdm_module.tqdm)
        patches += [(tqdm_module, "tqdm", silent), (task_module, "tqdm", silent), (model_module, "tqdm", silent)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches if hasattr(owner, name)]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def _silent_tqdm(base: type) -> type:
    class SilentTqdm(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return SilentTqdm


def _prediction(sample: dict[str, Any]) -> Any:
    """Generation: the filtered answer; multiple choice: the continuation with the highest log-likelihood."""
    filtered = sample.get("filtered_resps") or []
    arguments = sample.get("arguments") or []
    if len(arguments) > 1 and all(len(a) > 1 and isinstance(a[1], str) for a in arguments):
        scores = [f[0] if isinstance(f, (list, tuple)) else f for f in filtered]
        best = max(range(len(scores)), key=lambda i: float(scores[i]))
        return arguments[best][1]
    return filtered[0] if filtered else None


def sample_records(task: str, samples: dict[str, list], costs: dict) -> list[SampleRecord]:
    """lm-eval's logged samples (one per document and filter) -> one record per document."""
    merged: dict[tuple[str, int], SampleRecord] = {}
    for subtask, items in samples.items():
        for sample in items:
            doc_id = int(sample["doc_id"])
            record = merged.get((subtask, doc_id))
            if record is None:
                arguments = sample.get("arguments") or [[""]]
                cost = costs.get((subtask, doc_id))
                record = merged[(subtask, doc_id)] = SampleRecord(
                    task=task, subtask=subtask, doc_id=doc_id, prompt=arguments[0][0],
                    prompt_hash=sample.get("prompt_hash"), doc_hash=sample.get("doc_hash"),
                    target=sample.get("target"), cost=cost if isinstance(cost, dict) else Cost().to_dict(),
                    doc=sample.get("doc"),
                    extra={"target_hash": sample.get("target_hash"), "responses": sample.get("resps")},
                )
            flt = sample.get("filter", "none")
            record.predictions[flt] = _prediction(sample)
            for metric in sample.get("metrics", []):
                record.metrics[f"{metric},{flt}"] = sample.get(metric)
    return [merged[key] for key in sorted(merged)]


def task_metrics(lm_results: dict[str, Any], records: list[SampleRecord], iters: int) -> dict[str, MetricValue]:
    """lm-eval's aggregated values with our bootstrap stderr (over examples) and lm-eval's own stderr."""
    values: dict[str, list[float]] = defaultdict(list)
    for record in records:
        for key, value in record.metrics.items():
            if isinstance(value, (int, float, bool)):
                values[key].append(float(value))
    metrics = {}
    for key, value in lm_results.items():
        if "," not in key or "_stderr," in key or key.startswith("alias"):
            continue
        metric, flt = key.split(",", 1)
        lm_stderr = lm_results.get(f"{metric}_stderr,{flt}")
        metrics[key] = MetricValue(
            value=value, stderr=bootstrap_stderr(values.get(key, []), iters, seed=1234),
            stderr_method=bootstrap_method(iters), rule=f"lm-eval {metric} (filter {flt})",
            extra={"lm_eval_stderr": lm_stderr if isinstance(lm_stderr, (int, float)) else None},
        )
    return metrics


