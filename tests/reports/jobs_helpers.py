"""Helpers of the report tests: a toy native task, an adapter whose answers and cost depend on the
sampler settings in a known way, and run folders written directly through the results store."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

from mmada_bench.adapters.base import Cost, TextRequest, TextResult, apply_until
from mmada_bench.adapters.fixed import FixedAnswerAdapter
from mmada_bench.results.schema import MetricValue, SampleRecord, TaskResult, settings_hash
from mmada_bench.results.store import ResultsStore
from mmada_bench.tasks import TaskSpec
from mmada_bench.tasks.catalog import register, unregister
from mmada_bench.tasks.native import LoadedRows, NativeRequest, NativeTask, ScoredRow

TOY = "jobs_toy"
ROWS = [(f"question {i}", f"answer {i}") for i in range(8)]


class ToyTask(NativeTask):
    rule = "toy exact match"

    def load(self, data_root, sample_data):
        return LoadedRows(ROWS, source="toy")

    def doc_id(self, row):
        return ROWS.index(row)

    def requests(self, row, settings):
        prompt = f"Q: {row[0]}?\nA:"
        return [NativeRequest("generate_text", TextRequest(prompt, ("\n",)), {"prompt": prompt}, len(prompt))]

    def score(self, row, results):
        answer = results[0].text.strip()
        return ScoredRow(prompt=f"Q: {row[0]}?\nA:", target=row[1], predictions={"answer": answer},
                         metrics={"exact_match": float(answer == row[1])}, doc={"question": row[0]})


@contextlib.contextmanager
def toy_task():
    """The toy task registered for the duration of the block."""
    spec = register(TaskSpec(
        name=TOY, modality="text", description="toy questions", source="test", splits={}, columns=(),
        metrics=("exact_match",), num_fewshot=0, sampler={"gen_length": 8, "steps": 8, "block_length": 4},
        backend="native", variant="toy", why="report tests", impl=ToyTask(), requires=("generate_text",),
    ))
    try:
        yield spec
    finally:
        unregister(TOY)


class StepsAdapter(FixedAnswerAdapter):
    """Right on the first ``steps`` questions (more steps, more right), wrong after; each request costs
    ``steps`` forward passes, ``gen_length`` tokens and ``steps / 1000`` seconds -- all known in advance."""

    def __init__(self) -> None:
        super().__init__({q: a for q, a in ROWS}, label="steps")

    def generate_text(self, requests, settings):
        out = []
        for request in requests:
            self.calls.append("generate_text")
            index = next(i for i, (q, _) in enumerate(ROWS) if q in request.prompt)
            raw = ROWS[index][1] if index < settings.steps else "wrong"
            out.append(TextResult(apply_until(raw, request.until), raw,
                                  Cost(nfe=settings.steps, tokens=settings.gen_length, seconds=settings.steps / 1000)))
        return out


def fixed_adapter(right: int, label: str) -> FixedAnswerAdapter:
    """Right on the first ``right`` toy questions."""
    return FixedAnswerAdapter({q: (a if i < right else "wrong") for i, (q, a) in enumerate(ROWS)}, label=label)


def make_run(path: Path, values: list[float], *, task: str = "gsm8k", label: str = "model", metric: str = "acc",
             settings: dict | None = None, num_fewshot: int | None = 5, prompts: list[str] | None = None,
             doc_ids: list[int] | None = None, rule: str = "lm-eval acc", data: str = "d1") -> Path:
    """A run folder with one task entry whose per-sample ``metric`` values are ``values`` (mean and lm-eval's
    sample stderr in results.json), written with the results store as a run would."""
    settings = settings if settings is not None else {"steps": 256}
    ids = doc_ids if doc_ids is not None else list(range(len(values)))
    prompts = prompts or [f"prompt {i}" for i in ids]
    n = len(values)
    mean = sum(values) / n
    stderr = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)
    records = [SampleRecord(task=task, doc_id=i, subtask=task, prompt=p, prompt_hash=f"h-{p}", doc_hash=f"d-{i}",
                            metrics={metric: v}, cost={"nfe": 4, "tokens": 8, "seconds": 0.5})
               for i, p, v in zip(ids, prompts, values, strict=True)]
    result = TaskResult(
        task=task, settings_hash=settings_hash({"settings": settings, "num_fewshot": num_fewshot}), modality="text",
        backend="lm-eval", primary_metric=metric, metrics={metric: MetricValue(mean, stderr, "sample", rule)},
        n_samples=n, settings=settings, num_fewshot=num_fewshot, data={"files_sha256": {f"/x/{task}.jsonl": data}},
        cost={"nfe": 4 * n, "tokens": 8 * n, "seconds": 0.5 * n, "tokens_per_forward": 2.0}, seconds=1.0,
        spec={"requires": ["generate_text"]},
    )
    store = ResultsStore(path)
    store.record_task({"model": {"model": label, "label": label}, "config": {}}, result, records)
    return path
