"""Stage 3: UniGRPO (spec §5.5-5.6) as a :class:`~mmada_bench.train.stage.TrainingStage`.

One *rollout batch* per micro-batch slot: ``batch.lm`` text prompts, ``batch.mmu`` image questions
and ``batch.t2i`` captions, each answered ``group_size`` (G) times by our samplers
(:mod:`mmada_bench.train.rollout`), scored by the configured rewards
(:mod:`mmada_bench.train.rewards`), turned into group z-score advantages and noised on the response
only (:mod:`mmada_bench.train.grpo`). The rollout policy's log-probs (and, for the paper's KL, the
frozen reference's) are computed once, right after the rollout; the batch is then trained on for
``inner_steps`` (μ) optimiser steps, inner step j using its own mask draws.

Order of micro-batches on one process (A = ``optim.grad_accum``): rollout batches ``g·A … g·A+A-1``
form one group; the group is visited μ times, once per inner step, so every optimiser step sees A
micro-batches of the same inner step. The iterator's state is one counter, every random draw
(prompt choice, sampling noise, masks) is seeded by its coordinates, and the stage's state is the
cache of the group's rollouts -- so a checkpoint taken between inner steps resumes exactly.

Recipes (``recipe``): ``paper`` (default) -- uniformly spaced mask levels over [0, 1] across the
inner steps, one mask per response per inner step, every response token scored, KL against a frozen
copy of the initial model, 1/G Σ_i 1/|o_i| Σ_t, padding hidden from attention; ``dllm_rl`` --
Gen-Verse/dLLM-RL's i.i.d. ratios in [0.1, 0.9] (two draws per response per inner step), the EOS
fill after the first EOS out of the loss, KL against the rollout policy, summed, Σ rows ÷ rows, no
attention mask. ``grpo`` overrides single fields of :class:`~mmada_bench.train.grpo.UniGRPOConfig`.
The paper is the stage's default because stage 3 is the paper's method; the loss module's own
defaults stay dLLM-RL's, the recipe pinned bit for bit by the golden vectors.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import torch
from pydantic import ConfigDict, TypeAdapter, ValidationError

from mmada_bench.errors import ConfigError, DataError
from mmada_bench.model.padding import left_pad
from mmada_bench.model.prompting import MMaDAPrompting, apply_text_chat_template, with_cot
from mmada_bench.train.config import DataSource, TrainConfig
from mmada_bench.train.data import ImageTokens, image_ref, source_rows
from mmada_bench.train.grpo import (
    MaskedRows,
    UniGRPOConfig,
    group_advantages,
    noise_responses,
    old_logprobs,
    pack_rollouts,
    unigrpo_step_loss,
)
from mmada_bench.train.mixed import row_generator
from mmada_bench.train.rewards import DEFAULT_REWARDS, RewardSample, TaskReward, check_rewards
from mmada_bench.train.rollout import (
    ImageRolloutSettings,
    TextRolloutSettings,
    response_seed,
    rollout_images,
    rollout_text,
    truncate_response,
)
from mmada_bench.train.stage import CountedBatches, StageContext

TASKS = ("lm", "mmu", "t2i")
_STREAM = {"t2i": 11, "lm": 12, "mmu": 13}  # prompt-choice streams (stage 1/2 use 1-3)
_MASK_STREAM = 20  # + task stream: masking noise of a rollout batch
_STRICT = ConfigDict(extra="forbid")
_FORMATS = {"lm": ("chat_jsonl", "text_jsonl"), "mmu": ("llava_json", "chat_jsonl"), "t2i": ("caption_jsonl",)}
_GSM8K_FINAL = "####"  # GSM8K's answer field ends "#### <number>": the gold a correctness reward compares


@dataclass
class TextRolloutOptions:
    __pydantic_config__ = _STRICT
    gen_length: int = TextRolloutSettings.gen_length
    steps: int = TextRolloutSettings.steps
    block_length: int = TextRolloutSettings.block_length
    temperature: float = TextRolloutSettings.temperature
    remasking: Literal["low_confidence", "random"] = "low_confidence"
    cfg_scale: float = 0.0
    cache: Literal["prefix", "dual"] | None = None
    threshold: float | None = None
    batch_size: int = TextRolloutSettings.batch_size
    #: tokens kept of a prompt (BOS + its end); default ``seq.max_text_len``, which also shapes t2i rows
    max_prompt_len: int | None = None


@dataclass
class ImageRolloutOptions:
    __pydantic_config__ = _STRICT
    timesteps: int = ImageRolloutSettings.timesteps
    guidance_scale: float = ImageRolloutSettings.guidance_scale
    temperature: float = ImageRolloutSettings.temperature
    schedule: str = ImageRolloutSettings.schedule
    batch_size: int = ImageRolloutSettings.batch_size


@dataclass
class Stage3Options:
    """``stage_options`` of a stage-3 config; every paper-vs-dLLM-RL choice is a named field."""

    __pydantic_config__ = _STRICT
    group_size: int = 16  # G: responses per prompt (paper and dLLM-RL: 16)
    inner_steps: int = 2  # μ: optimiser steps per rollout batch (paper: unstated)
    recipe: Literal["paper", "dllm_rl"] = "paper"
    masks_per_step: int | None = None  # mask draws per response per inner step (paper 1, dLLM-RL 2)
    grpo: dict[str, Any] = field(default_factory=dict)  # UniGRPOConfig field overrides
    loss_attention: Literal["padding", "none"] | None = None  # paper: padding; dLLM-RL: none
    cot: bool = True  # put the <think> instruction in lm / mmu prompts (the format reward needs it)
    # lm prompts: "chat" wraps them as one user turn of MMaDA's chat template (the paper's math RL);
    # "plain" sends BOS + the prompt as written, as lm-eval's generate_until asks a text task (toy_count)
    lm_template: Literal["chat", "plain"] = "chat"
    text: TextRolloutOptions = field(default_factory=TextRolloutOptions)
    lm_text: TextRolloutOptions | None = None  # lm prompts' rollout settings; default ``text``
    image: ImageRolloutOptions = field(default_factory=ImageRolloutOptions)
    rewards: dict[str, list[str]] = field(default_factory=dict)  # per task; default DEFAULT_REWARDS
    reward_weights: dict[str, list[float]] = field(default_factory=dict)
    reward_models: dict[str, Any] = field(default_factory=dict)  # clip: folder; imagereward: {...}
    logp_batch_size: int | None = None  # rows per forward when computing old / reference log-probs


def _options_error(exc: ValidationError) -> ConfigError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = "unknown key" if err["type"] in ("unexpected_keyword_argument", "extra_forbidden") else err["msg"]
    return ConfigError(f"stage_options.{loc}: {msg}")


@dataclass(frozen=True)
class Stage3Plan:
    """The validated, resolved stage-3 settings."""

    options: Stage3Options
    grpo: UniGRPOConfig
    masks_per_step: int
    attention: Literal["padding", "none"]
    rewards: dict[str, tuple[list[str], list[float]]]
    text: dict[str, TextRolloutSettings]  # per text task (lm, mmu)
    prompt_budget: dict[str, int]  # per text task: tokens kept of a prompt
    image: ImageRolloutSettings


def plan_stage3(config: TrainConfig) -> Stage3Plan:
    """Check ``stage_options`` and resolve the recipe; every mistake is one :class:`ConfigError` line."""
    try:
        options = TypeAdapter(Stage3Options).validate_python(config.stage_options)
    except ValidationError as exc:
        raise _options_error(exc) from None
    if options.group_size < 2:
        raise ConfigError(f"stage_options.group_size must be >= 2 (advantages compare responses), got {options.group_size}")
    if options.inner_steps < 1:
        raise ConfigError(f"stage_options.inner_steps must be >= 1, got {options.inner_steps}")
    paper = options.recipe == "paper"
    per_step = options.masks_per_step if options.masks_per_step is not None else (1 if paper else 2)
    if per_step < 1:
        raise ConfigError(f"stage_options.masks_per_step must be >= 1, got {per_step}")
    draws = options.inner_steps * per_step
    known = {f.name for f in fields(UniGRPOConfig)}
    for key in options.grpo:
        if key == "mask_times_per_sample":
            raise ConfigError("stage_options.grpo.mask_times_per_sample: set inner_steps and masks_per_step instead")
        if key not in known:
            raise ConfigError(f"stage_options.grpo.{key}: unknown key; known: {', '.join(sorted(known - {'mask_times_per_sample'}))}")
    try:
        base = UniGRPOConfig.paper(inner_steps=draws) if paper else UniGRPOConfig.dllm_rl(mask_times_per_sample=draws)
        grpo = replace(base, **options.grpo)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"stage_options.grpo: {exc}") from None
    tasks = [t for t in TASKS if getattr(config.batch, t) > 0 and config.sources(t)]
    if not tasks:
        raise ConfigError("stage3 needs prompts: set batch.lm / batch.mmu / batch.t2i > 0 with data sources for them")
    for key in set(options.rewards) | set(options.reward_weights):
        if key not in TASKS:
            raise ConfigError(f"stage_options.rewards: unknown task {key!r}; tasks: {', '.join(TASKS)}")
    rewards = {}
    for task in tasks:
        names = options.rewards.get(task, [n for n, _ in DEFAULT_REWARDS[task]])
        if task in options.reward_weights:
            weights = options.reward_weights[task]
        elif task in options.rewards:
            raise ConfigError(f"stage_options.rewards.{task} is set but reward_weights.{task} is not")
        else:
            weights = [w for _, w in DEFAULT_REWARDS[task]]
        check_rewards(task, names, weights, "stage_options")
        rewards[task] = (list(names), [float(w) for w in weights])
    for task in tasks:
        for i, source in enumerate(config.sources(task)):
            if source.format not in _FORMATS[task]:
                raise ConfigError(
                    f"data.{task}[{i}]: stage3 reads {task} prompts from {' / '.join(_FORMATS[task])}, not {source.format}"
                )
    text_options = {"lm": options.lm_text or options.text, "mmu": options.text}
    for task, t in text_options.items():
        if t.gen_length < 1 or t.batch_size < 1 or (t.max_prompt_len is not None and t.max_prompt_len < 2):
            name = "lm_text" if task == "lm" and options.lm_text is not None else "text"
            raise ConfigError(f"stage_options.{name}: gen_length and batch_size must be positive, max_prompt_len >= 2")
    if options.image.batch_size < 1 or options.image.timesteps < 1:
        raise ConfigError("stage_options.image: timesteps and batch_size must be positive")
    settings = [f.name for f in fields(TextRolloutSettings)]
    attention = options.loss_attention or ("padding" if paper else "none")
    return Stage3Plan(
        options=options,
        grpo=grpo,
        masks_per_step=per_step,
        attention=attention,
        rewards=rewards,
        text={task: TextRolloutSettings(**{name: getattr(t, name) for name in settings}) for task, t in text_options.items()},
        prompt_budget={task: t.max_prompt_len or config.seq.max_text_len for task, t in text_options.items()},
        image=ImageRolloutSettings(**{f.name: getattr(options.image, f.name) for f in fields(ImageRolloutOptions)}),
    )


# -- prompts -----------------------------------------------------------------------------------------------


def _text(row: dict[str, Any], keys: tuple[str, ...], where: str, required: bool = True) -> str | None:
    for key in keys:
        value = row.get(key)
        if isinstance(value, str) and value.strip():
            return value
        if value is not None and not isinstance(value, str):
            raise DataError(f"{where}: field {key!r} must be a string")
    if required:
        raise DataError(f"{where}: needs a non-empty {' or '.join(repr(k) for k in keys)} field")
    return None


def read_prompts(task: str, source: DataSource, need_gold: bool) -> list[dict[str, Any]]:
    """Prompt rows of one source: ``{"prompt", "answer"}`` (+ ``image`` for mmu), ``{"caption"}`` for t2i.

    lm: JSONL ``{"prompt" | "question", "answer"}``, or the prompt + completion rows of stages 1-2
    (``text_jsonl``; the completion is the answer); a GSM8K answer (worked steps, then ``#### N``) has
    gold ``N``. mmu: LLaVA JSON (first human turn, first gpt turn as the gold answer) or JSONL with
    ``image``; t2i: caption JSONL (``caption`` or ``prompt``; no image needed). ``need_gold``: a
    correctness reward is configured, so every row needs an answer.
    """
    rows = []
    for where, row in source_rows(source):
        if task == "t2i":
            rows.append({"caption": _text(row, ("caption", "prompt"), where)})
            continue
        if source.format == "llava_json":
            turns = row.get("conversations")
            if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
                raise DataError(f"{where}: field 'conversations' must be a list of {{from, value}} turns")
            human = [t.get("value") for t in turns if t.get("from") in ("human", "user")]
            gpt = [t.get("value") for t in turns if t.get("from") in ("gpt", "assistant")]
            if not human or not isinstance(human[0], str):
                raise DataError(f"{where}: conversations need a human turn")
            prompt = human[0].replace("<image>\n", "").replace("\n<image>", "").replace("<image>", "").strip()
            answer = row.get("answer", gpt[0] if gpt else None)
        else:
            prompt = _text(row, ("prompt", "question"), where)
            answer = _text(row, ("completion",) if source.format == "text_jsonl" else ("answer", "response"), where,
                           required=False)
            if task == "lm" and answer is not None and _GSM8K_FINAL in answer:
                answer = answer.rsplit(_GSM8K_FINAL, 1)[1].strip()
        if need_gold and not (isinstance(answer, str) and answer.strip()):
            raise DataError(f"{where}: the correctness reward needs an 'answer' field")
        sample = {"prompt": prompt, "answer": answer}
        if task == "mmu":
            sample.update(image_ref(row, source, where))
        rows.append(sample)
    if not rows:
        raise DataError(f"{source.path}: no prompt rows")
    return rows


# -- the stage ------------------------------------------------------------------------------------------------


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def _logits_fn(model: torch.nn.Module, columns: slice | None):
    def logits_fn(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        logits = model(input_ids, attention_mask=attention_mask).logits
        return logits if columns is None else logits[..., columns]

    return logits_fn


class Stage3:
    """UniGRPO: rollouts, rewards, advantages and the clipped surrogate with KL (see module doc)."""

    name = "stage3"

    def __init__(self, ctx: StageContext, plan: Stage3Plan | None = None) -> None:
        config = ctx.config
        self.config = config
        self.plan = plan or plan_stage3(config)
        self.tokenizer = ctx.tokenizer
        model_config = ctx.model.config
        self.prompting = MMaDAPrompting.from_config(ctx.tokenizer, model_config, config.seq.max_text_len)
        self.special = self.prompting.special
        self.offset, self.codebook = int(model_config.image_offset), int(model_config.codebook_size)
        self.vq_model = ctx.vq_model
        self.num_image_tokens = int(model_config.num_vq_tokens)
        side = math.isqrt(self.num_image_tokens)
        factor = ctx.vq_model.config.downsample_factor if ctx.vq_model is not None else 16
        self.image_side = side
        self.images = ImageTokens(ctx.vq_model, config.seq.resolution or side * factor, self.num_image_tokens,
                                  config.data.image_token_cache)
        self.sizes = {t: getattr(config.batch, t) if t in self.plan.rewards else 0 for t in TASKS}
        if self.sizes["t2i"] and ctx.vq_model is None:
            raise ConfigError(f"{config.model}: t2i rollouts need the checkpoint's image tokenizer (vq_model/) to score images")
        self.rows: dict[str, list[list[dict[str, Any]]]] = {}
        self.cumulative: dict[str, list[float]] = {}
        for task in TASKS:
            sources = config.sources(task) if self.sizes[task] else []
            need_gold = "correctness" in self.plan.rewards.get(task, ([], []))[0]
            self.rows[task] = [read_prompts(task, s, need_gold) for s in sources]
            self.cumulative[task] = list(itertools.accumulate(s.ratio for s in sources))
        options = {**self.plan.options.reward_models}
        options.setdefault("device", str(ctx.device))
        self.rewards = {t: TaskReward.build(t, *self.plan.rewards[t], options) for t in TASKS if self.sizes[t]}
        # Frozen reference for the paper's KL: the initial weights (on resume the trainer rebuilds the
        # stage from the initial checkpoint before loading the trained weights, so this stays the same).
        self.reference: torch.nn.Module | None = None
        if self.plan.grpo.kl_reference == "ref" and self.plan.grpo.beta != 0:
            self.reference = copy.deepcopy(ctx.model).eval().requires_grad_(False)
        self.cache: dict[int, dict[str, Any]] = {}

    # -- data order ------------------------------------------------------------------------------------------
    def item(self, position: int, rank: int, world_size: int) -> dict[str, int]:
        """Item ``position`` of process ``rank``: which rollout batch, which inner step (module doc)."""
        accum, inner = self.config.optim.grad_accum, self.plan.options.inner_steps
        group, within = divmod(position, accum * inner)
        step, slot = divmod(within, accum)
        return {"rollout_id": (group * accum + slot) * world_size + rank, "inner": step, "group": group}

    def batches(self, rank: int, world_size: int) -> CountedBatches:
        return CountedBatches(self.item, rank, world_size)

    def _pick(self, task: str, k: int) -> dict[str, Any]:
        gen = row_generator(self.config.seed, _STREAM[task], k)
        cumulative = self.cumulative[task]
        u = float(torch.rand(1, generator=gen)) * cumulative[-1]
        source = min(bisect.bisect_right(cumulative, u), len(cumulative) - 1)
        rows = self.rows[task][source]
        return rows[int(torch.randint(len(rows), (1,), generator=gen))]

    def prompts(self, task: str, rollout_id: int) -> list[tuple[int, dict[str, Any]]]:
        """(global prompt index, row) of rollout batch ``rollout_id`` for ``task``."""
        size = self.sizes[task]
        return [(k, self._pick(task, k)) for k in range(rollout_id * size, (rollout_id + 1) * size)]

    # -- prompts as ids ----------------------------------------------------------------------------------------
    def _question(self, text: str) -> str:
        return with_cot(text) if self.plan.options.cot else text

    def _budget(self, task: str, ids: list[int]) -> list[int]:
        """Keep BOS and the last tokens of an over-long prompt (its end matters most)."""
        budget = self.plan.prompt_budget[task]
        return ids if len(ids) <= budget else [ids[0], *ids[len(ids) - budget + 1 :]]

    def _text_prompt(self, task: str, row: dict[str, Any]) -> list[int]:
        if task == "lm":
            text = self._question(row["prompt"])
            if self.plan.options.lm_template == "chat":
                text = apply_text_chat_template([{"role": "user", "content": text}], self.tokenizer.bos_token or "")
            return self._budget(task, self.prompting.encode([text])[0])
        codes = self.images.codes(row)[None]
        ids = self.prompting.mmu_gen(codes, [self._question(row["prompt"])]).input_ids[0].tolist()
        prefix = self.num_image_tokens + 3
        return ids[:prefix] + self._budget(task, ids[prefix:])

    def _input_image(self, row: dict[str, Any]) -> Any:
        if "image" in row:
            from PIL import Image

            with Image.open(row["image"]) as image:
                return image.convert("RGB")
        return self._decode_images(torch.tensor([row["image_tokens"]]))[0] if self.vq_model is not None else None

    def _decode_images(self, codes: torch.Tensor) -> list[Any]:
        from mmada_bench.model.image_processing import postprocess_images

        with torch.inference_mode():
            pixels = self.vq_model.decode(codes, (self.image_side, self.image_side))
        return postprocess_images(pixels.float().cpu())

    # -- rollouts -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def rollout(self, model: torch.nn.Module, rollout_id: int) -> dict[str, Any]:
        """Sample, score and noise one rollout batch; old / reference log-probs under the current weights."""
        policy = _unwrap(model)
        entry: dict[str, Any] = {}
        for task in TASKS:
            if self.sizes[task]:
                entry[task] = self._rollout_task(policy, task, rollout_id)
        return entry

    def _rollout_task(self, policy: torch.nn.Module, task: str, rollout_id: int) -> dict[str, Any]:
        G, seed = self.plan.options.group_size, self.config.seed
        prompts = self.prompts(task, rollout_id)
        seeds = [response_seed(seed, rollout_id, k, g) for k, _ in prompts for g in range(G)]
        rows = [row for _, row in prompts for _ in range(G)]
        if task == "t2i":
            clean, start, attention, samples = self._t2i_rollouts(policy, rows, seeds)
        else:
            clean, start, attention, samples = self._text_rollouts(policy, task, rows, seeds)
        totals, parts = self.rewards[task](samples)
        advantages = group_advantages(totals, G)
        gen = row_generator(seed, _MASK_STREAM + _STREAM[task], rollout_id)
        masked = noise_responses(clean, start, self.plan.grpo, mask_id=self.special.mask, eos_id=self.special.eos,
                                 generator=gen)
        columns = None
        if task == "t2i":  # <|eoi|> closes every image: visible, never scored; log-probs over the codebook
            loss_mask = masked.loss_mask.clone()
            loss_mask[:, -1] = False
            ids = masked.input_ids.clone()
            ids[:, -1] = self.special.eoi
            labels = (masked.labels - self.offset).clamp(0, self.codebook - 1)
            masked = replace(masked, input_ids=ids, labels=labels, loss_mask=loss_mask)
            masked = masked.select(masked.loss_mask.any(dim=1))
            columns = slice(self.offset, self.offset + self.codebook)
        row_attention = attention[masked.source] if attention is not None else None
        batch = self.plan.options.logp_batch_size
        logp_old = old_logprobs(_logits_fn(policy, columns), masked, row_attention, batch)
        logp_ref = None
        if self.reference is not None:
            logp_ref = old_logprobs(_logits_fn(self.reference, columns), masked, row_attention, batch)
        return {
            "rows": {f.name: getattr(masked, f.name) for f in fields(MaskedRows)},
            "attention": row_attention,
            "logp_old": logp_old,
            "logp_ref": logp_ref,
            "advantages": advantages.to(torch.float32)[masked.source],
            "columns": (self.offset, self.codebook) if columns is not None else None,
            "logs": {
                "reward": sum(totals) / len(totals),
                "reward_std": float(torch.tensor(totals, dtype=torch.float64).std(unbiased=False)),
                **{f"reward_{name}": sum(v) / len(v) for name, v in parts.items()},
            },
        }

    def _text_rollouts(self, policy, task: str, rows: list[dict[str, Any]], seeds: list[int]):
        prompts = [self._text_prompt(task, row) for row in rows]
        settings = self.plan.text[task]
        raw = rollout_text(policy, prompts, seeds, settings, mask_id=self.special.mask, eos_id=self.special.eos)
        stops = {self.special.eos, self.special.eot_id}
        responses = [truncate_response(r, stops) for r in raw]
        packed = pack_rollouts(prompts, responses, self.special.eos, settings.gen_length)
        attention = None
        if self.plan.attention == "padding":
            _, prompt_mask = left_pad(prompts, self.special.eos)
            attention = torch.cat([prompt_mask, prompt_mask.new_ones(len(rows), packed.input_ids.shape[1] - packed.start_pos)], 1)
        samples = []
        for row, response in zip(rows, responses, strict=True):
            image = self._input_image(row) if task == "mmu" and "clip" in self.rewards[task].names else None
            completion = self.tokenizer.decode(response, skip_special_tokens=True)
            samples.append(RewardSample(task, row["prompt"], completion, row.get("answer"), image))
        return packed.input_ids, packed.start_pos, attention, samples

    def _t2i_rollouts(self, policy, rows: list[dict[str, Any]], seeds: list[int]):
        n = self.num_image_tokens
        cond = self.prompting.t2i_gen([r["caption"] for r in rows], n)
        uncond = self.prompting.t2i_gen([""] * len(rows), n)
        codes = rollout_images(policy, cond.input_ids, cond.attention_mask, uncond.input_ids, uncond.attention_mask,
                               seeds, self.plan.image, num_image_tokens=n, mask_id=self.special.mask)
        clean = cond.input_ids.clone()
        clean[:, -(n + 1) : -1] = codes + self.offset
        start = clean.shape[1] - n - 1
        attention = cond.attention_mask if self.plan.attention == "padding" else None
        images = self._decode_images(codes)
        samples = [RewardSample("t2i", r["caption"], "", None, image) for r, image in zip(rows, images, strict=True)]
        return clean, start, attention, samples

    # -- TrainingStage -----------------------------------------------------------------------------------------
    def loss(self, model: torch.nn.Module, batch: dict[str, int], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        rollout_id, inner, group = int(batch["rollout_id"]), int(batch["inner"]), int(batch["group"])
        if rollout_id not in self.cache:
            if inner != 0:
                raise RuntimeError(f"rollout batch {rollout_id} is at inner step {inner} but its rollouts are not cached")
            # a new group begins: the previous group's rollouts are done with
            self.cache = {k: v for k, v in self.cache.items() if v["group"] == group}
            self.cache[rollout_id] = {"group": group, "tasks": self.rollout(model, rollout_id)}
        entry = self.cache[rollout_id]["tasks"]
        total: torch.Tensor | None = None
        logs: dict[str, float] = {"tokens": 0.0}
        mu = self.plan.options.inner_steps
        for task, part in entry.items():
            rows = MaskedRows(**part["rows"])
            pick = rows.copy % mu == inner
            if not bool(pick.any()):
                continue
            sel = rows.select(pick)
            columns = slice(part["columns"][0], part["columns"][0] + part["columns"][1]) if part["columns"] else None
            attention = part["attention"][pick] if part["attention"] is not None else None
            ref = part["logp_ref"][pick] if part["logp_ref"] is not None else None
            out = unigrpo_step_loss(_logits_fn(model, columns), sel, part["logp_old"][pick], part["advantages"][pick],
                                    self.plan.grpo, attention_mask=attention, logp_ref_tok=ref)
            total = out.loss if total is None else total + out.loss
            logs["tokens"] += float(sel.input_ids.numel())
            prefix = "" if len(entry) == 1 else f"{task}_"
            logs.update({f"{prefix}{k}": v for k, v in part["logs"].items()})
            logs[f"{prefix}policy_loss"] = float(out.policy_loss.detach())
            logs[f"{prefix}kl"] = float(out.kl_seq.detach().mean())
            logs[f"{prefix}clip_fraction"] = float(out.clip_fraction)
        if total is None:  # every draw of this inner step was empty: a zero loss that still reaches the weights
            total = sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
        if len(entry) > 1:
            logs["reward"] = sum(p["logs"]["reward"] for p in entry.values()) / len(entry)
        return total, logs

    def state_dict(self) -> dict[str, Any]:
        """The cached rollouts of the current group: they came from weights that no longer exist."""
        return {"cache": self.cache}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.cache = dict(state.get("cache", {}))


def build_stage3(ctx: StageContext) -> Stage3:
    return Stage3(ctx)
