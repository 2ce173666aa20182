"""Text and multimodal-understanding sampler: LLaDA semi-autoregressive block diffusion.

One function, :func:`generate_text`, covers the reference sampler (``generate.py`` /
``mmu_generate``, spec §4.1-4.2) and the Fast-dLLM-style accelerations (spec §4.4) as keyword
options, so sweeps change one argument rather than a code path.

Exact mode (``cache=None, threshold=None``) reproduces the reference token for token: the same
forward passes on the whole sequence, the same per-block transfer schedule, float64 Gumbel-max
sampling and float64 softmax confidence, and the random generator consumed in the same order and
shapes (noise over the whole ``(B, L, V)`` logits each step), so a seeded run at temperature > 0
also matches a seeded reference run. It is faster than a literal re-run of the reference only
where that cannot change a token: the float64 softmax, Gumbel argmax and top-k run on the current
block instead of the whole sequence (every position outside it has confidence -inf in the
reference), rows are selected with one batched top-k instead of a Python loop, and -- when no
randomness is consumed -- the no-op steps that follow a block's completion are skipped.

Beyond the reference, exact mode is batched: rows may have different prompt lengths, left-padded,
with a 0/1 ``attention_mask`` (pads neither attend nor are attended). Because RoPE uses absolute
positions with no padding offset, a padded row equals the unpadded prompt run alone only up to
floating-point rounding; a row run alone *with the same padding* gives the same tokens as in the
batch (at temperature 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mmada_bench.errors import ConfigError
from mmada_bench.sampling.guidance import split_guided
from mmada_bench.sampling.schedules import check_text_schedule, transfer_counts
from mmada_bench.sampling.stats import SamplingStats, timed_call

REMASKING = ("low_confidence", "random")
CACHE_MODES = (None, "prefix", "dual")


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _normalise_attention_mask(
    attention_mask: torch.Tensor | None, batch: int, prompt_len: int, total_len: int, device: torch.device
) -> torch.Tensor | None:
    """(B, L) 0/1 long mask over prompt + generation, or None when nothing is masked.

    Accepts a mask over the prompt only (extended with ones over the generation, which is never
    padded) or over the whole sequence (the reference's form). An all-ones mask becomes None, as in
    the reference (``0.0 in attention_mask``), so unpadded batches take the unmasked path.
    """
    if attention_mask is None:
        return None
    mask = attention_mask.to(device=device)
    if mask.dim() != 2 or mask.shape[0] != batch or mask.shape[1] not in (prompt_len, total_len):
        raise ConfigError(
            f"attention_mask must be (batch, prompt_len) = ({batch}, {prompt_len}) or (batch, prompt_len + "
            f"gen_length) = ({batch}, {total_len}); got {tuple(attention_mask.shape)}"
        )
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ConfigError("attention_mask must hold only 0 and 1")
    mask = mask.to(torch.long)
    if mask.shape[1] == prompt_len:
        mask = torch.cat([mask, mask.new_ones(batch, total_len - prompt_len)], dim=1)
    elif not bool(mask[:, prompt_len:].all()):
        raise ConfigError("attention_mask must be 1 over the generated positions (only prompts are padded)")
    if not bool(mask.any(dim=1).all()):
        raise ConfigError("attention_mask has a row with no unmasked position")
    return None if bool(mask.all()) else mask


@dataclass
class _Forward:
    """Runs the model for the sampler: CFG batching, padding mask, KV cache, NFE counting.

    Returns guided logits of the current block only, in the model's dtype, combined exactly as the
    reference does (``un + (w + 1) * (cond - un)``, elementwise, so combining on a slice is the
    same as combining everything and slicing).
    """

    model: torch.nn.Module
    mask: torch.Tensor | None
    cfg_scale: float
    prompt_len: int
    mask_id: int
    record: SamplingStats
    cache: list | None = None

    def _batch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Model input (and mask): ``x``, or ``[x; unconditional x]`` under guidance.

        The unconditional copy masks every real prompt position (the image prefix too, for MMU);
        left pads stay pads -- they are masked out of attention anyway.
        """
        if self.cfg_scale <= 0:
            return x, self.mask
        un_x = x.clone()
        prompt = un_x[:, : self.prompt_len]
        real = torch.ones_like(prompt, dtype=torch.bool) if self.mask is None else self.mask[:, : self.prompt_len].bool()
        prompt[real] = self.mask_id
        mask = None if self.mask is None else torch.cat([self.mask, self.mask], dim=0)
        return torch.cat([x, un_x], dim=0), mask

    def _guide(self, logits: torch.Tensor) -> torch.Tensor:
        if self.cfg_scale <= 0:
            return logits
        return split_guided(logits, self.cfg_scale)

    def full(self, x: torch.Tensor, start: int, end: int, keep_cache: bool) -> torch.Tensor:
        """Whole-sequence forward (refreshing the cache if asked); logits of ``[start, end)``."""
        ids, mask = self._batch(x)
        if not keep_cache:  # exact mode: the reference's full-width logits, sliced afterwards
            out = self.model(ids, attention_mask=mask)
            self.record.nfe += 1
            return self._guide(out.logits[:, start:end])
        out = self.model(ids, attention_mask=mask, use_cache=True, logits_range=(start, end))
        self.record.nfe += 1
        self.cache = out.past_key_values
        return self._guide(out.logits)

    def segment(self, x: torch.Tensor, start: int, end: int, block_end: int) -> torch.Tensor:
        """Forward of positions ``[start, end)`` against the cache; logits of ``[start, block_end)``.

        Segments never reach into the prompt, so the unconditional copy of a segment is the segment
        itself and only the cache differs between the two halves of a guided batch.
        """
        seg = x[:, start:end]
        if self.cfg_scale > 0:
            seg = torch.cat([seg, seg], dim=0)
        mask = self.mask if self.mask is None or self.cfg_scale <= 0 else torch.cat([self.mask, self.mask], dim=0)
        out = self.model(seg, attention_mask=mask, past_key_values=self.cache, cache_start=start,
                         logits_range=(0, block_end - start))
        self.record.nfe += 1
        return self._guide(out.logits)


def _check_options(
    temperature: float, cfg_scale: float, remasking: str, cache: str | None, threshold: float | None
) -> None:
    if remasking not in REMASKING:
        raise ConfigError(f"remasking must be one of {REMASKING}, got {remasking!r}")
    if cache not in CACHE_MODES:
        raise ConfigError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
    if not temperature >= 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}")
    if not cfg_scale >= 0:
        raise ConfigError(f"cfg_scale must be >= 0, got {cfg_scale}")
    if threshold is not None and not 0 < threshold <= 1:
        raise ConfigError(f"threshold must be in (0, 1] (a confidence), got {threshold}")


