"""Stage-1 losses against the reference's golden values (tolerance: rel. 1e-5, golden/README.md)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from mmada_bench.train.losses import scored_positions, stage1_losses, training_attention_bias

REL_TOL = 1e-5


@pytest.fixture(scope="module")
def batch(golden_dir):
    return load_file(str(golden_dir / "stage1_loss.safetensors"))


def _losses(model, batch, gathered=False, **forward_kwargs):
    """Losses from the full logits, or (``gathered``) from the logits of the scored positions only."""
    positions = scored_positions(batch["input_ids"], batch["labels"], 190) if gathered else None
    with torch.no_grad():
        logits = model(batch["input_ids"], logits_positions=positions, **forward_kwargs).logits
    return stage1_losses(
        logits,
        batch["input_ids"],
        batch["labels"],
        batch_size_t2i=1,
        batch_size_lm=1,
        batch_size_mmu=1,
        t2i_text_length=12,
        p_mask_lm=batch["p_mask_lm"],
        p_mask_mmu=batch["p_mask_mmu"],
        answer_lengths_mmu=batch["answer_lengths_mmu"],
        answer_lengths_lm=batch["answer_lengths_lm"],
        mask_token_id=190,
        positions=positions,
    )


@pytest.mark.parametrize("gathered", [False, True], ids=["full-logits", "scored-positions"])
def test_stage1_losses_match_reference(golden_model, batch, golden_meta, gathered):
    assert golden_meta["stage1_loss"]["t2i_text_part_length"] == 12
    bias = training_attention_bias(batch["t2i_attention_mask"], total_rows=3)
    losses = _losses(golden_model, batch, gathered=gathered, attention_bias=bias)
    for name in ("t2i", "lm", "mmu"):
        ref = batch[f"loss_{name}"].item()
        assert abs(getattr(losses, name).item() - ref) / ref <= REL_TOL, name


def test_scored_positions_are_fewer_than_all_and_give_the_same_losses(golden_model, batch):
    """Training runs the head on the scored positions only; the losses are those of the full logits."""
    positions = scored_positions(batch["input_ids"], batch["labels"], 190)
    assert 0 < int(positions.sum()) < positions.numel()
    bias = training_attention_bias(batch["t2i_attention_mask"], total_rows=3)
    full = _losses(golden_model, batch, attention_bias=bias)
    gathered = _losses(golden_model, batch, gathered=True, attention_bias=bias)
    for name in ("t2i", "lm", "mmu"):
        assert torch.allclose(getattr(full, name), getattr(gathered, name), rtol=1e-6, atol=0), name


def test_gathered_logits_must_match_the_scored_positions():
    ids = torch.tensor([[5, 10, 5], [10, 10, 5], [5, 5, 10]])
    positions = scored_positions(ids, torch.full_like(ids, -100), 10)
    with pytest.raises(ValueError, match="3 rows for 4 scored positions"):
        stage1_losses(torch.zeros(3, 7), ids, torch.full_like(ids, -100), batch_size_t2i=1, batch_size_lm=1,
                      batch_size_mmu=1, t2i_text_length=1, p_mask_lm=torch.ones(1, 3), p_mask_mmu=torch.ones(1, 3),
                      answer_lengths_mmu=torch.ones(1, 3), mask_token_id=10, positions=positions)


def test_reference_training_bias_is_additive_not_a_mask(golden_model, batch):
    """The HEAD float bias changes t2i logits vs. a real (bool) mask: we reproduce the quirk, not a fix."""
    bias = training_attention_bias(batch["t2i_attention_mask"], total_rows=3)
    quirky = _losses(golden_model, batch, attention_bias=bias).t2i.item()
    masked = _losses(golden_model, batch, attention_bias=bias.bool()).t2i.item()
    assert abs(quirky - batch["loss_t2i"].item()) < 1e-4
    assert abs(masked - quirky) > 1e-2


def test_plain_lm_normalisation_is_sum_over_batch_times_length():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11)
    ids = torch.randint(0, 10, (3, 5))
    labels = ids.clone()
    ids[:, ::2] = 10  # mask token
    p = torch.full((1, 5), 0.25)
    losses = stage1_losses(
        logits,
        ids,
        labels,
        batch_size_t2i=1,
        batch_size_lm=1,
        batch_size_mmu=1,
        t2i_text_length=2,
        p_mask_lm=p,
        p_mask_mmu=p,
        answer_lengths_mmu=torch.full((1, 5), 3),
        mask_token_id=10,
    )
    ce = torch.nn.functional.cross_entropy(logits[1, ::2], labels[1, ::2], reduction="sum")
    assert torch.allclose(losses.lm, ce / 0.25 / (1 * 5))
    ce_mmu = torch.nn.functional.cross_entropy(logits[2, ::2], labels[2, ::2], reduction="sum")
    assert torch.allclose(losses.mmu, ce_mmu / 0.25 / 3)
    assert torch.allclose(losses.total(1.0, 0.1, 0.5), losses.t2i + 0.1 * losses.lm + 0.5 * losses.mmu)


def test_row_count_mismatch_is_refused():
    with pytest.raises(ValueError, match="expected t2i\\+lm\\+mmu"):
        stage1_losses(
            torch.zeros(2, 4, 5),
            torch.zeros(2, 4, dtype=torch.long),
            torch.zeros(2, 4, dtype=torch.long),
            batch_size_t2i=1,
            batch_size_lm=1,
            batch_size_mmu=1,
            t2i_text_length=1,
            p_mask_lm=torch.ones(1, 4),
            p_mask_mmu=torch.ones(1, 4),
            answer_lengths_mmu=torch.ones(1, 4),
            mask_token_id=3,
        )
