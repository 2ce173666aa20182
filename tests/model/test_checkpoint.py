"""Strict checkpoint loading: real layout, shards, and one-line errors for every bad folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mmada_bench.cli import main
from mmada_bench.errors import CheckpointError
from mmada_bench.model import MMaDAConfig, MMaDAModelLM
from mmada_bench.model.checkpoint import checkpoint_fingerprint, read_config


@pytest.fixture()
def ckpt(tmp_path, golden_dir) -> Path:
    folder = tmp_path / "ckpt"
    shutil.copytree(golden_dir / "mmada_tiny", folder)
    for f in folder.iterdir():
        f.chmod(0o644)
    return folder


def _cli_error(capsys, folder) -> str:
    code = main(["inspect", str(folder)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    return err


def _rewrite(folder: Path, edit) -> None:
    tensors = load_file(str(folder / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(folder / "model.safetensors"))


def test_real_layout_loads_with_every_key_used(ckpt, capsys):
    assert main(["inspect", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "2 layers" in out and "image codes from id 200" in out
    model = MMaDAModelLM.from_pretrained(ckpt)
    stored = load_file(str(ckpt / "model.safetensors"))
    assert set(model.state_dict()) == set(stored)
    for key, value in stored.items():
        assert torch.equal(model.state_dict()[key], value)


def test_dtype_is_applied_while_loading(ckpt):
    model = MMaDAModelLM.from_pretrained(ckpt, torch_dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_sharded_checkpoint_matches_single_file(ckpt, tmp_path):
    tensors = load_file(str(ckpt / "model.safetensors"))
    keys = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    shutil.copy(ckpt / "config.json", sharded / "config.json")
    weight_map = {}
    for name, shard_keys in shards.items():
        save_file({k: tensors[k] for k in shard_keys}, str(sharded / name))
        weight_map.update({k: name for k in shard_keys})
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    a = MMaDAModelLM.from_pretrained(ckpt)
    b = MMaDAModelLM.from_pretrained(sharded)
    ids = torch.randint(0, 264, (1, 10))
    with torch.no_grad():
        assert torch.equal(a(ids).logits, b(ids).logits)
    # a shard the index names but that is gone
    (sharded / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model-00002-of-00002.safetensors"):
        MMaDAModelLM.from_pretrained(sharded)


def test_save_pretrained_round_trip(ckpt, tmp_path):
    model = MMaDAModelLM.from_pretrained(ckpt)
    out = tmp_path / "saved"
    model.save_pretrained(out)
    assert json.loads((out / "config.json").read_text())["model_type"] == "mmada"
    again = MMaDAModelLM.from_pretrained(out)
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value)


def test_missing_folder(capsys, tmp_path):
    assert "neither a checkpoint folder nor a preset" in _cli_error(capsys, tmp_path / "nope")


def test_missing_config(ckpt, capsys):
    (ckpt / "config.json").unlink()
    assert "config.json not found" in _cli_error(capsys, ckpt)


def test_invalid_config_json(ckpt, capsys):
    (ckpt / "config.json").write_text("{not json")
    err = _cli_error(capsys, ckpt)
    assert "config.json is not valid JSON" in err


def test_wrong_model_type(ckpt, capsys):
    raw = json.loads((ckpt / "config.json").read_text())
    raw["model_type"] = "llama"
    (ckpt / "config.json").write_text(json.dumps(raw))
    err = _cli_error(capsys, ckpt)
    assert "model_type 'llama'" in err and "config.json" in err


def test_missing_weights_file(ckpt, capsys):
    (ckpt / "model.safetensors").unlink()
    assert "no model.safetensors or model.safetensors.index.json" in _cli_error(capsys, ckpt)


def test_truncated_safetensors(ckpt, capsys):
    data = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[: len(data) // 2])
    err = _cli_error(capsys, ckpt)
    assert "model.safetensors is not a readable safetensors file" in err


def test_missing_key(ckpt, capsys):
    _rewrite(ckpt, lambda t: t.pop("model.transformer.blocks.1.up_proj.weight"))
    err = _cli_error(capsys, ckpt)
    assert "lacks key model.transformer.blocks.1.up_proj.weight" in err and "model.safetensors" in err


def test_unexpected_key(ckpt, capsys):
    _rewrite(ckpt, lambda t: t.update({"model.transformer.blocks.0.q_proj.bias": torch.zeros(64)}))
    assert "unexpected key model.transformer.blocks.0.q_proj.bias" in _cli_error(capsys, ckpt)


def test_wrong_shape(ckpt, capsys):
    _rewrite(ckpt, lambda t: t.update({"model.transformer.ln_f.weight": torch.ones(32)}))
    err = _cli_error(capsys, ckpt)
    assert "key model.transformer.ln_f.weight has shape [32], expected [64]" in err


def test_unsupported_architecture_flag(ckpt, capsys):
    raw = json.loads((ckpt / "config.json").read_text())
    raw["block_type"] = "sequential"
    (ckpt / "config.json").write_text(json.dumps(raw))
    assert "block_type='sequential' is not supported" in _cli_error(capsys, ckpt)


def test_config_reads_real_fields_unchanged(golden_dir):
    raw = json.loads((golden_dir / "mmada_tiny" / "config.json").read_text())
    config = read_config(golden_dir / "mmada_tiny")
    saved = config.to_dict()
    for key, value in raw.items():
        if key in ("torch_dtype", "architectures"):
            continue
        assert saved[key] == value, key


def test_image_offset_rule():
    assert MMaDAConfig().image_offset == 126349  # LLaDA tokenizer length, not llm_vocab_size (126464)
    assert MMaDAConfig(llm_vocab_size=200).image_offset == 200
    assert MMaDAConfig(llm_vocab_size=200, image_token_offset=190).image_offset == 190


def test_fingerprint_changes_with_any_weight_value(ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("MMADA_BENCH_CACHE", str(tmp_path / "cache"))
    before = checkpoint_fingerprint(ckpt)
    assert before == checkpoint_fingerprint(ckpt)
    assert (tmp_path / "cache" / "sha256.json").is_file()
    # same header (names, shapes, dtypes, offsets); only one value differs
    _rewrite(ckpt, lambda t: t["model.transformer.ln_f.weight"].__setitem__(0, 2.0))
    assert checkpoint_fingerprint(ckpt) != before
