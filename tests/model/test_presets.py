"""Presets are real-layout checkpoint folders, built deterministically and loadable by every loader."""

from __future__ import annotations

import hashlib

import pytest
import torch

from mmada_bench.cli import main
from mmada_bench.errors import CheckpointError, ConfigError
from mmada_bench.model.loading import load_bundle
from mmada_bench.model.presets import PRESETS, materialize_preset, resolve_checkpoint


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return materialize_preset("tiny", root=tmp_path_factory.mktemp("cache"))


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tiny_preset_has_real_folder_layout(tiny_folder):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "preset.json",
                 "vq_model/config.json", "vq_model/model.safetensors"):
        assert (tiny_folder / name).is_file(), name


def test_materialisation_is_deterministic(tiny_folder, tmp_path):
    again = materialize_preset("tiny", root=tmp_path)
    assert again != tiny_folder
    for name in ("model.safetensors", "vq_model/model.safetensors", "config.json", "tokenizer.json"):
        assert _sha(again / name) == _sha(tiny_folder / name), name


def test_second_call_reuses_the_folder(tiny_folder):
    mtime = (tiny_folder / "model.safetensors").stat().st_mtime_ns
    assert materialize_preset("tiny", root=tiny_folder.parent.parent) == tiny_folder
    assert (tiny_folder / "model.safetensors").stat().st_mtime_ns == mtime


def test_bundle_loads_and_parts_agree(tiny_folder):
    bundle = load_bundle(tiny_folder)
    config = bundle.config
    assert len(bundle.tokenizer) == config.image_offset == config.llm_vocab_size
    assert config.vocab_size == config.image_offset + config.codebook_size
    assert bundle.vq_model.codebook_size == config.codebook_size
    special = bundle.special_tokens
    assert special.mask == config.mask_token_id
    assert bundle.tokenizer.convert_ids_to_tokens(special.mask) == "<|mdm_mask|>"
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    codes = bundle.vq_model.encode(image)
    assert codes.shape == (2, config.num_vq_tokens)
    assert int(codes.min()) >= 0 and int(codes.max()) < config.codebook_size
    assert bundle.vq_model.decode(codes).shape == (2, 3, 64, 64)
    assert len(bundle.fingerprint) == 64


def test_inspect_runs_on_preset(tiny_folder, capsys):
    assert main(["inspect", str(tiny_folder)]) == 0
    out = capsys.readouterr().out
    assert "image round trip (1, 3, 64, 64) -> 16 codes in [0, 1024)" in out


def test_unknown_preset_and_missing_path():
    with pytest.raises(ConfigError, match="unknown model preset 'huge'"):
        materialize_preset("huge")
    with pytest.raises(CheckpointError, match="neither a checkpoint folder nor a preset"):
        resolve_checkpoint("/does/not/exist")
    assert "tiny" in PRESETS
