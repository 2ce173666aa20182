"""The MMaDA adapter: a checkpoint (folder or preset) + tokenizer + image tokenizer, as tasks see it.

It turns the task-level requests of :mod:`mmada_bench.adapters.base` into token ids, runs the
samplers of :mod:`mmada_bench.sampling` (batched, left-padded with an attention mask) or the Monte
Carlo log-likelihood, and turns ids back into text or images.

Determinism: every random draw uses a generator seeded from the request's own ``seed``. Greedy text
generation draws nothing, so it is batched; stochastic generation (temperature > 0, random
remasking) runs one request per sampler call so each request's noise is its own and results do not
depend on batch composition; image generation is batched with one generator per row, to the same end.
Log-likelihoods with a one-token continuation are exact and batched; longer ones use per-request MC draws.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from mmada_bench.adapters.base import (
    Adapter,
    Cost,
    ImageQuestion,
    ImageRequest,
    ImageResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    TextRequest,
    TextResult,
    apply_until,
)
from mmada_bench.adapters.settings import (
    GenerationSettings,
    ImageSettings,
    TextSettings,
    UnderstandingSettings,
)
from mmada_bench.errors import ConfigError
from mmada_bench.model import image_processing
from mmada_bench.model.configuration_mmada import RELEASED_T2I_TEXT_BUDGET, T2I_TEXT_BUDGET_KEY
from mmada_bench.model.loading import ModelBundle, load_bundle
from mmada_bench.model.padding import left_pad
from mmada_bench.model.prompting import MMaDAPrompting, apply_text_chat_template, with_cot, with_single_bos
from mmada_bench.sampling import SamplingStats, check_text_schedule, generate_image, generate_text
from mmada_bench.sampling.likelihood import mc_loglikelihood, single_token_logprob_rows


def resolve_device(device: str | None) -> str:
    """``auto``/None -> ``cuda`` when available, else ``cpu``; anything else as given."""
    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def _as_image(image: Any) -> Any:
    """Accept uint8 HxWx3 arrays as well as what ``load_image`` takes (PIL images, paths)."""
    if hasattr(image, "shape") and hasattr(image, "dtype"):
        from PIL import Image

        return Image.fromarray(image)
    return image


class MMaDAAdapter(Adapter):
    """MMaDA checkpoint under test; see the module docstring for batching and seeding rules."""

    def __init__(
        self,
        bundle: ModelBundle,
        *,
        batch_size: int = 8,
        dtype: str = "float32",
        label: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        self.bundle = bundle
        self.model = bundle.model
        self.tokenizer = bundle.tokenizer
        self.special = bundle.special_tokens
        self.batch_size = batch_size
        self.dtype = dtype
        self.label = label
        self._stop_ids = {self.special.eos, self.special.eot_id}

    @classmethod
    def from_checkpoint(
        cls,
        model: str,
        *,
        dtype: str = "float32",
        device: str | None = "cpu",
        batch_size: int = 8,
        label: str | None = None,
        vq_model: str | None = None,
        tokenizer: str | None = None,
    ) -> MMaDAAdapter:
        bundle = load_bundle(model, dtype=dtype, device=resolve_device(device), vq_model=vq_model, tokenizer=tokenizer)
        return cls(bundle, batch_size=batch_size, dtype=dtype, label=label)

    # -- identity ------------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        return {
            "adapter": "mmada",
            "checkpoint_fingerprint": self.bundle.fingerprint,
            "dtype": str(self.dtype),
        }

    def describe(self) -> dict[str, Any]:
        config = self.bundle.config
        return {
            **self.identity(),
            "label": self.label,
            "model": self.bundle.name_or_path,
            "path": str(self.bundle.path),
            "device": str(self.bundle.device),
            "num_parameters": sum(p.numel() for p in self.model.parameters()),
            "n_layers": config.n_layers,
            "d_model": config.d_model,
            "vocab_size": config.vocab_size,
            "tokenizer_size": len(self.tokenizer),
            "image_tokenizer": self.bundle.vq_model is not None,
            "special_tokens": self.special.as_dict(),
            "batch_size": self.batch_size,
        }

    def preferred_batch_size(self) -> int:
        return self.batch_size

    def capabilities(self) -> tuple[str, ...]:
        """Image understanding and generation need the MAGVIT-v2 image tokenizer."""
        image = ("answer_about_image", "generate_images")
        return tuple(c for c in super().capabilities() if self.bundle.vq_model is not None or c not in image)

    # -- tokens --------------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def _with_bos(self, ids: list[int]) -> list[int]:
        return with_single_bos(ids, self.special.bos)

    def _logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        return self.model(ids, attention_mask=attention_mask).logits

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's convention: trailing context spaces move to the continuation; split the joint encoding."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            continuation = context[-spaces:] + continuation
            context = context[:-spaces]
        ctx = self._encode(context)
        whole = self._encode(context + continuation)
        cont = whole[len(ctx) :] if whole[: len(ctx)] == ctx and len(whole) > len(ctx) else self._encode(continuation)
        return self._with_bos(ctx), cont

    @staticmethod
    def _truncate(prefix: list[int], budget: int) -> list[int]:
        """Keep BOS and the last ``budget - 1`` prompt tokens (the end of a prompt matters most)."""
        if len(prefix) <= budget:
            return prefix
        keep = max(budget - 1, 0)
        return [prefix[0], *prefix[len(prefix) - keep :]] if keep else prefix[:1]

    def render_prompt(self, prompt: str, settings: TextSettings) -> list[int]:
        """Prompt ids: optionally wrapped in MMaDA's chat template, exactly one BOS first."""
        if settings.chat:
            content = with_cot(prompt) if settings.cot else prompt
            prompt = apply_text_chat_template([{"role": "user", "content": content}], self.tokenizer.bos_token)
        return self._with_bos(self._encode(prompt))

    # -- log-likelihood ------------------------------------------------------------------------
    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], settings: TextSettings
    ) -> list[LoglikelihoodResult]:
        device = self.bundle.device
        results: list[LoglikelihoodResult | None] = [None] * len(requests)
        single: list[tuple[int, list[int], int]] = []
        for index, request in enumerate(requests):
            prefix, cont = self._encode_pair(request.context, request.continuation)
            prefix = self._truncate(prefix, settings.max_length - len(cont))
            if len(cont) == 1:
                single.append((index, prefix, cont[0]))
                continue
            generator = torch.Generator().manual_seed(request.seed)
            start = time.perf_counter()
            value, forwards = mc_loglikelihood(
                self._logits, prefix, cont, mask_id=self.special.mask, mc_num=settings.mc_num,
                mc_batch=settings.mc_batch, cfg=settings.cfg, generator=generator, device=device,
            )
            results[index] = LoglikelihoodResult(value, False, Cost(forwards, 0, time.perf_counter() - start))
        # Requests that share a prefix (the choices of one question) share one forward pass: the row
        # "prefix + [MASK]" gives every candidate's exact log-probability at once.
        prefixes: dict[tuple[int, ...], list[tuple[int, int]]] = {}
        for index, prefix, target in single:
            prefixes.setdefault(tuple(prefix), []).append((index, target))
        rows_per_item = 2 if settings.cfg > 0 else 1
        chunk = max(1, self.batch_size // rows_per_item)
        unique = list(prefixes.items())
        for offset in range(0, len(unique), chunk):
            part = unique[offset : offset + chunk]
            start = time.perf_counter()
            logp = single_token_logprob_rows(
                self._logits, [list(prefix) for prefix, _ in part], mask_id=self.special.mask,
                pad_id=self.special.eos, cfg=settings.cfg, device=device,
            )
            members = sum(len(m) for _, m in part)
            share = (time.perf_counter() - start) / members
            for row, (_, requested) in enumerate(part):
                best = int(logp[row].argmax())
                for position, (index, target) in enumerate(requested):
                    results[index] = LoglikelihoodResult(
                        float(logp[row, target]), best == target, Cost(1 if position == 0 else 0, 0, share)
                    )
        return [r for r in results if r is not None]

    def loglikelihood_rolling(
        self, requests: Sequence[LoglikelihoodRequest], settings: TextSettings
    ) -> list[LoglikelihoodResult]:
        """Whole-text log-likelihood: windows of up to ``max_length // 2`` tokens, each scored by MC
        given up to the preceding ``max_length // 2`` tokens (BOS for the first window)."""
        window = max(1, settings.max_length // 2)
        out = []
        for request in requests:
            tokens = self._encode(request.continuation)
            total, cost = 0.0, Cost()
            generator = torch.Generator().manual_seed(request.seed)
            for begin in range(0, len(tokens), window):
                prefix = [self.special.bos, *tokens[max(0, begin - window) : begin]]
                target = tokens[begin : begin + window]
                start = time.perf_counter()
                value, forwards = mc_loglikelihood(
                    self._logits, prefix, target, mask_id=self.special.mask, mc_num=settings.mc_num,
                    mc_batch=settings.mc_batch, cfg=settings.cfg, generator=generator, device=self.bundle.device,
                )
                total += value
                cost.add(Cost(forwards, 0, time.perf_counter() - start))
            out.append(LoglikelihoodResult(total, False, cost))
        return out

    # -- text generation -----------------------------------------------------------------------
    def _batches(self, n: int, settings_deterministic: bool) -> list[range]:
        size = self.batch_size if settings_deterministic else 1
        return [range(i, min(i + size, n)) for i in range(0, n, size)]

    def _decode(self, generated: list[int]) -> str:
        """Text up to the first EOS / ``<|eot_id|>`` (what follows is padding), special tokens dropped."""
        for position, token in enumerate(generated):
            if token in self._stop_ids:
                generated = generated[:position]
                break
        return self.tokenizer.decode(generated, skip_special_tokens=True)

    def _sample_text(
        self, rows: list[list[int]], settings: GenerationSettings, seed: int | None
    ) -> tuple[list[str], Cost]:
        """One sampler call over left-padded ``rows``; returns decoded generations and per-row cost."""
        ids, mask = left_pad(rows, self.special.eos)
        stats = SamplingStats()
        generator = None
        if not settings.deterministic:
            generator = torch.Generator(device=self.bundle.device).manual_seed(seed or 0)
        out = generate_text(
            self.model, ids, attention_mask=mask, gen_length=settings.gen_length, steps=settings.steps,
            block_length=settings.block_length, temperature=settings.temperature, cfg_scale=settings.cfg_scale,
            remasking=settings.remasking, generator=generator, mask_id=self.special.mask, eos_id=self.special.eos,
            cache=settings.cache, threshold=settings.threshold, stop_at_eos=settings.stop_at_eos, stats=stats,
        )
        texts = [self._decode(row) for row in out[:, ids.shape[1] :].tolist()]
        return texts, Cost(stats.nfe, stats.decoded_tokens // len(rows), stats.seconds / len(rows))

    def generate_text(self, requests: Sequence[TextRequest], settings: TextSettings) -> list[TextResult]:
        check_text_schedule(settings.gen_length, settings.steps, settings.block_length)
        budget = settings.max_length - settings.gen_length
        if budget < 1:
            raise ConfigError(f"max_length={settings.max_length} leaves no room for a prompt before gen_length")
        prompts = [self._truncate(self.render_prompt(r.prompt, settings), budget) for r in requests]
        results: list[TextResult] = []
        for batch in self._batches(len(requests), settings.deterministic):
            texts, cost = self._sample_text([prompts[i] for i in batch], settings, requests[batch[0]].seed)
            for i, raw in zip(batch, texts, strict=True):
                results.append(TextResult(apply_until(raw, requests[i].until), raw, Cost(cost.nfe, cost.tokens, cost.seconds)))
        return results

    # -- images --------------------------------------------------------------------------------
    def _image_resolution(self, override: int | None = None) -> int:
        if override:
            return override
        vq = self._vq()
        side = math.isqrt(int(self.bundle.config.num_vq_tokens))
        return side * vq.config.downsample_factor

    def _vq(self) -> Any:
        if self.bundle.vq_model is None:
            raise ConfigError(f"{self.bundle.path} has no image tokenizer (vq_model/); image tasks need one")
        return self.bundle.vq_model

    def answer_about_image(
        self, requests: Sequence[ImageQuestion], settings: UnderstandingSettings
    ) -> list[TextResult]:
        """MMU: image -> MAGVIT-v2 codes -> ``<|mmu|><|soi|>codes<|eoi|>BOS`` + chat question -> text."""
        check_text_schedule(settings.gen_length, settings.steps, settings.block_length)
        vq = self._vq()
        resolution = self._image_resolution()
        builder = MMaDAPrompting.from_config(self.tokenizer, self.bundle.config, max(2, settings.max_length))
        results: list[TextResult] = []
        for batch in self._batches(len(requests), settings.deterministic):
            items = [requests[i] for i in batch]
            with torch.inference_mode():
                pixels = image_processing.preprocess_images([_as_image(item.image) for item in items], resolution)
                codes = vq.encode(pixels.to(self.bundle.device))
            questions = [with_cot(item.question) if settings.cot else item.question for item in items]
            prompt = builder.mmu_gen(codes.cpu(), questions)
            rows = [row[m.bool()].tolist() for row, m in zip(prompt.input_ids, prompt.attention_mask, strict=True)]
            texts, cost = self._sample_text(rows, settings, items[0].seed)
            for item, raw in zip(items, texts, strict=True):
                results.append(TextResult(apply_until(raw, item.until), raw, Cost(cost.nfe, cost.tokens, cost.seconds)))
        return results

    def t2i_text_budget(self, settings: ImageSettings) -> int:
        """``M`` of the t2i prompt: the setting, else the checkpoint's trained budget, else MMaDA-8B's 512."""
        if settings.max_text_len is not None:
            return settings.max_text_len
        return int(getattr(self.bundle.config, T2I_TEXT_BUDGET_KEY, None) or RELEASED_T2I_TEXT_BUDGET)

    def generate_images(self, requests: Sequence[ImageRequest], settings: ImageSettings) -> list[ImageResult]:
        """T2I: MaskGIT decoding of ``t2i_gen`` prompts (with CFG against the empty prompt), then MAGVIT-v2.

        Requests are decoded ``batch_size`` at a time: one forward pass per step over the batch's
        conditional rows and, with guidance, its unconditional rows (``2B`` rows, as the reference
        batches CFG). Each row draws its noise from a generator seeded by its own request, so an image
        equals the one its request makes alone, whatever shares its batch.
        """
        vq = self._vq()
        side = self._image_resolution(settings.resolution) // vq.config.downsample_factor
        tokens = side * side
        builder = MMaDAPrompting.from_config(self.tokenizer, self.bundle.config, self.t2i_text_budget(settings))
        device = self.bundle.device
        results: list[ImageResult] = []
        for batch in self._batches(len(requests), True):
            items = [requests[i] for i in batch]
            cond = builder.t2i_gen([item.prompt for item in items], tokens)
            uncond = builder.t2i_gen([""] * len(items), tokens) if settings.guidance_scale > 0 else None
            stats = SamplingStats()
            generators = [torch.Generator(device=device).manual_seed(item.seed) for item in items]
            codes = generate_image(
                self.model, cond.input_ids, uncond.input_ids if uncond else None, cond.attention_mask,
                uncond.attention_mask if uncond else None, timesteps=settings.timesteps,
                guidance_scale=settings.guidance_scale, temperature=settings.temperature, schedule=settings.schedule,
                generator=generators, num_image_tokens=tokens, mask_id=self.special.mask, stats=stats,
            )
            # Decoded one image at a time: MAGVIT-v2's convolutions round differently at other batch
            # sizes (1e-6), which can flip a uint8 pixel; one decode is cheap next to the sampler steps.
            with torch.inference_mode():
                pictures = [image_processing.postprocess_images(vq.decode(row[None], (side, side)).float().cpu())[0]
                            for row in codes]
            share = stats.seconds / len(items)
            results += [ImageResult(picture, Cost(stats.nfe, tokens, share)) for picture in pictures]
        return results
