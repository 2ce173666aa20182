"""Fast text modes: equality where a mode is exact, bounded disagreement where it is approximate.

Exact cases: a KV cache with one step per block (every step is then a full forward), threshold
decoding whose threshold is never reached with one token per step, and the EOS stop up to the
stopping block. Approximate cases are measured on the golden tiny checkpoint, whose random weights
are the worst case for them: its top-2 logits differ by ~4e-3 while a stale cache moves logits by
~0.1 (see ``test_stale_cache_error_is_small_but_beats_random_top2_gaps``), so near-ties flip. The
floors below are the measured agreement minus a margin; they guard against regressions (a broken
cache gives ~1/vocab agreement on top of the shared first step) rather than promise quality.
"""

from __future__ import annotations

import pytest
import torch

from mmada_bench.sampling import SamplingStats, generate_text


@pytest.fixture(scope="module")
def prompts():
    return torch.randint(0, 180, (4, 16), generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def exact64(golden_model, prompts):
    return generate_text(golden_model, prompts, gen_length=64, steps=64, block_length=16)


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_cache_with_one_step_per_block_is_exact(golden_model, golden_text, cache):
    prompt, mask = golden_text["padded_prompt"], golden_text["padded_attention_mask"][:, :8]
    for cfg in (0.0, 1.0):
        exact = generate_text(golden_model, prompt, gen_length=32, steps=4, block_length=8, cfg_scale=cfg,
                              attention_mask=mask)
        stats = SamplingStats()
        fast = generate_text(golden_model, prompt, gen_length=32, steps=4, block_length=8, cfg_scale=cfg,
                             attention_mask=mask, cache=cache, stats=stats)
        assert torch.equal(fast, exact)
        assert stats.nfe == 4


class _Recorder(torch.nn.Module):
    """Wraps a model and records (segment length, cache_start, refreshes cache) of every forward."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.config, self.calls = inner, inner.config, []

    def forward(self, ids, **kw):
        self.calls.append((ids.shape[1], kw.get("cache_start", 0), bool(kw.get("use_cache"))))
        return self.inner(ids, **kw)


@pytest.mark.parametrize("cache,segment", [("prefix", lambda start: 40 - start), ("dual", lambda start: 8)])
def test_cache_refreshes_at_block_starts_and_recomputes_only_the_segment(golden_model, golden_text, cache, segment):
    model = _Recorder(golden_model)
    generate_text(model, golden_text["prompt"], gen_length=32, steps=8, block_length=8, cache=cache)
    expected = []
    for start in (8, 16, 24, 32):
        expected += [(40, 0, True), (segment(start), start, False)]
    assert model.calls == expected


def test_stale_cache_error_is_small_but_beats_random_top2_gaps(golden_model, prompts):
    x = torch.cat([prompts[:1], torch.full((1, 32), 190)], dim=1)
    with torch.inference_mode():
        full = golden_model(x, use_cache=True)
        x2 = x.clone()
        x2[:, 16:20] = full.logits[:, 16:20].argmax(-1)  # fill half of the first block
        fresh = golden_model(x2).logits[0, 20:24]
        prefix = golden_model(x2[:, 16:], past_key_values=full.past_key_values, cache_start=16).logits[0, 4:8]
    err = (prefix - fresh).abs().max().item()
    gap = fresh.topk(2).values.diff().abs().mean().item()
    assert err < 0.2 * fresh.std().item()  # staleness is a small perturbation of the logits ...
    assert gap < err  # ... yet larger than the random model's top-2 gaps


@pytest.mark.parametrize("cache,floor", [("prefix", 0.35), ("dual", 0.25)])
def test_cache_disagreement_is_bounded(golden_model, prompts, exact64, cache, floor):
    stats = SamplingStats()
    fast = generate_text(golden_model, prompts, gen_length=64, steps=64, block_length=16, cache=cache, stats=stats)
    agreement = (fast[:, 16:] == exact64[:, 16:]).float().mean().item()
    assert agreement >= floor  # measured: prefix 0.47, dual 0.38
    assert stats.nfe == 64
    assert not (fast == 190).any()


def test_threshold_never_reached_equals_exact(golden_model, prompts, exact64):
    # the tiny model's probabilities stay far below 0.5, so one token (the best) moves per step
    stats = SamplingStats()
    fast = generate_text(golden_model, prompts, gen_length=64, steps=64, block_length=16, threshold=0.5, stats=stats)
    assert torch.equal(fast, exact64)
    assert stats.nfe == 64


def test_threshold_transfers_every_confident_token(golden_model, prompts, exact64):
    # A threshold below every confidence decodes each block in one step: only the first step's
    # predictions, made from the same full forward as exact mode's first step, are used.
    stats = SamplingStats()
    fast = generate_text(golden_model, prompts, gen_length=64, steps=64, block_length=16, threshold=1e-9,
                         stats=stats)
    assert stats.nfe == 4
    assert not (fast == 190).any()
    with torch.inference_mode():
        x = torch.cat([prompts, torch.full((4, 64), 190)], dim=1)
        first = golden_model(x).logits[:, 16:32].argmax(-1)
    assert torch.equal(fast[:, 16:32], first)
    agreement = (fast[:, 16:] == exact64[:, 16:]).float().mean().item()
    assert agreement >= 0.15  # measured 0.23: all-at-once decoding is the crudest approximation


def test_threshold_with_dual_cache(golden_model, prompts, exact64):
    stats = SamplingStats()
    fast = generate_text(golden_model, prompts, gen_length=64, steps=64, block_length=16, threshold=0.02,
                         cache="dual", stats=stats)
    assert not (fast == 190).any()
    assert 4 <= stats.nfe < 64
    assert (fast[:, 16:] == exact64[:, 16:]).float().mean().item() >= 0.15  # measured 0.29


def test_stop_at_eos_is_exact_up_to_the_stopping_block(golden_model, golden_text):
    prompt = golden_text["prompt"]
    exact = generate_text(golden_model, prompt, gen_length=32, steps=32, block_length=8)
    # pretend the token both rows end their first block with is EOS
    end = 8 + 8 - 1
    assert exact[0, end] == exact[1, end]
    eos = int(exact[0, end])
    stats = SamplingStats()
    fast = generate_text(golden_model, prompt, gen_length=32, steps=32, block_length=8, stop_at_eos=True,
                         eos_id=eos, stats=stats)
    assert torch.equal(fast[:, : end + 1], exact[:, : end + 1])
    assert (fast[:, end + 1 :] == eos).all()
    assert stats.nfe == 8
    assert (stats.generated_tokens, stats.decoded_tokens) == (64, 16)
    # no early stop when the rows disagree: identical to exact mode
    other = generate_text(golden_model, prompt, gen_length=32, steps=32, block_length=8, stop_at_eos=True)
    assert torch.equal(other, exact)
