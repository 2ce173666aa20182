"""UniGRPO pieces against dLLM-RL's golden vectors (tests/fixtures/golden/unigrpo/README.md).

Tolerances are the README's: ids/masks equal; advantages abs 1e-12 (f64); per-token ρ, clip(ρ),
surrogate, k3 rel 1e-6 from the recorded log-probs and abs 1e-4 end to end; per-row values rel 1e-5;
scalars rel 1e-6 from recorded log-probs, rel 1e-5 (+ abs 1e-7) end to end; gradient norms rel 1e-4;
the lm-head gradient max abs diff <= 1e-4 · max|g|.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from mmada_bench.model import MMaDAModelLM
from mmada_bench.train.grpo import (
    MaskedRows,
    UniGRPOConfig,
    build_masked_rows,
    clipped_surrogate,
    draw_mask_ratios,
    group_advantages,
    informative_groups,
    model_logits_fn,
    noise_responses,
    old_logprobs,
    pack_rollouts,
    response_tail_mask,
    unigrpo_loss,
    unigrpo_step_loss,
)

MASK_ID, EOS_ID = 190, 191
VARIANTS = {"random_masking": "", "coupled": "coupled."}


@pytest.fixture(scope="module")
def gdir(golden_dir):
    return golden_dir / "unigrpo"


@pytest.fixture(scope="module")
def gmeta(gdir) -> dict:
    return json.loads((gdir / "meta.json").read_text())


@pytest.fixture(scope="module")
def gold(gdir) -> dict[str, torch.Tensor]:
    return load_file(str(gdir / "unigrpo.safetensors"))


def _rel(x: torch.Tensor, y: torch.Tensor) -> float:
    return ((x - y).abs() / y.abs().clamp(min=1e-30)).max().item()


def _golden_rows(gold, gmeta, method: str) -> MaskedRows:
    """Rebuild the rows from the recorded draw masks (the dropped draw has an empty mask)."""
    pre, meth = VARIANTS[method], gmeta["methods"][method]
    copies = gmeta["training_config"]["mask_times_per_sample"]
    masks = torch.zeros(6, copies, gold["input_ids_clean"].shape[1], dtype=torch.bool)
    for i, draw in enumerate(gold[pre + "row_draw"].tolist()):
        if meth["row_kind"][i] == "rand":
            masks[draw // copies, draw % copies] = gold[pre + "p_mask"][i]
    ratios = torch.tensor(meth["t_draws"]).reshape(6, copies)
    return build_masked_rows(
        gold["input_ids_clean"],
        meth["start_pos"],
        masks,
        ratios,
        mask_id=MASK_ID,
        eos_id=EOS_ID,
        post_num=1,
        coupled=method == "coupled",
    )


def _row_advantages(gold, rows: MaskedRows) -> torch.Tensor:
    return gold["advantages"][rows.source]


# -- golden: rollouts, advantages, masking ----------------------------------------------------------------


def test_pack_rollouts_matches_universal_prompting(gold, gmeta):
    prompts = [gmeta["prompts"][i] for i in gmeta["response_prompt"]]
    packed = pack_rollouts(prompts, gmeta["responses"], pad_id=EOS_ID, max_gen_length=16)
    assert packed.start_pos == 7
    assert torch.equal(packed.input_ids, gold["input_ids_clean"])
    assert torch.equal(packed.input_ids[:, :7], gold["prompt_ids_padded"])


def test_group_advantages_match_z_score_normalize(gold, gmeta):
    adv = group_advantages(gold["rewards"], gmeta["group_size"])
    assert adv.dtype == torch.float64
    assert (adv - gold["advantages"]).abs().max().item() <= 1e-12
    for case in gmeta["advantage_cases"]:
        got = group_advantages(case["rewards"], len(case["rewards"]))
        assert (got - torch.tensor(case["advantages"], dtype=torch.float64)).abs().max().item() <= 1e-12


@pytest.mark.parametrize("method", VARIANTS)
def test_masked_rows_match_reference(gold, gmeta, method):
    pre, meth = VARIANTS[method], gmeta["methods"][method]
    rows = _golden_rows(gold, gmeta, method)
    assert len(rows) == meth["rows"]
    assert torch.equal(rows.input_ids, gold[pre + "noisy_input_ids"])
    assert torch.equal(rows.labels, gold[pre + "labels"])
    assert torch.equal(rows.loss_mask, gold[pre + "p_mask"])
    assert torch.equal((rows.input_ids == MASK_ID) & ~rows.loss_mask, gold[pre + "excluded_masked"])
    assert torch.equal(rows.source, gold[pre + "row_source"])
    assert torch.equal(rows.draw, gold[pre + "row_draw"])
    assert (rows.mask_ratio - gold[pre + "row_t"]).abs().max().item() <= 1e-7
    assert ["complement" if c else "rand" for c in rows.complement.tolist()] == meth["row_kind"]
    assert (_row_advantages(gold, rows).float() - gold[pre + "row_advantage"]).abs().max().item() <= 1e-6
    if method == "random_masking":  # draw 5 (response 2, copy 1) selected nothing and is dropped
        assert meth["skipped_draws"] == [5] and 5 not in rows.draw.tolist()


# -- golden: loss arithmetic from the recorded log-probs ---------------------------------------------------


@pytest.mark.parametrize("method", VARIANTS)
def test_loss_arithmetic_from_recorded_logprobs(gold, gmeta, method):
    pre, meth = VARIANTS[method], gmeta["methods"][method]
    mask = gold[pre + "p_mask"]
    adv = gold[pre + "row_advantage"]
    out = unigrpo_loss(gold[pre + "logp_new_tok"], gold[pre + "logp_old_tok"], mask, adv, UniGRPOConfig())
    for ours, ref in (
        ("ratio", "ratio"),
        ("clipped_ratio", "clipped_ratio"),
        ("surrogate_tok", "surrogate_tok"),
    ):
        assert _rel(getattr(out, ours)[mask], gold[pre + ref][mask]) <= 1e-6, ours
    # k3 = exp(-d) - 1 + d cancels: exp(-d) is about 1, rounded to float32's 1.2e-7 step there, and CPUs'
    # vectorised exp differ by that one step. So a tiny token's KL may differ by one step of 1 (seen on a
    # second CI machine: 1.19e-7 absolute, 1.4 % relative), which no elementwise relative bound survives.
    one_step = torch.finfo(torch.float32).eps
    assert torch.allclose(out.kl_tok[mask], gold[pre + "kl_tok_k3"][mask], rtol=1e-6, atol=2 * one_step)
    assert torch.equal(out.num_mask, gold[pre + "num_mask"])
    assert _rel(out.surrogate_seq, gold[pre + "surrogate_seq"]) <= 1e-5
    assert _rel(out.kl_seq, gold[pre + "kl_seq"]) <= 1e-5
    for name in ("policy_loss", "kl_loss", "loss"):
        assert _rel(getattr(out, name), gold[pre + name]) <= 1e-6, name
    clipped = (out.ratio != out.clipped_ratio)[mask].sum().item()
    assert clipped == meth["clipped_tokens"]
    assert round(out.clip_fraction.item() * mask.sum().item()) == meth["clip_active_tokens"]


@pytest.mark.parametrize("method", VARIANTS)
def test_microbatch_losses_and_variants(gold, gmeta, method):
    pre, meth = VARIANTS[method], gmeta["methods"][method]
    new, old, mask, adv = (gold[pre + k] for k in ("logp_new_tok", "logp_old_tok", "p_mask", "row_advantage"))
    size = gmeta["training_config"]["batch_size_lm"]
    micro = torch.stack(
        [
            unigrpo_loss(
                new[i : i + size], old[i : i + size], mask[i : i + size], adv[i : i + size], UniGRPOConfig()
            ).loss
            for i in range(0, len(adv), size)
        ]
    )
    assert _rel(micro, gold[pre + "microbatch_losses"]) <= 1e-5
    variants = {
        "beta0": {"beta": 0.0},
        "kl_plain_no_k3": {"kl_estimator": "plain"},
        "eps0.1": {"clip_eps": 0.1},
    }
    for name, overrides in variants.items():
        got = unigrpo_loss(new, old, mask, adv, UniGRPOConfig(**overrides)).loss.item()
        assert abs(got - meth["loss_variants"][name]) <= 1e-6 * abs(meth["loss_variants"][name]), name


# -- golden: end to end through the tiny model --------------------------------------------------------------


@pytest.mark.parametrize("method", VARIANTS)
def test_end_to_end_loss_and_gradients(gold, gmeta, gdir, golden_model, method):
    pre, meth = VARIANTS[method], gmeta["methods"][method]
    rows = _golden_rows(gold, gmeta, method)
    old = old_logprobs(model_logits_fn(golden_model), rows)
    mask = rows.loss_mask
    assert (old - gold[pre + "logp_old_tok"]).abs().max().item() <= 1e-4

    policy = MMaDAModelLM.from_pretrained(gdir / "mmada_tiny_perturbed").train()
    out = unigrpo_step_loss(model_logits_fn(policy), rows, old, _row_advantages(gold, rows), UniGRPOConfig())
    for ours, ref in (
        ("ratio", "ratio"),
        ("clipped_ratio", "clipped_ratio"),
        ("surrogate_tok", "surrogate_tok"),
    ):
        assert (getattr(out, ours)[mask] - gold[pre + ref][mask]).abs().max().item() <= 1e-4, ours
    assert (out.kl_tok[mask] - gold[pre + "kl_tok_k3"][mask]).abs().max().item() <= 1e-4
    for name in ("policy_loss", "kl_loss", "loss"):
        ref = gold[pre + name].item()
        assert abs(getattr(out, name).item() - ref) <= 1e-5 * abs(ref) + 1e-7, name

    out.loss.backward()
    params = dict(policy.named_parameters())
    for name in gmeta["grad_params"]:
        assert _rel(params[name].grad.norm(), gold[f"{pre}grad_norm.{name}"][0]) <= 1e-4, name
    total = torch.sqrt(sum(p.grad.pow(2).sum() for p in policy.parameters() if p.grad is not None))
    assert _rel(total, gold[pre + "grad_norm_total"][0]) <= 1e-4
    head, ref_head = params["model.transformer.ff_out.weight"].grad, gold[pre + "grad.lm_head"]
    assert (head - ref_head).abs().max() <= 1e-4 * ref_head.abs().max()

    with torch.no_grad():  # W0 for both: ρ ≡ 1, KL 0, loss = −mean of the rows' advantages
        same = unigrpo_step_loss(
            model_logits_fn(golden_model), rows, old, _row_advantages(gold, rows), UniGRPOConfig()
        )
    assert abs(same.loss.item() - meth["loss_with_old_weights"]) <= 1e-5 * abs(meth["loss_with_old_weights"])
    assert same.kl_loss.item() == 0.0


# -- hand-checked cases --------------------------------------------------------------------------------------


def test_group_advantages_by_hand():
    adv = group_advantages([1.0, 0.0, 0.0, 1.0, 3.0, 3.0, 3.0, 3.0], group_size=4)
    assert torch.equal(adv, torch.tensor([1.0, -1.0, -1.0, 1.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64))
    sample = group_advantages([1.0, 0.0, 0.0, 1.0], group_size=4, std="sample")
    assert torch.allclose(sample, torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64) * (3 / 4) ** 0.5)
    with pytest.raises(ValueError):
        group_advantages([1.0, 0.0, 1.0], group_size=2)
    keep = informative_groups([1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1], group_size=4)
    assert keep.tolist() == [False, True, True]


def test_clipping_region_and_its_gradient():
    """ε = 0.2: A > 0 caps gains above 1.2; A < 0 caps below 0.8; the other sides are never clipped."""
    ratio = torch.tensor([[1.5, 0.5, 1.1], [1.5, 0.5, 1.1]], requires_grad=True)
    adv = torch.tensor([2.0, -2.0])
    surrogate, _ = clipped_surrogate(ratio, adv, eps=0.2)
    expected = torch.tensor([[2.4, 1.0, 2.2], [-3.0, -1.6, -2.2]])
    assert torch.allclose(surrogate, expected)
    surrogate.sum().backward()
    # clipped tokens get no gradient; unclipped ones get dA/dρ = A
    assert torch.allclose(ratio.grad, torch.tensor([[0.0, 2.0, 2.0], [-2.0, 0.0, -2.0]]))


def test_kl_of_identical_policies_is_zero_and_policy_gradient_remains():
    torch.manual_seed(0)
    logp = torch.randn(3, 6).clamp(max=-0.1)
    new = logp.clone().requires_grad_(True)
    mask = torch.tensor([[0, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 0], [1, 0, 0, 0, 0, 1]], dtype=torch.bool)
    adv = torch.tensor([1.0, -0.5, 0.0])
    policy_grad = -(adv[:, None] * mask) / mask.sum(dim=1, keepdim=True) / 3  # ∂ρ/∂logp = 1 at ρ = 1
    for config in (UniGRPOConfig(), UniGRPOConfig(kl_estimator="plain"), UniGRPOConfig.paper()):
        ref = logp if config.kl_reference == "ref" else None
        out = unigrpo_loss(new, logp, mask, adv, config, logp_ref_tok=ref, row_source=torch.arange(3))
        assert out.kl_loss.item() == 0.0 and out.kl_tok[mask].abs().max().item() == 0.0
        assert torch.allclose(out.policy_loss, -adv.mean())
        (grad,) = torch.autograd.grad(out.loss, new)
        # k3 is flat at d = 0 (no KL gradient); the plain estimator d still pulls with β per token
        kl_grad = config.beta * mask / 3 if config.kl_estimator == "plain" else 0.0
        assert torch.allclose(grad, policy_grad + kl_grad)


def test_k3_against_a_frozen_reference_is_positive():
    logp_new = torch.tensor([[-1.0, -2.0]])
    ref = torch.tensor([[-1.5, -1.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    config = UniGRPOConfig.paper(beta=0.1)
    out = unigrpo_loss(logp_new, logp_new, mask, [0.0], config, logp_ref_tok=ref, row_source=torch.zeros(1))
    d = logp_new - ref
    k3 = torch.exp(-d) - 1 + d
    assert torch.allclose(out.kl_tok, k3) and (k3 > 0).all()
    assert torch.allclose(out.kl_loss, 0.1 * k3.mean())  # paper: masked mean per response
    with pytest.raises(ValueError):
        unigrpo_loss(logp_new, logp_new, mask, [0.0], config, row_source=torch.zeros(1))


def test_response_reduction_weights_responses_not_rows():
    """Response 0 has two rows, response 1 one: rows-mean vs. mean over responses of row means."""
    zeros = torch.zeros(3, 2)
    mask = torch.ones(3, 2, dtype=torch.bool)
    adv = torch.tensor([1.0, 1.0, -2.0])  # ρ ≡ 1 so surrogate_seq = A
    by_rows = unigrpo_loss(zeros, zeros, mask, adv, UniGRPOConfig())
    by_resp = unigrpo_loss(
        zeros, zeros, mask, adv, UniGRPOConfig(loss_reduction="responses"), row_source=torch.tensor([0, 0, 1])
    )
    assert torch.isclose(by_rows.loss, torch.tensor(0.0))
    assert torch.isclose(by_resp.loss, torch.tensor(0.5))


def test_unscored_positions_cannot_poison_the_loss():
    new = torch.tensor([[-float("inf"), -1.0], [-2.0, 50.0]], requires_grad=True)
    old = torch.tensor([[-1.0, -1.2], [-2.0, -90.0]])
    mask = torch.tensor([[False, True], [True, False]])
    out = unigrpo_loss(new, old, mask, [1.0, -1.0], UniGRPOConfig())
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(new.grad).all()


# -- masking invariants with random draws --------------------------------------------------------------------


@pytest.mark.parametrize("masking", ["random_masking", "coupled", "uniform_spaced"])
def test_noising_invariants(masking):
    gen = torch.Generator().manual_seed(3)
    start = 4
    clean = torch.randint(0, 100, (5, 16), generator=gen)
    clean[0, 10:] = EOS_ID  # first EOS scored, the rest is tail
    clean[1, 6] = EOS_ID  # lone EOS mid-answer: scored, not tail
    config = UniGRPOConfig(masking=masking, mask_times_per_sample=3)
    rows = noise_responses(clean, start, config, mask_id=MASK_ID, eos_id=EOS_ID, generator=gen)
    tail = response_tail_mask(clean, start, EOS_ID, post_num=1)[rows.source]
    assert tail.sum().item() > 0 and not tail[:, :11].any()
    assert torch.equal(rows.labels, clean[rows.source])
    assert not rows.loss_mask[:, :start].any() and torch.equal(
        rows.input_ids[:, :start], rows.labels[:, :start]
    )
    assert rows.loss_mask.any(dim=1).all()  # empty draws dropped
    assert not (rows.loss_mask & tail).any()
    assert torch.equal(rows.input_ids == MASK_ID, rows.loss_mask | tail)
    assert ((rows.mask_ratio >= 0.1) & (rows.mask_ratio <= 0.9)).all()
    if masking == "coupled":  # a draw and its complement partition the scored response tokens
        for draw in rows.draw.unique():
            pair = rows.loss_mask[rows.draw == draw]
            if len(pair) == 2:
                assert not (pair[0] & pair[1]).any()
                assert torch.equal(
                    pair[0] | pair[1], ~tail[rows.draw == draw][0] & (torch.arange(16) >= start)
                )


def test_a_rollout_with_nothing_to_score_gives_no_rows_and_no_crash():
    """A policy that answers every prompt of a rollout batch with EOS at once leaves one scored token
    per response; draws that miss it are dropped, and when all are dropped the log-probs are empty
    (this crashed the toy stage 3 with ``range() arg 3 must not be zero``)."""
    clean = torch.full((4, 12), EOS_ID)
    clean[:, :5] = torch.arange(5)
    rows = noise_responses(clean, 5, UniGRPOConfig(), mask_id=MASK_ID, eos_id=EOS_ID, ratios=torch.zeros(4, 1))
    assert len(rows) == 0

    def never_called(ids, mask):
        raise AssertionError("no rows, no forward")

    logp = old_logprobs(never_called, rows, None, 2)
    assert logp.shape == (0, 12) and logp.dtype == torch.float32


def test_uniform_spaced_levels_tile_the_range():
    config = UniGRPOConfig.paper(inner_steps=5)
    ratios = draw_mask_ratios(config, 64, torch.Generator().manual_seed(0))
    assert ratios.shape == (64, 5)
    assert torch.allclose(ratios.diff(dim=1), torch.full((64, 4), 0.2))
    for k in range(5):  # step k's level lies in its own fifth of [0, 1]
        assert ((ratios[:, k] >= k / 5) & (ratios[:, k] < (k + 1) / 5)).all()
    rows = noise_responses(
        torch.randint(0, 100, (64, 20)),
        4,
        config,
        mask_id=MASK_ID,
        eos_id=EOS_ID,
        generator=torch.Generator().manual_seed(1),
        ratios=ratios,
    )
    step = rows.select(rows.copy == 4)
    assert (step.mask_ratio >= 0.8).all() and len(step) > 0


def test_paper_preset_and_validation():
    paper = UniGRPOConfig.paper()
    assert (paper.masking, paper.post_num, paper.kl_reference) == ("uniform_spaced", None, "ref")
    assert (paper.kl_token_reduction, paper.loss_reduction, paper.lower_p, paper.upper_p) == (
        "mean",
        "responses",
        0,
        1,
    )
    assert UniGRPOConfig.dllm_rl() == UniGRPOConfig()
    with pytest.raises(ValueError):
        UniGRPOConfig(masking="tracerl")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        UniGRPOConfig(lower_p=0.9, upper_p=0.1)
