"""A task defined outside the package runs through ``mmada-bench run`` on the native backend.

The toy task lives in a plugin module written by the test (``MMADA_BENCH_TASK_MODULES``): nothing in
the runner, the engine or the backends knows it, yet resume, sharding, records and results work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmada_bench.adapters.fixed import FixedAnswerAdapter
from mmada_bench.results.reader import RunFolder, find_entry
from mmada_bench.runner import RunConfig, run_suite

TOY_MODULE = '''
from mmada_bench.adapters.base import TextRequest
from mmada_bench.tasks import TaskSpec, register
from mmada_bench.tasks.native import LoadedRows, NativeRequest, NativeTask, ScoredRow

ROWS = [("What is two plus two", "4"), ("Name a colour", "red"), ("Capital of France", "Paris"),
        ("Opposite of up", "down"), ("Three times three", "9"), ("First letter", "a")]


class ToyTask(NativeTask):
    rule = "toy exact match"

    def load(self, data_root, sample_data):
        return LoadedRows(ROWS, source="toy")

    def doc_id(self, row):
        return ROWS.index(row)

    def requests(self, row, settings):
        prompt = f"Q: {row[0]}?\\nA:"
        return [NativeRequest("generate_text", TextRequest(prompt, ("\\n",)), {"prompt": prompt}, len(prompt))]

    def score(self, row, results):
        answer = results[0].text.strip()
        return ScoredRow(prompt=f"Q: {row[0]}?\\nA:", target=row[1], predictions={"answer": answer},
                         metrics={"exact_match": float(answer == row[1])}, doc={"question": row[0]})


register(TaskSpec(
    name="toy", modality="text", description="toy questions", source="test", splits={}, columns=(),
    metrics=("exact_match",), num_fewshot=0, sampler={"gen_length": 8, "steps": 8, "block_length": 8},
    backend="native", variant="toy", why="tests the native backend", impl=ToyTask(),
    requires=("generate_text",),
))
'''


@pytest.fixture
def toy_env(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "toy_task_plugin.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("MMADA_BENCH_TASK_MODULES", "toy_task_plugin")
    import mmada_bench.tasks.catalog as catalog

    monkeypatch.setattr(catalog, "_BUILTIN_LOADED", False)
    yield {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]),
           "MMADA_BENCH_TASK_MODULES": "toy_task_plugin", "OMP_WAIT_POLICY": "PASSIVE"}
    catalog.unregister("toy")


def _run(env: dict[str, str], *args: str, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    command = [*(launcher or [sys.executable]), "-m", "mmada_bench.cli", "run", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _args(model: Path, out: Path) -> list[str]:
    return ["--model", str(model), "--tasks", "toy", "--output", str(out), "--no-progress", "--batch-size", "2",
            "--bootstrap-iters", "50"]


def test_fixed_answers_score_exactly_through_the_native_backend(toy_env, tmp_path):
    adapter = FixedAnswerAdapter({"two plus two": "4", "Name a colour": "blue", "Capital of France": "Paris"})
    results = run_suite(RunConfig(model="fixed", tasks=["toy"], output=tmp_path / "o", bootstrap_iters=50,
                                  progress=False), adapter=adapter)
    entry = find_entry(results, "toy")
    assert entry["metrics"]["exact_match"]["value"] == pytest.approx(2 / 6)
    assert entry["metrics"]["exact_match"]["rule"] == "toy exact match"
    assert entry["backend"] == "native" and entry["n_samples"] == 6
    samples = RunFolder.open(tmp_path / "o").samples("toy")
    assert [s["predictions"]["answer"] for s in samples] == ["4", "blue", "Paris", "", "", ""]
    assert [s["doc_id"] for s in samples] == list(range(6))


@pytest.mark.slow
def test_native_task_resumes_and_shards_through_the_cli(toy_env, tmp_path, tiny_path):
    first = _run(toy_env, *_args(tiny_path, tmp_path / "run"))
    assert first.returncode == 0, first.stderr[-2000:]
    run = RunFolder.open(tmp_path / "run")
    entry = run.entry("toy")
    assert entry["cost"]["requests_computed"] == 6 and entry["cost"]["nfe"] > 0
    log = tmp_path / "run" / "requests" / "rank0.jsonl"
    lines = log.read_text().splitlines()
    assert len(lines) == 6

    # a run "killed" after two batches: only their answers are logged; the rerun computes the rest
    partial = tmp_path / "partial"
    (partial / "requests").mkdir(parents=True)
    (partial / "requests" / "rank0.jsonl").write_text("\n".join(lines[:4]) + "\n")
    (partial / "run.json").write_text((tmp_path / "run" / "run.json").read_text())
    resumed = _run(toy_env, *_args(tiny_path, partial))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    again = RunFolder.open(partial)
    assert again.entry("toy")["cost"]["requests_computed"] == 2
    assert again.entry("toy")["cost"]["requests_from_log"] == 4
    assert again.entry("toy")["metrics"] == entry["metrics"]
    strip = [{k: v for k, v in s.items() if k != "cost"} for s in run.samples("toy")]
    assert [{k: v for k, v in s.items() if k != "cost"} for s in again.samples("toy")] == strip

    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    sharded = _run(toy_env, *_args(tiny_path, tmp_path / "sharded"), launcher=launch)
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    logs = {p.name: len(p.read_text().splitlines()) for p in (tmp_path / "sharded" / "requests").glob("rank*.jsonl")}
    assert logs == {"rank0.jsonl": 3, "rank1.jsonl": 3}
    merged = RunFolder.open(tmp_path / "sharded")
    assert merged.entry("toy")["metrics"] == entry["metrics"]
    assert [{k: v for k, v in s.items() if k != "cost"} for s in merged.samples("toy")] == strip
    assert json.loads((tmp_path / "sharded" / "results.json").read_text())["tasks"].keys() == \
        json.loads((tmp_path / "run" / "results.json").read_text())["tasks"].keys()


def test_per_task_limit_applies_to_the_named_task_only(toy_env, tmp_path, monkeypatch):
    from mmada_bench.backends.base import RunContext

    monkeypatch.delitem(sys.modules, "toy_task_plugin", raising=False)  # an earlier test's import registered it

    adapter = FixedAnswerAdapter({"two plus two": "4"})
    results = run_suite(RunConfig(model="fixed", tasks=["toy"], output=tmp_path / "o", bootstrap_iters=0,
                                  progress=False, limit={"toy": 4}), adapter=adapter)
    entry = find_entry(results, "toy")
    assert entry["n_samples"] == 4 and entry["limit"] == 4
    context = RunContext(store=None, dist=None, data_root=None, sample_data=False, limit={"toy": 4},
                         bootstrap_iters=0, progress=False, seeds={})
    assert context.limit_for("toy") == 4 and context.limit_for("easyvqa") is None