def generate_text(
    model: torch.nn.Module,
    prompt_ids: torch.Tensor,
    *,
    gen_length: int,
    steps: int,
    block_length: int,
    temperature: float = 0.0,
    cfg_scale: float = 0.0,
    remasking: str = "low_confidence",
    attention_mask: torch.Tensor | None = None,
    generator: torch.Generator | list[torch.Generator] | None = None,
    mask_id: int | None = None,
    eos_id: int | None = None,
    cache: str | None = None,
    threshold: float | None = None,
    stop_at_eos: bool = False,
    stats: SamplingStats | None = None,
) -> torch.LongTensor:
    """Generate ``gen_length`` tokens after each prompt by masked block diffusion.

    Args:
        model: an MMaDA/LLaDA mask predictor; ``model(ids, attention_mask=...).logits`` is (B, L, V).
        prompt_ids: (B, P) prompt ids, left-padded when rows differ in length. For multimodal
            understanding the image prefix (``<|mmu|><|soi|> codes <|eoi|>``) is part of the prompt.
            Must not contain ``mask_id`` at unpadded positions (the reference would silently fill
            those in).
        gen_length, steps, block_length: ``gen_length`` split into blocks of ``block_length``,
            decoded left to right with ``steps / num_blocks`` steps each; see
            :func:`~mmada_bench.sampling.schedules.check_text_schedule` for the rules.
        temperature: 0 = argmax; > 0 = Gumbel-max in float64 (``exp(l) / (-log u) ** temperature``).
        cfg_scale: unsupervised classifier-free guidance weight ``w``; the unconditional branch
            masks all prompt positions and logits are ``un + (w + 1) * (cond - un)``. With padding,
            pads stay pads and both halves use the mask (the reference passes no mask under CFG).
        remasking: ``"low_confidence"`` (float64 softmax probability of the chosen token) or
            ``"random"`` (uniform scores).
        attention_mask: optional 0/1 mask, (B, P) or (B, P + gen_length); 0 marks left pads.
        generator: random generator for temperature > 0 or random remasking; None uses torch's
            global generator, as the reference does. A list gives one generator per row: each row
            then draws exactly what it would draw run alone, so batching does not change samples.
        mask_id / eos_id: default ``model.config.mask_token_id`` / ``model.config.eos_token_id``.
        cache: fast mode, **approximate**. ``"prefix"``: at each block start one full forward
            refreshes the KV cache; the other steps recompute only the current block and
            everything right of it, reading the keys/values of the prompt and earlier blocks from
            that cache. ``"dual"``: the other steps recompute only the current block; keys/values
            on both sides come from the cache. Bidirectional attention makes cached entries stale
            as the block fills in, hence approximate -- except with one step per block, where every
            step is a full forward and the output equals exact mode. Cache modes stop a block as
            soon as it has no masks left and draw random noise for the block only.
        threshold: fast mode, **approximate**: each step transfers every masked token of the block
            whose confidence is >= ``threshold`` and at least the most confident one, until the
            block is filled (``steps`` then no longer sets the pace; at most ``block_length``
            forwards per block). Combines with ``cache``.
        stop_at_eos: after each block, stop if every row's block ends in ``eos_id`` and fill the
            rest with ``eos_id``. **Exact up to the stopping block** (later blocks never influence
            earlier ones); the tail is an assumption -- models trained with EOS padding emit EOS
            there, others may not. (The reference's ``mmu_generate_fast`` leaves ``[MASK]`` ids.)
        stats: optional :class:`SamplingStats` that this call's cost is added to.

    Returns:
        (B, P + gen_length) LongTensor: the prompt followed by the generated tokens.

    Raises:
        ConfigError: invalid schedule (with the nearest valid values) or option.
    """
    config = getattr(model, "config", None)
    if mask_id is None:
        mask_id = getattr(config, "mask_token_id", None)
        if mask_id is None:
            raise ConfigError("generate_text needs mask_id (none given and the model config has no mask_token_id)")
    mask_id = int(mask_id)
    eos_id = eos_id if eos_id is not None else getattr(config, "eos_token_id", None)
    num_blocks, steps_per_block = check_text_schedule(gen_length, steps, block_length)
    _check_options(temperature, cfg_scale, remasking, cache, threshold)
    if stop_at_eos and eos_id is None:
        raise ConfigError("stop_at_eos=True needs eos_id (none given and the model config has none)")
    if prompt_ids.dim() != 2 or prompt_ids.shape[1] == 0:
        raise ConfigError(f"prompt_ids must be (batch, prompt_len) with prompt_len >= 1, got {tuple(prompt_ids.shape)}")

    device = _model_device(model)
    batch, prompt_len = prompt_ids.shape
    total = prompt_len + gen_length
    prompt_ids = prompt_ids.to(device=device, dtype=torch.long)
    mask = _normalise_attention_mask(attention_mask, batch, prompt_len, total, device)
    real_prompt = prompt_ids == mask_id if mask is None else (prompt_ids == mask_id) & mask[:, :prompt_len].bool()
    if bool(real_prompt.any()):
        raise ConfigError(f"prompt_ids contain the mask token id {mask_id} at unpadded positions")

    # Exact mode draws noise in the reference's shapes so seeded runs match it draw for draw.
    reference_rng = cache is None and threshold is None
    uses_rng = temperature > 0 or remasking == "random"

    with torch.inference_mode(), timed_call(stats, device) as record:
        x = torch.cat([prompt_ids, prompt_ids.new_full((batch, gen_length), mask_id)], dim=1)
        fwd = _Forward(model, mask, float(cfg_scale), prompt_len, mask_id, record)
        decoded_end = total
        for b in range(num_blocks):
            start = prompt_len + b * block_length
            end = start + block_length
            counts = transfer_counts((x[:, start:end] == mask_id).sum(dim=1), steps_per_block)
            step = 0
            while True:
                still_masked = x[:, start:end] == mask_id
                if threshold is None and step == steps_per_block:
                    break
                if not bool(still_masked.any()) and (threshold is not None or cache is not None or not uses_rng):
                    break  # only no-op steps remain; skipping them changes no token
                if cache is None:
                    logits = fwd.full(x, start, end, keep_cache=False)
                elif step == 0:
                    logits = fwd.full(x, start, end, keep_cache=True)
                else:
                    seg_end = total if cache == "prefix" else end
                    logits = fwd.segment(x, start, seg_end, end)
                x0, confidence = _predict(logits, temperature, remasking, generator, reference_rng, start, total)
                confidence = torch.where(still_masked, confidence, torch.full_like(confidence, -torch.inf))
                if threshold is None:
                    chosen = _top_k(confidence, counts[:, step])
                else:
                    chosen = _over_threshold(confidence, still_masked, threshold)
                x[:, start:end] = torch.where(chosen, x0, x[:, start:end])
                step += 1
            if stop_at_eos and b + 1 < num_blocks and bool((x[:, end - 1] == eos_id).all()):
                x[:, end:] = eos_id
                decoded_end = end
                break
        record.generated_tokens += batch * gen_length
        record.decoded_tokens += batch * (decoded_end - prompt_len)
    return x


