"""MAGVIT-v2 tokenizer: parity with the reference golden vectors, LFQ conventions, strict folder I/O."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mmada_bench.errors import CheckpointError, ConfigError
from mmada_bench.model.magvitv2 import LFQuantizer, MAGVITv2, MAGVITv2Config, read_magvit_config

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
TINY_FOLDER = GOLDEN / "magvitv2_tiny"
TOL = 1e-3


@pytest.fixture(autouse=True, scope="module")
def _plain_cpu_convolutions():
    """oneDNN spends ~1 s building kernels for every new conv shape; on these tiny shapes the plain
    CPU path is faster overall. Scoped to this module and restored afterwards."""
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN / "magvitv2.safetensors"))


@pytest.fixture(scope="module")
def magvit_golden() -> MAGVITv2:
    return MAGVITv2.from_pretrained(TINY_FOLDER)


def small_config() -> MAGVITv2Config:
    """A shape unlike the golden one: 2 levels, uneven block counts, attention inside levels, 6 bits."""
    common = {"ch": 32, "attn_resolutions": [8], "resolution": 16, "z_channels": 6}
    return MAGVITv2Config(
        encoder={**common, "ch_mult": [1, 2], "num_res_blocks": [1, 2]},
        decoder={**common, "ch_mult": [1, 2], "num_res_blocks": [2, 1]},
        codebook_dim=6,
    )


def random_small_model(seed: int = 0) -> MAGVITv2:
    torch.manual_seed(seed)
    model = MAGVITv2(small_config()).eval()
    with torch.no_grad():  # randomise the GroupNorm affines too, so a swapped norm cannot go unnoticed
        for name, param in model.named_parameters():
            if ".norm" in name or "norm_out" in name:
                param.add_(0.1 * torch.randn_like(param))
    return model


@pytest.fixture()
def saved_small(tmp_path: Path) -> Path:
    folder = tmp_path / "small"
    random_small_model().save_pretrained(folder)
    return folder


# ------------------------------------------------------------------------------------------------
# golden parity


def test_golden_encoder_features(magvit_golden, golden):
    with torch.no_grad():
        features = magvit_golden.encode_features(golden["pixel_values"])
    assert features.shape == golden["encoder_out"].shape == (2, 13, 4, 4)
    assert (features - golden["encoder_out"]).abs().max().item() <= TOL


def test_golden_codes_exact(magvit_golden, golden):
    with torch.no_grad():
        codes = magvit_golden.encode(golden["pixel_values"])
    assert codes.dtype == torch.int64
    assert torch.equal(codes, golden["codes"])


def test_golden_codes_follow_from_golden_features(magvit_golden, golden):
    # index convention alone (no network): sign bits of encoder_out, channel 0 most significant
    assert torch.equal(magvit_golden.latents_to_codes(golden["encoder_out"]), golden["codes"])


def test_golden_decode(magvit_golden, golden):
    with torch.no_grad():
        decoded = magvit_golden.decode(golden["codes"])
    assert decoded.shape == golden["decoded"].shape == (2, 3, 64, 64)
    assert (decoded - golden["decoded"]).abs().max().item() <= TOL
    # the reference does not clamp: the golden output leaves [-1, 1] and so must ours
    assert decoded.min().item() < -1.0


def test_golden_checkpoint_buffers_equal_computed_codebook(magvit_golden):
    stored = load_file(str(TINY_FOLDER / "model.safetensors"))
    assert torch.equal(magvit_golden.quantize.power_vals, stored["quantize.power_vals"])
    assert magvit_golden.quantize.power_vals.dtype == torch.int64
    all_codes = torch.arange(8192).view(1, -1)
    latents = magvit_golden.codes_to_latents(all_codes, shape=(1, 8192))  # (1, 13, 1, 8192)
    assert torch.equal(latents[0, :, 0, :].T, stored["quantize.embedding"])


# ------------------------------------------------------------------------------------------------
# LFQ index convention


def test_lfq_channel0_is_most_significant_bit():
    quantize = MAGVITv2(small_config()).quantize
    latent = -torch.ones(1, 6, 1, 3)
    latent[0, 0, 0, 0] = 0.3  # only channel 0 positive -> 2**5
    latent[0, 5, 0, 1] = 2.0  # only the last channel positive -> 1
    latent[0, :, 0, 2] = 0.0  # exactly zero is not positive -> 0
    assert quantize.latents_to_codes(latent).tolist() == [[32, 1, 0]]


def test_lfq_tokens_are_row_major():
    quantize = MAGVITv2(small_config()).quantize
    latent = -torch.ones(1, 6, 2, 3)
    for row in range(2):
        for col in range(3):
            code = row * 3 + col
            for bit in range(6):
                if code >> (5 - bit) & 1:
                    latent[0, bit, row, col] = 1.0
    assert quantize.latents_to_codes(latent).tolist() == [[0, 1, 2, 3, 4, 5]]
    assert torch.equal(quantize.codes_to_latents(torch.arange(6).view(1, 6), shape=(2, 3)), latent)


@pytest.mark.parametrize("bits", [4, 13])
def test_codes_latents_codes_identity_for_every_code(bits):
    quantize = LFQuantizer(bits)
    size = 2**bits
    codes = torch.arange(size).view(2, size // 2)
    latents = quantize.codes_to_latents(codes, shape=(1, size // 2))
    assert latents.shape == (2, bits, 1, size // 2)
    assert set(latents.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(quantize.latents_to_codes(latents), codes)


def test_decode_rejects_bad_codes(magvit_golden):
    with pytest.raises(ValueError, match="8191"):
        magvit_golden.decode(torch.tensor([[0] * 15 + [8192]]))
    with pytest.raises(ValueError, match="square"):
        magvit_golden.decode(torch.zeros(1, 15, dtype=torch.long))


# ------------------------------------------------------------------------------------------------
# configuration


def test_config_nested_round_trip_and_properties():
    raw = json.loads((TINY_FOLDER / "config.json").read_text())
    config = MAGVITv2Config.from_dict(raw)
    assert config.to_dict() == raw
    assert config.codebook_size == 8192
    assert config.downsample_factor == 16
    assert config.encoder["ch"] == 32 and config.decoder["ch_mult"] == [1, 1, 2, 2, 4]


@pytest.mark.parametrize("raw", [{}, {"_class_name": "MAGVITv2", "_diffusers_version": "0.25.0"}])
def test_argument_free_config_is_the_released_architecture(tmp_path, raw):
    (tmp_path / "config.json").write_text(json.dumps(raw))
    config = read_magvit_config(tmp_path)
    assert config == MAGVITv2Config()
    with torch.device("meta"):
        model = MAGVITv2(config)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["encoder.conv_in.weight"] == (128, 3, 3, 3)
    assert shapes["encoder.down.1.block.0.nin_shortcut.weight"] == (256, 128, 1, 1)
    assert shapes["encoder.conv_out.weight"] == (13, 512, 3, 3)
    assert shapes["encoder.quant_conv.weight"] == (13, 13, 1, 1)
    assert shapes["decoder.conv_in.weight"] == (512, 13, 3, 3)
    assert shapes["decoder.up.4.upsample.conv.weight"] == (512, 512, 3, 3)
    assert shapes["decoder.up.0.block.3.conv2.weight"] == (128, 128, 3, 3)
    assert shapes["decoder.conv_out.weight"] == (3, 128, 3, 3)
    assert shapes["quantize.embedding"] == (8192, 13)
    blocks = [len(level.block) for level in model.encoder.down]
    assert blocks == [4, 3, 4, 3, 4]
    assert [len(level.block) for level in model.decoder.up] == [4, 4, 3, 4, 3]
    assert not any(".attn." in k for k in shapes)  # attn_resolutions [5] never matches
    assert "encoder.down.4.downsample.conv.weight" not in shapes and "decoder.up.0.upsample.conv.weight" not in shapes
    # 382 MB of fp32: the size of the released pytorch_model.safetensors
    assert round(sum(v.numel() for v in model.state_dict().values()) * 4 / 1e6) == 382


def test_config_rejects_inconsistent_values():
    with pytest.raises(ConfigError, match="z_channels"):
        MAGVITv2Config(codebook_dim=10)
    with pytest.raises(ConfigError, match="unknown keys"):
        MAGVITv2Config.from_dict({"encoder": {"channels": 64}})
    with pytest.raises(ConfigError, match="unknown keys"):
        MAGVITv2Config.from_dict({"ch": 64})


# ------------------------------------------------------------------------------------------------
# folder I/O


def test_small_model_round_trip_is_bit_exact(saved_small):
    original = random_small_model()
    loaded = MAGVITv2.from_pretrained(saved_small)
    assert loaded.config == original.config
    state_a, state_b = original.state_dict(), loaded.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert state_a[key].dtype == state_b[key].dtype, key
        assert torch.equal(state_a[key], state_b[key]), key
    # attention inside levels exists exactly where the reference puts it (latent resolution 8)
    assert "encoder.down.1.attn.1.proj_out.weight" in state_b and "decoder.up.1.attn.0.q.weight" in state_b
    assert not any(k.startswith(("encoder.down.0.attn", "decoder.up.0.attn")) for k in state_b)
    pixels = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        codes = original.encode(pixels)
        assert codes.shape == (2, 64) and int(codes.max()) < 64
        assert torch.equal(loaded.encode(pixels), codes)
        assert torch.equal(loaded.decode(codes), original.decode(codes))
        assert loaded.decode(codes).shape == (2, 3, 16, 16)


def test_released_file_name_is_accepted(saved_small):
    (saved_small / "model.safetensors").rename(saved_small / "pytorch_model.safetensors")
    loaded = MAGVITv2.from_pretrained(saved_small)
    assert torch.equal(loaded.encoder.conv_in.weight, random_small_model().encoder.conv_in.weight)


def rewrite_weights(folder: Path, edit) -> Path:
    file = folder / "model.safetensors"
    state = load_file(str(file))
    edit(state)
    save_file(state, str(file))
    return file


@pytest.mark.parametrize(
    ("edit", "key", "words"),
    [
        (lambda s: s.pop("decoder.conv_out.bias"), "decoder.conv_out.bias", "lacks key"),
        (lambda s: s.update({"encoder.extra.weight": torch.zeros(2)}), "encoder.extra.weight", "unexpected key"),
        (lambda s: s.update({"encoder.quant_conv.weight": torch.zeros(6, 6, 3, 3)}), "encoder.quant_conv.weight", "shape"),
        (lambda s: s["quantize.embedding"].neg_(), "quantize.embedding", "codebook"),
    ],
    ids=["missing", "unexpected", "wrong-shape", "wrong-codebook"],
)
def test_bad_weights_name_file_and_key(saved_small, edit, key, words):
    file = rewrite_weights(saved_small, edit)
    with pytest.raises(CheckpointError) as info:
        MAGVITv2.from_pretrained(saved_small)
    message = str(info.value)
    assert str(file) in message and key in message and words in message
    assert "\n" not in message


def test_truncated_weights_name_the_file(saved_small):
    file = saved_small / "model.safetensors"
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable safetensors file") as info:
        MAGVITv2.from_pretrained(saved_small)
    assert str(file) in str(info.value)


def test_invalid_config_json_names_the_file(saved_small):
    config_file = saved_small / "config.json"
    config_file.write_text('{"encoder": {"ch": 32,')
    with pytest.raises(CheckpointError, match="not valid JSON") as info:
        MAGVITv2.from_pretrained(saved_small)
    assert str(config_file) in str(info.value)


def test_config_that_does_not_match_the_weights(tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(TINY_FOLDER, folder)
    (folder / "config.json").write_text("{}")  # released architecture, tiny weights
    with pytest.raises(CheckpointError, match="shape|lacks key") as info:
        MAGVITv2.from_pretrained(folder)
    assert str(folder / "model.safetensors") in str(info.value)
    (folder / "config.json").write_text('{"quantizer": {"codebook_dim": 12}}')
    with pytest.raises(CheckpointError, match="config.json: .*z_channels"):
        MAGVITv2.from_pretrained(folder)


def test_missing_folder_and_config(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        MAGVITv2.from_pretrained(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="config.json not found"):
        MAGVITv2.from_pretrained(tmp_path)
