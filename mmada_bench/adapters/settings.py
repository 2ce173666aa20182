"""Sampler settings: how the model under test is asked, as one typed, hashable record.

Settings are part of what is being evaluated (the same checkpoint at 64 vs 256 steps is a different
system), so they travel into the results file and into every request's resume key. Tasks give
defaults, a run may override any field (``--sampler steps=128,gen_length=128``), and anything that
is not a known field is refused instead of silently ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, TypeVar

from mmada_bench.errors import ConfigError

REMASKING = ("low_confidence", "random")
CACHE_MODES = (None, "prefix", "dual")


def _positive_ints(settings: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"sampler setting {name} must be a positive integer, got {value!r}")


def _finite(settings: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(settings, name)
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"sampler setting {name} must be a finite number, got {value!r}")


_S = TypeVar("_S", bound="Settings")


class Settings:
    """What every settings record offers the harness: a dict for results and keys, typed overrides."""

    #: modality the settings drive (``text`` | ``mmu`` | ``t2i``), for messages and listings.
    MODALITY = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def key_dict(self) -> dict[str, Any]:
        """The fields that decide an answer (part of every request key)."""
        return self.to_dict()

    def updated(self: _S, overrides: Mapping[str, Any] | None) -> _S:
        """A copy with ``overrides`` applied; values may be strings (``"128"``, ``"true"``)."""
        if not overrides:
            return self
        return replace(self, **coerce(type(self), overrides))  # type: ignore[type-var]

    def check(self) -> None:
        """Refuse settings the sampler cannot run (called for every task before any model loads)."""

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]


@dataclass(frozen=True)
class GenerationSettings(Settings):
    """LLaDA semi-autoregressive block diffusion (spec §4.1), shared by text and image understanding.

    Attributes:
        gen_length / steps / block_length: generated tokens, denoising steps, semi-autoregressive block.
        temperature: Gumbel noise scale; 0 is greedy (deterministic).
        cfg_scale: classifier-free guidance for generation (prompt masked in the unconditional copy).
        remasking: ``low_confidence`` (reference default) or ``random``.
        threshold: optional confidence threshold (Fast-dLLM parallel decoding); None = fixed schedule.
        cache: ``None`` (exact), ``"prefix"`` or ``"dual"`` KV cache (Fast-dLLM, approximate).
        stop_at_eos: stop after a block that ends in EOS in every row (exact up to that block).
        cot: add MMaDA's thinking instruction to the question.
        max_length: longest prompt+generation in tokens; longer prompts lose their left part.
    """

    gen_length: int = 256
    steps: int = 256
    block_length: int = 32
    temperature: float = 0.0
    cfg_scale: float = 0.0
    remasking: str = "low_confidence"
    threshold: float | None = None
    cache: str | None = None
    stop_at_eos: bool = False
    cot: bool = False
    max_length: int = 4096

    #: Fields that change what the block-diffusion sampler produces.
    GENERATION_FIELDS = (
        "gen_length", "steps", "block_length", "temperature", "cfg_scale", "remasking", "threshold", "cache",
        "stop_at_eos", "cot", "max_length",
    )

    def __post_init__(self) -> None:
        _positive_ints(self, ("gen_length", "steps", "block_length", "max_length"))
        _finite(self, ("temperature", "cfg_scale", "threshold"))
        if self.remasking not in REMASKING:
            raise ConfigError(f"sampler setting remasking must be one of {', '.join(REMASKING)}, got {self.remasking!r}")
        if self.temperature < 0 or self.cfg_scale < 0:
            raise ConfigError("sampler settings temperature and cfg_scale must be >= 0")
        if self.threshold is not None and not 0 < self.threshold <= 1:
            raise ConfigError(f"sampler setting threshold must be in (0, 1], got {self.threshold}")
        if self.cache not in CACHE_MODES:
            raise ConfigError(f"sampler setting cache must be one of none, prefix, dual; got {self.cache!r}")

    @property
    def deterministic(self) -> bool:
        """True when generation does not draw random numbers (so batching cannot change it)."""
        return self.temperature == 0 and self.remasking == "low_confidence"

    def generation_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.GENERATION_FIELDS}

    def key_dict(self) -> dict[str, Any]:
        return self.generation_dict()

    def check(self) -> None:
        from mmada_bench.sampling.schedules import check_text_schedule

        check_text_schedule(self.gen_length, self.steps, self.block_length)


@dataclass(frozen=True)
class TextSettings(GenerationSettings):
    """Text generation and log-likelihood (spec §6.1) settings.

    Attributes (beyond :class:`GenerationSettings`):
        chat: wrap each prompt as one user turn of MMaDA's chat template (what MMaDA's eval.sh does);
            ``cot`` applies only with ``chat``.
        mc_num / mc_batch: Monte Carlo samples per log-likelihood and rows per forward pass.
        cfg: unsupervised classifier-free guidance for log-likelihood (LLaDA's ``cfg``).
    """

    MODALITY = "text"

    chat: bool = False
    mc_num: int = 128
    mc_batch: int = 32
    cfg: float = 0.0

    GENERATION_FIELDS = (*GenerationSettings.GENERATION_FIELDS, "chat")
    #: Fields that change what ``loglikelihood`` returns.
    LOGLIKELIHOOD_FIELDS = ("mc_num", "mc_batch", "cfg", "max_length")

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive_ints(self, ("mc_num", "mc_batch"))
        _finite(self, ("cfg",))
        if self.cfg < 0:
            raise ConfigError("sampler setting cfg must be >= 0")
        if self.mc_num % self.effective_mc_batch:
            raise ConfigError(f"sampler setting mc_num={self.mc_num} must be a multiple of mc_batch={self.mc_batch}")

    @property
    def effective_mc_batch(self) -> int:
        return min(self.mc_batch, self.mc_num)

    def loglikelihood_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.LOGLIKELIHOOD_FIELDS}


@dataclass(frozen=True)
class UnderstandingSettings(GenerationSettings):
    """Answering questions about images (spec §4.2, §6.2).

    Defaults are the reference VLMEvalKit wrapper's ``DEFAULT_KWARGS``: 2 new tokens, 2 steps, block 2
    (enough for yes/no, one word or an option letter); tasks may name longer presets.
    """

    MODALITY = "mmu"

    gen_length: int = 2
    steps: int = 2
    block_length: int = 2


@dataclass(frozen=True)
class ImageSettings(Settings):
    """Text-to-image sampling (MaskGIT-style, spec §4.3); used by the t2i tasks to come.

    Attributes:
        timesteps: denoising steps; guidance_scale: CFG weight (MUSE form); temperature: initial
        re-masking noise; schedule: mask schedule name.
        resolution: image side in pixels; None = the checkpoint's own (``num_vq_tokens`` x the image
            tokenizer's downsampling), which for MMaDA-8B configs is a stale 256 -- pass 512 there.
        max_text_len: the t2i text budget ``M`` the checkpoint was trained with. None (default): the
            checkpoint's own ``t2i_max_text_len`` (which ``mmada-bench train`` records), else 512, the
            released MMaDA-8B stages' budget. A wrong ``M`` moves every image token and ruins the images.
        images_per_prompt: images a task asks for per prompt (GenEval: 4), each with its own seed. It
            is not part of the request key: image ``k`` of a prompt is the same request whatever the
            count, so raising the count keeps the images already made.
    """

    timesteps: int = 15
    guidance_scale: float = 3.5
    temperature: float = 1.0
    schedule: str = "cosine"
    resolution: int | None = None
    max_text_len: int | None = None
    images_per_prompt: int = 1

    MODALITY = "t2i"

    def __post_init__(self) -> None:
        _positive_ints(self, ("timesteps", "images_per_prompt"))
        if self.max_text_len is not None:
            _positive_ints(self, ("max_text_len",))
        _finite(self, ("guidance_scale", "temperature"))
        if self.guidance_scale < 0 or self.temperature < 0:
            raise ConfigError("sampler settings guidance_scale and temperature must be >= 0")
        if self.resolution is not None:
            _positive_ints(self, ("resolution",))

    def key_dict(self) -> dict[str, Any]:
        out = self.to_dict()
        out.pop("images_per_prompt")
        return out

    def check(self) -> None:
        from mmada_bench.sampling.schedules import check_image_schedule

        check_image_schedule(self.schedule)


def coerce(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """Convert ``key -> value`` (values possibly strings from a command line) to ``cls`` field types."""
    known = {f.name: f for f in fields(cls)}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown sampler setting {key!r}; known: {', '.join(known)}")
        out[key] = _convert(key, value, str(known[key].type))
    return out


def _convert(key: str, value: Any, annotation: str) -> Any:
    """Convert by the field's annotation (``"int"``, ``"float | None"``, ``"str | None"``, ``"bool"``)."""
    kinds = [part.strip() for part in annotation.split("|")]
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
        if "None" in kinds:
            return None
        raise ConfigError(f"sampler setting {key} cannot be empty")
    try:
        if "bool" in kinds:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if "int" in kinds:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
                raise ValueError(value)
            return int(value)
        if "float" in kinds:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"sampler setting {key}: cannot use {value!r} (expected {kinds[0]})") from None


def parse_assignments(text: str | None) -> dict[str, str]:
    """``"steps=128,gen_length=128"`` -> ``{"steps": "128", "gen_length": "128"}``."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"sampler setting {item!r} must look like name=value")
        out[key.strip()] = value.strip()
    return out
