"""Text-to-image sampler and schedules against the reference's golden vectors.

Golden (``t2i_generate.safetensors``, meta.json): step-0 guided logits over the image-code slice
(<= 1e-4), codes of 4- and 8-step runs with ``Generator().manual_seed(1234)`` (equal), the cosine
mask schedule (``t2i.mask_len_per_step``) and the text transfer schedule (``num_transfer_tokens``).
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from mmada_bench.errors import ConfigError
from mmada_bench.sampling import (
    SamplingStats,
    generate_image,
    guided_image_logits,
    image_mask_lengths,
    image_mask_ratio,
    infer_image_layout,
    transfer_counts,
)


@pytest.fixture(scope="module")
def t2i(golden_dir):
    return load_file(str(golden_dir / "t2i_generate.safetensors"))


def _inputs(t2i):
    return t2i["input_ids"], t2i["uncond_input_ids"], t2i["attention_mask"], t2i["uncond_attention_mask"]


@pytest.mark.parametrize("batch_cfg", [True, False])
def test_step0_guided_logits_match_reference(golden_model, t2i, batch_cfg):
    stats = SamplingStats()
    logits = guided_image_logits(golden_model, *_inputs(t2i), guidance_scale=3.5, batch_cfg=batch_cfg, stats=stats)
    assert logits.shape == (2, 16, 64)
    assert (logits - t2i["step0_guided_image_logits"]).abs().max().item() <= 1e-4
    assert stats.nfe == (1 if batch_cfg else 2)


@pytest.mark.parametrize("steps", [4, 8])
@pytest.mark.parametrize("batch_cfg", [True, False])
def test_codes_match_reference_with_seeded_generator(golden_model, t2i, steps, batch_cfg):
    cond = t2i["input_ids"].clone()
    stats = SamplingStats()
    codes = generate_image(golden_model, *_inputs(t2i), timesteps=steps, guidance_scale=3.5, temperature=1.0,
                           generator=torch.Generator().manual_seed(1234), batch_cfg=batch_cfg, stats=stats)
    assert torch.equal(codes, t2i[f"codes_steps{steps}_seed1234"])
    assert torch.equal(t2i["input_ids"], cond)  # the caller's tensor is not edited (the reference's is)
    assert stats.nfe == steps * (1 if batch_cfg else 2)
    assert (stats.generated_tokens, stats.calls) == (32, 1)


def test_generator_is_consumed_in_reference_order(golden_model, t2i):
    # per step: one multinomial over (B*N, K), then one uniform (B, N) -- so after the call the
    # generator is where that sequence of draws leaves it
    gen = torch.Generator().manual_seed(5)
    generate_image(golden_model, *_inputs(t2i), timesteps=3, guidance_scale=3.5, generator=gen)
    replay = torch.Generator().manual_seed(5)
    probs = torch.full((32, 64), 1 / 64)
    for _ in range(3):
        torch.multinomial(probs, 1, generator=replay)
        torch.zeros(2, 16).uniform_(0, 1, generator=replay)
    assert torch.equal(gen.get_state(), replay.get_state())


def test_uncond_text_part_of_any_length(golden_model, t2i):
    # The reference splices the first `resolution + 1` uncond tokens; we splice the uncond text part
    # (everything before <|soi|>) whatever its length. Drop the 9 left pads: same logits up to rounding.
    cond, uncond, cmask, umask = _inputs(t2i)
    short, short_mask = uncond[:, 9:], umask[:, 9:]
    assert short_mask.all()
    for batch_cfg in (True, False):
        logits = guided_image_logits(golden_model, cond, short, cmask, None, guidance_scale=3.5, batch_cfg=batch_cfg)
        assert (logits - t2i["step0_guided_image_logits"]).abs().max().item() <= 1e-4
    codes = generate_image(golden_model, cond, short, cmask, short_mask, timesteps=4, guidance_scale=3.5,
                           generator=torch.Generator().manual_seed(1234))
    assert torch.equal(codes, t2i["codes_steps4_seed1234"])


def test_unguided_and_schedules(golden_model, t2i):
    cond, _, cmask, _ = _inputs(t2i)
    for schedule in ("cosine", "linear", "pow2", "sigmoid"):
        stats = SamplingStats()
        codes = generate_image(golden_model, cond, None, cmask, None, timesteps=5, guidance_scale=0.0,
                               schedule=schedule, generator=torch.Generator().manual_seed(0), stats=stats)
        assert codes.shape == (2, 16) and codes.dtype == torch.long
        assert 0 <= int(codes.min()) and int(codes.max()) < 64
        assert stats.nfe == 5


def test_layout_inference(t2i):
    assert infer_image_layout(t2i["input_ids"], 190, 200, 64) == 16
    partly_known = t2i["input_ids"].clone()
    partly_known[:, 13:20] = 200 + 5  # image ids count as image positions (inpainting)
    assert infer_image_layout(partly_known, 190, 200, 64) == 16
    ragged = t2i["input_ids"].clone()
    ragged[1, 13] = 183
    with pytest.raises(ConfigError, match="same N"):
        infer_image_layout(ragged, 190, 200, 64)


def test_image_rejects_bad_inputs(golden_model, t2i):
    cond, uncond, cmask, umask = _inputs(t2i)
    with pytest.raises(ConfigError, match="needs uncond_ids"):
        generate_image(golden_model, cond, None, cmask, None, timesteps=4, guidance_scale=3.5)
    with pytest.raises(ConfigError, match="unknown image schedule"):
        generate_image(golden_model, cond, uncond, cmask, umask, timesteps=4, guidance_scale=3.5, schedule="cos")
    with pytest.raises(ConfigError, match="timesteps"):
        generate_image(golden_model, cond, uncond, cmask, umask, timesteps=0, guidance_scale=3.5)
    with pytest.raises(ConfigError, match="cond_mask shape"):
        generate_image(golden_model, cond, uncond, cmask[:, 1:], umask, timesteps=4, guidance_scale=3.5)


@pytest.mark.parametrize("steps", ["4", "8", "15", "50"])
def test_cosine_mask_schedule_matches_reference(golden_meta, steps):
    assert image_mask_lengths(16, int(steps)) == golden_meta["t2i"]["mask_len_per_step"][steps]


def test_other_mask_schedules():
    assert image_mask_ratio("linear", 0.25).item() == pytest.approx(0.75)
    assert image_mask_ratio("linear", 1.0).item() == pytest.approx(1e-6)
    assert image_mask_ratio("pow2", 0.5).item() == pytest.approx(0.75)
    assert image_mask_ratio("sigmoid", 0.0).item() == pytest.approx(1.0)
    assert image_mask_ratio("sigmoid", 0.5).item() == pytest.approx(0.5)
    assert image_mask_ratio("cosine", 1.0).item() < 0  # float32 cos(pi/2): floor gives -1, clamped to 1
    assert image_mask_lengths(16, 4, "linear") == [12, 8, 4, 1]
    with pytest.raises(ConfigError, match="'pow' must be followed by a number"):
        image_mask_ratio("powx", 0.5)


@pytest.mark.parametrize("key", ["7_3", "16_16", "16_5", "1_4"])
def test_text_transfer_schedule_matches_reference(golden_meta, key):
    masks, steps = map(int, key.split("_"))
    assert transfer_counts(masks, steps)[0].tolist() == golden_meta["num_transfer_tokens"][key]
    batch = transfer_counts(torch.tensor([masks, masks + 1]), steps)
    assert batch.sum(dim=1).tolist() == [masks, masks + 1]
