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


def t2i_loss(logits: torch.Tensor, labels: torch.Tensor, text_length: int) -> torch.Tensor:
    """Mean CE over labelled positions of the image part (positions ``text_length`` onward)."""
    if logits.shape[0] == 0:
        return logits.new_zeros(())
    image_logits = logits[:, text_length:].float()
    image_labels = labels[:, text_length:]
    return F.cross_entropy(image_logits.reshape(-1, image_logits.shape[-1]), image_labels.reshape(-1), ignore_index=IGNORE_INDEX)


def masked_diffusion_loss(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    p_mask: torch.Tensor,
    answer_lengths: torch.Tensor,
    mask_token_id: int,
) -> torch.Tensor:
    """LLaDA-style text loss: Σ_masked CE / p_mask / answer_length, averaged over rows.

    Masked positions are read off the noised ``input_ids`` (== mask token), as the reference does;
    ``p_mask`` and ``answer_lengths`` are per position (B, L) as the reference passes them, so one row
    may carry one value broadcast over its positions.
    """
    rows = logits.shape[0]
    if rows == 0:
        return logits.new_zeros(())
    masked = input_ids == mask_token_id
    ce = F.cross_entropy(logits[masked].float(), labels[masked], ignore_index=IGNORE_INDEX, reduction="none")
    weighted = ce / p_mask[masked].float() / answer_lengths[masked].float()
    return weighted.sum() / rows


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
) -> Stage1Losses:
    """Split a mixed batch's logits (B, L, V) by task and compute each task's loss.

    Args:
        logits, input_ids, labels: the whole mixed batch, rows ordered t2i, lm, mmu.
        t2i_text_length: length of the t2i text part (M + 1), i.e. where ``<|soi|>`` sits.
        p_mask_lm / p_mask_mmu: (B_task, L) masking probability of each position's row.
        answer_lengths_mmu: (B_mmu, L) number of answer positions of each row.
        answer_lengths_lm: (B_lm, L) for chat-style lm rows; ``None`` means plain pretraining text
            where every position is an answer position (normalised by the row length).
    """
    expected = batch_size_t2i + batch_size_lm + batch_size_mmu
    if logits.shape[0] != expected:
        raise ValueError(f"logits have {logits.shape[0]} rows, expected t2i+lm+mmu = {expected}")
    t2i_end, lm_end = batch_size_t2i, batch_size_t2i + batch_size_lm
    lm_logits, lm_ids, lm_labels = logits[t2i_end:lm_end], input_ids[t2i_end:lm_end], labels[t2i_end:lm_end]
    if answer_lengths_lm is None:
        answer_lengths_lm = torch.full(lm_ids.shape, lm_ids.shape[1], device=lm_ids.device)
    return Stage1Losses(
        t2i=t2i_loss(logits[:t2i_end], labels[:t2i_end], t2i_text_length),
        lm=masked_diffusion_loss(lm_logits, lm_ids, lm_labels, p_mask_lm, answer_lengths_lm, mask_token_id),
        mmu=masked_diffusion_loss(
            logits[lm_end:], input_ids[lm_end:], labels[lm_end:], p_mask_mmu, answer_lengths_mmu, mask_token_id
        ),
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
