"""Text-to-image sampler: MaskGIT parallel decoding as MMaDA's ``t2i_generate`` does it (spec §4.3).

Sequences are laid out ``[pad.. <|t2i|> <bos> text <eos>] <|soi|> [image x N] <|eoi|>``: a text part
of any length, then ``N + 2`` image positions. Each step predicts every image position, samples a
code for each masked one, and re-masks the least confident (Gumbel-perturbed) samples so that the
schedule's fraction of the image stays masked.

Exactness: with ``batch_cfg=True`` (the default) every operation, dtype and random draw is the
reference's -- per step one ``torch.multinomial`` over the flattened ``(B*N, K)`` probabilities,
then one uniform ``(B, N)`` draw for the re-masking noise, both from ``generator`` -- so a seeded
call returns the reference's codes.

One deliberate fix: the reference builds the unconditional sequence from the first
``resolution + 1`` tokens of the unconditional prompt, where ``resolution`` is a misnamed argument
that happens to equal the text-part length only for ``max_seq_length`` 512. Here the text part is
read from the layout (everything before ``<|soi|>``), whatever its length; with the reference's
own settings the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmada_bench.errors import ConfigError
from mmada_bench.sampling.guidance import classifier_free_guidance
from mmada_bench.sampling.schedules import check_image_schedule, image_mask_length, image_mask_ratio
from mmada_bench.sampling.stats import SamplingStats, timed_call


def infer_image_layout(ids: torch.Tensor, mask_id: int, image_offset: int, codebook_size: int) -> int:
    """Number of image tokens ``N`` of a t2i sequence (B, L), read from its layout.

    The image positions are the last ``N + 1 .. -1`` (between ``<|soi|>`` and the final
    ``<|eoi|>``): the longest run before the last token of ids that are ``[MASK]`` or image codes.
    ``<|soi|>`` and the text before it are neither, so the run stops there. The config's
    ``num_vq_tokens`` is not used because released configs carry a stale value (256 vs 1024).

    Raises:
        ConfigError: no image positions, or rows that disagree on ``N``.
    """
    if ids.dim() != 2 or ids.shape[1] < 3:
        raise ConfigError(f"t2i input must be (batch, seq) with seq >= 3, got {tuple(ids.shape)}")
    body = ids[:, :-1]
    is_image = (body == mask_id) | ((body >= image_offset) & (body < image_offset + codebook_size))
    # length of the trailing run of True per row
    run = torch.cumprod(is_image.flip(1).to(torch.long), dim=1).sum(dim=1)
    lengths = sorted(set(run.tolist()))
    if len(lengths) != 1 or lengths[0] == 0:
        raise ConfigError(
            "cannot find the image positions: expected every row to end with <|soi|> [MASK or image ids]xN "
            f"<|eoi|> with the same N; found trailing image runs of lengths {lengths}"
        )
    if lengths[0] >= ids.shape[1] - 1:
        raise ConfigError("t2i input has no <|soi|>/text part before the image positions")
    return lengths[0]


def _log(t: torch.Tensor, eps: float = 1e-20) -> torch.Tensor:
    return torch.log(t.clamp(min=eps))


def _remask(
    mask_len: torch.Tensor, probs: torch.Tensor, temperature: float, generator: torch.Generator | list | None
) -> torch.Tensor:
    """Re-mask (True) each row's ``mask_len`` least confident positions, confidence Gumbel-perturbed.

    The reference's ``mask_by_random_topk``: score = log p + temperature * Gumbel, the cut-off is
    the ``mask_len``-th smallest score and strictly lower scores are re-masked. The uniform draw
    is made in the probabilities' dtype, as the reference makes it.
    """
    if isinstance(generator, (list, tuple)):  # one generator per row: each row as if run alone
        uniform = torch.cat([torch.zeros_like(probs[i : i + 1]).uniform_(0, 1, generator=g) for i, g in enumerate(generator)])
    else:
        uniform = torch.zeros_like(probs).uniform_(0, 1, generator=generator)
    confidence = _log(probs) + temperature * -_log(-_log(uniform))
    cut_off = torch.gather(torch.sort(confidence, dim=-1).values, 1, mask_len.long())
    return confidence < cut_off


def _pad_left(ids: torch.Tensor, mask: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad a text part to ``width`` with attention-masked positions."""
    extra = width - ids.shape[1]
    if extra == 0:
        return ids, mask
    return (
        torch.cat([ids[:, :1].expand(-1, extra), ids], dim=1),
        torch.cat([mask.new_zeros(mask.shape[0], extra), mask], dim=1),
    )


