"""Stage-1 batches attend to t2i rows the way t2i inference does (pads masked), unless asked for the
reference's float bias (spec §1.2), which leaves the pads visible."""

from __future__ import annotations

import torch

from mmada_bench.model.loading import load_bundle
from mmada_bench.train.config import config_from_dict
from mmada_bench.train.stage import StageContext
from mmada_bench.train.stages import build_stage
from tests.train.train_helpers import stage1_dict


def _first_batch(tmp_path, **loss) -> tuple[dict, int]:
    config = config_from_dict(stage1_dict(tmp_path / "out", loss={"coeff_t2i": 1.0, **loss}))
    bundle = load_bundle("tiny")
    stage = build_stage(StageContext(config, bundle.model, bundle.tokenizer, bundle.vq_model))
    return stage.build_batch(0), bundle.special_tokens.pad


def test_default_masks_the_t2i_pads_as_inference_does(tmp_path):
    batch, pad = _first_batch(tmp_path)
    assert "attention_bias" not in batch
    mask, ids = batch["attention_mask"], batch["input_ids"]
    t2i_rows = 2  # stage1_dict's batch: t2i rows come first
    assert torch.equal(mask[:t2i_rows] == 0, ids[:t2i_rows] == pad)  # zero exactly on the [iPAD]s
    assert (mask[:t2i_rows] == 0).any()
    assert bool((mask[t2i_rows:] == 1).all())


def test_reference_bias_leaves_pads_visible(tmp_path):
    batch, pad = _first_batch(tmp_path, attention="reference")
    bias = batch["attention_bias"]
    assert bias.dtype.is_floating_point and "attention_mask" not in batch
    row = 0
    pads = batch["input_ids"][row] == pad
    assert pads.any()
    # a float 0 is *added* to pad scores (not -inf): pads stay attended, one e-fold below the rest
    assert bias[row, 0][:, pads].eq(0).all() and bias[row, 0][~pads][:, ~pads].eq(1).all()
