"""Training configuration: one dataclass tree for every stage, read from YAML and checked up front.

Everything that can be wrong in a config (an unknown or misspelt key, a wrong type, a data file that
does not exist, mixing ratios that do not sum to 1, a warm-up longer than the run) is found here,
before a model is loaded, and reported as one :class:`ConfigError` / :class:`DataError` line naming
the file and the field. Field defaults follow the reference recipe (spec §5.1, §5.3).

Data mixing: each task (``t2i``, ``lm``, ``mmu``) lists its sources; a source's ``ratio`` is the
share of that task's rows drawn from it, so the ratios of one task sum to 1 (the stage-2.2 recipe's
"RefinedWeb : instruct = 0.02 : 0.98" is two ``lm`` sources with ratios 0.02 and 0.98).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, TypeAdapter, ValidationError

from mmada_bench.errors import ConfigError, DataError

_STRICT = ConfigDict(extra="forbid", strict=False)
Task = Literal["t2i", "lm", "mmu"]
#: Row formats users have, and which task each can feed.
FORMATS: dict[str, tuple[str, ...]] = {
    "text_jsonl": ("lm",),  # {"text"}: pretraining text, or {"prompt", "completion"}: the prompt stays clean
    "chat_jsonl": ("lm", "mmu"),  # {"messages": [...]} or {"prompt", "response"}, optional "image"
    "llava_json": ("mmu",),  # LLaVA JSON list: {"image", "conversations": [{"from", "value"}, ...]}
    "caption_jsonl": ("t2i", "mmu"),  # {"image" | "image_tokens", "caption"} (+ image_root)
}
RATIO_TOLERANCE = 1e-6


@dataclass
class DataSource:
    """One data file feeding one task, with its share of that task's rows."""

    __pydantic_config__ = _STRICT
    path: str
    format: Literal["text_jsonl", "chat_jsonl", "llava_json", "caption_jsonl"]
    ratio: float = 1.0
    image_root: str | None = None  # folder image paths are relative to (default: the file's folder)
    cot: bool = False  # prepend the <think> instruction to the user turn (spec §3.3)
    name: str | None = None  # label in logs; defaults to the file stem


@dataclass
class DataConfig:
    __pydantic_config__ = _STRICT
    t2i: list[DataSource] = field(default_factory=list)
    lm: list[DataSource] = field(default_factory=list)
    mmu: list[DataSource] = field(default_factory=list)
    image_token_cache: str | None = None  # folder of MAGVIT-v2 codes per image (filled on first use)


@dataclass
class BatchConfig:
    """Rows of each task in one micro-batch on one process (reference: t2i/lm/mmu = 7/2/6 ... 1/2/1)."""

    __pydantic_config__ = _STRICT
    t2i: int = 1
    lm: int = 2
    mmu: int = 1


@dataclass
class SeqConfig:
    __pydantic_config__ = _STRICT
    max_text_len: int = 512  # M of spec §3.2 (128 / 256 / 512 by stage)
    resolution: int | None = None  # image side in pixels; default: the checkpoint's MAGVIT-v2 setting


@dataclass
class LossConfig:
    __pydantic_config__ = _STRICT
    coeff_t2i: float = 1.0
    coeff_lm: float = 0.5
    coeff_mmu: float = 0.5
    cond_dropout_prob: float = 0.1  # classifier-free-guidance caption dropout of t2i rows
    min_masking_rate: float = 0.0
    mask_eps: float = 1e-3  # LLaDA's ε in p = (1 - ε) t + ε
    # "padding_mask" (default): t2i [iPAD] positions truly masked out, as t2i inference masks them.
    # "reference": the float bias the reference adds in training (pads of t2i rows get 0 added, the rest 1,
    # so nothing is really masked; spec §1.2) -- kept for parity runs only: a model trained with it sees
    # its pads at training time and not at inference, and its images fall apart (toy: 0.76 vs 10.5 nats).
    attention: Literal["reference", "padding_mask"] = "padding_mask"


@dataclass
class OptimConfig:
    """AdamW + linear warm-up + cosine to ``min_lr_scale · lr`` (spec §5.1)."""

    __pydantic_config__ = _STRICT
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.01  # applied to every parameter, as the reference effectively does
    warmup_steps: int = 5000
    min_lr_scale: float = 0.1
    max_steps: int = 50000
    grad_clip: float | None = 1.0
    grad_accum: int = 4


@dataclass
class RuntimeConfig:
    __pydantic_config__ = _STRICT
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    gradient_checkpointing: bool = False
    save_every: int = 10000
    keep_last: int | None = 2  # checkpoints kept (older ones deleted); None keeps all
    log_every: int = 1
    max_shard_size: str = "5GB"  # safetensors shard size of saved checkpoints
    trackers: list[str] = field(default_factory=list)  # accelerate trackers: "tensorboard", "wandb", ...
    progress_bar: bool = True


