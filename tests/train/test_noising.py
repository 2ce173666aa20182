"""Noising processes: exact mask counts, prompt protection, and the probabilities they report."""

from __future__ import annotations

import math

import torch

from mmada_bench.model.prompting import IGNORE_INDEX
from mmada_bench.train.noising import mask_image_tokens, mask_text_tokens

MASK = 99


def test_image_masking_count_follows_cosine_schedule():
    ids = torch.arange(64).repeat(200, 1)
    out = mask_image_tokens(ids, MASK, generator=torch.Generator().manual_seed(3))
    counts = (out.input_ids == MASK).sum(dim=1)
    expected = (64 * out.mask_ratio).round().clamp(min=1).long()
    assert torch.equal(counts, expected)
    masked = out.input_ids == MASK
    assert torch.equal(out.labels[masked], ids[masked])
    assert bool((out.labels[~masked] == IGNORE_INDEX).all())
    # ratio = cos(pi u / 2) with u ~ U(0,1): mean 2/pi
    assert abs(out.mask_ratio.mean().item() - 2 / math.pi) < 0.06


def test_image_masking_is_reproducible_from_the_generator():
    ids = torch.arange(16).repeat(4, 1)
    a = mask_image_tokens(ids, MASK, generator=torch.Generator().manual_seed(7))
    b = mask_image_tokens(ids, MASK, generator=torch.Generator().manual_seed(7))
    c = mask_image_tokens(ids, MASK, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.input_ids, b.input_ids)
    assert not torch.equal(a.input_ids, c.input_ids)


def test_text_masking_never_touches_the_prompt_and_reports_p():
    ids = torch.arange(40).repeat(500, 1)
    prompt = torch.zeros_like(ids)
    prompt[:, :10] = 1
    out = mask_text_tokens(ids, MASK, prompt_mask=prompt, eps=1e-3, generator=torch.Generator().manual_seed(0))
    assert not bool((out.input_ids[:, :10] == MASK).any())
    assert bool((out.answer_lengths == 30).all())
    p = out.p_mask[:, 0]
    assert bool((p >= 1e-3).all()) and bool((p <= 1).all())
    masked_frac = (out.input_ids[:, 10:] == MASK).float().mean(dim=1)
    # masked fraction tracks each row's p (30 Bernoulli draws per row): mean abs error is small
    assert (masked_frac - p).abs().mean().item() < 0.08


def test_text_masking_without_prompt_counts_every_position():
    ids = torch.arange(12).repeat(3, 1)
    out = mask_text_tokens(ids, MASK, generator=torch.Generator().manual_seed(1))
    assert bool((out.answer_lengths == 12).all())