@dataclass
class _T2IInputs:
    """Validated inputs of one t2i call, shared by the sampler and :func:`guided_image_logits`."""

    ids: torch.Tensor  # (B, L) conditional sequences (a private copy: the sampler writes into it)
    mask: torch.Tensor  # (B, L) 0/1
    u_text: torch.Tensor | None  # unconditional text part (B, T'), left-padded to fit one batch
    u_text_mask: torch.Tensor | None
    text_len: int  # conditional text-part length (positions before <|soi|>)
    pad_cond: int  # pads the conditional rows need to share a batch with the unconditional ones
    n: int  # image tokens
    offset: int
    codebook: int
    mask_id: int
    guidance_scale: float
    batch_cfg: bool

    @property
    def guided(self) -> bool:
        return self.guidance_scale > 0

    def logits(self, model: torch.nn.Module, record: SamplingStats) -> torch.Tensor:
        """Guided logits over image positions and image-code columns: (B, N, codebook), model dtype.

        Slicing before the elementwise CFG combination gives the same values as the reference's
        combine-then-slice, with less work.
        """
        n, off, k = self.n, self.offset, self.codebook

        def run(batch_ids: torch.Tensor, batch_mask: torch.Tensor) -> torch.Tensor:
            record.nfe += 1
            return model(batch_ids, attention_mask=batch_mask).logits[:, -(n + 1) : -1, off : off + k]

        if not self.guided:
            return run(self.ids, self.mask)
        u_ids = torch.cat([self.u_text, self.ids[:, self.text_len :]], dim=1)
        u_mask = torch.cat([self.u_text_mask, self.mask[:, self.text_len :]], dim=1)
        if self.batch_cfg:
            c_ids, c_mask = _pad_left(self.ids, self.mask, self.ids.shape[1] + self.pad_cond)
            cond, uncond = torch.chunk(run(torch.cat([c_ids, u_ids]), torch.cat([c_mask, u_mask])), 2, dim=0)
        else:
            cond, uncond = run(self.ids, self.mask), run(u_ids, u_mask)
        return classifier_free_guidance(cond, uncond, self.guidance_scale, form="muse")


def _prepare(
    model: torch.nn.Module,
    cond_ids: torch.Tensor,
    uncond_ids: torch.Tensor | None,
    cond_mask: torch.Tensor | None,
    uncond_mask: torch.Tensor | None,
    guidance_scale: float,
    batch_cfg: bool,
    num_image_tokens: int | None,
    mask_id: int | None,
) -> _T2IInputs:
    config = model.config
    mask_id = int(mask_id if mask_id is not None else config.mask_token_id)
    offset, codebook = int(config.image_offset), int(config.codebook_size)
    if not guidance_scale >= 0:
        raise ConfigError(f"guidance_scale must be >= 0, got {guidance_scale}")
    guided = guidance_scale > 0
    if guided and uncond_ids is None:
        raise ConfigError("guidance_scale > 0 needs uncond_ids (the empty-prompt sequences)")
    device = next(model.parameters()).device
    ids = cond_ids.to(device=device, dtype=torch.long).clone()  # the reference edits its input in place
    batch, length = ids.shape if ids.dim() == 2 else (0, 0)
    n = num_image_tokens or infer_image_layout(ids, mask_id, offset, codebook)
    if not 0 < n <= length - 3:
        raise ConfigError(f"num_image_tokens={n} does not fit sequences of length {length}")
    mask = torch.ones_like(ids) if cond_mask is None else cond_mask.to(device=device, dtype=torch.long)
    if mask.shape != ids.shape:
        raise ConfigError(f"cond_mask shape {tuple(mask.shape)} differs from cond_ids {tuple(ids.shape)}")
    text_len = length - n - 2  # the text part ends right before <|soi|>
    u_text = u_text_mask = None
    pad_cond = 0
    if guided:
        u_ids = uncond_ids.to(device=device, dtype=torch.long)
        if u_ids.dim() != 2 or u_ids.shape[0] != batch:
            raise ConfigError(f"uncond_ids must be ({batch}, L'), got {tuple(u_ids.shape)}")
        u_mask = torch.ones_like(u_ids) if uncond_mask is None else uncond_mask.to(device=device, dtype=torch.long)
        if u_mask.shape != u_ids.shape:
            raise ConfigError(f"uncond_mask shape {tuple(u_mask.shape)} differs from uncond_ids {tuple(u_ids.shape)}")
        u_len = u_ids.shape[1] - n - 2
        if u_len < 1:
            raise ConfigError(f"uncond_ids of length {u_ids.shape[1]} cannot hold {n} image tokens and a text part")
        u_text, u_text_mask = u_ids[:, :u_len], u_mask[:, :u_len]
        if batch_cfg and u_len != text_len:
            # One batch needs one length: left-pad the shorter text part with attention-masked pads.
            # RoPE is relative, so this changes logits only by rounding.
            width = max(u_len, text_len)
            u_text, u_text_mask = _pad_left(u_text, u_text_mask, width)
            pad_cond = width - text_len
    return _T2IInputs(ids, mask, u_text, u_text_mask, text_len, pad_cond, n, offset, codebook, mask_id,
                      float(guidance_scale), bool(batch_cfg))


