"""Train the toy MMaDA, text first, then through the three stages, with the project's own trainer.

The recipe is four ordinary training configs, written as YAML next to the run so any phase can be
rerun or changed by hand (``mmada-bench train WORK/train/stage2.yaml``):

* text pretraining, the toy's LLaDA: MMaDA starts from LLaDA-8B-Instruct, a model that already reads
  and writes text, and :data:`TOY_INIT` starts from nothing. So before stage 1 the model trains on
  the ``toy_count`` problems alone (5,909 of them, :func:`~mmada_bench.toy.arithmetic.pretraining_problems`),
  32 rows a step, prompt clean and worked answer noised. Without it the model never learned to copy
  a problem's numbers into its answer (the first operand of a sum right 36 times in 50, the second
  15; a fifth of the products' operands): 4 text rows a step in stage 1 are 24,000 rows in all, and
  neither more rows there, twice the text loss, a larger problem set nor a text-heavier stage 2
  taught it (counting stayed at 11-21 %). After this phase it copies every operand and counts 45 %,
  and stage 1 takes that to 56 %; run after stage 1 instead, the phase cost image reading and stages
  2-3 undid most of its gain;
* stage 1, masked-token pretraining from the text-pretrained :data:`TOY_INIT` (tiny's transformer
  shape, the toy tokenizer and MAGVIT-v2, image-code embeddings seeded from the codebook by
  :func:`seed_image_embeddings`):
  t2i rows from the captions, understanding rows from the direct easy-vqa answers (plus a tenth of
  "describe the image" rows from the captions) and text rows of the ``toy_count`` problems as
  prompt + completion: lm-eval's GSM8K prompt ``Question: ...\\nAnswer:`` stays clean and only the
  worked answer is noised (as plain text, every position noised, the model spent its loss re-writing
  questions and padding and answered 4 % of the test problems; prompt-clean, 13 % after stage 1);
* stage 2, mixed long-CoT fine-tuning: a tenth of the understanding rows become ``<think>shape is
  ... , color is ... .</think> answer`` rows behind MMaDA's thinking instruction (so the text budget grows
  to fit that 51-token instruction), the rest stay direct, at a low learning rate: stage 2 costs direct
  answering (the model starts to end answers late, "yes is"), and at a quarter CoT rows easy-VQA on
  the first 300 test questions fell from 78.7 to 62.0, at a tenth to 73.3; text rows continue; no t2i rows,
  because a larger text budget would move every image token of a t2i row;
* stage 3, UniGRPO: image questions asked directly, as the benchmark asks them -- the shape
  questions only (colour is already always right; yes/no is answered from the wording, so rewarding
  it only flipped a template: easy-VQA 83.4 with all questions, 84.9-85.0 with shape questions) --
  rewarded for the right answer (2.0) and the ``<think>`` format (0.5, which this model never earns: it did not write
  ``<think>`` even when asked with the thinking instruction), and captions drawn without guidance and
  rewarded by the toy judge (twice as many captions as questions per rollout batch: image generation
  is the weaker skill). Unguided because the loss scores image tokens with the conditional model, so
  guided rollouts are off-policy; with guided rollouts at 2e-4, runs differing only in seed ended 10
  points apart on easy-VQA (82.1 / 72.4), while at 1e-4 unguided two seeds agreed (82.2 / 83.0) and
  drew better with and without guidance. Asked with the thinking instruction instead, an earlier
  stage 3 cost direct answering (easy-VQA 78.3 against 82.6 asked directly, full test set). No
  counting prompts: asked as ``toy_count`` asks them (``lm_template: plain``), two per rollout batch
  did not raise counting, and they cost a tenth of the unguided drawing (README, stage-3 variants).

Each phase starts from the previous phase's final checkpoint; :func:`export_stage` copies the
checkpoint's ``config.json`` + ``model.safetensors`` -- the only files a trained preset adds to the
shared tokenizer and MAGVIT-v2 -- into the committed folder. A fixed thread count (the build's
``MMADA_THREADS``) and fixed seeds make the run repeat on one machine (the trainer's own resume test
covers bit-exactness).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from mmada_bench.errors import ConfigError
from mmada_bench.model.presets import Preset

#: The exported stages (the presets ``toy-stage1``, ``toy-stage2``, ``toy``) and the order phases run in.
STAGES = ("stage1", "stage2", "stage3")
PHASES = ("text", *STAGES)
#: t2i / understanding text budget M of stages 1 and 3: the longest direct row (25 tokens) and "describe" row (30) fit.
SHORT_TEXT = 32
#: Stage 2's budget: the thinking instruction (51 tokens) + question + CoT answer (87 at most).
COT_TEXT = 88
#: Text pretraining's M: it has no t2i or mmu rows, so M only sets the row length, M + 1 + 64 image
#: positions + 2 = 75 tokens, enough for the longest problem (72) and a quarter shorter than stage 1's.
TEXT_ONLY = 8


def _source(path: str, fmt: str, ratio: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {"path": path, "format": fmt, "ratio": ratio, **extra}


def stage_configs(world: Path, runs: Path, judge: Path, steps: dict[str, int] | None = None) -> dict[str, dict[str, Any]]:
    """The four training configs (absolute paths), in :data:`PHASES` order: text pretraining from
    ``runs/toy-init``, each later phase from the previous one's final checkpoint, stage 3 rewarding
    images with the judge in ``judge``.

    Paths are made absolute: the trainer reads relative paths against the YAML file's folder.
    """
    world, runs, judge = world.resolve(), runs.resolve(), judge.resolve()
    w = lambda name: str(world / name)  # noqa: E731 - a path helper, not a function worth a name
    steps = {**DEFAULT_STEPS, **(steps or {})}
    runtime = {"save_every": 1000, "keep_last": 2, "log_every": 10}
    cache = str(runs / "token_cache")
    text = {
        "stage": "stage1", "model": str(runs / "toy-init"), "output_dir": str(runs / "text"), "seed": 11,
        "data": {"lm": [_source(w("text_pretrain.jsonl"), "text_jsonl")]},
        "batch": {"t2i": 0, "lm": 32, "mmu": 0},
        "seq": {"max_text_len": TEXT_ONLY},
        "loss": {"coeff_lm": 1.0},
        "optim": {"lr": 5.0e-4, "warmup_steps": 100, "min_lr_scale": 0.1, "max_steps": steps["text"],
                  "grad_clip": 1.0, "grad_accum": 1},
        "runtime": runtime,
    }  # fmt: skip
    stage1 = {
        "stage": "stage1", "model": str(runs / "text" / f"checkpoint-{steps['text']}"),
        "output_dir": str(runs / "stage1"), "seed": 1,
        "data": {
            "t2i": [_source(w("captions_train.jsonl"), "caption_jsonl")],
            "lm": [_source(w("text_train.jsonl"), "text_jsonl")],
            "mmu": [_source(w("vqa_train.json"), "llava_json", 0.9),
                    _source(w("captions_train.jsonl"), "caption_jsonl", 0.1)],
            "image_token_cache": cache,
        },
        "batch": {"t2i": 8, "lm": 4, "mmu": 10},
        "seq": {"max_text_len": SHORT_TEXT},
        "loss": {"coeff_t2i": 1.0, "coeff_lm": 1.0, "coeff_mmu": 2.0, "cond_dropout_prob": 0.1,
                 "attention": "padding_mask"},
        # 5e-4, not the earlier recipe's 2.5e-3: after 1,500 proxy steps at 2.5e-3 / 1e-3 / 5e-4 the
        # model read the colour off the image for 12 / 28 / 84 % of its own training questions (teacher
        # forced) and drew both attributes right for 5 / 20 / 32 % of 96 captions.
        "optim": {"lr": 5.0e-4, "warmup_steps": 200, "min_lr_scale": 0.1, "max_steps": steps["stage1"],
                  "grad_clip": 1.0, "grad_accum": 1},
        "runtime": runtime,
    }  # fmt: skip
    stage2 = {
        "stage": "stage2", "model": str(runs / "stage1" / f"checkpoint-{steps['stage1']}"),
        "output_dir": str(runs / "stage2"), "seed": 2,
        "data": {
            "lm": [_source(w("text_train.jsonl"), "text_jsonl")],
            "mmu": [_source(w("vqa_cot_train.jsonl"), "chat_jsonl", 0.1, cot=True),
                    _source(w("vqa_train.json"), "llava_json", 0.9)],
            "image_token_cache": cache,
        },
        "batch": {"t2i": 0, "lm": 2, "mmu": 8},
        "seq": {"max_text_len": COT_TEXT},
        "loss": {"coeff_lm": 0.5, "coeff_mmu": 1.0},
        "optim": {"lr": 5.0e-5, "warmup_steps": 20, "min_lr_scale": 0.1, "max_steps": steps["stage2"],
                  "grad_clip": 1.0, "grad_accum": 1},
        "runtime": runtime,
    }  # fmt: skip
    stage3 = {
        "stage": "stage3", "model": str(runs / "stage2" / f"checkpoint-{steps['stage2']}"),
        "output_dir": str(runs / "stage3"), "seed": 3,
        "data": {
            # shape questions only: see shape_question_rows (yes/no rewards only move template priors)
            "mmu": [_source(w("vqa_shape_train.json"), "llava_json")],
            "t2i": [_source(w("captions_train.jsonl"), "caption_jsonl")],
            "image_token_cache": cache,
        },
        "batch": {"t2i": 4, "lm": 0, "mmu": 2},
        "seq": {"max_text_len": SHORT_TEXT},
        "optim": {"lr": 1.0e-4, "warmup_steps": 0, "min_lr_scale": 1.0, "max_steps": steps["stage3"],
                  "grad_clip": 1.0, "grad_accum": 1, "weight_decay": 0.0},
        "runtime": runtime,
        "stage_options": {
            "group_size": 8, "inner_steps": 2, "cot": False,
            "text": {"gen_length": 32, "steps": 16, "block_length": 32, "temperature": 1.0, "batch_size": 16},
            "image": {"timesteps": 8, "guidance_scale": 0.0, "temperature": 1.0, "batch_size": 16},
            "rewards": {"mmu": ["correctness", "format"], "t2i": ["toy_judge"]},
            "reward_weights": {"mmu": [2.0, 0.5], "t2i": [1.0]},
            "reward_models": {"toy_judge": str(judge)},
        },
    }  # fmt: skip
    return {"text": text, "stage1": stage1, "stage2": stage2, "stage3": stage3}


#: The untrained start: tiny's transformer shape and seed with the toy tokenizer and MAGVIT-v2 (64 image
#: tokens), plus :func:`seed_image_embeddings`. Not a registered preset: it exists only inside a build.
TOY_INIT = Preset(
    name="toy-init",
    description="the untrained toy MMaDA (tiny's shape, toy tokenizer, toy MAGVIT-v2)",
    vq_asset="toy/magvitv2",
    tokenizer_asset="toy/tokenizer",
)

#: Optimiser steps per phase of the committed build.
DEFAULT_STEPS = {"text": 1500, "stage1": 6000, "stage2": 300, "stage3": 80}


def seed_image_embeddings(folder: Path, seed: int = 0) -> None:
    """Give the image-code rows of the input embedding and the output head the codebook's structure.

    A MAGVIT-v2 (LFQ) code *is* a sign vector: code ``c``'s bits are the signs of the latent the
    encoder produced, and two codes one bit apart are neighbours in that latent. Random rows throw
    this away, and a model of this size spends most of a CPU budget rediscovering it (with random rows,
    easy-VQA stayed at chance for the first 1,000 stage-1 steps). So row ``c`` becomes ``signs(c) @ P``
    for a fixed random projection ``P`` (one for the embedding, one for the head), scaled to the
    initial rows' standard deviation: colour and shape, which live in the latent, are linearly
    readable from the first step. Everything else stays the preset's random initialisation.
    """
    from mmada_bench.model.loading import load_bundle

    bundle = load_bundle(folder, dtype="float32", device="cpu")
    model, config = bundle.model, bundle.config
    signs = bundle.vq_model.quantize.codes_to_bits(torch.arange(config.codebook_size)).float() * 2 - 1
    generator = torch.Generator().manual_seed(seed)
    rows = slice(config.image_offset, config.image_offset + config.codebook_size)
    with torch.no_grad():
        for weight in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            projection = torch.randn(signs.shape[1], weight.shape[1], generator=generator)
            structured = signs @ projection
            weight[rows] = structured * (weight[rows].std() / structured.std())
    model.save_pretrained(folder)


def write_configs(configs: dict[str, dict[str, Any]], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for stage, config in configs.items():
        paths[stage] = folder / f"{stage}.yaml"
        paths[stage].write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return paths


def export_stage(checkpoint: Path, target: Path) -> None:
    """Copy a checkpoint's ``config.json`` + ``model.safetensors`` (one shard) into a preset folder."""
    weights = checkpoint / "model.safetensors"
    if not weights.is_file():
        raise ConfigError(f"{checkpoint}: expected one model.safetensors shard (raise runtime.max_shard_size)")
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(checkpoint / name, target / name)


