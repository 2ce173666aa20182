"""The toy MMaDA recipe: the three stage configs are valid trainer configs chained stage to stage, and
the export copies exactly what a trained preset adds."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmada_bench.errors import ConfigError
from mmada_bench.toy.mmada_training import (
    COT_TEXT,
    PHASES,
    SHORT_TEXT,
    TEXT_ONLY,
    export_stage,
    stage_configs,
    write_configs,
)
from mmada_bench.train.config import load_config
from mmada_bench.train.stage3 import plan_stage3

WORLD_FILES = ("captions_train.jsonl", "text_train.jsonl", "text_pretrain.jsonl", "vqa_train.json", "vqa_shape_train.json",
               "vqa_cot_train.jsonl")


def test_stage_configs_chain_and_validate(tmp_path, monkeypatch):
    world = tmp_path / "world"
    world.mkdir()
    for name in WORLD_FILES:
        (world / name).write_text("")
    monkeypatch.chdir(tmp_path)  # relative folders, as `make toy` passes them, end up absolute in the YAML
    configs = stage_configs(Path("world"), Path("runs"), Path("judge"), steps={"text": 400, "stage1": 700})
    assert tuple(configs) == PHASES
    paths = write_configs(configs, tmp_path / "train")
    loaded = {stage: load_config(paths[stage]) for stage in PHASES}
    assert loaded["text"].model == str(tmp_path / "runs" / "toy-init")
    assert loaded["stage1"].model == str(tmp_path / "runs" / "text" / "checkpoint-400")
    assert loaded["stage2"].model == str(tmp_path / "runs" / "stage1" / "checkpoint-700")
    assert loaded["stage3"].model.startswith(str(tmp_path / "runs" / "stage2" / "checkpoint-"))
    # t2i rows only where the text budget is the short one, so image tokens never move between stages
    for stage, config in loaded.items():
        assert config.batch.t2i == 0 or config.seq.max_text_len == SHORT_TEXT, stage
    assert loaded["stage2"].seq.max_text_len == COT_TEXT
    text = loaded["text"]  # text pretraining: counting problems only, every one of them
    assert (text.batch.t2i, text.batch.mmu) == (0, 0) and text.seq.max_text_len == TEXT_ONLY
    assert [Path(s.path).name for s in text.sources("lm")] == ["text_pretrain.jsonl"]
    plan = plan_stage3(loaded["stage3"])
    assert plan.rewards == {"mmu": (["correctness", "format"], [2.0, 0.5]), "t2i": (["toy_judge"], [1.0])}
    assert plan.options.reward_models["toy_judge"] == str(tmp_path / "judge")


def test_export_copies_config_and_single_shard(tmp_path):
    checkpoint = tmp_path / "checkpoint-3"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="one model.safetensors shard"):
        export_stage(checkpoint, tmp_path / "out")
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    (checkpoint / "trainer_state").mkdir()
    export_stage(checkpoint, tmp_path / "out")
    assert sorted(p.name for p in Path(tmp_path / "out").iterdir()) == ["config.json", "model.safetensors"]
