"""Stage-1 lm rows in prompt + completion form: the prompt is never noised and carries no loss, so the
model learns to answer the prompt an evaluator shows it rather than to re-write it."""

from __future__ import annotations

import json

import torch

from mmada_bench.model.loading import load_bundle
from mmada_bench.train.config import config_from_dict
from mmada_bench.train.stage import StageContext
from mmada_bench.train.stages import build_stage
from tests.train.train_helpers import stage1_dict

PROMPT = "Question: 2 red and 3 blue circles. How many?\nAnswer:"
COMPLETION = " 2 + 3 = 5\n#### 5"


def test_prompt_positions_stay_clean_and_out_of_the_loss(tmp_path):
    rows = tmp_path / "qa.jsonl"
    rows.write_text(json.dumps({"prompt": PROMPT, "completion": COMPLETION}) + "\n")
    lm = [{"path": str(rows), "format": "text_jsonl"}]
    config = config_from_dict(stage1_dict(tmp_path / "out", data={"lm": lm}, batch={"t2i": 2, "lm": 4, "mmu": 2}))
    bundle = load_bundle("tiny")
    stage = build_stage(StageContext(config, bundle.model, bundle.tokenizer, bundle.vq_model))
    batch = stage.build_batch(0)
    prompt = [bundle.special_tokens.bos, *bundle.tokenizer(PROMPT, add_special_tokens=False)["input_ids"]]
    completion = bundle.tokenizer(COMPLETION, add_special_tokens=False)["input_ids"]
    lm_rows = slice(2, 6)  # t2i rows come first
    ids, labels = batch["input_ids"][lm_rows], batch["labels"][lm_rows]
    seq_len = ids.shape[1]
    assert len(prompt) + len(completion) < seq_len  # the whole row fits, EOS padding after it
    assert labels[:, : len(prompt) + len(completion)].tolist() == [prompt + completion] * 4
    assert torch.equal(ids[:, : len(prompt)], labels[:, : len(prompt)])  # the prompt is never masked
    masked = ids == bundle.special_tokens.mask
    assert masked[:, len(prompt) :].any()  # ... while the completion is
    assert batch["answer_lengths_lm"][:, 0].tolist() == [seq_len - len(prompt)] * 4
