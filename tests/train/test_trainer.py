"""The trainer end to end on the tiny preset (CPU): loss goes down, resume is exact, DDP == one process."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmada_bench.model.checkpoint import SINGLE_WEIGHTS
from mmada_bench.model.loading import load_bundle
from mmada_bench.train.config import config_from_dict
from mmada_bench.train.logging import read_log
from mmada_bench.train.trainer import CRASH_ENV, train
from tests.train.train_helpers import stage1_dict, stage2_dict, write_config

REPO = Path(__file__).resolve().parents[2]


def _loss_drop(history: list[dict], window: int) -> float:
    first = statistics.mean(h["loss"] for h in history[:window])
    last = statistics.mean(h["loss"] for h in history[-window:])
    return last / first


def test_stage1_short_run_lowers_loss_and_saves_a_loadable_checkpoint(tmp_path):
    config = config_from_dict(stage1_dict(tmp_path / "out", optim={"max_steps": 24}))
    result = train(config)
    ratio = _loss_drop(result.history, 5)
    assert ratio < 0.8, f"stage-1 loss fell only to {ratio:.2f} of its start"
    for task in ("t2i", "lm", "mmu"):  # every task learns, not just the total
        per_task = [h[f"loss_{task}"] for h in result.history]
        assert statistics.mean(per_task[-5:]) < statistics.mean(per_task[:5])
    # the log has one row per step with lr following warm-up (0 at step 1, peak at step 3)
    rows = read_log(tmp_path / "out" / "train_log.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 25))
    assert rows[0]["lr"] == 0.0 and rows[2]["lr"] == pytest.approx(1e-3)
    assert all(r["tokens_per_s"] > 0 for r in rows)
    # the checkpoint is an ordinary model folder that the evaluation loader reads
    folder = result.final_checkpoint
    assert folder.name == "checkpoint-24"
    bundle = load_bundle(folder)
    saved = load_file(folder / SINGLE_WEIGHTS)
    assert bundle.vq_model is not None and len(bundle.tokenizer) > 0
    # the t2i text budget it trained with is recorded, so image generation lays prompts out the same way
    assert bundle.config.t2i_max_text_len == config.seq.max_text_len
    for name, tensor in bundle.model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    initial = load_bundle("tiny").model.state_dict()
    assert not torch.equal(initial["model.transformer.ff_out.weight"], saved["model.transformer.ff_out.weight"])


def test_stage2_cot_run_lowers_loss(tmp_path):
    config = config_from_dict(
        stage2_dict(
            tmp_path / "out",
            optim={"max_steps": 30, "lr": 2e-3},
            seq={"max_text_len": 40},
            batch={"t2i": 1, "lm": 4, "mmu": 2},
        )
    )
    result = train(config)
    ratio = _loss_drop(result.history, 6)
    assert ratio < 0.8, f"stage-2 loss fell only to {ratio:.2f} of its start"


def _run_cli(config_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mmada_bench.cli", "train", str(config_path), *args],
        cwd=REPO, env=full_env, capture_output=True, text=True, timeout=300,
    )


def test_kill_9_mid_run_then_resume_gives_bitwise_equal_weights(tmp_path):
    common = {"optim": {"max_steps": 6}, "runtime": {"save_every": 2, "keep_last": 1, "progress_bar": False}}
    straight = write_config(tmp_path / "straight.yaml", stage1_dict(tmp_path / "straight", **common))
    crashed = write_config(tmp_path / "crashed.yaml", stage1_dict(tmp_path / "crashed", **common))
    assert _run_cli(straight).returncode == 0
    killed = _run_cli(crashed, env={CRASH_ENV: "5"})  # SIGKILL after step 5; last checkpoint is step 4
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "crashed").glob("checkpoint-*")) == ["checkpoint-4"]
    assert _run_cli(crashed).returncode == 2  # refuses to start over an existing run without --resume
    resumed = _run_cli(crashed, "--resume", "auto")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = (tmp_path / "straight" / "checkpoint-6" / SINGLE_WEIGHTS).read_bytes()
    b = (tmp_path / "crashed" / "checkpoint-6" / SINGLE_WEIGHTS).read_bytes()
    assert a == b
    # the log of the resumed run reads like the uninterrupted one (step 5 redone, not duplicated)
    log_a = read_log(tmp_path / "straight" / "train_log.jsonl")
    log_b = read_log(tmp_path / "crashed" / "train_log.jsonl")
    assert [r["step"] for r in log_b] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in log_a] == [r["loss"] for r in log_b]


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    # t2i's loss is a token mean per process (as in the reference), so its DDP average differs from the
    # global-batch token mean; lm and mmu are row means, for which DDP's gradient average is exact.
    common = {"optim": {"max_steps": 2, "warmup_steps": 0, "lr": 1e-3}, "runtime": {"progress_bar": False}}
    single = write_config(
        tmp_path / "single.yaml", stage1_dict(tmp_path / "single", batch={"t2i": 0, "lm": 2, "mmu": 2}, **common)
    )
    ddp = write_config(tmp_path / "ddp.yaml", stage1_dict(tmp_path / "ddp", batch={"t2i": 0, "lm": 1, "mmu": 1}, **common))
    assert _run_cli(single).returncode == 0
    launch = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29571",
         "-m", "mmada_bench.cli", "train", str(ddp)],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300,
    )
    assert launch.returncode == 0, launch.stderr[-2000:]
    state = json.loads((tmp_path / "ddp" / "checkpoint-2" / "trainer_state" / "trainer.json").read_text())
    assert state["world_size"] == 2
    one = load_file(tmp_path / "single" / "checkpoint-2" / SINGLE_WEIGHTS)
    two = load_file(tmp_path / "ddp" / "checkpoint-2" / SINGLE_WEIGHTS)
    start = load_bundle("tiny").model.state_dict()
    moved = max((one[k] - start[k]).abs().max().item() for k in one)
    assert moved > 1e-4  # the update is real
    # Tolerance: the all-reduce sums gradients in another float32 order (~1e-7 relative). AdamW's first
    # steps are ~lr·g/|g|, which turns that into up to ~1% of lr on the few near-zero gradients (rare
    # embedding rows), so: every weight within 2% of lr = 2e-5, and on average within 1e-7.
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=2e-5, msg=key)
        assert (two[key] - one[key]).abs().mean() < 1e-7, key
    log_one = read_log(tmp_path / "single" / "train_log.jsonl")
    log_two = read_log(tmp_path / "ddp" / "train_log.jsonl")
    assert [r["loss"] for r in log_two] == pytest.approx([r["loss"] for r in log_one], rel=1e-5)
