"""MMaDA forward parity.

Golden: logits of the reference implementation on the tiny checkpoint, max abs diff <= 1e-4
(padded case: positions whose attention_mask is 1; golden/README.md).
Other shapes: the reference semantics re-derived independently in float64 below (RMSNorm, NeoX
rotate-half RoPE over absolute positions, bidirectional softmax attention with m_i AND m_j masking,
SiLU(ff_proj) * up_proj MLP, untied head), compared with our fp32 model at 1e-4 abs.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from mmada_bench.model import MMaDAConfig, MMaDAModelLM

TOL = 1e-4


@pytest.fixture(scope="module")
def golden_forward(golden_dir):
    return load_file(str(golden_dir / "forward.safetensors"))


def test_logits_without_mask_match_reference(golden_model, golden_forward):
    with torch.no_grad():
        logits = golden_model(golden_forward["input_ids"]).logits
    assert logits.shape == golden_forward["logits_no_mask"].shape
    assert (logits - golden_forward["logits_no_mask"]).abs().max().item() <= TOL


def test_logits_with_padding_mask_match_reference(golden_model, golden_forward):
    mask = golden_forward["attention_mask"]
    assert int((mask == 0).sum()) > 0, "fixture must contain padding"
    with torch.no_grad():
        logits = golden_model(golden_forward["input_ids"], attention_mask=mask).logits
    keep = mask.bool()
    assert (logits - golden_forward["logits_padded"])[keep].abs().max().item() <= TOL
    # the mask must matter: unmasked logits differ at the padded row's real positions
    assert (golden_forward["logits_no_mask"] - golden_forward["logits_padded"])[keep].abs().max().item() > 1e-3


def _naive_reference(model: MMaDAModelLM, ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    cfg = model.config
    sd = {k: v.double() for k, v in model.state_dict().items()}
    heads, kv_heads, dim = cfg.n_heads, cfg.num_kv_heads, cfg.head_dim
    length = ids.shape[1]
    inv = 1.0 / cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    ang = torch.arange(length, dtype=torch.float64)[:, None] * inv[None]
    cos, sin = ang.cos(), ang.sin()

    def rope(t):
        a, b = t[..., : dim // 2], t[..., dim // 2 :]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)

    def rms(x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + cfg.rms_norm_eps) * w

    x = sd["model.transformer.wte.weight"][ids]
    bsz = ids.shape[0]
    for i in range(cfg.n_layers):
        p = f"model.transformer.blocks.{i}."
        h = rms(x, sd[p + "attn_norm.weight"])
        q = (h @ sd[p + "q_proj.weight"].T).view(bsz, length, heads, dim).transpose(1, 2)
        k = (h @ sd[p + "k_proj.weight"].T).view(bsz, length, kv_heads, dim).transpose(1, 2)
        v = (h @ sd[p + "v_proj.weight"].T).view(bsz, length, kv_heads, dim).transpose(1, 2)
        k = k.repeat_interleave(heads // kv_heads, dim=1)
        v = v.repeat_interleave(heads // kv_heads, dim=1)
        scores = rope(q) @ rope(k).transpose(-1, -2) / dim**0.5
        if mask is not None:
            allowed = mask.bool()[:, None, :, None] & mask.bool()[:, None, None, :]
            scores = scores.masked_fill(~allowed, -1e300)
        att = scores.softmax(-1) @ v
        x = x + att.transpose(1, 2).reshape(bsz, length, -1) @ sd[p + "attn_out.weight"].T
        h = rms(x, sd[p + "ff_norm.weight"])
        gate = h @ sd[p + "ff_proj.weight"].T
        x = x + (gate * torch.sigmoid(gate) * (h @ sd[p + "up_proj.weight"].T)) @ sd[p + "ff_out.weight"].T
    x = rms(x, sd["model.transformer.ln_f.weight"])
    return x @ sd["model.transformer.ff_out.weight"].T


SHAPES = [
    dict(d_model=48, n_heads=3, n_kv_heads=3, n_layers=3, mlp_hidden_size=80, rope_theta=10000.0),
    dict(d_model=64, n_heads=8, n_kv_heads=2, n_layers=1, mlp_hidden_size=96, rope_theta=500000.0),
    dict(d_model=32, n_heads=2, n_kv_heads=None, n_layers=4, mlp_hidden_size=None, mlp_ratio=3, rope_theta=1e6),
]


@pytest.mark.parametrize("shape", SHAPES, ids=["3heads-theta1e4", "gqa-8q2kv", "mlp-ratio"])
def test_other_shapes_match_independent_derivation(shape):
    torch.manual_seed(0)
    config = MMaDAConfig(vocab_size=97, embedding_size=97, llm_vocab_size=80, new_vocab_size=97,
                         codebook_size=17, mask_token_id=70, init_std=0.2, **shape)
    model = MMaDAModelLM(config).eval()
    with torch.no_grad():  # non-trivial norm weights so a norm/weight-order bug would show
        for name, param in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("ln_f.weight"):
                param.uniform_(0.5, 1.5)
    ids = torch.randint(0, 97, (2, 19))
    mask = torch.ones_like(ids)
    mask[1, :6] = 0
    with torch.no_grad():
        plain = model(ids).logits.double()
        padded = model(ids, attention_mask=mask).logits.double()
    assert (plain - _naive_reference(model, ids, None)).abs().max().item() <= TOL
    keep = mask.bool()
    assert (padded - _naive_reference(model, ids, mask))[keep].abs().max().item() <= TOL


def test_bfloat16_stays_close_to_float32(golden_model, golden_forward):
    bf16 = MMaDAModelLM(golden_model.config)
    bf16.load_state_dict(golden_model.state_dict())
    bf16 = bf16.to(torch.bfloat16).eval()
    with torch.no_grad():
        ref = golden_model(golden_forward["input_ids"]).logits
        low = bf16(golden_forward["input_ids"]).logits.float()
    assert low.dtype == torch.float32
    assert (low - ref).abs().max().item() < 0.1 * ref.abs().max().item()
    assert (low.argmax(-1) == ref.argmax(-1)).float().mean().item() > 0.9


@pytest.mark.parametrize("segment", [(0, 24), (8, 16), (10, 24), (23, 24)])
def test_segment_forward_against_cache_equals_full_forward(golden_model, golden_forward, segment):
    ids, mask = golden_forward["input_ids"], golden_forward["attention_mask"]
    start, end = segment
    with torch.no_grad():
        full = golden_model(ids, attention_mask=mask, use_cache=True)
        part = golden_model(ids[:, start:end], attention_mask=mask, past_key_values=full.past_key_values,
                            cache_start=start)
    keep = mask.bool()[:, start:end]
    assert torch.allclose(part.logits[keep], full.logits[:, start:end][keep], atol=1e-6)


def test_stale_cache_is_used_outside_the_segment(golden_model, golden_forward):
    """Positions outside the segment come from the cache, so changing them without refreshing has no effect."""
    ids = golden_forward["input_ids"][:1]
    changed = ids.clone()
    changed[0, 20:] = 7
    with torch.no_grad():
        cache = golden_model(ids, use_cache=True).past_key_values
        stale = golden_model(changed[:, 4:12], past_key_values=cache, cache_start=4).logits
        fresh = golden_model(changed).logits[:, 4:12]
        reused = golden_model(ids).logits[:, 4:12]
    assert torch.allclose(stale, reused, atol=1e-6)
    assert not torch.allclose(stale, fresh, atol=1e-3)


def test_forward_refuses_labels(golden_model, golden_forward):
    with pytest.raises(ValueError, match="losses"):
        golden_model(golden_forward["input_ids"], labels=golden_forward["input_ids"])


def test_auto_classes_know_mmada(golden_dir):
    from transformers import AutoConfig

    import mmada_bench.model.modeling_mmada  # noqa: F401  (registers the classes)

    config = AutoConfig.from_pretrained(golden_dir / "mmada_tiny")
    assert type(config).__name__ == "MMaDAConfig"
    assert config.image_offset == 200 and config.mask_token_id == 190


def test_logits_range_equals_the_slice_of_full_logits(golden_model, golden_forward):
    ids, mask = golden_forward["input_ids"], golden_forward["attention_mask"]
    with torch.no_grad():
        full = golden_model(ids, attention_mask=mask).logits
        part = golden_model(ids, attention_mask=mask, logits_range=(8, 16)).logits
    assert part.shape == (2, 8, full.shape[-1])
    assert torch.allclose(part, full[:, 8:16], atol=1e-6)


def test_logits_positions_equal_the_gathered_full_logits(golden_model, golden_forward):
    ids, mask = golden_forward["input_ids"], golden_forward["attention_mask"]
    positions = torch.zeros_like(ids, dtype=torch.bool)
    positions[0, 3:9] = True
    positions[1, ::5] = True
    with torch.no_grad():
        full = golden_model(ids, attention_mask=mask).logits
        part = golden_model(ids, attention_mask=mask, logits_positions=positions).logits
    assert part.shape == (int(positions.sum()), full.shape[-1])
    assert torch.allclose(part, full[positions], atol=1e-6)


def test_logits_positions_must_be_bool_like_the_ids_and_not_combined_with_a_range(golden_model, golden_forward):
    ids = golden_forward["input_ids"]
    with pytest.raises(ValueError, match="bool tensor shaped like input_ids"):
        golden_model(ids, logits_positions=torch.ones_like(ids))
    with pytest.raises(ValueError, match="bool tensor shaped like input_ids"):
        golden_model(ids, logits_positions=torch.ones(ids.shape[0], 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="not both"):
        golden_model(ids, logits_range=(0, 4), logits_positions=torch.ones_like(ids, dtype=torch.bool))
