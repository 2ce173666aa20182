"""The native backend: runs a :class:`~mmada_bench.tasks.native.NativeTask` through the request engine.

Rows are checked in ``plan`` (before any model loads). ``run`` takes the first ``--limit`` rows (or a
fixed ``--samples`` list), gives each process every ``world_size``-th row, turns rows into engine jobs
(resume, seeds and batching are the engine's), scores each row as its results arrive, gathers the
records on the main process and aggregates them there.
"""

from __future__ import annotations

import math
from typing import Any

from mmada_bench.adapters.base import Cost
from mmada_bench.adapters.settings import Settings
from mmada_bench.backends.base import RunContext, TaskOutput, TaskPlan
from mmada_bench.engine.serve import Job, RequestEngine
from mmada_bench.errors import ConfigError
from mmada_bench.hashing import json_sha256, text_sha256
from mmada_bench.results.schema import SampleRecord
from mmada_bench.tasks.native import LoadedRows, NativeTask
from mmada_bench.tasks.spec import TaskSpec


def limited(rows: list[Any], limit: int | float | None) -> list[Any]:
    """lm-eval's ``--limit``: the first N rows, or the first fraction of them."""
    if limit is None:
        return rows
    count = int(limit) if limit >= 1 else int(math.ceil(len(rows) * limit))
    return rows[:count]


class NativeBackend:
    name = "native"

    def plan(self, spec: TaskSpec, settings: Settings, num_fewshot: int | None, context: RunContext) -> TaskPlan:
        task = spec.impl
        if not isinstance(task, NativeTask):
            raise TypeError(f"task {spec.name}: a native task needs a NativeTask implementation")
        if num_fewshot:
            raise ConfigError(f"task {spec.name} takes no few-shot examples (got --num-fewshot {num_fewshot})")
        loaded: LoadedRows = task.load(context.data_root, context.sample_data)
        rows = list(loaded.rows)
        wanted = context.sample_ids.get(spec.name)
        if wanted is not None:
            by_id = {str(task.doc_id(row)): row for row in rows}
            missing = [i for i in wanted if i not in by_id]
            if missing:
                raise ConfigError(f"--samples: task {spec.name} has no sample {missing[0]!r} (ids are its doc_id "
                                  f"values, e.g. {', '.join(list(by_id)[:3])})")
            rows = [by_id[i] for i in wanted]
        else:
            rows = limited(rows, context.limit_for(spec.name))
        if not rows:
            raise ConfigError(f"task {spec.name}: no rows to evaluate")
        return TaskPlan(spec, settings, None, context.limit_for(spec.name), rows, loaded.info(),
                        samples=list(wanted) if wanted is not None else None)

    def run(self, plan: TaskPlan, context: RunContext, engine: RequestEngine) -> TaskOutput | None:
        spec, task = plan.spec, plan.spec.impl
        dist = context.dist
        rows = plan.prepared[dist.rank :: dist.world_size]
        jobs, spans = [], []
        for row in rows:
            requests = task.requests(row, plan.settings)
            doc_id = task.doc_id(row)
            spans.append((len(jobs), len(jobs) + len(requests)))
            for request in requests:
                jobs.append(Job(request.method, request.request, request.content, plan.settings,
                                owner=(plan.key, str(doc_id)), length=request.length, group=request.group))
        served = engine.serve(jobs, label=spec.name)
        if hasattr(task, "bind_scoring"):  # a scorer that is a model too (WISE's judge): its calls are logged requests
            task.bind_scoring(lambda adapter, settings, requests, owner: [s.result for s in RequestEngine(
                adapter, engine.log, seed=engine.seed, batch_size=engine.batch_size, progress=False, rank=engine.rank,
            ).serve([Job(r.method, r.request, r.content, settings, owner=(plan.key, *owner), length=r.length)
                     for r in requests])])
        records = []
        for row, (begin, end) in zip(rows, spans, strict=True):
            part = served[begin:end]
            scored = task.score(row, [s.result for s in part])
            cost = Cost()
            for s in part:
                cost.add(s.cost)
            records.append(SampleRecord(
                task=spec.name, doc_id=task.doc_id(row), prompt=scored.prompt, prompt_hash=text_sha256(scored.prompt),
                doc_hash=json_sha256(scored.doc), target=scored.target, predictions=scored.predictions,
                metrics=scored.metrics, cost=cost.to_dict(), doc=scored.doc,
                extra={**scored.extra, "request_keys": [s.key for s in part]},
            ))
        gathered = dist.gather_object([r.to_dict() for r in records])
        if not dist.is_main:
            return None
        order = {str(task.doc_id(row)): i for i, row in enumerate(plan.prepared)}
        merged = [SampleRecord(**r) for part in gathered for r in part]
        merged.sort(key=lambda r: order[str(r.doc_id)])
        metrics = task.aggregate(merged, context.bootstrap_iters)
        task.write_outputs(merged, context.store.root)
        return TaskOutput(merged, metrics, {"rule": task.rule})
