"""The lm-eval backend: text tasks run by lm-eval on its packaged configs, answered by ``MMaDALM``.

``plan`` checks the data files (or notes that lm-eval reads the hub) without writing; ``run`` stages
the lm-eval task folder under the run folder, runs ``lm_eval.simple_evaluate`` with our LM on the
shared request engine, and turns lm-eval's logged samples and aggregated metrics into typed records
and metric values (lm-eval's values, our bootstrap stderr next to lm-eval's own).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from mmada_bench.adapters.base import Cost
from mmada_bench.adapters.settings import Settings
from mmada_bench.backends.base import RunContext, TaskOutput, TaskPlan
from mmada_bench.engine.serve import RequestEngine
from mmada_bench.errors import DataError
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
        if context.sample_data:
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
        return TaskPlan(spec, settings, shots, context.limit, loaded, loaded.info())

    def run(self, plan: TaskPlan, context: RunContext, engine: RequestEngine) -> TaskOutput | None:
        import lm_eval
        from lm_eval.tasks import TaskManager

        from mmada_bench.backends.lm_eval.bridge import MMaDALM

        quiet_third_party()
        spec, dist = plan.spec, context.dist
        rank_dir = f"rank{dist.rank}" if dist.world_size > 1 else ""
        prepared: PreparedTask = spec.impl.write(context.store.staging_dir / rank_dir / plan.key, plan.prepared)
        lm = MMaDALM(engine=engine, task_settings={name: plan.settings for name in prepared.subtasks},
                     progress_label=spec.name, distributed=dist)
        lm.settings = plan.settings
        manager = TaskManager(include_path=str(prepared.include_dir), include_defaults=False)
        seeds = context.seeds
        computed_before, logged_before = engine.counts["computed"], engine.counts["from_log"]
        raw = lm_eval.simple_evaluate(
            model=lm, tasks=[prepared.lm_eval_name], task_manager=manager, num_fewshot=plan.num_fewshot,
            limit=plan.limit, bootstrap_iters=context.bootstrap_iters, log_samples=True,
            random_seed=seeds["random"], numpy_random_seed=seeds["numpy"], torch_random_seed=seeds["torch"],
            fewshot_random_seed=seeds["fewshot"],
        )
        costs: dict[tuple[str, int], dict[str, Any]] = {}
        for part in dist.gather_object({k: v.to_dict() for k, v in lm.costs.items()}):
            costs.update(part)
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