def guided_image_logits(
    model: torch.nn.Module,
    cond_ids: torch.Tensor,
    uncond_ids: torch.Tensor | None,
    cond_mask: torch.Tensor | None,
    uncond_mask: torch.Tensor | None,
    *,
    guidance_scale: float,
    batch_cfg: bool = True,
    num_image_tokens: int | None = None,
    mask_id: int | None = None,
    stats: SamplingStats | None = None,
) -> torch.Tensor:
    """One step's guided logits (B, N, codebook) for the sequences as given -- :func:`generate_image`'s
    model evaluation on its own, for parity checks against the reference's first step."""
    inputs = _prepare(model, cond_ids, uncond_ids, cond_mask, uncond_mask, guidance_scale, batch_cfg,
                      num_image_tokens, mask_id)
    with torch.inference_mode(), timed_call(stats, inputs.ids.device) as record:
        return inputs.logits(model, record)


def generate_image(
    model: torch.nn.Module,
    cond_ids: torch.Tensor,
    uncond_ids: torch.Tensor | None,
    cond_mask: torch.Tensor | None,
    uncond_mask: torch.Tensor | None,
    *,
    timesteps: int,
    guidance_scale: float,
    temperature: float = 1.0,
    schedule: str = "cosine",
    generator: torch.Generator | list[torch.Generator] | None = None,
    batch_cfg: bool = True,
    num_image_tokens: int | None = None,
    mask_id: int | None = None,
    stats: SamplingStats | None = None,
) -> torch.LongTensor:
    """Generate image codes for t2i prompts by MaskGIT parallel decoding.

    Args:
        model: MMaDA model; ``config`` gives ``mask_token_id``, ``image_offset`` (id of code 0) and
            ``codebook_size``.
        cond_ids: (B, L) conditional sequences (see module doc); image positions hold ``[MASK]``
            (or image ids, which are kept as given -- inpainting).
        uncond_ids: (B, L') unconditional sequences (empty prompt), same image part; only their
            text part (everything before ``<|soi|>``) is used. May be None when ``guidance_scale`` is 0.
        cond_mask / uncond_mask: 0/1 padding masks (B, L) / (B, L'); None means no padding.
        timesteps: decoding steps ``T``.
        guidance_scale: ``g``; guided logits are ``(1 + g) * cond - g * uncond`` (MUSE form).
        temperature: initial re-masking noise ``tau0``; annealed cumulatively,
            ``tau <- tau * (1 - (step+1)/T)`` (a reference quirk: the last step uses 0).
        schedule: ``"cosine"``, ``"linear"``, ``"pow<p>"`` or ``"sigmoid"`` mask schedule.
        generator: random generator for the multinomial draw and the re-masking noise; a list gives
            one per row, so each row samples what it would sample run alone.
        batch_cfg: run the conditional and unconditional passes as one batch of ``2B`` (what the
            reference does: exact, one forward call per step). ``False`` runs them as two calls:
            half the peak activation memory, same math, logits equal up to rounding.
        num_image_tokens: ``N``; inferred from the layout when None (:func:`infer_image_layout`).
        mask_id: defaults to ``model.config.mask_token_id``.
        stats: optional :class:`SamplingStats` this call's cost is added to (NFE = forward calls).

    Returns:
        (B, N) LongTensor of codes in ``[0, codebook_size)``: the codes sampled at the *last* step
        for every position, the one still masked in the running sequence included (as the
        reference returns them), clamped to the codebook.
    """
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps <= 0:
        raise ConfigError(f"timesteps must be a positive integer, got {timesteps!r}")
    if not temperature >= 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}")
    check_image_schedule(schedule)
    inp = _prepare(model, cond_ids, uncond_ids, cond_mask, uncond_mask, guidance_scale, batch_cfg,
                   num_image_tokens, mask_id)
    ids, n, batch = inp.ids, inp.n, inp.ids.shape[0]
    img = slice(ids.shape[1] - n - 1, ids.shape[1] - 1)
    unknown = ids[:, img] == inp.mask_id
    codes = torch.where(unknown, torch.zeros_like(ids[:, img]), ids[:, img] - inp.offset)
    tau = float(temperature)
    with torch.inference_mode(), timed_call(stats, ids.device) as record:
        sampled = codes
        for step in range(timesteps):
            probs = inp.logits(model, record).softmax(dim=-1)
            if isinstance(generator, (list, tuple)):
                sampled = torch.cat([torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(generator)])[:, 0]
            else:
                sampled = torch.multinomial(probs.reshape(-1, inp.codebook), 1, generator=generator)[:, 0]
            sampled = torch.where(unknown, sampled.view(batch, n), codes)
            ratio = 1.0 * (step + 1) / timesteps
            selected = torch.gather(probs, -1, sampled[..., None]).squeeze(-1)
            selected = torch.where(unknown, selected, torch.finfo(selected.dtype).max)
            mask_len = image_mask_length(n, image_mask_ratio(schedule, ratio), unknown)
            tau = tau * (1.0 - ratio)
            unknown = _remask(mask_len, selected, tau, generator)
            ids[:, img] = torch.where(unknown, inp.mask_id, sampled + inp.offset)
            codes = sampled
        record.generated_tokens += batch * n
        record.decoded_tokens += batch * n
    return sampled.clamp(0, inp.codebook - 1)