def _predict(
    logits: torch.Tensor,
    temperature: float,
    remasking: str,
    generator: torch.Generator | list[torch.Generator] | None,
    reference_rng: bool,
    start: int,
    total: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate tokens and their confidence for the block's positions, as the reference computes them.

    With ``reference_rng`` the random draws have the reference's whole-sequence shapes (one
    float64 uniform per logit, then one uniform per position) and the block's slice is used.
    """
    batch, width, vocab = logits.shape
    device = logits.device
    if temperature > 0:
        if reference_rng:
            noise = _rand((batch, total, vocab), generator, dtype=torch.float64, device=device)
            noise = noise[:, start : start + width]
        else:
            noise = _rand((batch, width, vocab), generator, dtype=torch.float64, device=device)
        x0 = torch.argmax(logits.to(torch.float64).exp() / (-torch.log(noise)) ** temperature, dim=-1)
    else:
        x0 = torch.argmax(logits, dim=-1)
    if remasking == "low_confidence":
        probs = F.softmax(logits.to(torch.float64), dim=-1)
        confidence = torch.gather(probs, -1, x0.unsqueeze(-1)).squeeze(-1)
    else:
        shape = (batch, total) if reference_rng else (batch, width)
        confidence = _rand(shape, generator, device=device)
        if reference_rng:
            confidence = confidence[:, start : start + width]
    return x0, confidence


def _rand(shape: tuple[int, ...], generator, **kwargs) -> torch.Tensor:
    """Uniforms of ``shape``; with a list of generators, row i comes from generator i (as if run alone)."""
    if isinstance(generator, (list, tuple)):
        return torch.cat([torch.rand((1, *shape[1:]), generator=g, **kwargs) for g in generator])
    return torch.rand(shape, generator=generator, **kwargs)


def _top_k(confidence: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Boolean (B, W) selection of each row's ``k[row]`` most confident positions."""
    chosen = torch.zeros_like(confidence, dtype=torch.bool)
    k_list = k.tolist()
    if len(set(k_list)) == 1:
        if k_list[0] > 0:
            idx = torch.topk(confidence, k=k_list[0], dim=-1).indices
            chosen.scatter_(1, idx, True)
        return chosen
    for row, n in enumerate(k_list):
        if n > 0:
            chosen[row, torch.topk(confidence[row], k=n).indices] = True
    return chosen


def _over_threshold(confidence: torch.Tensor, masked: torch.Tensor, threshold: float) -> torch.Tensor:
    """Every masked position with confidence >= threshold, plus each row's best (if it has a mask)."""
    chosen = masked & (confidence >= threshold)
    best = confidence.argmax(dim=-1, keepdim=True)
    has_mask = masked.any(dim=-1, keepdim=True)
    return chosen | (torch.zeros_like(chosen).scatter_(1, best, True) & has_mask)
