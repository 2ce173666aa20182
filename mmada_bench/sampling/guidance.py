"""Classifier-free guidance: the one place the conditional and unconditional logits are combined.

Both reference samplers compute ``uncond + (w + 1) * (cond - uncond)`` = ``(1 + w) * cond - w * uncond``
but in different orders (LLaDA's text sampler and likelihood the first way, MaskGIT/MUSE for images the
second). The two agree mathematically and differ in the last float bit, which can flip a sampled image
code; ``form`` keeps each bit-exact with its reference.
"""

from __future__ import annotations

from typing import Literal

import torch

GuidanceForm = Literal["llada", "muse"]


def classifier_free_guidance(
    cond: torch.Tensor, uncond: torch.Tensor, scale: float, form: GuidanceForm = "llada"
) -> torch.Tensor:
    """Guided logits with weight ``scale`` (0 returns ``cond`` unchanged)."""
    if scale <= 0:
        return cond
    if form == "muse":
        return (1 + scale) * cond - scale * uncond
    return uncond + (scale + 1) * (cond - uncond)


def split_guided(logits: torch.Tensor, scale: float, form: GuidanceForm = "llada") -> torch.Tensor:
    """Guide a batch laid out ``[conditional rows; unconditional rows]`` (one forward pass for both)."""
    cond, uncond = logits.chunk(2, dim=0)
    return classifier_free_guidance(cond, uncond, scale, form)
