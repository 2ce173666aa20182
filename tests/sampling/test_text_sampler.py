"""Text sampler: exact mode against the reference's golden outputs, batching, RNG order, errors.

Golden: ``text_generate.safetensors`` (reference LLaDA block diffusion on the tiny checkpoint,
cases in meta.json), token for token. Temperature > 0 and random remasking have no golden file,
so :func:`reference_generate` below restates the reference loop (spec §4.1) literally -- whole
sequence, whole vocabulary, per-row top-k -- and exact mode must match it draw for draw.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmada_bench.errors import ConfigError
from mmada_bench.sampling import SamplingStats, check_text_schedule, generate_text

MASK = 190
EOS = 191



def _case_inputs(golden_text, name):
    if name.startswith("padded"):
        return golden_text["padded_prompt"], golden_text["padded_attention_mask"]
    return golden_text["prompt"], None


def reference_generate(model, prompt, steps, gen_length, block_length, temperature, remasking, generator):
    """The reference's loop, written out as it is (batch rows looped for top-k, noise over everything)."""
    x = torch.full((prompt.shape[0], prompt.shape[1] + gen_length), MASK, dtype=torch.long)
    x[:, : prompt.shape[1]] = prompt
    per_block = steps // (gen_length // block_length)
    for b in range(gen_length // block_length):
        lo = prompt.shape[1] + b * block_length
        m = (x[:, lo : lo + block_length] == MASK).sum(dim=1, keepdim=True)
        sched = torch.zeros(x.shape[0], per_block, dtype=torch.int64) + m // per_block
        for r in range(x.shape[0]):
            sched[r, : int(m[r] % per_block)] += 1
        for i in range(per_block):
            masked = x == MASK
            logits = model(x).logits
            if temperature > 0:
                noise = torch.rand(logits.shape, dtype=torch.float64, generator=generator)
                x0 = torch.argmax(logits.to(torch.float64).exp() / (-torch.log(noise)) ** temperature, dim=-1)
            else:
                x0 = torch.argmax(logits, dim=-1)
            if remasking == "low_confidence":
                conf = torch.gather(F.softmax(logits.to(torch.float64), -1), -1, x0[..., None]).squeeze(-1)
            else:
                conf = torch.rand(x0.shape, generator=generator)
            conf[:, lo + block_length :] = -np.inf
            x0 = torch.where(masked, x0, x)
            conf = torch.where(masked, conf, -np.inf)
            chosen = torch.zeros_like(x0, dtype=torch.bool)
            for r in range(x.shape[0]):
                chosen[r, torch.topk(conf[r], k=int(sched[r, i])).indices] = True
            x[chosen] = x0[chosen]
    return x


@pytest.mark.parametrize(
    "name", ["blocks2_steps16", "block1_steps8", "blocks4_steps8", "blocks2_steps16_cfg1", "padded_blocks2_steps16"]
)
def test_exact_mode_equals_golden(golden_model, golden_text, golden_meta, name):
    case = golden_meta["text_generate_cases"][name]
    prompt, mask = _case_inputs(golden_text, name)
    stats = SamplingStats()
    out = generate_text(golden_model, prompt, gen_length=case["gen_length"], steps=case["steps"],
                        block_length=case["block_length"], temperature=case["temperature"],
                        cfg_scale=case["cfg_scale"], remasking=case["remasking"], attention_mask=mask,
                        mask_id=case["mask_id"], stats=stats)
    assert out.dtype == torch.long
    assert torch.equal(out, golden_text[name])
    # one forward per step (a CFG pair is one batched forward), every position generated
    assert stats.nfe == case["steps"]
    assert stats.generated_tokens == stats.decoded_tokens == 2 * case["gen_length"]
    assert stats.calls == 1 and stats.seconds > 0


def test_prompt_only_mask_is_extended_over_the_generation(golden_model, golden_text):
    out = generate_text(golden_model, golden_text["padded_prompt"], gen_length=16, steps=16, block_length=8,
                        attention_mask=golden_text["padded_attention_mask"][:, :8])
    assert torch.equal(out, golden_text["padded_blocks2_steps16"])


def test_batch_rows_equal_each_prompt_alone(golden_model, golden_text):
    prompt, mask = golden_text["padded_prompt"], golden_text["padded_attention_mask"]
    batch = golden_text["padded_blocks2_steps16"]
    for row in range(2):
        alone = generate_text(golden_model, prompt[row : row + 1], gen_length=16, steps=16, block_length=8,
                              attention_mask=mask[row : row + 1])
        assert torch.equal(alone[0], batch[row])
    # The padded row also equals its unpadded prompt run alone: RoPE is relative, so removing the
    # pads shifts every position by the same amount (equal here; in general equal up to rounding).
    unpadded = generate_text(golden_model, prompt[1:, 3:], gen_length=16, steps=16, block_length=8)
    assert torch.equal(unpadded[0, 5:], batch[1, 8:])


def test_cfg_with_padded_batch(golden_model, golden_text):
    prompt, mask = golden_text["padded_prompt"], golden_text["padded_attention_mask"]
    out = generate_text(golden_model, prompt, gen_length=16, steps=16, block_length=8, cfg_scale=1.0,
                        attention_mask=mask)
    # row 0 has no padding: it must equal the reference's (unmasked, batch) CFG output
    assert torch.equal(out[0], golden_text["blocks2_steps16_cfg1"][0])
    alone = generate_text(golden_model, prompt[1:], gen_length=16, steps=16, block_length=8, cfg_scale=1.0,
                          attention_mask=mask[1:])
    assert torch.equal(out[1], alone[0])
    assert torch.equal(out[1, :3], prompt[1, :3])  # pads stay pads


@pytest.mark.parametrize("temperature,remasking", [(1.0, "low_confidence"), (0.7, "random"), (0.0, "random")])
def test_seeded_sampling_matches_reference_draw_for_draw(golden_model, golden_text, temperature, remasking):
    prompt = golden_text["prompt"]
    with torch.inference_mode():
        ref = reference_generate(golden_model, prompt, 8, 16, 8, temperature, remasking,
                                 torch.Generator().manual_seed(7))
    ours = generate_text(golden_model, prompt, gen_length=16, steps=8, block_length=8, temperature=temperature,
                         remasking=remasking, generator=torch.Generator().manual_seed(7))
    assert torch.equal(ours, ref)
    # the global generator is used when none is given, as in the reference
    torch.manual_seed(7)
    assert torch.equal(generate_text(golden_model, prompt, gen_length=16, steps=8, block_length=8,
                                     temperature=temperature, remasking=remasking), ref)


def test_noop_steps_are_skipped_only_when_nothing_random_is_drawn(golden_model, golden_text):
    # 2 blocks of 4 tokens with 8 steps each: steps 5-8 of each block transfer nothing
    prompt = golden_text["prompt"]
    greedy, sampled = SamplingStats(), SamplingStats()
    a = generate_text(golden_model, prompt, gen_length=8, steps=16, block_length=4, stats=greedy)
    b = generate_text(golden_model, prompt, gen_length=8, steps=8, block_length=4)
    assert torch.equal(a, b)
    assert greedy.nfe == 8
    generate_text(golden_model, prompt, gen_length=8, steps=16, block_length=4, temperature=1.0,
                  generator=torch.Generator().manual_seed(0), stats=sampled)
    assert sampled.nfe == 16  # the reference's draws (and forwards) are kept


def test_check_text_schedule_names_nearest_valid_values():
    assert check_text_schedule(256, 256, 32) == (8, 32)
    with pytest.raises(ConfigError, match=r"nearest valid block_length is 25 or 50.*gen_length 96 or 128"):
        check_text_schedule(100, 100, 32)
    with pytest.raises(ConfigError, match=r"nearest valid steps is 96 or 104"):
        check_text_schedule(256, 100, 32)
    with pytest.raises(ConfigError, match=r"nearest valid steps is 8\b"):
        check_text_schedule(256, 3, 32)
    with pytest.raises(ConfigError, match="positive integer"):
        check_text_schedule(0, 8, 8)
    with pytest.raises(ConfigError, match="longer than gen_length"):
        check_text_schedule(16, 8, 32)


def test_generate_text_rejects_bad_inputs(golden_model, golden_text):
    prompt = golden_text["prompt"]
    kw = dict(gen_length=16, steps=16, block_length=8)
    with pytest.raises(ConfigError, match="nearest valid"):
        generate_text(golden_model, prompt, gen_length=16, steps=15, block_length=8)
    with pytest.raises(ConfigError, match="remasking"):
        generate_text(golden_model, prompt, remasking="top_p", **kw)
    with pytest.raises(ConfigError, match="cache"):
        generate_text(golden_model, prompt, cache="full", **kw)
    with pytest.raises(ConfigError, match="threshold"):
        generate_text(golden_model, prompt, threshold=1.5, **kw)
    with pytest.raises(ConfigError, match="mask token id 190"):
        generate_text(golden_model, torch.tensor([[1, 2, MASK, 3]]), **kw)
    with pytest.raises(ConfigError, match="attention_mask must be"):
        generate_text(golden_model, prompt, attention_mask=torch.ones(2, 5, dtype=torch.long), **kw)
    with pytest.raises(ConfigError, match="only 0 and 1"):
        generate_text(golden_model, prompt, attention_mask=torch.full((2, 8), 2), **kw)


def test_stats_accumulate_over_calls(golden_model, golden_text):
    stats = SamplingStats()
    for _ in range(2):
        generate_text(golden_model, golden_text["prompt"], gen_length=16, steps=8, block_length=8, stats=stats)
    assert (stats.nfe, stats.generated_tokens, stats.calls) == (16, 64, 2)
    d = stats.as_dict()
    assert d["tokens_per_second"] == pytest.approx(64 / stats.seconds)
    assert d["nfe_per_call"] == 8.0
    total = SamplingStats(nfe=1, generated_tokens=2, decoded_tokens=2, seconds=0.5, calls=1).merge(stats)
    assert (total.nfe, total.generated_tokens, total.calls) == (17, 66, 3)
    assert total.seconds == pytest.approx(stats.seconds + 0.5)
    assert SamplingStats().tokens_per_second == 0.0


class _Recorder(torch.nn.Module):
    """Wraps a model and keeps the input ids of every forward."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.config, self.inputs = inner, inner.config, []

    def forward(self, ids, **kw):
        self.inputs.append(ids.clone())
        return self.inner(ids, **kw)


def test_mmu_prompt_with_image_prefix_and_cfg(golden_model):
    # <|mmu|> <|soi|> 4 image ids <|eoi|> <bos> question: the image prefix is ordinary prompt; the
    # unconditional branch of CFG masks it together with the text (spec §4.2)
    prompt = torch.tensor([[181, 182, 205, 230, 212, 263, 183, 192, 11, 12, 13]])
    model = _Recorder(golden_model)
    out = generate_text(model, prompt, gen_length=8, steps=4, block_length=8, cfg_scale=2.0)
    assert torch.equal(out[:, :11], prompt) and not (out == MASK).any()
    first = model.inputs[0]
    assert first.shape == (2, 19)
    assert torch.equal(first[0, :11], prompt[0]) and (first[1, :11] == MASK).all()
    assert (first[:, 11:] == MASK).all()
