"""Load everything a task needs from one checkpoint reference: model, tokenizer, image tokenizer.

A real MMaDA-8B folder carries the model and its text tokenizer; the MAGVIT-v2 image tokenizer is a
separate download (``showlab/magvitv2``) that users pass explicitly. Our presets put it in a
``vq_model/`` subfolder, which is also looked for in real folders so users can do the same.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from mmada_bench.errors import CheckpointError
from mmada_bench.model.checkpoint import checkpoint_fingerprint, resolve_dtype
from mmada_bench.model.modeling_mmada import MMaDAModelLM
from mmada_bench.model.presets import VQ_SUBFOLDER, resolve_checkpoint

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
VQ_WEIGHT_NAMES = ("model.safetensors", "pytorch_model.safetensors")
VQ_WEIGHT_NAMES = ("model.safetensors", "pytorch_model.safetensors")


@dataclass
class ModelBundle:
    """The model under test with the pieces that turn text and images into its token ids."""

    model: MMaDAModelLM
    tokenizer: object | None  # transformers.PreTrainedTokenizerBase; None only with require_tokenizer=False
    special_tokens: object | None  # mmada_bench.model.prompting.SpecialTokens; None without a tokenizer
    vq_model: object | None  # mmada_bench.model.magvitv2.MAGVITv2, when available
    path: Path
    vq_path: Path | None
    name_or_path: str = ""

    @property
    def config(self):
        return self.model.config

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @cached_property
    def fingerprint(self) -> str:
        """Content hash of the checkpoint (and image tokenizer), for results and resume keys."""
        main = checkpoint_fingerprint(self.path)
        if self.vq_path is None:
            return main
        return hashlib.sha256((main + checkpoint_fingerprint(self.vq_path, VQ_WEIGHT_NAMES)).encode()).hexdigest()

    def require_vq_model(self):
        """The image tokenizer, or a clear error for image tasks run without one."""
        if self.vq_model is None:
            raise CheckpointError(
                f"{self.path} has no {VQ_SUBFOLDER}/ image tokenizer; pass the MAGVIT-v2 folder with --vq-model"
            )
        return self.vq_model


def _find_tokenizer(folder: Path, explicit: str | Path | None) -> Path:
    if explicit is not None:
        return Path(explicit)
    if any((folder / name).is_file() for name in TOKENIZER_FILES):
        return folder
    raise CheckpointError(f"{folder} holds no tokenizer ({', '.join(TOKENIZER_FILES)}); pass --tokenizer DIR")


def load_bundle(
    name_or_path: str | Path,
    dtype: torch.dtype | str | None = "float32",
    device: torch.device | str | None = "cpu",
    vq_model: str | Path | None = None,
    tokenizer: str | Path | None = None,
    require_tokenizer: bool = True,
) -> ModelBundle:
    """Resolve a preset name or folder and load model, tokenizer and (if present) MAGVIT-v2.

    ``require_tokenizer=False`` lets diagnostics load a bare weights folder (no tokenizer files).
    """
    from mmada_bench.model.magvitv2 import MAGVITv2
    from mmada_bench.model.prompting import SpecialTokens
    from mmada_bench.model.tokenizer import load_tokenizer

    folder = resolve_checkpoint(name_or_path)
    model = MMaDAModelLM.from_pretrained(folder, torch_dtype=resolve_dtype(dtype), device=device)
    config = model.config
    text_tokenizer = None
    if tokenizer is not None or require_tokenizer or any((folder / n).is_file() for n in TOKENIZER_FILES):
        text_tokenizer = load_tokenizer(_find_tokenizer(folder, tokenizer))
    if text_tokenizer is not None and len(text_tokenizer) > config.image_offset:
        raise CheckpointError(
            f"tokenizer of {folder} has {len(text_tokenizer)} tokens but image codes start at id "
            f"{config.image_offset}; set image_token_offset in config.json"
        )
    vq_path = Path(vq_model) if vq_model is not None else folder / VQ_SUBFOLDER
    vq = None
    if vq_path.exists():
        vq = MAGVITv2.from_pretrained(vq_path, device=device)
        if vq.codebook_size != config.codebook_size:
            raise CheckpointError(
                f"{vq_path}: image tokenizer has {vq.codebook_size} codes but {folder}/config.json "
                f"codebook_size is {config.codebook_size}"
            )
    elif vq_model is not None:
        raise CheckpointError(f"image tokenizer folder not found: {vq_path}")
    return ModelBundle(
        model=model,
        tokenizer=text_tokenizer,
        special_tokens=SpecialTokens.from_config(config) if text_tokenizer is not None else None,
        vq_model=vq,
        path=folder,
        vq_path=vq_path if vq is not None else None,
        name_or_path=str(name_or_path),
    )
