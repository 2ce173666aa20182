"""``mmada-bench run`` as a user runs it: a subprocess on the tiny preset, killed and resumed.

The resumed run must lose nothing already written, recompute no finished request, and end with
exactly the results and per-sample records of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmada_bench.cli import main
from mmada_bench.results.reader import RunFolder, find_entry

ARGS = ["--tasks", "gsm8k", "--sample-data", "--batch-size", "1", "--num-fewshot", "1", "--no-progress",
        "--sampler", "gen_length=32,steps=16,block_length=16", "--bootstrap-iters", "100"]


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp / "hf"), OMP_WAIT_POLICY="PASSIVE",
               HF_DATASETS_CACHE=str(tmp / "hf" / "datasets"), TOKENIZERS_PARALLELISM="false")
    return env


def _command(model: Path, output: Path) -> list[str]:
    return [sys.executable, "-m", "mmada_bench.cli", "run", "--model", str(model), "--output", str(output), *ARGS]


def _run_in_process(env: dict[str, str], argv: list[str]) -> str:
    """``mmada-bench argv`` in this interpreter with the subprocess environment's HF settings."""
    import datasets

    patch = pytest.MonkeyPatch()
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME", "HF_DATASETS_CACHE"):
        patch.setenv(name, env[name])
    patch.setattr(datasets.config, "HF_DATASETS_CACHE", Path(env["HF_DATASETS_CACHE"]))
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            assert main(argv) == 0
    finally:
        patch.undo()
    return stdout.getvalue()


def _complete_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    return path.read_bytes().count(b"\n")


def _comparable(samples: list[dict]) -> list[dict]:
    return [{k: v for k, v in s.items() if k != "cost"} | {"nfe": s["cost"]["nfe"]} for s in samples]


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, tiny_path):
    env = _env(tmp_path)
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    log = killed_dir / "requests" / "rank0.jsonl"
    proc = subprocess.Popen(_command(tiny_path, killed_dir), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while _complete_lines(log) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    still_running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert still_running, f"run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    before = log.read_bytes()
    finished = before.count(b"\n")
    assert 2 <= finished < 6
    assert not (killed_dir / "results.json").exists()

    resumed = subprocess.run(_command(tiny_path, killed_dir), env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming in" in resumed.stdout
    after = log.read_bytes()
    assert after.startswith(before)  # nothing written is lost
    records = [json.loads(line) for line in after.decode().splitlines() if line.strip()]
    assert len(records) == len({r["key"] for r in records}) == 6  # nothing finished was recomputed
    results = json.loads((killed_dir / "results.json").read_text())
    assert find_entry(results, "gsm8k")["cost"]["requests_from_log"] == finished

    # The uninterrupted reference runs in this process (same code path minus the interpreter start-up).
    stdout = _run_in_process(env, ["run", "--model", str(tiny_path), "--output", str(clean_dir), *ARGS])
    reference = json.loads((clean_dir / "results.json").read_text())
    assert find_entry(results, "gsm8k")["metrics"] == find_entry(reference, "gsm8k")["metrics"]
    assert "exact_match,strict-match" in find_entry(results, "gsm8k")["metrics"]
    samples = RunFolder.open(killed_dir).samples("gsm8k")
    clean_samples = RunFolder.open(clean_dir).samples("gsm8k")
    assert _comparable(samples) == _comparable(clean_samples)
    clean_answers = {json.loads(x)["key"]: json.loads(x)["answer"]
                     for x in (clean_dir / "requests" / "rank0.jsonl").read_text().splitlines()}
    assert {r["key"]: r["answer"] for r in records} == clean_answers
    assert "results for" in stdout and "gsm8k" in stdout


@pytest.mark.slow
def test_accelerate_launch_shards_requests_and_merges_results(tmp_path, tiny_path):
    env = _env(tmp_path)
    args = ["--tasks", "mmlu", "--sample-data", "--num-fewshot", "1", "--no-progress", "--bootstrap-iters", "100"]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "-m", "mmada_bench.cli", "run", "--model", str(tiny_path), "--output", str(tmp_path / "sharded"), *args]
    sharded = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    logs = {p.name: p.read_text().count("\n") for p in (tmp_path / "sharded" / "requests").glob("rank*.jsonl")}
    assert sorted(logs) == ["rank0.jsonl", "rank1.jsonl"] and all(n > 0 for n in logs.values())
    assert sharded.stdout.count("results for") == 1  # only rank 0 reports
    _run_in_process(env, ["run", "--model", str(tiny_path), "--output", str(tmp_path / "single"), *args])
    merged = find_entry(json.loads((tmp_path / "sharded" / "results.json").read_text()), "mmlu")
    reference = find_entry(json.loads((tmp_path / "single" / "results.json").read_text()), "mmlu")
    assert merged["n_samples"] == reference["n_samples"] == 8
    assert merged["metrics"]["acc,none"]["value"] == reference["metrics"]["acc,none"]["value"]
    key = ("subtask", "doc_id")
    rows = RunFolder.open(tmp_path / "sharded").samples("mmlu")
    ref_rows = RunFolder.open(tmp_path / "single").samples("mmlu")
    assert [tuple(r[k] for k in key) + (r["predictions"]["none"],) for r in rows] == \
        [tuple(r[k] for k in key) + (r["predictions"]["none"],) for r in ref_rows]


def test_bad_generation_schedule_is_refused_before_any_work(tmp_path, capsys):
    """gen_length % block_length != 0 must fail up front (no model load, nothing written)."""
    from mmada_bench.cli import main

    out = tmp_path / "run"
    code = main(["run", "--model", "tiny", "--tasks", "gsm8k", "--sample-data", "--output", str(out),
                 "--sampler", "gen_length=30,steps=7,block_length=8"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.splitlines() == [err]
    assert "task gsm8k: gen_length=30 is not a multiple of block_length=8" in err
    assert "nearest valid block_length is 6 or 10" in err
    assert not out.exists()


def test_suite_progress_line_estimates_the_rest_from_the_finished_tasks():
    from mmada_bench.runner import suite_progress

    assert suite_progress(0, 4, "mmlu@ab", 0.2) == "[1/4] mmlu@ab -- 0s elapsed"
    assert suite_progress(2, 4, "gsm8k@cd", 80.0) == "[3/4] gsm8k@cd -- 1m20s elapsed, about 1m20s left"
    assert suite_progress(1, 3, "math@ef", 4000.0).endswith("1h06m elapsed, about 2h13m left")


def test_summary_shows_no_token_count_for_log_likelihood_tasks():
    from mmada_bench.reports.summary import format_summary

    def entry(task: str, tokens: int) -> dict:
        return {"task": task, "primary_metric": "acc", "metrics": {"acc": {"value": 0.5, "stderr": None}},
                "n_samples": 2, "num_fewshot": 0, "cost": {"nfe": 4, "tokens": tokens}, "seconds": 1.0}

    table = format_summary({"model": {"model": "tiny"}, "tasks": {"mmlu@1": entry("mmlu", 0),
                                                                   "gsm8k@2": entry("gsm8k", 64)}})
    rows = {line.split()[0]: line.split() for line in table.splitlines()[3:]}
    assert rows["mmlu"][6:8] == ["4", "-"] and rows["gsm8k"][6:8] == ["4", "64"]
