"""UniGRPO rollouts with our own samplers: G responses per prompt, in batches, one seed per response.

Text and multimodal-understanding rollouts run :func:`mmada_bench.sampling.text.generate_text`
(the image prefix is part of an understanding prompt); text-to-image rollouts run
:func:`mmada_bench.sampling.image.generate_image`. Both are called with **one generator per row**,
seeded by :func:`response_seed` from the run seed, the rollout batch and the response's place in it,
so a response does not depend on which other rows shared its sampler call: batched rollouts equal
one-at-a-time rollouts (bit for bit when the rows of a call have equal prompt lengths; rows padded
to a longer neighbour differ only by floating-point rounding, as the text sampler documents).

The rollout policy is the model as it is now, run without gradients in eval mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mmada_bench.model.padding import left_pad
from mmada_bench.sampling.image import generate_image
from mmada_bench.sampling.text import generate_text


@dataclass(frozen=True)
class TextRolloutSettings:
    """Sampler settings of text / understanding rollouts (defaults: dLLM-RL's ``rl_mmada_v.yaml``,
    whose 128 steps for 128 tokens, blocks of 64 and temperature 0.8 the paper does not contradict)."""

    gen_length: int = 128
    steps: int = 128
    block_length: int = 64
    temperature: float = 0.8
    remasking: str = "low_confidence"
    cfg_scale: float = 0.0
    cache: str | None = None  # "prefix" / "dual": approximate fast modes of the sampler
    threshold: float | None = None  # dLLM-RL decodes with a 0.95 confidence threshold (approximate)
    batch_size: int = 16  # rows per sampler call


@dataclass(frozen=True)
class ImageRolloutSettings:
    """Sampler settings of text-to-image rollouts (MMaDA's t2i defaults)."""

    timesteps: int = 15
    guidance_scale: float = 3.5
    temperature: float = 1.0
    schedule: str = "cosine"
    batch_size: int = 8


def response_seed(seed: int, rollout_id: int, prompt_index: int, sample_index: int) -> int:
    """The seed of one response: a fixed mix of the run seed and the response's coordinates."""
    mixed = seed * 0x9E3779B97F4A7C15 + rollout_id * 0xBF58476D1CE4E5B9
    mixed += prompt_index * 0x94D049BB133111EB + sample_index * 0xD6E8FEB86659FD93
    return mixed % (2**63 - 1)


def _generators(seeds: Sequence[int], device: torch.device) -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


class _Eval:
    """Eval mode for the duration of a rollout, then back to the previous mode."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.was_training = model, model.training

    def __enter__(self) -> None:
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)


def truncate_response(tokens: Sequence[int], stop_ids: set[int]) -> list[int]:
    """Response ids up to (not including) the first stop token: what follows is padding."""
    out = []
    for token in tokens:
        if token in stop_ids:
            break
        out.append(int(token))
    return out


def rollout_text(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    seeds: Sequence[int],
    settings: TextRolloutSettings,
    *,
    mask_id: int,
    eos_id: int,
) -> list[list[int]]:
    """Generate ``settings.gen_length`` tokens after each prompt (one row per prompt/seed pair).

    Rows go to the sampler ``batch_size`` at a time, left-padded with EOS and masked; returns the raw
    generated ids per row (stop tokens and whatever follows them included).
    """
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    device = _device(model)
    out: list[list[int]] = []
    with _Eval(model):
        for start in range(0, len(prompts), settings.batch_size):
            rows = prompts[start : start + settings.batch_size]
            ids, mask = left_pad(rows, eos_id)
            generated = generate_text(
                model,
                ids,
                attention_mask=mask,
                gen_length=settings.gen_length,
                steps=settings.steps,
                block_length=settings.block_length,
                temperature=settings.temperature,
                cfg_scale=settings.cfg_scale,
                remasking=settings.remasking,
                generator=_generators(seeds[start : start + settings.batch_size], device),
                mask_id=mask_id,
                eos_id=eos_id,
                cache=settings.cache,
                threshold=settings.threshold,
            )
            out.extend(generated[:, ids.shape[1] :].tolist())
    return out


def rollout_images(
    model: torch.nn.Module,
    cond_ids: torch.Tensor,
    cond_mask: torch.Tensor,
    uncond_ids: torch.Tensor | None,
    uncond_mask: torch.Tensor | None,
    seeds: Sequence[int],
    settings: ImageRolloutSettings,
    *,
    num_image_tokens: int,
    mask_id: int,
) -> torch.Tensor:
    """(B, N) image codes for the t2i prompt rows ``cond_ids`` (``t2i_gen`` layout), ``batch_size`` rows a call."""
    if cond_ids.shape[0] != len(seeds):
        raise ValueError(f"{cond_ids.shape[0]} prompts but {len(seeds)} seeds")
    device = _device(model)
    chunks = []
    with _Eval(model):
        for start in range(0, cond_ids.shape[0], settings.batch_size):
            part = slice(start, start + settings.batch_size)
            guided = settings.guidance_scale > 0 and uncond_ids is not None
            chunks.append(
                generate_image(
                    model,
                    cond_ids[part],
                    uncond_ids[part] if guided else None,
                    cond_mask[part],
                    uncond_mask[part] if guided and uncond_mask is not None else None,
                    timesteps=settings.timesteps,
                    guidance_scale=settings.guidance_scale if guided else 0.0,
                    temperature=settings.temperature,
                    schedule=settings.schedule,
                    generator=_generators(seeds[part], device),
                    num_image_tokens=num_image_tokens,
                    mask_id=mask_id,
                )
            )
    return torch.cat(chunks).cpu()


__all__ = [
    "ImageRolloutSettings",
    "TextRolloutSettings",
    "response_seed",
    "rollout_images",
    "rollout_text",
    "truncate_response",
]
