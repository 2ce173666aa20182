"""LLaDA's Monte Carlo log-likelihood for masked diffusion models (spec §6.1), and its exact value.

A masked diffusion model has no left-to-right factorisation, so ``log p(continuation | context)`` is
replaced by the model's ELBO: mask a random number ``m`` of the ``L`` continuation tokens (``m``
uniform on 1..L, positions uniform), score the masked tokens, weight by ``L/m``. Its expectation is the
average over random generation orders of the order-wise log-likelihood -- the quantity LLaDA and MMaDA
report for multiple-choice tasks. :func:`mc_loglikelihood` estimates it the way LLaDA does: per forward
pass ``b`` copies whose mask counts are spread evenly over 1..L from one random start (stratified,
lower variance), ``mc_num / b`` passes averaged. With a one-token continuation every draw is the same
(``m = 1``), so one pass gives the exact value (:func:`single_token_logprobs`, batched over requests).

Differences from LLaDA's code, on purpose:
* the evenly spread counts are ``k + round(j*L/b)`` (offset rounded alone) instead of
  ``round(k + j*L/b)``: torch rounds halves to even, so LLaDA's per-row counts are not uniform when
  ``j*L/b`` is a half-integer and its estimate is slightly biased; both agree otherwise;
* random draws come from a per-request CPU generator, so estimates do not depend on batch
  composition, request order or device.

:func:`expected_loglikelihood` enumerates every mask pattern (2^L - 1 of them) and returns the exact
expectation of the estimator -- the reference the tests compare against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import combinations

import torch
import torch.nn.functional as F

from mmada_bench.model.padding import left_pad
from mmada_bench.sampling.guidance import split_guided

#: ``logits_fn(input_ids (B, T), attention_mask (B, T) or None) -> logits (B, T, V)``.
LogitsFn = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


def stratified_mask_counts(start: int, length: int, rows: int) -> torch.Tensor:
    """Mask counts of ``rows`` copies: ``((start - 1 + round(j * length / rows)) mod length) + 1``."""
    offsets = torch.floor(torch.arange(rows, dtype=torch.float64) * length / rows + 0.5).long()
    return (start - 1 + offsets) % length + 1


def _guided_logits(logits_fn: LogitsFn, ids: torch.Tensor, prompt_len: int, mask_id: int, cfg: float) -> torch.Tensor:
    """Logits, with LLaDA's unsupervised CFG when ``cfg > 0`` (prompt fully masked in the second copy)."""
    if cfg <= 0:
        return logits_fn(ids, None)
    uncond = ids.clone()
    uncond[:, :prompt_len] = mask_id
    return split_guided(logits_fn(torch.cat([ids, uncond]), None), cfg)


