"""Step schedules of the two samplers, and validation of text-sampler settings.

* Text (LLaDA block diffusion, spec §4.1): each block's masked tokens are spread over the block's
  steps as evenly as integers allow, the first ``m mod s`` steps taking one extra
  (:func:`transfer_counts`).
* Image (MaskGIT, spec §4.3): after step ``i`` of ``T`` a fraction ``gamma((i+1)/T)`` of the image
  stays masked (:func:`image_mask_ratio`, :func:`image_mask_lengths`). The ratio is computed with
  float32 torch operations exactly as the reference does, because ``floor(N * gamma)`` sits on an
  integer boundary often enough that float64 arithmetic would give a different schedule.
"""

from __future__ import annotations

import math

import torch

from mmada_bench.errors import ConfigError

#: Image mask schedules the reference names (``pow<p>`` takes any float exponent, e.g. ``pow2``).
IMAGE_SCHEDULES = ("cosine", "linear", "pow<p>", "sigmoid")


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def _nearest(candidates: list[int], target: int) -> list[int]:
    """The closest candidate at or below ``target`` and the closest above (those that exist)."""
    below = [c for c in candidates if c <= target]
    above = [c for c in candidates if c > target]
    return ([max(below)] if below else []) + ([min(above)] if above else [])


def _join(values: list[int]) -> str:
    return " or ".join(str(v) for v in values)


def check_text_schedule(gen_length: int, steps: int, block_length: int) -> tuple[int, int]:
    """Validate text-sampler settings; return ``(num_blocks, steps_per_block)``.

    The reference asserts ``gen_length % block_length == 0`` and ``steps % num_blocks == 0`` and
    dies with a bare ``AssertionError``; sweeps need to know what to use instead, so the error
    names the nearest valid values of each setting.

    Raises:
        ConfigError: a non-positive value, or one of the two divisibility rules broken.
    """
    gen_length = _positive_int("gen_length", gen_length)
    steps = _positive_int("steps", steps)
    block_length = _positive_int("block_length", block_length)
    if block_length > gen_length:
        raise ConfigError(
            f"block_length={block_length} is longer than gen_length={gen_length}; "
            f"use block_length={gen_length} (a single block) or a divisor of {gen_length}"
        )
    if gen_length % block_length:
        blocks = _nearest(_divisors(gen_length), block_length)
        lengths = [g for g in _nearest(list(range(block_length, gen_length + 2 * block_length, block_length)),
                                       gen_length) if g != gen_length]
        raise ConfigError(
            f"gen_length={gen_length} is not a multiple of block_length={block_length}: nearest valid "
            f"block_length is {_join(blocks)} (divisors of {gen_length}), or keep block_length={block_length} "
            f"with gen_length {_join(lengths)}"
        )
    num_blocks = gen_length // block_length
    if steps % num_blocks:
        lower = (steps // num_blocks) * num_blocks
        valid = [v for v in (lower, lower + num_blocks) if v >= num_blocks]
        raise ConfigError(
            f"steps={steps} is not a multiple of the number of blocks ({num_blocks} = gen_length "
            f"{gen_length} / block_length {block_length}): nearest valid steps is {_join(valid)}"
        )
    return num_blocks, steps // num_blocks


def transfer_counts(mask_counts: torch.Tensor | int, steps: int) -> torch.Tensor:
    """Tokens to unmask at each of ``steps`` steps, per row: (B, steps) int64.

    ``mask_counts`` is the number of masked tokens of each row's block (a (B,) tensor or an int).
    Every step gets ``m // steps`` and the first ``m % steps`` steps one more, so a block with fewer
    masks than steps ends with zero-token steps (e.g. 1 mask over 4 steps -> 1, 0, 0, 0), exactly as
    the reference schedules it.
    """
    steps = _positive_int("steps", steps)
    counts = torch.as_tensor(mask_counts, dtype=torch.int64).reshape(-1, 1)
    base, extra = counts // steps, counts % steps
    return base + (torch.arange(steps, device=counts.device)[None, :] < extra).to(torch.int64)


def image_mask_ratio(schedule: str, ratio: float | torch.Tensor) -> torch.Tensor:
    """Fraction of image tokens still masked at progress ``ratio`` in [0, 1] (float32 tensor).

    Same operations, order and dtype as the reference's ``cosine_schedule`` / ``linear_schedule``
    / ``pow`` / ``sigmoid_schedule`` (start -3, end 3, tau 1, clipped to [1e-6, 1]).
    """
    t = ratio if torch.is_tensor(ratio) else torch.tensor(float(ratio), dtype=torch.float32)
    if schedule == "cosine":
        return torch.cos(t * math.pi * 0.5)
    if schedule == "linear":
        return (1 - t).clamp(min=1e-6, max=1.0)
    if schedule.startswith("pow"):
        try:
            exponent = float(schedule[3:])
        except ValueError:
            raise ConfigError(f"image schedule {schedule!r}: 'pow' must be followed by a number, e.g. 'pow2'") from None
        return (1.0 - t**exponent).clamp(min=1e-6, max=1.0)
    if schedule == "sigmoid":
        start, end, tau = -3, 3, 1.0
        v_start = torch.sigmoid(torch.tensor(start / tau))
        v_end = torch.sigmoid(torch.tensor(end / tau))
        out = torch.sigmoid((t * (end - start) + start) / tau)
        return torch.clip((v_end - out) / (v_end - v_start), 1e-6, 1.0)
    raise ConfigError(f"unknown image schedule {schedule!r}; choose one of {', '.join(IMAGE_SCHEDULES)}")


def check_image_schedule(schedule: str) -> None:
    """Raise :class:`ConfigError` for an unknown schedule name (before any model work)."""
    image_mask_ratio(schedule, 0.5)


def image_mask_length(num_tokens: int, mask_ratio: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
    """How many tokens each row re-masks after a step: (B, 1) float32, as the reference computes it.

    ``floor(num_tokens * mask_ratio)``, clamped to at least 1 and at most ``unknown - 1`` (keep at
    least one new prediction, re-mask at least one) -- the lower clamp wins, so once a single token
    is unknown it stays masked in the running sequence to the end (the returned codes still carry a
    sampled value for it; see :func:`mmada_bench.sampling.image.generate_image`).
    """
    length = (num_tokens * mask_ratio).floor().unsqueeze(0).to(unknown.device)
    upper = torch.min(unknown.sum(dim=-1, keepdim=True) - 1, length)
    return torch.max(torch.tensor([1], device=unknown.device), upper)


def image_mask_lengths(num_tokens: int, timesteps: int, schedule: str = "cosine") -> list[int]:
    """Tokens left masked after each step when generation starts from a fully masked image.

    Equals meta.json ``t2i.mask_len_per_step`` of the golden vectors for the cosine schedule.
    """
    num_tokens = _positive_int("num_tokens", num_tokens)
    timesteps = _positive_int("timesteps", timesteps)
    unknown = torch.ones(1, num_tokens, dtype=torch.bool)
    out = []
    for step in range(timesteps):
        ratio = 1.0 * (step + 1) / timesteps
        n = int(image_mask_length(num_tokens, image_mask_ratio(schedule, ratio), unknown).item())
        out.append(n)
        unknown = torch.arange(num_tokens)[None, :] < n
    return out