def train_toy_mmada(world: Path, runs: Path, out: Path, vq: Path, tokenizer: Path, judge: Path,
                    steps: dict[str, int] | None = None, progress: bool = True) -> dict[str, Any]:
    """Write ``toy-init`` with the given MAGVIT-v2 and tokenizer, run text pretraining and stages
    1 -> 2 -> 3 and export each stage's final checkpoint to ``out/mmada/<stage>``."""
    from mmada_bench.model.presets import write_preset
    from mmada_bench.train.config import load_config
    from mmada_bench.train.trainer import train

    runs = runs.resolve()
    for name in ("toy-init", *PHASES):  # a rebuild starts from scratch: stale checkpoints would be resumed
        shutil.rmtree(runs / name, ignore_errors=True)
    write_preset(TOY_INIT, runs / "toy-init", vq_folder=vq, tokenizer_folder=tokenizer)
    seed_image_embeddings(runs / "toy-init")
    configs = stage_configs(world, runs, judge, steps)
    paths = write_configs(configs, runs.parent / "train")
    report: dict[str, Any] = {"stages": {}}
    for stage in PHASES:
        start = time.perf_counter()
        overrides = {"runtime.progress_bar": progress}
        result = train(load_config(paths[stage], overrides))
        final = Path(result.final_checkpoint)
        if stage in STAGES:
            export_stage(final, out / "mmada" / stage)
        report["stages"][stage] = {"config": str(paths[stage]), "checkpoint": str(final),
                                   "steps": configs[stage]["optim"]["max_steps"],
                                   "wall_seconds": round(time.perf_counter() - start, 1),
                                   "last_log": result.history[-1] if result.history else {}}
    (out / "mmada" / "train.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return report