@dataclass
class TrainConfig:
    """A whole training run. ``stage_options`` holds stage-specific settings the stage validates itself."""

    __pydantic_config__ = _STRICT
    stage: str
    model: str  # initial checkpoint: folder or preset name
    output_dir: str
    seed: int = 10086
    data: DataConfig = field(default_factory=DataConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    seq: SeqConfig = field(default_factory=SeqConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    stage_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sources(self, task: str) -> list[DataSource]:
        return list(getattr(self.data, task))


def _one_line(exc: ValidationError, where: str) -> ConfigError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = "unknown key" if err["type"] in ("unexpected_keyword_argument", "extra_forbidden") else err["msg"]
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return ConfigError(f"{where}: {loc}: {msg}{more}")


def config_from_dict(data: dict[str, Any], where: str = "config", base_dir: Path | None = None) -> TrainConfig:
    """Validate a plain dict into a :class:`TrainConfig`; relative paths resolve against ``base_dir``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(data).__name__}")
    try:
        config = TypeAdapter(TrainConfig).validate_python(data)
    except ValidationError as exc:
        raise _one_line(exc, where) from None
    if base_dir is not None:
        _resolve_paths(config, base_dir)
    validate_config(config, where)
    return config


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config; ``overrides`` (dotted keys) replace values, e.g. ``{"optim.max_steps": 10}``.

    Relative data paths are read relative to the YAML file's folder, so a config travels with its data.
    """
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of settings at the top level")
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {dotted}: {key} is not a section")
        node[leaf] = value
    return config_from_dict(data, str(file), base_dir=file.parent)


def _resolve(base: Path, value: str | None) -> str | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    return os.path.normpath(path if path.is_absolute() else base / path)


def _resolve_paths(config: TrainConfig, base: Path) -> None:
    for task in ("t2i", "lm", "mmu"):
        for source in config.sources(task):
            source.path = _resolve(base, source.path)  # type: ignore[assignment]
            source.image_root = _resolve(base, source.image_root)
    config.data.image_token_cache = _resolve(base, config.data.image_token_cache)
    config.output_dir = _resolve(base, config.output_dir)  # type: ignore[assignment]
    model = Path(config.model).expanduser()
    if not model.is_absolute() and (base / model).exists():
        config.model = str(base / model)


def validate_config(config: TrainConfig, where: str = "config") -> None:
    """Cross-field checks pydantic cannot express; every message is one line naming the field."""
    from mmada_bench.train.stages import STAGES

    if config.stage not in STAGES:
        raise ConfigError(f"{where}: stage: unknown stage {config.stage!r}; known stages: {', '.join(sorted(STAGES))}")
    positive = {
        "optim.lr": config.optim.lr,
        "optim.max_steps": config.optim.max_steps,
        "optim.grad_accum": config.optim.grad_accum,
        "runtime.save_every": config.runtime.save_every,
        "runtime.log_every": config.runtime.log_every,
        "seq.max_text_len": config.seq.max_text_len,
    }
    for name, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{where}: {name} must be positive, got {value}")
    if config.optim.warmup_steps < 0 or config.optim.warmup_steps > config.optim.max_steps:
        raise ConfigError(f"{where}: optim.warmup_steps must lie in [0, max_steps={config.optim.max_steps}]")
    if not 0.0 <= config.optim.min_lr_scale <= 1.0:
        raise ConfigError(f"{where}: optim.min_lr_scale must lie in [0, 1], got {config.optim.min_lr_scale}")
    if config.optim.grad_clip is not None and not config.optim.grad_clip > 0:
        raise ConfigError(f"{where}: optim.grad_clip must be positive or null")
    if not 0.0 <= config.loss.cond_dropout_prob < 1.0:
        raise ConfigError(f"{where}: loss.cond_dropout_prob must lie in [0, 1)")
    if config.runtime.keep_last is not None and config.runtime.keep_last < 1:
        raise ConfigError(f"{where}: runtime.keep_last must be at least 1 or null")
    for task in ("t2i", "lm", "mmu"):
        rows = getattr(config.batch, task)
        sources = config.sources(task)
        if rows < 0:
            raise ConfigError(f"{where}: batch.{task} must be >= 0, got {rows}")
        if rows and not sources and config.stage in ("stage1", "stage2"):
            raise ConfigError(f"{where}: batch.{task} = {rows} but data.{task} lists no sources")
        if sources:
            check_sources(task, sources, where)
    from mmada_bench.train.stages import check_stage_options

    check_stage_options(config, where)


def check_sources(task: str, sources: list[DataSource], where: str) -> None:
    """Formats fit the task, files exist, ratios are in (0, 1] and sum to 1."""
    for i, source in enumerate(sources):
        field_name = f"data.{task}[{i}]"
        if task not in FORMATS[source.format]:
            raise ConfigError(
                f"{where}: {field_name}: format {source.format} cannot feed task {task} "
                f"(it feeds {', '.join(FORMATS[source.format])})"
            )
        if not Path(source.path).is_file():
            raise DataError(f"{where}: {field_name}: data file not found: {source.path}")
        if source.image_root is not None and not Path(source.image_root).is_dir():
            raise DataError(f"{where}: {field_name}: image_root is not a folder: {source.image_root}")
        if not 0.0 < source.ratio <= 1.0:
            raise ConfigError(f"{where}: {field_name}: ratio must lie in (0, 1], got {source.ratio}")
    total = math.fsum(s.ratio for s in sources)
    if abs(total - 1.0) > RATIO_TOLERANCE:
        raise ConfigError(f"{where}: data.{task}: mixing ratios sum to {total:g}, they must sum to 1")
