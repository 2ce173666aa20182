"""An MMU run survives kill -9 and shards over two processes with the same results as one clean run.

The CLI runs as a subprocess on the tiny preset (POPE fixture, 12 rows, batch size 1 so the request
log grows one answer at a time, 32 sampler steps so a request takes long enough to be caught
mid-run). Batch size 1 vs 8 and the malformed-data files are covered in ``test_mmu_tasks.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmada_bench.cli import main
from mmada_bench.results.reader import RunFolder

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mmu_samples"
ROWS = 12
ARGS = ["--tasks", "pope", "--data-dir", str(FIXTURES), "--limit", str(ROWS), "--batch-size", "1",
        "--sampler", "gen_length=32,steps=32,block_length=32", "--bootstrap-iters", "50", "--no-progress"]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    cache = str(tmp_path_factory.mktemp("mmu_run_cache"))
    patch = pytest.MonkeyPatch()
    patch.setenv("MMADA_BENCH_CACHE", cache)  # the in-process reference run decodes into the same cache
    yield {**os.environ, "MMADA_BENCH_CACHE": cache, "OMP_WAIT_POLICY": "PASSIVE"}
    patch.undo()


@pytest.fixture(scope="module")
def reference(tiny_path, env, tmp_path_factory) -> Path:
    """One uninterrupted single-process run."""
    out = tmp_path_factory.mktemp("mmu_reference") / "run"
    assert main(["run", "--model", str(tiny_path), "--output", str(out), *ARGS]) == 0
    return out


def _command(model: Path, out: Path, launcher: list[str] | None = None) -> list[str]:
    return [*(launcher or [sys.executable]), "-m", "mmada_bench.cli", "run", "--model", str(model),
            "--output", str(out), *ARGS]


def _complete_lines(log: Path) -> list[dict]:
    """Log lines written whole (a line cut by the kill is not JSON and is ignored, as on resume)."""
    lines = []
    for text in log.read_text().splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            pass
    return lines


def _samples(run: Path) -> list[dict]:
    return [{k: v for k, v in s.items() if k != "cost"} for s in RunFolder.open(run).samples("pope")]


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_equals_an_uninterrupted_run(reference, tiny_path, env, tmp_path):
    out = tmp_path / "run"
    log = out / "requests" / "rank0.jsonl"
    process = subprocess.Popen(_command(tiny_path, out), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if log.exists() and len(log.read_text().splitlines()) >= 2:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            process.kill()
        stderr = process.communicate()[1].decode()
    assert process.returncode == -signal.SIGKILL, f"run ended before the kill: {process.returncode} {stderr[-500:]}"
    done = len(_complete_lines(log))
    assert 2 <= done < ROWS
    assert not (out / "results.json").exists()

    resumed = subprocess.run(_command(tiny_path, out), env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    entry, expected = RunFolder.open(out).entry("pope"), RunFolder.open(reference).entry("pope")
    assert entry["cost"]["requests_from_log"] == done
    assert entry["cost"]["requests_computed"] == ROWS - done
    assert len(_complete_lines(log)) == ROWS  # the missing answers appended, nothing twice
    assert entry["metrics"] == expected["metrics"]
    assert _samples(out) == _samples(reference)


@pytest.mark.slow
def test_two_processes_give_the_results_of_one(reference, tiny_path, env, tmp_path):
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    out = tmp_path / "sharded"
    sharded = subprocess.run(_command(tiny_path, out, launch), env=env, capture_output=True, text=True, timeout=300)
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    logs = {p.name: len(_complete_lines(p)) for p in (out / "requests").glob("rank*.jsonl")}
    assert logs == {"rank0.jsonl": ROWS // 2, "rank1.jsonl": ROWS // 2}
    entry, expected = RunFolder.open(out).entry("pope"), RunFolder.open(reference).entry("pope")
    assert entry["n_samples"] == ROWS and entry["cost"]["requests_computed"] == ROWS
    assert entry["metrics"] == expected["metrics"]
    assert _samples(out) == _samples(reference)
