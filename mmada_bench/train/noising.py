"""Forward (noising) processes of MMaDA training (spec §5.2).

Kept separate from the losses so a training step reads as noise -> forward -> loss, and so that
tests can check the noise statistics on their own. All randomness goes through an explicit
``torch.Generator`` so a run is reproducible from its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mmada_bench.model.prompting import IGNORE_INDEX


@dataclass(frozen=True)
class NoisedImage:
    input_ids: torch.Tensor  # image ids with some replaced by the mask token
    labels: torch.Tensor  # original id where masked, IGNORE_INDEX elsewhere
    mask_ratio: torch.Tensor  # (B,) the cosine-schedule ratio drawn per row


@dataclass(frozen=True)
class NoisedText:
    input_ids: torch.Tensor
    p_mask: torch.Tensor  # (B, L): each row's masking probability, per position as the loss expects
    answer_lengths: torch.Tensor  # (B, L): each row's number of maskable positions


def mask_image_tokens(
    image_ids: torch.Tensor,
    mask_token_id: int,
    generator: torch.Generator | None = None,
    min_masking_rate: float = 0.0,
) -> NoisedImage:
    """MaskGIT-style cosine masking: ratio cos(πu/2), exactly round(N·ratio) (>= 1) positions per row.

    Positions are chosen uniformly by ranking uniform noise, so every subset of that size is equally
    likely -- the reference's argsort trick.
    """
    batch, n = image_ids.shape
    device = image_ids.device
    u = torch.rand(batch, generator=generator, device=device)
    ratio = torch.cos(u * math.pi / 2).clamp(min=min_masking_rate)
    counts = (n * ratio).round().clamp(min=1).long()
    ranks = torch.rand(batch, n, generator=generator, device=device).argsort(dim=-1).argsort(dim=-1)
    masked = ranks < counts[:, None]
    input_ids = torch.where(masked, torch.full_like(image_ids, mask_token_id), image_ids)
    labels = torch.where(masked, image_ids, torch.full_like(image_ids, IGNORE_INDEX))
    return NoisedImage(input_ids=input_ids, labels=labels, mask_ratio=ratio)


def mask_text_tokens(
    input_ids: torch.Tensor,
    mask_token_id: int,
    prompt_mask: torch.Tensor | None = None,
    eps: float = 1e-3,
    generator: torch.Generator | None = None,
) -> NoisedText:
    """LLaDA masking: t ~ U(0,1), p = (1-eps)·t + eps, each non-prompt token masked i.i.d. with p.

    ``prompt_mask`` (B, L) marks positions that stay visible (chat prompt, image prefix); without it
    every position -- EOS padding included, as in pretraining -- can be masked.
    """
    batch, length = input_ids.shape
    device = input_ids.device
    t = torch.rand(batch, generator=generator, device=device)
    p = ((1 - eps) * t + eps)[:, None].expand(batch, length)
    masked = torch.rand(batch, length, generator=generator, device=device) < p
    if prompt_mask is not None:
        masked &= ~prompt_mask.bool()
        answer = (~prompt_mask.bool()).sum(dim=1, keepdim=True)
    else:
        answer = torch.full((batch, 1), length, device=device)
    noisy = torch.where(masked, torch.full_like(input_ids, mask_token_id), input_ids)
    return NoisedText(input_ids=noisy, p_mask=p.contiguous(), answer_lengths=answer.expand(batch, length).contiguous())
