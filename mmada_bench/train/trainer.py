"""The one training loop of every stage, on accelerate (DDP; FSDP / DeepSpeed ZeRO-2 by config file).

The loop owns what is common to all stages -- AdamW, linear warm-up then cosine to ``min_lr_scale``
(spec §5.1), gradient accumulation and clipping, bf16 autocast, gradient checkpointing, logging,
checkpoints and exact resume -- and asks the stage (:mod:`mmada_bench.train.stage`) only for
micro-batches and a loss.

Exact resume: a checkpoint stores model, optimizer, scheduler and every process's RNG states through
``accelerator.save_state``, plus the data iterator's position and the stage's own state; loading them
puts the run in the same state bit for bit (on CPU the resumed run ends with the same weights as an
uninterrupted one, which the tests check after a real ``kill -9``). ``MMADA_TRAIN_CRASH_AFTER_STEP=N``
kills the process with SIGKILL right after step N, to test exactly that.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import send_to_device, set_seed
from tqdm.auto import tqdm
from transformers import get_cosine_with_min_lr_schedule_with_warmup

from mmada_bench.model.configuration_mmada import T2I_TEXT_BUDGET_KEY
from mmada_bench.model.loading import load_bundle
from mmada_bench.model.presets import VQ_SUBFOLDER, resolve_checkpoint
from mmada_bench.train import checkpointing as ckpt
from mmada_bench.train.config import TrainConfig
from mmada_bench.train.logging import TrainLog
from mmada_bench.train.stage import StageContext
from mmada_bench.train.stages import build_stage

CRASH_ENV = "MMADA_TRAIN_CRASH_AFTER_STEP"


@dataclass
class TrainResult:
    final_checkpoint: Path
    steps: int
    history: list[dict[str, Any]]  # the log rows of this invocation (main process)


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on every parameter (the reference's no-decay list matches no name)."""
    o = config.optim
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """lr(t) = lr · [t/warmup] during warm-up, then min + (1 - min)·½(1 + cos(π·progress))."""
    o = config.optim
    return get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, num_warmup_steps=o.warmup_steps, num_training_steps=o.max_steps, min_lr_rate=o.min_lr_scale
    )


def _crash_step() -> int | None:
    value = os.environ.get(CRASH_ENV)
    return int(value) if value else None


def train(config: TrainConfig, resume: str | None = None, accelerator: Accelerator | None = None) -> TrainResult:
    """Run (or continue) a training run; returns the final checkpoint folder."""
    output_dir = Path(config.output_dir)
    accelerator = accelerator or Accelerator(
        mixed_precision=config.runtime.mixed_precision,
        gradient_accumulation_steps=config.optim.grad_accum,
        log_with=config.runtime.trackers or None,
        project_dir=str(output_dir),
        step_scheduler_with_optimizer=False,
        cpu=not torch.cuda.is_available(),  # lets torchrun / accelerate launch form a gloo group on CPU
    )
    model_dir = resolve_checkpoint(config.model)
    resume_from = ckpt.resolve_resume(resume, output_dir)
    if resume_from is not None:  # fail on a foreign checkpoint before any weight is read
        ckpt.check_resume_compatible(resume_from, model_dir, config.stage, accelerator.num_processes)

    set_seed(config.seed)
    bundle = load_bundle(model_dir, dtype="float32", device="cpu")
    model = bundle.model
    model.train()
    if config.runtime.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if config.batch.t2i > 0:  # image generation must lay prompts out as training did
        setattr(model.config, T2I_TEXT_BUDGET_KEY, config.seq.max_text_len)
    vq = bundle.vq_model
    if vq is not None:
        vq.eval().requires_grad_(False)
    stage = build_stage(
        StageContext(config=config, model=model, tokenizer=bundle.tokenizer, vq_model=vq, device=accelerator.device)
    )
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    batches = stage.batches(accelerator.process_index, accelerator.num_processes)

    step = 0
    if resume_from is not None:
        step = _load(accelerator, resume_from, batches, stage)
    log = TrainLog(output_dir / "train_log.jsonl", enabled=accelerator.is_main_process, resume_step=step)
    if config.runtime.trackers:
        accelerator.init_trackers("mmada-bench-train", config=_flat(config.to_dict()))

    crash_at = _crash_step()
    bar = tqdm(
        total=config.optim.max_steps,
        initial=step,
        desc=config.stage,
        disable=not (accelerator.is_main_process and config.runtime.progress_bar),
    )
    last_saved: Path | None = resume_from
    history: list[dict[str, Any]] = []
    while step < config.optim.max_steps:
        started = time.perf_counter()
        lr = scheduler.get_last_lr()[0]
        sums: dict[str, float] = {}
        for _ in range(config.optim.grad_accum):
            batch = send_to_device(next(batches), accelerator.device)
            with accelerator.accumulate(model):
                loss, logs = stage.loss(model, batch, step)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.optim.grad_clip is not None:
                    accelerator.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
                optimizer.step()
                optimizer.zero_grad()
            for key, value in {"loss": float(loss.detach()), **logs}.items():
                sums[key] = sums.get(key, 0.0) + value
        scheduler.step()
        step += 1
        row = _step_logs(accelerator, sums, config.optim.grad_accum, step, lr, time.perf_counter() - started)
        history.append(row)
        if step % config.runtime.log_every == 0 or step == config.optim.max_steps:
            log.write(row)
            if config.runtime.trackers:
                accelerator.log({k: v for k, v in row.items() if k != "step"}, step=step)
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{lr:.2e}", tok_s=f"{row['tokens_per_s']:.0f}")
        if step % config.runtime.save_every == 0 or step == config.optim.max_steps:
            last_saved = save_checkpoint(accelerator, model, bundle, stage, batches, config, step)
        if crash_at is not None and step == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)
    bar.close()
    if config.runtime.trackers:
        accelerator.end_training()
    assert last_saved is not None
    return TrainResult(final_checkpoint=last_saved, steps=step, history=history)


