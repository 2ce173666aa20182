"""The Monte Carlo log-likelihood against exact values on the golden tiny model.

* one-token continuations: the estimate *is* the exact log-probability (any mc_num);
* longer continuations: the estimate converges to the exact expectation, computed by enumerating
  every mask pattern. Stated tolerance: with mc_num = 1024 the estimate is within 2% of the exact
  value (and within 4 standard errors), and its error shrinks as mc_num grows.
"""

from __future__ import annotations

import statistics

import pytest
import torch
import torch.nn.functional as F

from mmada_bench.sampling.likelihood import (
    expected_loglikelihood,
    mc_loglikelihood,
    single_token_logprobs,
    stratified_mask_counts,
)

MASK, PAD = 190, 191


@pytest.fixture(scope="module")
def logits_fn(golden_model):
    return lambda ids, mask: golden_model(ids, attention_mask=mask).logits


PREFIX = [192, 11, 42, 7, 99, 3, 150, 60]
TARGET = [17, 88, 4, 120]


@pytest.mark.parametrize(("length", "rows"), [(1, 8), (3, 2), (3, 3), (4, 4), (5, 3), (7, 4), (4, 8)])
def test_stratified_counts_give_every_row_a_uniform_count(length, rows):
    per_row = torch.stack([stratified_mask_counts(k, length, rows) for k in range(1, length + 1)])
    for row in range(rows):
        assert sorted(per_row[:, row].tolist()) == list(range(1, length + 1))


def test_one_token_continuation_is_exact(logits_fn, golden_model):
    with torch.inference_mode():
        logits = golden_model(torch.tensor([PREFIX + [MASK]])).logits[0, -1]
    exact = float(F.log_softmax(logits.float(), -1)[TARGET[0]])
    for mc_num, mc_batch in ((1, 1), (16, 8)):
        value, forwards = mc_loglikelihood(logits_fn, PREFIX, TARGET[:1], mask_id=MASK, mc_num=mc_num,
                                           mc_batch=mc_batch, generator=torch.Generator().manual_seed(0))
        assert value == pytest.approx(exact, abs=1e-5)
    assert expected_loglikelihood(logits_fn, PREFIX, TARGET[:1], mask_id=MASK) == pytest.approx(exact, abs=1e-5)


def test_batched_exact_pass_matches_single_rows_despite_padding(logits_fn):
    items = [(PREFIX, 17), (PREFIX[:3], 5), (PREFIX[2:] + [9, 9, 9], 130)]
    batched = single_token_logprobs(logits_fn, items, mask_id=MASK, pad_id=PAD)
    for item, (value, greedy) in zip(items, batched, strict=True):
        alone, alone_greedy = single_token_logprobs(logits_fn, [item], mask_id=MASK, pad_id=PAD)[0]
        assert value == pytest.approx(alone, abs=1e-5)
        assert greedy == alone_greedy
    guided = single_token_logprobs(logits_fn, items, mask_id=MASK, pad_id=PAD, cfg=0.5)
    guided_alone = single_token_logprobs(logits_fn, items[1:2], mask_id=MASK, pad_id=PAD, cfg=0.5)
    assert guided[1][0] == pytest.approx(guided_alone[0][0], abs=1e-5)
    assert guided[1][0] != pytest.approx(batched[1][0], abs=1e-3)  # guidance changes the score


def test_estimate_converges_to_the_exact_expectation(logits_fn):
    exact = expected_loglikelihood(logits_fn, PREFIX, TARGET, mask_id=MASK)

    def errors(mc_num: int, mc_batch: int) -> list[float]:
        return [
            mc_loglikelihood(logits_fn, PREFIX, TARGET, mask_id=MASK, mc_num=mc_num, mc_batch=mc_batch,
                             generator=torch.Generator().manual_seed(seed))[0] - exact
            for seed in range(6)
        ]

    small = errors(4, 4)
    large = errors(1024, 64)
    assert statistics.fmean(abs(e) for e in large) < statistics.fmean(abs(e) for e in small)
    assert max(abs(e) for e in large) < 0.02 * abs(exact)
    spread = statistics.stdev(small) / (1024 / 4) ** 0.5  # standard error expected at mc_num=1024
    assert abs(statistics.fmean(large)) < 4 * spread + 1e-3


def test_guided_estimate_converges_too(logits_fn):
    exact = expected_loglikelihood(logits_fn, PREFIX, TARGET[:2], mask_id=MASK, cfg=0.5)
    unguided = expected_loglikelihood(logits_fn, PREFIX, TARGET[:2], mask_id=MASK)
    value, forwards = mc_loglikelihood(logits_fn, PREFIX, TARGET[:2], mask_id=MASK, mc_num=512, mc_batch=64,
                                       cfg=0.5, generator=torch.Generator().manual_seed(3))
    assert forwards == 8
    assert value == pytest.approx(exact, rel=0.02)
    assert abs(exact - unguided) > 0.01


def test_same_seed_same_estimate_and_mc_num_must_divide(logits_fn):
    def run(seed):
        return mc_loglikelihood(logits_fn, PREFIX, TARGET, mask_id=MASK, mc_num=16, mc_batch=8,
                                generator=torch.Generator().manual_seed(seed))[0]

    assert run(5) == run(5)
    assert run(5) != run(6)
    with pytest.raises(ValueError, match="multiple"):
        mc_loglikelihood(logits_fn, PREFIX, TARGET, mask_id=MASK, mc_num=10, mc_batch=4)
