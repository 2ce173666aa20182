"""The MMaDA adapter on the tiny preset: batching, seeding, stop strings, log-likelihood, images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmada_bench.adapters.base import (
    ImageQuestion,
    ImageRequest,
    LoglikelihoodRequest,
    TextRequest,
    apply_until,
)
from mmada_bench.adapters.settings import ImageSettings, TextSettings
from mmada_bench.errors import ConfigError

FAST = TextSettings(gen_length=16, steps=8, block_length=8)
PROMPTS = ["Question: What is 2+2?\nAnswer:", "Hi", "A much longer prompt about numbers: 1, 2, 3, 4, 5, 6."]


def test_greedy_generation_does_not_depend_on_batch_composition(tiny_adapter):
    together = tiny_adapter.generate_text([TextRequest(p) for p in PROMPTS], FAST)
    alone = [tiny_adapter.generate_text([TextRequest(p)], FAST)[0] for p in PROMPTS]
    assert [r.raw_text for r in together] == [r.raw_text for r in alone]
    assert together[0].cost.nfe == 8 and together[0].cost.tokens == 16


def test_stochastic_generation_is_seeded_per_request(tiny_adapter):
    hot = FAST.updated({"temperature": 1.0})
    first = tiny_adapter.generate_text([TextRequest(PROMPTS[0], seed=1), TextRequest(PROMPTS[1], seed=2)], hot)
    again = tiny_adapter.generate_text([TextRequest(PROMPTS[1], seed=2), TextRequest(PROMPTS[0], seed=1)], hot)
    assert first[0].raw_text == again[1].raw_text and first[1].raw_text == again[0].raw_text
    other = tiny_adapter.generate_text([TextRequest(PROMPTS[0], seed=99)], hot)[0]
    greedy = tiny_adapter.generate_text([TextRequest(PROMPTS[0])], FAST)[0]
    assert {other.raw_text, greedy.raw_text} != {first[0].raw_text}


def test_until_cuts_the_text_and_raw_text_is_kept(tiny_adapter):
    raw = tiny_adapter.generate_text([TextRequest(PROMPTS[0])], FAST)[0].raw_text
    assert len(raw) > 2
    stop = raw[1:3]
    cut = tiny_adapter.generate_text([TextRequest(PROMPTS[0], until=(stop,))], FAST)[0]
    assert cut.raw_text == raw and cut.text == raw[: raw.find(stop)]
    assert apply_until("abcQ:def", ["Q:", "c"]) == "ab"


def test_chat_template_wraps_the_prompt(tiny_adapter):
    plain = tiny_adapter.render_prompt("hello", FAST)
    chat = tiny_adapter.render_prompt("hello", FAST.updated({"chat": True}))
    special = tiny_adapter.special
    assert plain[0] == special.bos and plain.count(special.bos) == 1
    assert chat[0] == special.bos and chat.count(special.bos) == 1
    assert chat[1] == special.start_header and chat[-1] != plain[-1]
    assert special.eot_id in chat and chat.count(special.end_header) == 2


def test_bad_schedule_is_a_config_error(tiny_adapter):
    with pytest.raises(ConfigError, match="gen_length=16 is not a multiple of block_length=6"):
        tiny_adapter.generate_text([TextRequest("x")], FAST.updated({"block_length": 6}))


def test_single_token_loglikelihood_is_the_exact_masked_log_probability(tiny_adapter):
    settings = TextSettings(mc_num=4, mc_batch=4)
    context, continuation = "The answer is", " A"
    prefix, cont = tiny_adapter._encode_pair(context, continuation)
    assert len(cont) == 1
    ids = torch.tensor([prefix + [tiny_adapter.special.mask]])
    with torch.inference_mode():
        logits = tiny_adapter.model(ids).logits[0, -1]
    exact = float(F.log_softmax(logits.float(), -1)[cont[0]])
    results = tiny_adapter.loglikelihood(
        [LoglikelihoodRequest(context, continuation), LoglikelihoodRequest("Other, longer context here:", " B")], settings
    )
    assert results[0].logprob == pytest.approx(exact, abs=1e-5)
    assert results[0].cost.nfe == 1


def test_multi_token_loglikelihood_is_seeded_per_request(tiny_adapter):
    settings = TextSettings(mc_num=8, mc_batch=4, cfg=0.5)
    a = LoglikelihoodRequest("Context:", " several tokens long", seed=7)
    b = LoglikelihoodRequest("Another:", " also several tokens", seed=8)
    first = tiny_adapter.loglikelihood([a, b], settings)
    second = tiny_adapter.loglikelihood([b, a], settings)
    assert first[0].logprob == second[1].logprob and first[1].logprob == second[0].logprob
    assert first[0].cost.nfe == 2 and first[0].logprob < 0
    assert tiny_adapter.loglikelihood([LoglikelihoodRequest("Context:", " several tokens long", seed=9)],
                                      settings)[0].logprob != first[0].logprob


def test_identity_changes_with_dtype_and_describe_names_the_checkpoint(tiny_adapter, tiny_path):
    ident = tiny_adapter.identity()
    assert len(ident["checkpoint_fingerprint"]) == 64
    described = tiny_adapter.describe()
    assert described["path"] == str(tiny_path) and described["num_parameters"] > 0
    assert set(tiny_adapter.capabilities()) == {
        "loglikelihood", "loglikelihood_rolling", "generate_text", "answer_about_image", "generate_images"}


def test_image_capabilities_run_on_the_tiny_preset(tiny_adapter):
    image = np.full((64, 64, 3), 200, dtype=np.uint8)
    answer = tiny_adapter.answer_about_image([ImageQuestion(image, "What colour is it?")], FAST)[0]
    assert isinstance(answer.text, str) and answer.cost.nfe == 8
    settings = ImageSettings(timesteps=3, max_text_len=16)
    first = tiny_adapter.generate_images([ImageRequest("a red ball", seed=3)], settings)[0]
    again = tiny_adapter.generate_images([ImageRequest("a red ball", seed=3)], settings)[0]
    assert first.image.size == (64, 64)
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    assert first.cost.nfe == 3


def test_rolling_loglikelihood_sums_windows_and_is_seeded(tiny_adapter):
    text = "The quick brown fox jumps over the lazy dog. " * 3
    short = TextSettings(mc_num=4, mc_batch=4, max_length=16)
    one = tiny_adapter.loglikelihood_rolling([LoglikelihoodRequest("", text, seed=1)], short)[0]
    again = tiny_adapter.loglikelihood_rolling([LoglikelihoodRequest("", text, seed=1)], short)[0]
    n_tokens = len(tiny_adapter._encode(text))
    assert one.logprob == again.logprob < 0
    assert one.cost.nfe == -(-n_tokens // 8)  # one MC pass per 8-token window (max_length // 2)
    whole = tiny_adapter.loglikelihood_rolling([LoglikelihoodRequest("", text, seed=1)],
                                               short.updated({"max_length": 4096}))[0]
    assert whole.cost.nfe == 1 and whole.logprob != one.logprob


@pytest.mark.parametrize("guidance", [0.0, 2.0])
def test_batched_images_equal_one_at_a_time_bitwise(tiny_adapter, guidance):
    """One sampler call over 3 requests (cond + uncond rows in one batch with guidance) gives each
    request exactly the image it gets alone: per-row generators, batch-invariant math."""
    settings = ImageSettings(timesteps=3, max_text_len=16, guidance_scale=guidance)
    requests = [ImageRequest("a red ball", seed=3), ImageRequest("two cats on a long sofa", seed=11),
                ImageRequest("a red ball", seed=4)]
    batched = tiny_adapter.generate_images(requests, settings)
    alone = [tiny_adapter.generate_images([r], settings)[0] for r in requests]
    assert len(batched) == 3
    for b, a in zip(batched, alone, strict=True):
        assert np.array_equal(np.asarray(b.image), np.asarray(a.image))
        assert b.cost.nfe == a.cost.nfe == 3 and b.cost.tokens == 16
    # different seeds of one prompt give different images (the generators really are per row)
    assert not np.array_equal(np.asarray(batched[0].image), np.asarray(batched[2].image))


def test_t2i_text_budget_is_the_setting_else_the_checkpoints_else_512(tiny_adapter, monkeypatch):
    config = tiny_adapter.bundle.config
    assert not hasattr(config, "t2i_max_text_len")  # a released-style checkpoint
    assert tiny_adapter.t2i_text_budget(ImageSettings()) == 512
    monkeypatch.setattr(config, "t2i_max_text_len", 32, raising=False)
    assert tiny_adapter.t2i_text_budget(ImageSettings()) == 32
    assert tiny_adapter.t2i_text_budget(ImageSettings(max_text_len=16)) == 16
