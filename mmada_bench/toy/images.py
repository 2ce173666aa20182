"""The toy world's images as tensors: pixels in [-1, 1], shape masks, and integer labels.

Both trainers (tokenizer and judge) read the same arrays, decoded once from the wheel's PNGs in
image-id order, so a training run depends only on the wheel and the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from mmada_bench.toy.world import COLORS, PALETTE, PIXEL_TOLERANCE, SHAPES, load_world


@dataclass(frozen=True)
class ToyTensors:
    """``pixels`` (N, 3, 64, 64) float in [-1, 1]; ``masks`` (N, 1, 64, 64) float 0/1 where the shape's
    colour is; ``shapes``/``colors`` (N,) int64 indices into :data:`SHAPES` / :data:`COLORS`."""

    pixels: torch.Tensor
    masks: torch.Tensor
    shapes: torch.Tensor
    colors: torch.Tensor

    def __len__(self) -> int:
        return int(self.pixels.shape[0])

    def subset(self, index: torch.Tensor | slice) -> ToyTensors:
        return ToyTensors(self.pixels[index], self.masks[index], self.shapes[index], self.colors[index])


def to_unit(pixels_uint8: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [-1, 1] (MAGVIT-v2's input range)."""
    return torch.from_numpy(pixels_uint8).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_pil(pixels: torch.Tensor) -> list[Image.Image]:
    """(N, 3, H, W) in [-1, 1] (clamped here) -> PIL RGB images, rounded the way image outputs are."""
    arrays = ((pixels.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(a.permute(1, 2, 0).cpu().numpy(), "RGB") for a in arrays]


def load_tensors(split: str, limit: int | None = None) -> ToyTensors:
    """The first ``limit`` images of ``split`` (all by default) with their masks and labels."""
    world = load_world(split)[:limit]
    arrays = np.stack([np.asarray(Image.open(item.path).convert("RGB"), dtype=np.uint8) for item in world])
    colours = np.asarray([PALETTE[item.color] for item in world], dtype=np.int16)[:, None, None, :]
    masks = np.abs(arrays.astype(np.int16) - colours).max(axis=-1) <= PIXEL_TOLERANCE
    return ToyTensors(
        pixels=to_unit(arrays),
        masks=torch.from_numpy(masks[:, None].astype(np.float32)),
        shapes=torch.tensor([SHAPES.index(item.shape) for item in world], dtype=torch.long),
        colors=torch.tensor([COLORS.index(item.color) for item in world], dtype=torch.long),
    )