@torch.inference_mode()
def mc_loglikelihood(
    logits_fn: LogitsFn,
    prefix: Sequence[int],
    target: Sequence[int],
    *,
    mask_id: int,
    mc_num: int,
    mc_batch: int,
    cfg: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[float, int]:
    """Monte Carlo estimate of ``log p(target | prefix)``; returns ``(estimate, forward_passes)``.

    ``generator`` must be a CPU generator (draws are made on the CPU and moved, so the estimate is the
    same on every device). ``mc_num`` must be a multiple of ``min(mc_batch, mc_num)``.
    """
    length = len(target)
    if length == 0:
        return 0.0, 0
    rows = min(mc_batch, mc_num)
    if mc_num % rows:
        raise ValueError(f"mc_num={mc_num} is not a multiple of mc_batch={rows}")
    plen = len(prefix)
    seq = torch.tensor([*prefix, *target], dtype=torch.long)
    target_ids = seq[plen:].to(device)
    total = 0.0
    passes = mc_num // rows
    for _ in range(passes):
        start = int(torch.randint(1, length + 1, (1,), generator=generator))
        counts = stratified_mask_counts(start, length, rows)
        ranks = torch.rand((rows, length), generator=generator).argsort(dim=1).argsort(dim=1)
        masked = ranks < counts[:, None]  # each row: a uniformly random subset of size counts[j]
        ids = seq.repeat(rows, 1)
        ids[:, plen:][masked] = mask_id
        logits = _guided_logits(logits_fn, ids.to(device), plen, mask_id, cfg)[:, plen:]
        logp = F.log_softmax(logits.float(), dim=-1).gather(-1, target_ids.expand(rows, -1)[..., None])[..., 0]
        masked_dev = masked.to(logp.device)
        weight = (counts.to(logp.device).double() / length)
        row_loss = -(logp.double() * masked_dev).sum(dim=1) / weight
        total += float(row_loss.mean())
    forwards = passes
    return -total / passes, forwards


@torch.inference_mode()
def single_token_logprob_rows(
    logits_fn: LogitsFn,
    prefixes: Sequence[Sequence[int]],
    *,
    mask_id: int,
    pad_id: int,
    cfg: float = 0.0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Exact next-token log-probabilities ``(len(prefixes), V)`` at one masked position after each prefix.

    One batched pass over ``prefix + [MASK]`` rows. A one-token continuation's log-likelihood is exact
    (every mask pattern is the same), so all candidates after one prefix -- the choices of a multiple
    choice question -- are read from one row. Rows are left-padded with ``pad_id`` and an attention
    mask (pads neither attend nor are attended), which leaves each row's result unchanged up to float
    rounding: RoPE scores depend on relative positions only.
    """
    if not prefixes:
        return torch.empty(0, 0)
    ids, attention = left_pad([[*prefix, mask_id] for prefix in prefixes], pad_id)
    ids, attention = ids.to(device), attention.to(device)
    padded = bool((attention == 0).any())
    if cfg > 0:
        uncond = ids.clone()
        uncond[:, :-1] = torch.where(attention[:, :-1].bool(), torch.full_like(uncond[:, :-1], mask_id), uncond[:, :-1])
        both = logits_fn(torch.cat([ids, uncond]), torch.cat([attention, attention]) if padded else None)
        logits = split_guided(both[:, -1], cfg)
    else:
        logits = logits_fn(ids, attention if padded else None)[:, -1]
    return F.log_softmax(logits.float(), dim=-1)


def single_token_logprobs(
    logits_fn: LogitsFn,
    items: Sequence[tuple[Sequence[int], int]],
    *,
    mask_id: int,
    pad_id: int,
    cfg: float = 0.0,
    device: torch.device | str = "cpu",
) -> list[tuple[float, bool]]:
    """Exact ``(log p, is_greedy)`` of one-token continuations ``(prefix, target)``, one row each."""
    if not items:
        return []
    logp = single_token_logprob_rows(logits_fn, [p for p, _ in items], mask_id=mask_id, pad_id=pad_id, cfg=cfg,
                                     device=device)
    targets = torch.tensor([target for _, target in items], device=logp.device)
    chosen = logp.gather(-1, targets[:, None])[:, 0]
    greedy = logp.argmax(dim=-1) == targets
    return [(float(v), bool(g)) for v, g in zip(chosen.tolist(), greedy.tolist(), strict=True)]


@torch.inference_mode()
def expected_loglikelihood(
    logits_fn: LogitsFn,
    prefix: Sequence[int],
    target: Sequence[int],
    *,
    mask_id: int,
    cfg: float = 0.0,
    device: torch.device | str = "cpu",
) -> float:
    """Exact expectation of :func:`mc_loglikelihood` by enumerating all 2^L - 1 mask patterns.

    ``E = (1/L) sum_m (L/m) mean_{|S|=m} sum_{i in S} log p(x_i | x_{not S})``. For validation on short
    continuations only (the cost doubles with every extra token).
    """
    length = len(target)
    plen = len(prefix)
    seq = torch.tensor([*prefix, *target], dtype=torch.long)
    total = 0.0
    for m in range(1, length + 1):
        subsets = list(combinations(range(length), m))
        ids = seq.repeat(len(subsets), 1)
        masked = torch.zeros((len(subsets), length), dtype=torch.bool)
        for row, subset in enumerate(subsets):
            masked[row, list(subset)] = True
        ids[:, plen:][masked] = mask_id
        logits = _guided_logits(logits_fn, ids.to(device), plen, mask_id, cfg)[:, plen:]
        logp = F.log_softmax(logits.float(), dim=-1).gather(-1, seq[plen:].to(logits.device).expand(len(subsets), -1)[..., None])[..., 0]
        per_subset = (logp.double() * masked.to(logp.device)).sum(dim=1)
        total += (length / m) * float(per_subset.mean()) / length
    return total


def num_mask_patterns(length: int) -> int:
    """Forward rows :func:`expected_loglikelihood` needs (for callers that want to bound its cost)."""
    return sum(math.comb(length, m) for m in range(1, length + 1))
