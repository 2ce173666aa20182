"""Stage-1 masked-token losses over a mixed [t2i; lm; mmu] batch (spec §5.2).

Every MMaDA training stage runs one forward over the concatenation of text-to-image rows, language
rows and multimodal-understanding rows of equal length, then splits the logits and applies a
different normalisation to each part. Those normalisations are what make our training numbers
comparable with the reference, so they are reproduced exactly:

* t2i: plain mean cross-entropy over labelled positions from the image part on (labels are -100
  wherever the image token was not masked); no 1/t weighting.
* lm / lm_chat / mmu: for each masked position, CE / p_mask; summed, divided by that row's answer
  length, then by the number of rows (for plain lm the answer length is the whole row length, which
  gives the reference's ``sum / (B * L)``).

No loss reads an unmasked, unlabelled position, so training asks the model for logits at the
:func:`scored_positions` only; the full (B, L, V) logits give the same numbers (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mmada_bench.model.prompting import IGNORE_INDEX


@dataclass(frozen=True)
class Stage1Losses:
    """The three per-task losses; ``total`` applies the stage's coefficients."""

    t2i: torch.Tensor
    lm: torch.Tensor
    mmu: torch.Tensor

    def total(self, coeff_t2i: float = 1.0, coeff_lm: float = 1.0, coeff_mmu: float = 1.0) -> torch.Tensor:
        return coeff_t2i * self.t2i + coeff_lm * self.lm + coeff_mmu * self.mmu


def scored_positions(input_ids: torch.Tensor, labels: torch.Tensor, mask_token_id: int) -> torch.Tensor:
    """(B, L) bool: every position a stage-1 loss reads -- masked inputs (lm / mmu) and labelled ones
    (t2i). Passed to the model as ``logits_positions``, so the head runs on these positions only."""
    return (input_ids == mask_token_id) | (labels != IGNORE_INDEX)


def stage1_losses(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size_t2i: int,
    batch_size_lm: int,
    batch_size_mmu: int,
    t2i_text_length: int,
    p_mask_lm: torch.Tensor,
    p_mask_mmu: torch.Tensor,
    answer_lengths_mmu: torch.Tensor,
    mask_token_id: int,
    answer_lengths_lm: torch.Tensor | None = None,
    positions: torch.Tensor | None = None,
) -> Stage1Losses:
    """Split a mixed batch by task and compute each task's loss.

    Args:
        logits: the whole batch's (B, L, V) logits, or -- with ``positions`` -- the (N, V) logits of
            its :func:`scored_positions` only (the model's ``logits_positions`` output). Both give the
            same losses: no loss reads any other position.
        input_ids, labels: the whole mixed batch (B, L), rows ordered t2i, lm, mmu.
        t2i_text_length: length of the t2i text part (M + 1), i.e. where ``<|soi|>`` sits.
        p_mask_lm / p_mask_mmu: (B_task, L) masking probability of each position's row.
        answer_lengths_mmu: (B_mmu, L) number of answer positions of each row.
        answer_lengths_lm: (B_lm, L) for chat-style lm rows; ``None`` means plain pretraining text
            where every position is an answer position (normalised by the row length).
        positions: ``scored_positions(input_ids, labels, mask_token_id)`` when ``logits`` are gathered.
    """
    expected = batch_size_t2i + batch_size_lm + batch_size_mmu
    if input_ids.shape[0] != expected:
        raise ValueError(f"the batch has {input_ids.shape[0]} rows, expected t2i+lm+mmu = {expected}")
    if positions is None:
        if logits.shape[:2] != input_ids.shape:
            raise ValueError(f"logits shaped {tuple(logits.shape)} do not cover the batch {tuple(input_ids.shape)}")
        positions = scored_positions(input_ids, labels, mask_token_id)
        logits = logits[positions]
    elif logits.shape[0] != int(positions.sum()):
        raise ValueError(f"gathered logits have {logits.shape[0]} rows for {int(positions.sum())} scored positions")
    rows, cols = positions.nonzero(as_tuple=True)
    ids, targets = input_ids[positions], labels[positions]
    t2i_end, lm_end = batch_size_t2i, batch_size_t2i + batch_size_lm
    if answer_lengths_lm is None:
        answer_lengths_lm = torch.full((batch_size_lm, input_ids.shape[1]), input_ids.shape[1], device=input_ids.device)

    def t2i() -> torch.Tensor:
        """Mean CE over labelled positions of the image part; no 1/t weighting."""
        if batch_size_t2i == 0:
            return logits.new_zeros(())
        picked = (rows < t2i_end) & (cols >= t2i_text_length) & (targets != IGNORE_INDEX)
        return F.cross_entropy(logits[picked].float(), targets[picked])

    def diffusion(first: int, count: int, p_mask: torch.Tensor, answer_lengths: torch.Tensor) -> torch.Tensor:
        """LLaDA's text loss: sum over masked positions of CE / p_mask / answer length, over rows.
        Masked positions are read off the noised ids (== mask token), as the reference does."""
        if count == 0:
            return logits.new_zeros(())
        picked = (rows >= first) & (rows < first + count) & (ids == mask_token_id)
        r, c = rows[picked] - first, cols[picked]
        ce = F.cross_entropy(logits[picked].float(), targets[picked], ignore_index=IGNORE_INDEX, reduction="none")
        return (ce / p_mask[r, c].float() / answer_lengths[r, c].float()).sum() / count

    return Stage1Losses(
        t2i=t2i(),
        lm=diffusion(t2i_end, batch_size_lm, p_mask_lm, answer_lengths_lm),
        mmu=diffusion(lm_end, batch_size_mmu, p_mask_mmu, answer_lengths_mmu),
    )


def training_attention_bias(t2i_padding_mask: torch.Tensor, total_rows: int) -> torch.Tensor:
    """The float attention bias the reference builds in training (HEAD, spec §1.2).

    Ones everywhere; the t2i rows get their pad mask (m_i AND m_j as 1.0 / 0.0). Because it is a float
    tensor it is *added* to the attention scores, so it does not actually mask anything -- pads are
    down-weighted by e^-1 relative to kept tokens. Reproduced as is so stage-1 numbers match the
    reference code; the released checkpoints were trained with no bias at all.
    """
    t2i_rows, length = t2i_padding_mask.shape
    bias = torch.ones(total_rows, 1, length, length, device=t2i_padding_mask.device)
    keep = t2i_padding_mask.bool()
    bias[:t2i_rows, 0] = (keep[:, :, None] & keep[:, None, :]).float()
    return bias