def _step_logs(accelerator: Accelerator, sums: dict[str, float], accum: int, step: int, lr: float, seconds: float) -> dict:
    """Mean of each logged value over micro-batches and processes; tokens summed into tokens/s."""
    keys = sorted(sums)
    values = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=accelerator.device)
    if accelerator.num_processes > 1:
        values = accelerator.reduce(values, reduction="sum")
    totals = dict(zip(keys, values.tolist(), strict=True))
    row: dict[str, Any] = {"step": step, "lr": lr}
    for key in keys:
        if key != "tokens":
            row[key] = totals[key] / (accum * accelerator.num_processes)
    tokens = totals.get("tokens", 0.0)
    row["tokens"] = int(tokens)
    row["tokens_per_s"] = tokens / seconds if seconds > 0 else 0.0
    return row


def save_checkpoint(accelerator: Accelerator, model, bundle, stage, batches, config: TrainConfig, step: int) -> Path:
    """Write ``checkpoint-STEP`` (model folder + ``trainer_state/``) atomically; every process takes part."""
    output_dir = Path(config.output_dir)
    staging = ckpt.staging_dir(output_dir, step)
    accelerator.wait_for_everyone()
    state_dict = accelerator.get_state_dict(model)  # gathers FSDP / ZeRO shards
    if accelerator.is_main_process:
        if staging.exists():
            import shutil

            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        accelerator.unwrap_model(model).save_pretrained(
            staging, state_dict=state_dict, safe_serialization=True, max_shard_size=config.runtime.max_shard_size
        )
        bundle.tokenizer.save_pretrained(staging)
        ckpt.copy_model_extras(bundle.path, staging, (VQ_SUBFOLDER,))
    accelerator.wait_for_everyone()
    state_dir = staging / ckpt.STATE_DIR
    accelerator.save_state(str(state_dir))
    rank = accelerator.process_index
    torch.save(
        {"data": batches.state_dict(), "stage": stage.state_dict()},
        state_dir / f"position_rank{rank}.pt",
    )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        trainer = {
            "step": step,
            "stage": config.stage,
            "world_size": accelerator.num_processes,
            "init_model": str(bundle.path),
            "config": config.to_dict(),
        }
        (state_dir / ckpt.TRAINER_FILE).write_text(json.dumps(trainer, indent=2, default=str), encoding="utf-8")
        final = ckpt.publish(staging, output_dir, step, config.runtime.keep_last)
    else:
        final = output_dir / f"checkpoint-{step}"
    accelerator.wait_for_everyone()
    return final


def _load(accelerator: Accelerator, checkpoint: Path, batches, stage) -> int:
    state_dir = checkpoint / ckpt.STATE_DIR
    accelerator.load_state(str(state_dir))
    position = torch.load(state_dir / f"position_rank{accelerator.process_index}.pt", weights_only=False)
    batches.load_state_dict(position["data"])
    stage.load_state_dict(position["stage"])
    return int(ckpt.read_trainer_state(checkpoint)["step"])


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}/"))
        elif isinstance(value, (int, float, str, bool)):
            out[name] = value
        else:
            out[name] = str(value)
    return out
