"""CLIP Score of generated images against their prompts, computed by torchmetrics' ``CLIPScore``.

Why torchmetrics and not our own formula: text-to-image papers (MMaDA's table included) quote the
torchmetrics number, and its details matter for parity: uint8 input fed through the HF
``CLIPProcessor``, captions longer than 77 tokens cut to the first 77 ids (which drops the EOS), and
the corpus value ``max(mean(100·cos), 0)`` -- the *mean* is clamped, not each pair.

Two things stop torchmetrics from working unchanged here, and both are handled locally:

* A string ``model_name_or_path`` must name a hub id containing ``openai``; a local folder is
  rejected. torchmetrics documents a callable returning ``(model, processor)`` as the alternative,
  so we pass one.
* Under transformers 5, ``CLIPModel.get_image_features``/``get_text_features`` return a
  ``ModelOutput`` (the projected embedding is its ``pooler_output``) where torchmetrics expects a
  tensor. :class:`_TensorFeatureCLIP` wraps the model and hands torchmetrics plain tensors. It is a
  wrapper, not a ``CLIPModel`` subclass, because ``CLIPModel.forward`` itself calls
  ``get_*_features`` and would break if those were overridden; nothing in torchmetrics is patched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmada_bench.errors import ConfigError, DataError

__all__ = ["ClipScorer", "corpus_clip_score", "to_uint8_chw"]

# Files of the `openai/clip-vit-large-patch14` layout that loading needs. The weights may come as
# safetensors (preferred) or a PyTorch bin; the tokenizer as tokenizer.json or vocab.json + merges.txt.
_REQUIRED = ("config.json", "preprocessor_config.json")
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_TOKENIZER_SETS = (("tokenizer.json",), ("vocab.json", "merges.txt"))


def _check_folder(folder: Path) -> None:
    """Fail with one line naming the folder and the first missing file, before transformers does."""
    if not folder.is_dir():
        raise ConfigError(f"CLIP model folder {folder} does not exist or is not a directory")
    for name in _REQUIRED:
        if not (folder / name).is_file():
            raise ConfigError(f"CLIP model folder {folder} is missing {name}")
    if not any((folder / name).is_file() for name in _WEIGHTS):
        raise ConfigError(
            f"CLIP model folder {folder} is missing model weights (one of {', '.join(_WEIGHTS)})"
        )
    if not any(all((folder / n).is_file() for n in names) for names in _TOKENIZER_SETS):
        raise ConfigError(
            f"CLIP model folder {folder} is missing tokenizer.json (or vocab.json + merges.txt)"
        )


class _TensorFeatureCLIP(nn.Module):
    """Expose a ``CLIPModel`` the way torchmetrics expects it: ``get_*_features`` returning tensors.

    torchmetrics also reads ``model.config.text_config.max_position_embeddings`` (for its 77-token
    cut) and calls ``model.to(device)``; both are forwarded to the wrapped model.
    """

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.clip = clip

    @property
    def config(self) -> Any:
        return self.clip.config

    @staticmethod
    def _as_tensor(out: Any) -> Tensor:
        # transformers 4 returns the projected embeddings directly; 5 wraps them in a ModelOutput.
        return out if isinstance(out, Tensor) else out.pooler_output

    def get_image_features(self, *args: Any, **kwargs: Any) -> Tensor:
        return self._as_tensor(self.clip.get_image_features(*args, **kwargs))

    def get_text_features(self, *args: Any, **kwargs: Any) -> Tensor:
        return self._as_tensor(self.clip.get_text_features(*args, **kwargs))


def _load_model_and_processor(folder: Path, device: str) -> tuple[_TensorFeatureCLIP, Any]:
    """Build the ``(model, processor)`` pair that torchmetrics' callable hook must return.

    The image processor is the PIL one on purpose: it is what the reference numbers were made with,
    and transformers 5 would otherwise switch to the torchvision backend whenever torchvision is
    installed, which resizes differently.
    """
    from transformers import CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

    try:
        clip = CLIPModel.from_pretrained(folder).to(device).eval()
        processor = CLIPProcessor(
            image_processor=CLIPImageProcessorPil.from_pretrained(folder),
            tokenizer=CLIPTokenizer.from_pretrained(folder),
        )
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"CLIP model folder {folder} could not be loaded: {first}") from exc
    return _TensorFeatureCLIP(clip), processor


def to_uint8_chw(image: Any, index: int = 0) -> Tensor:
    """Turn a PIL image, an HxWx3 uint8 array or a 3xHxW uint8 tensor into a uint8 ``[3,H,W]`` tensor.

    Why strict: the CLIP processor rescales by 1/255, so float images in [0, 1] would silently score
    as near-black images. Only uint8 is accepted; PIL images of any mode are converted to RGB first
    (as the HF processor would do).
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        return torch.from_numpy(np.array(image.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1).contiguous()
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise DataError(
                f"image {index}: expected a uint8 HxWx3 array, got dtype {image.dtype} shape {image.shape}"
            )
        return torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous()  # copy: input may be read-only
    if isinstance(image, Tensor):
        if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
            raise DataError(
                f"image {index}: expected a uint8 3xHxW tensor, got dtype {image.dtype} shape {tuple(image.shape)}"
            )
        return image.cpu()
    raise DataError(
        f"image {index}: unsupported type {type(image).__name__} (use PIL, numpy uint8 or torch uint8)"
    )


def corpus_clip_score(pair_scores: Sequence[float]) -> float:
    """Corpus CLIP Score from per-pair ``100·cos`` values, as torchmetrics' ``compute()`` defines it.

    The mean over every pair is clamped at 0 (not each pair), so aggregating per-image rows written
    by :meth:`ClipScorer.score` with this function reproduces ``CLIPScore.compute()``.
    """
    if len(pair_scores) == 0:
        raise ValueError("corpus_clip_score needs at least one pair")
    return max(float(np.mean(np.asarray(pair_scores, dtype=np.float64))), 0.0)


class ClipScorer:
    """torchmetrics CLIP Score with a CLIP model from a local folder (``openai/clip-vit-large-patch14`` layout).

    ``score`` gives one value per image (for per-sample rows); ``corpus_score`` runs the torchmetrics
    metric itself over several ``update`` batches (the paper-style number).
    """

    def __init__(self, folder: str | Path, device: str = "cpu", batch_size: int = 32) -> None:
        self.folder = Path(folder)
        self.device = device
        self.batch_size = max(1, int(batch_size))
        _check_folder(self.folder)
        self.model, self.processor = _load_model_and_processor(self.folder, device)

    def model_and_processor(self) -> tuple[nn.Module, Any]:
        """The ``(model, processor)`` pair for torchmetrics' callable ``model_name_or_path`` hook.

        Passing this bound method to any torchmetrics CLIP metric (``CLIPScore``, functional
        ``clip_score``) reuses the loaded model instead of reloading it per metric.
        """
        return self.model, self.processor

    def _images(self, images: Sequence[Any] | Tensor, prompts: Sequence[str]) -> list[Tensor]:
        if isinstance(prompts, str):
            raise DataError("prompts must be a list of strings, one per image, not a single string")
        if isinstance(images, Tensor) and images.ndim == 4:
            images = list(images)
        if len(images) != len(prompts):
            raise DataError(f"got {len(images)} images but {len(prompts)} prompts; they must pair up")
        if len(images) == 0:
            raise DataError("no images to score")
        return [to_uint8_chw(im, i).to(self.device) for i, im in enumerate(images)]

    @torch.no_grad()
    def score(
        self, images: Sequence[Any] | Tensor, prompts: Sequence[str], clamp: bool = False
    ) -> list[float]:
        """Per-image ``100·cos(image, prompt)`` from torchmetrics' own per-pair update.

        Unclamped by default so that the corpus value is ``corpus_clip_score(scores)``; with
        ``clamp=True`` each value is ``max(100·cos, 0)``, i.e. what a one-pair ``CLIPScore`` returns.
        Images may differ in size: each goes through the processor's resize and centre crop. Work is
        done ``batch_size`` pairs at a time; a pair's value does not depend on its batch beyond fp32
        noise (~1e-5, from text padding to the batch's longest caption).
        """
        from torchmetrics.functional.multimodal.clip_score import _clip_score_update

        tensors, texts = self._images(images, prompts), list(prompts)
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            stop = start + self.batch_size
            pairs, _ = _clip_score_update(tensors[start:stop], texts[start:stop], self.model, self.processor)
            chunks.append(pairs.detach().float().cpu())
        values = torch.cat(chunks)
        if clamp:
            values = values.clamp_min(0.0)
        return [float(v) for v in values]

    @torch.no_grad()
    def corpus_score(self, batches: Sequence[tuple[Sequence[Any] | Tensor, Sequence[str]]]) -> float:
        """Run ``torchmetrics.multimodal.CLIPScore``: one ``update`` per ``(images, prompts)`` batch, then ``compute``.

        Returns ``max(mean over all pairs of 100·cos, 0)``.
        """
        from torchmetrics.multimodal.clip_score import CLIPScore

        metric = CLIPScore(model_name_or_path=self.model_and_processor)
        for images, prompts in batches:
            metric.update(self._images(images, prompts), list(prompts))
        return float(metric.compute())
