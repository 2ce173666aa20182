"""UniGRPO loss pieces (stage 3, spec §5.5-5.6): advantages, response noising, log-probs, the loss.

The paper describes UniGRPO; the only public code that trains MMaDA with it is Gen-Verse/dLLM-RL
(``train/rl_mmada.py``), and the two disagree in several places. Every such choice is a named field
of :class:`UniGRPOConfig`, so a run states which recipe it follows:

* mask levels (``masking``): paper ``"uniform_spaced"`` -- one random offset, the other inner steps
  evenly spaced; dLLM-RL ``"random_masking"`` -- an i.i.d. ratio per copy (default), or ``"coupled"``,
  which adds each draw's complement over the response as a second row.
* ratio range (``lower_p``/``upper_p``): paper [0, 1]; dLLM-RL [0.1, 0.9].
* EOS fill (``post_num``): paper ``None`` -- every response token can be scored (our reading; the
  paper is silent); dLLM-RL 1 -- the first EOS is scored, later EOS are masked in the input, unscored.
* KL reference (``kl_reference``): paper ``"ref"``, a frozen reference model; dLLM-RL ``"old"``,
  the rollout policy (so KL and its gradient are 0 until the weights move).
* KL per row (``kl_token_reduction``): paper ``"mean"`` over masked tokens (inside 1/|o_i| Σ_t);
  dLLM-RL ``"sum"``.
* batch reduction (``loss_reduction``): paper ``"responses"`` -- 1/G Σ_i, a response's rows averaged
  first; dLLM-RL ``"rows"`` -- Σ over rows ÷ number of rows (≈ 2 rows per response).
* reward: paper 2.0·correct + 0.5·format (see :mod:`mmada_bench.train.rewards`); dLLM-RL 0/1.

Shared by both: group z-score advantages (population std, 0 for a constant group), per-token
Bernoulli masking of the response only, the per-token ratio ρ = exp(logp_θ − logp_old) clipped to
[1−ε, 1+ε], a masked-token mean of min(ρA, clip(ρ)A) per row, and the k3 KL estimator.

The default is dLLM-RL because it is the recipe that exists as runnable code, and our golden vectors
(tests/fixtures/golden/unigrpo) pin it bit for bit; the paper leaves details open (how the ratios are
spaced, what happens to EOS padding, how many inner steps), so its preset is our reading of the text.

Everything here is pure torch over a model callable ``logits_fn(input_ids, attention_mask) -> logits``;
rollouts and the optimisation loop live elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Literal

import torch

from mmada_bench.train.losses import IGNORE_INDEX

LogitsFn = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]
MaskingMethod = Literal["uniform_spaced", "random_masking", "coupled"]


@dataclass(frozen=True)
class UniGRPOConfig:
    """Hyper-parameters and paper-vs-code switches of the UniGRPO loss (see the module table).

    Defaults reproduce Gen-Verse/dLLM-RL ``configs/rl_mmada_v.yaml`` (the golden vectors); use
    :meth:`paper` for the paper's description.
    """

    masking: MaskingMethod = "random_masking"
    lower_p: float = 0.1  # mask ratios are drawn in [lower_p, upper_p]
    upper_p: float = 0.9
    mask_times_per_sample: int = 2  # draws per response (= inner steps for "uniform_spaced")
    post_num: int | None = 1  # EOS tokens of a response that count as answer tokens; None: all of them
    clip_eps: float = 0.2
    beta: float = 0.01  # KL coefficient; 0 disables the KL term
    kl_estimator: Literal["k3", "plain"] = "k3"  # k3: exp(-d) - 1 + d; plain: d, with d = new - ref
    kl_reference: Literal["old", "ref"] = "old"
    kl_token_reduction: Literal["sum", "mean"] = "sum"
    loss_reduction: Literal["rows", "responses"] = "rows"

    def __post_init__(self) -> None:
        if not 0.0 <= self.lower_p <= self.upper_p <= 1.0:
            raise ValueError(f"need 0 <= lower_p <= upper_p <= 1, got {self.lower_p}, {self.upper_p}")
        if self.mask_times_per_sample < 1:
            raise ValueError("mask_times_per_sample must be >= 1")
        if self.post_num is not None and self.post_num < 0:
            raise ValueError("post_num must be >= 0 or None")
        allowed = {
            "masking": ("uniform_spaced", "random_masking", "coupled"),
            "kl_estimator": ("k3", "plain"),
            "kl_reference": ("old", "ref"),
            "kl_token_reduction": ("sum", "mean"),
            "loss_reduction": ("rows", "responses"),
        }
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in allowed and value not in allowed[field.name]:
                raise ValueError(f"{field.name} must be one of {allowed[field.name]}, got {value!r}")

    @classmethod
    def dllm_rl(cls, **overrides: object) -> UniGRPOConfig:
        """The public code's recipe (``rl_mmada_v.yaml``); identical to the defaults."""
        return replace(cls(), **overrides)

    @classmethod
    def paper(cls, inner_steps: int = 2, **overrides: object) -> UniGRPOConfig:
        """Our reading of the paper (§5.5): evenly spaced levels in [0, 1] over ``inner_steps``,
        every response token in the loss, KL against a frozen reference, 1/G Σ_i 1/|o_i| Σ_t.

        The paper does not give the number of inner steps; 2 matches the code's draws per response.
        """
        paper = cls(
            masking="uniform_spaced",
            lower_p=0.0,
            upper_p=1.0,
            mask_times_per_sample=inner_steps,
            post_num=None,
            kl_reference="ref",
            kl_token_reduction="mean",
            loss_reduction="responses",
        )
        return replace(paper, **overrides)


