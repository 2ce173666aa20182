"""Training checkpoints in the released MMaDA folder layout, plus what an exact resume needs.

``OUTPUT/checkpoint-STEP/`` is an ordinary model folder -- ``config.json``, ``model.safetensors`` (or
shards + index), the tokenizer files and the ``vq_model/`` image tokenizer -- so ``mmada-bench run
--model OUTPUT/checkpoint-STEP`` evaluates it directly. Its ``trainer_state/`` holds accelerate's
state (model, optimizer, scheduler, python/numpy/torch RNG of every process), each rank's data
position and stage state, and ``trainer.json`` (step, config, model signature).

A checkpoint is written into a hidden temporary folder and renamed into place last, so a crash while
saving never leaves a half checkpoint that resume would pick up.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from mmada_bench.errors import ConfigError
from mmada_bench.model.checkpoint import read_config

STATE_DIR = "trainer_state"
TRAINER_FILE = "trainer.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
#: config.json fields that must agree between the model being trained and a checkpoint resumed from.
SIGNATURE_FIELDS = (
    "d_model",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "mlp_hidden_size",
    "vocab_size",
    "llm_vocab_size",
    "image_token_offset",
    "codebook_size",
    "mask_token_id",
)


def model_signature(model_dir: str | Path) -> dict[str, Any]:
    """Shape and vocabulary fields of a checkpoint's config.json (no weights are read)."""
    config = read_config(model_dir)
    return {name: getattr(config, name, None) for name in SIGNATURE_FIELDS}


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``output_dir`` as (step, folder), oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _CHECKPOINT.match(child.name)
        if match and (child / STATE_DIR / TRAINER_FILE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def resolve_resume(resume: str | None, output_dir: str | Path) -> Path | None:
    """The checkpoint to resume from: ``"auto"`` = newest in ``output_dir`` (None if there is none)."""
    if resume is None:
        existing = list_checkpoints(output_dir)
        if existing:
            raise ConfigError(
                f"{output_dir} already holds {existing[-1][1].name}; pass --resume auto to continue "
                f"that run or choose another output_dir"
            )
        return None
    if resume == "auto":
        existing = list_checkpoints(output_dir)
        return existing[-1][1] if existing else None
    folder = Path(resume)
    if not (folder / STATE_DIR / TRAINER_FILE).is_file():
        raise ConfigError(f"--resume {resume}: not a training checkpoint (no {STATE_DIR}/{TRAINER_FILE})")
    return folder


def read_trainer_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / STATE_DIR / TRAINER_FILE).read_text(encoding="utf-8"))


def check_resume_compatible(checkpoint: Path, model_dir: str | Path, stage: str, world_size: int) -> dict[str, Any]:
    """Refuse, before anything is loaded, a checkpoint of another model, vocabulary, stage or world size."""
    state = read_trainer_state(checkpoint)
    theirs, ours = model_signature(checkpoint), model_signature(model_dir)
    diff = [f"{k}={theirs[k]} (model: {ours[k]})" for k in SIGNATURE_FIELDS if theirs[k] != ours[k]]
    if diff:
        raise ConfigError(f"--resume {checkpoint}: checkpoint is from another model or vocabulary: {', '.join(diff)}")
    if state.get("stage") != stage:
        raise ConfigError(f"--resume {checkpoint}: checkpoint is from {state.get('stage')}, this config trains {stage}")
    if state.get("world_size") != world_size:
        raise ConfigError(
            f"--resume {checkpoint}: saved with {state.get('world_size')} processes, this run has {world_size}; "
            "exact resume needs the same number"
        )
    return state


def staging_dir(output_dir: Path, step: int) -> Path:
    return output_dir / f".checkpoint-{step}.tmp"


def publish(staging: Path, output_dir: Path, step: int, keep_last: int | None) -> Path:
    """Rename a finished staging folder into place and delete checkpoints beyond ``keep_last``."""
    final = output_dir / f"checkpoint-{step}"
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    if keep_last is not None:
        for _, old in list_checkpoints(output_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def copy_model_extras(source_dir: Path, target: Path, names: tuple[str, ...]) -> None:
    """Copy folders/files (the ``vq_model/`` image tokenizer) the trained weights need to be loadable."""
    for name in names:
        src = source_dir / name
        if src.is_dir():
            shutil.copytree(src, target / name)
        elif src.is_file():
            shutil.copy2(src, target / name)