# -- rollouts -> token rows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PackedRollouts:
    """Prompt + response ids, one row per response; the response region starts at ``start_pos``."""

    input_ids: torch.Tensor  # (B, start_pos + R)
    start_pos: int


def pack_rollouts(
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    pad_id: int,
    max_gen_length: int,
) -> PackedRollouts:
    """Left-pad prompts and right-pad responses with ``pad_id`` (= EOS), then concatenate.

    The reference lays rollouts out this way (``UniversalPrompting``) so that every response starts
    at the same column; responses are cut to ``max_gen_length``.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    prompt_len = max(len(p) for p in prompts)
    response_len = min(max(len(r) for r in responses), max_gen_length)
    rows = []
    for prompt, response in zip(prompts, responses, strict=True):
        left = [pad_id] * (prompt_len - len(prompt)) + list(prompt)
        right = (list(response) + [pad_id] * response_len)[:response_len]
        rows.append(left + right)
    return PackedRollouts(input_ids=torch.tensor(rows, dtype=torch.long), start_pos=prompt_len)


# -- advantages -----------------------------------------------------------------------------------------


def group_advantages(
    rewards: torch.Tensor | Sequence[float],
    group_size: int,
    std: Literal["population", "sample"] = "population",
) -> torch.Tensor:
    """A_i = (r_i − mean_group r) / std_group r for consecutive groups of ``group_size`` responses.

    Float64 because the reference does this in Python floats. A group whose rewards are all equal
    gets 0 (not NaN): it carries no preference. Population std is what dLLM-RL uses; the paper only
    says "std".
    """
    r = torch.as_tensor(rewards, dtype=torch.float64).reshape(-1)
    if group_size < 1 or r.numel() % group_size:
        raise ValueError(f"{r.numel()} rewards do not split into groups of {group_size}")
    groups = r.reshape(-1, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    dof = group_size if std == "population" else group_size - 1
    spread = (centred.pow(2).sum(dim=1, keepdim=True) / max(dof, 1)).sqrt()
    safe = torch.where(spread == 0, torch.ones_like(spread), spread)
    return torch.where(spread == 0, torch.zeros_like(centred), centred / safe).reshape(-1)


def informative_groups(
    correctness: torch.Tensor | Sequence[float], group_size: int, low: float = 0.2, high: float = 0.8
) -> torch.Tensor:
    """(num_groups,) bool: groups whose fraction correct lies in [low, high] (dLLM-RL's filter).

    Nearly-all-right or all-wrong groups have (near-)zero advantages, so the reference drops them
    before training (``rl_mmada_v`` uses 0.05 / 0.95).
    """
    c = torch.as_tensor(correctness, dtype=torch.float64).reshape(-1, group_size)
    fraction = c.mean(dim=1)
    return (fraction >= low) & (fraction <= high)


# -- structured noising of the response ----------------------------------------------------------------


@dataclass(frozen=True)
class MaskedRows:
    """Noised training rows: one per kept mask draw (two per draw for ``coupled``).

    ``loss_mask`` marks the masked answer tokens that are scored; ``input_ids`` additionally has
    the EOS tail (see ``post_num``) replaced by the mask token. ``labels`` are the clean ids of
    the whole row (the prompt too -- the loss mask, not the label, keeps it out of the loss).
    """

    input_ids: torch.Tensor  # (N, L)
    labels: torch.Tensor  # (N, L)
    loss_mask: torch.Tensor  # (N, L) bool
    source: torch.Tensor  # (N,) index of the response the row came from
    draw: torch.Tensor  # (N,) global draw index = source * draws_per_response + copy
    copy: torch.Tensor  # (N,) which draw of its response (= inner step for "uniform_spaced")
    complement: torch.Tensor  # (N,) bool, True for the complementary row of a coupled draw
    mask_ratio: torch.Tensor  # (N,) the ratio the draw used

    def select(self, index: torch.Tensor) -> MaskedRows:
        """Rows picked by a bool mask or index tensor, e.g. one inner step's rows."""
        return MaskedRows(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def __len__(self) -> int:
        return self.input_ids.shape[0]


def response_tail_mask(
    input_ids: torch.Tensor, start_pos: int, eos_id: int, post_num: int | None
) -> torch.Tensor:
    """(B, L) bool: EOS tokens of the response after its first ``post_num`` EOS tokens.

    dLLM-RL keeps them masked in the input (the model still sees "more EOS here") but out of the
    loss, so a short answer's long EOS fill does not dominate its token mean. As in the reference,
    every EOS from ``start_pos`` on is counted, contiguous or not. ``None`` disables this.
    """
    tail = torch.zeros_like(input_ids, dtype=torch.bool)
    if post_num is None:
        return tail
    eos = input_ids == eos_id
    eos[:, :start_pos] = False
    return eos & (eos.long().cumsum(dim=1) > post_num)


def draw_mask_ratios(
    config: UniGRPOConfig, num_responses: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(num_responses, mask_times_per_sample) mask ratios in [lower_p, upper_p].

    ``random_masking``/``coupled``: i.i.d. uniform, as dLLM-RL. ``uniform_spaced`` (paper): one
    uniform offset s per response and levels (s + k) / K for k = 0..K-1, e.g. K = 5, s = 0.5 gives
    0.1, 0.3, 0.5, 0.7, 0.9 -- every inner step sees a different noise level and together they
    cover the range evenly, which the paper reports to be more stable than i.i.d. ratios.
    """
    k = config.mask_times_per_sample
    span = config.upper_p - config.lower_p
    if config.masking == "uniform_spaced":
        offset = torch.rand(num_responses, 1, generator=generator)
        unit = (offset + torch.arange(k, dtype=offset.dtype)) / k
    else:
        unit = torch.rand(num_responses, k, generator=generator)
    return config.lower_p + span * unit


def bernoulli_response_masks(
    shape: tuple[int, int], start_pos: int, ratios: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(B, K, L) bool: each response position masked independently with its draw's ratio."""
    batch, length = shape
    uniforms = torch.rand(batch, ratios.shape[1], length, generator=generator)
    masks = uniforms < ratios[:, :, None]
    masks[:, :, :start_pos] = False
    return masks


def build_masked_rows(
    clean_ids: torch.Tensor,
    start_pos: int,
    draw_masks: torch.Tensor,
    ratios: torch.Tensor,
    *,
    mask_id: int,
    eos_id: int,
    post_num: int | None,
    coupled: bool = False,
) -> MaskedRows:
    """Turn per-draw masks (B, K, L) into training rows, deterministically.

    Kept apart from the random draws so that recorded masks (e.g. the golden ones) give the exact
    rows. A draw that selects no scored token is dropped -- a row without loss tokens would still
    count in the reference's ÷B. With ``coupled`` each draw yields its row, then the complement
    over the response (dLLM-RL's variance-reduction variant: every response token gets scored once
    per draw); each is dropped if empty.
    """
    draw_masks = draw_masks.to(clean_ids.device)
    batch, draws, length = draw_masks.shape
    response = torch.zeros(length, dtype=torch.bool, device=clean_ids.device)
    response[start_pos:] = True
    tail = response_tail_mask(clean_ids, start_pos, eos_id, post_num)[:, None, :]
    primary = draw_masks & response & ~tail
    kinds = [primary]
    if coupled:
        kinds.append(~draw_masks & response & ~tail)
    loss_mask = torch.stack(kinds, dim=2)  # (B, K, kinds, L), in the reference's row order
    n_kinds = len(kinds)
    keep = loss_mask.any(dim=-1).reshape(-1)

    def per_row(values: torch.Tensor) -> torch.Tensor:
        return values.reshape(batch * draws * n_kinds, *values.shape[3:])[keep]

    shape = (batch, draws, n_kinds)
    device = clean_ids.device
    source = torch.arange(batch, device=device)[:, None, None].expand(shape)
    copy = torch.arange(draws, device=device)[None, :, None].expand(shape)
    kind = torch.arange(n_kinds, device=device)[None, None, :].expand(shape)
    clean = clean_ids[:, None, None, :].expand(batch, draws, n_kinds, length)
    masked_input = loss_mask | tail[:, :, None, :]
    noisy = torch.where(masked_input, torch.full_like(clean, mask_id), clean)
    return MaskedRows(
        input_ids=per_row(noisy),
        labels=per_row(clean),
        loss_mask=per_row(loss_mask),
        source=per_row(source),
        draw=per_row(source * draws + copy),
        copy=per_row(copy),
        complement=per_row(kind == 1),
        mask_ratio=per_row(ratios.to(device)[:, :, None].expand(shape)),
    )


def noise_responses(
    clean_ids: torch.Tensor,
    start_pos: int,
    config: UniGRPOConfig,
    *,
    mask_id: int,
    eos_id: int,
    generator: torch.Generator | None = None,
    ratios: torch.Tensor | None = None,
) -> MaskedRows:
    """Structured noising: mask response tokens only (the prompt stays clean), per config.

    Returns all ``mask_times_per_sample`` draws per response; for ``uniform_spaced`` inner step k
    uses ``rows.select(rows.copy == k)``. ``ratios`` (B, K) overrides the drawn ratios.
    """
    if ratios is None:
        ratios = draw_mask_ratios(config, clean_ids.shape[0], generator)
    masks = bernoulli_response_masks(tuple(clean_ids.shape), start_pos, ratios, generator)
    return build_masked_rows(
        clean_ids,
        start_pos,
        masks,
        ratios,
        mask_id=mask_id,
        eos_id=eos_id,
        post_num=config.post_num,
        coupled=config.masking == "coupled",
    )


# -- log-probabilities ---------------------------------------------------------------------------------


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, L) float32 log p(label) at every position (label -100 reads token 0, as the reference).

    Computed as gathered logit minus logsumexp rather than a full log_softmax, which would keep a
    second (B, L, V) tensor alive for backward.
    """
    logits = logits.float()
    safe = labels.masked_fill(labels == IGNORE_INDEX, 0)
    picked = logits.gather(dim=-1, index=safe.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def rows_logprobs(
    logits_fn: LogitsFn,
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    micro_batch_size: int | None = None,
) -> torch.Tensor:
    """Per-token log-probs of ``labels`` given noised ``input_ids``, in micro-batches of rows.

    dLLM-RL passes no attention mask (prompt left-padding and the EOS fill are attended to); pass
    ``None`` for parity, or a (N, L) 0/1 mask to hide padding.
    """
    if input_ids.shape[0] == 0:  # every draw of the rollout scored nothing (e.g. all responses empty)
        return torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)
    step = micro_batch_size or input_ids.shape[0]
    chunks = []
    for start in range(0, input_ids.shape[0], step):
        stop = start + step
        mask = attention_mask[start:stop] if attention_mask is not None else None
        chunks.append(token_logprobs(logits_fn(input_ids[start:stop], mask), labels[start:stop]))
    return torch.cat(chunks, dim=0)


@torch.no_grad()
def old_logprobs(
    logits_fn: LogitsFn,
    rows: MaskedRows,
    attention_mask: torch.Tensor | None = None,
    micro_batch_size: int | None = None,
) -> torch.Tensor:
    """logp_old: the rollout policy's per-token log-probs, computed once before the update."""
    return rows_logprobs(logits_fn, rows.input_ids, rows.labels, attention_mask, micro_batch_size)


def model_logits_fn(model: torch.nn.Module) -> LogitsFn:
    """Adapt an ``MMaDAModelLM``-like module (``.logits`` output) to ``logits_fn``."""

    def logits_fn(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        return model(input_ids, attention_mask=attention_mask).logits

    return logits_fn


# -- the loss --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UniGRPOLoss:
    """The loss and its parts; per-token tensors are only meaningful where ``loss_mask`` is set."""

    loss: torch.Tensor  # policy_loss + kl_loss, to minimise
    policy_loss: torch.Tensor
    kl_loss: torch.Tensor
    ratio: torch.Tensor  # (N, L) ρ
    clipped_ratio: torch.Tensor  # (N, L) clip(ρ, 1 − ε, 1 + ε)
    surrogate_tok: torch.Tensor  # (N, L) min(ρA, clip(ρ)A)
    kl_tok: torch.Tensor  # (N, L) the KL estimator per token
    num_mask: torch.Tensor  # (N,) scored tokens per row
    surrogate_seq: torch.Tensor  # (N,) masked mean of surrogate_tok
    kl_seq: torch.Tensor  # (N,) masked sum (or mean) of kl_tok
    clip_fraction: torch.Tensor  # share of scored tokens where clipping changed the surrogate


def clipped_surrogate(
    ratio: torch.Tensor, advantages: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's pessimistic bound min(ρA, clip(ρ, 1−ε, 1+ε)A) per token; returns (surrogate, clip(ρ)).

    Taking the min means a ratio moved past the trust region in the advantage's direction earns no
    more (and gets no gradient), while one moved the wrong way is never clipped.
    """
    clipped = ratio.clamp(1.0 - eps, 1.0 + eps)
    adv = advantages[:, None]
    return torch.minimum(ratio * adv, clipped * adv), clipped


def kl_estimate(
    logp_new: torch.Tensor, logp_ref: torch.Tensor, estimator: Literal["k3", "plain"]
) -> torch.Tensor:
    """Per-token KL(π_θ‖π_ref) estimate from samples of π_θ. k3 = exp(−d) − 1 + d, d = new − ref.

    k3 is unbiased and never negative (Schulman's estimator, as in GRPO); ``plain`` is d itself.
    Written exp(−d) − 1 + d exactly as the reference rounds it (expm1 would be more accurate for
    tiny d but would drift from the reference by more than the golden tolerance).
    """
    d = logp_new - logp_ref
    return torch.exp(-d) - 1.0 + d if estimator == "k3" else d


def _masked_sum(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask, values, torch.zeros_like(values)).sum(dim=1)


def _reduce_rows(per_row: torch.Tensor, source: torch.Tensor | None, how: str) -> torch.Tensor:
    """Σ rows ÷ rows (dLLM-RL), or the mean over responses of each response's row mean (paper)."""
    if how == "rows":
        return per_row.sum() / per_row.shape[0]
    if source is None:
        raise ValueError('loss_reduction="responses" needs row_source')
    _, inverse = torch.unique(source, return_inverse=True)
    groups = int(inverse.max()) + 1
    sums = per_row.new_zeros(groups).index_add(0, inverse, per_row)
    counts = per_row.new_zeros(groups).index_add(0, inverse, torch.ones_like(per_row))
    return (sums / counts).mean()


def unigrpo_loss(
    logp_new_tok: torch.Tensor,
    logp_old_tok: torch.Tensor,
    loss_mask: torch.Tensor,
    advantages: torch.Tensor | Sequence[float],
    config: UniGRPOConfig,
    *,
    logp_ref_tok: torch.Tensor | None = None,
    row_source: torch.Tensor | None = None,
) -> UniGRPOLoss:
    """The UniGRPO objective, negated to a loss, for one batch of N noised rows.

    Args:
        logp_new_tok: (N, L) log-probs under the policy being trained (carries the gradient).
        logp_old_tok: (N, L) log-probs under the rollout policy (no gradient).
        loss_mask: (N, L) bool, the scored (masked answer) tokens.
        advantages: (N,) the advantage of each row's response; cast to float32 like the reference.
        logp_ref_tok: (N, L) frozen-reference log-probs, needed when ``config.kl_reference == "ref"``.
        row_source: (N,) response index per row, needed when ``config.loss_reduction == "responses"``.

    Tokens outside ``loss_mask`` are zeroed before the exponential, so junk log-prob differences
    at unscored positions can neither overflow nor leak NaN into the gradient.
    """
    mask = loss_mask.bool()
    adv = torch.as_tensor(advantages, device=logp_new_tok.device).to(torch.float32).detach()
    old = logp_old_tok.detach()
    delta = torch.where(mask, logp_new_tok - old, torch.zeros_like(logp_new_tok))
    ratio = delta.exp()
    surrogate_tok, clipped = clipped_surrogate(ratio, adv, config.clip_eps)
    num_mask = mask.sum(dim=1)
    surrogate_seq = _masked_sum(surrogate_tok, mask) / num_mask.clamp(min=1)
    policy_loss = -_reduce_rows(surrogate_seq, row_source, config.loss_reduction)

    kl_tok, kl_seq, kl_loss = _kl_terms(logp_new_tok, old, mask, num_mask, config, logp_ref_tok, row_source)
    clipped_tokens = mask & (clipped * adv[:, None] < ratio * adv[:, None])
    clip_fraction = clipped_tokens.sum() / num_mask.sum().clamp(min=1)
    return UniGRPOLoss(
        loss=policy_loss + kl_loss,
        policy_loss=policy_loss,
        kl_loss=kl_loss,
        ratio=ratio,
        clipped_ratio=clipped,
        surrogate_tok=surrogate_tok,
        kl_tok=kl_tok,
        num_mask=num_mask,
        surrogate_seq=surrogate_seq,
        kl_seq=kl_seq,
        clip_fraction=clip_fraction,
    )


def _kl_terms(
    logp_new: torch.Tensor,
    logp_old: torch.Tensor,
    mask: torch.Tensor,
    num_mask: torch.Tensor,
    config: UniGRPOConfig,
    logp_ref: torch.Tensor | None,
    row_source: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(kl_tok, kl_seq, kl_loss). dLLM-RL measures KL against logp_old, which is 0 (and has zero
    gradient) until the weights move within an update; the paper uses a frozen reference."""
    if config.kl_reference == "ref":
        if logp_ref is None:
            raise ValueError('kl_reference="ref" needs logp_ref_tok')
        reference = logp_ref.detach()
    else:
        reference = logp_old
    new = torch.where(mask, logp_new, reference)
    kl_tok = kl_estimate(new, reference, config.kl_estimator)
    kl_seq = _masked_sum(kl_tok, mask)
    if config.kl_token_reduction == "mean":
        kl_seq = kl_seq / num_mask.clamp(min=1)
    if config.beta == 0:
        return kl_tok, kl_seq, logp_new.new_zeros(())
    return kl_tok, kl_seq, config.beta * _reduce_rows(kl_seq, row_source, config.loss_reduction)


def unigrpo_step_loss(
    logits_fn: LogitsFn,
    rows: MaskedRows,
    logp_old_tok: torch.Tensor,
    advantages: torch.Tensor | Sequence[float],
    config: UniGRPOConfig,
    *,
    attention_mask: torch.Tensor | None = None,
    logp_ref_tok: torch.Tensor | None = None,
) -> UniGRPOLoss:
    """Forward the current policy on ``rows`` and return the loss (one micro-batch).

    ``advantages`` are per row (index response advantages with ``rows.source``). Divide ``loss``
    by the gradient-accumulation steps before ``backward`` as the reference does.
    """
    logp_new = rows_logprobs(logits_fn, rows.input_ids, rows.labels, attention_mask)
    return unigrpo_loss(
        logp_new,
        logp_old_tok,
        rows.loss_mask,
        advantages,
        config,
        logp_ref_tok=logp_ref_tok,
        row_source=rows.source,
    )


__all__ = [
    "LogitsFn",
    "MaskedRows",
    "PackedRollouts",
    "UniGRPOConfig",
    "UniGRPOLoss",
    "bernoulli_response_masks",
    "build_masked_rows",
    "clipped_surrogate",
    "draw_mask_ratios",
    "group_advantages",
    "informative_groups",
    "kl_estimate",
    "model_logits_fn",
    "noise_responses",
    "old_logprobs",
    "pack_rollouts",
    "response_tail_mask",
    "rows_logprobs",
    "token_logprobs",
    "unigrpo_loss",
    "unigrpo_step_loss",
]
