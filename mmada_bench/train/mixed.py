"""The mixed [t2i; lm; mmu] masked-diffusion stage shared by stage 1 (pretraining) and stage 2 (CoT SFT).

Both stages run one forward over a micro-batch of t2i rows, text rows and understanding rows of one
common length and apply the stage-1 losses of :mod:`mmada_bench.train.losses` (spec §5.2); they
differ in their data (stage 2: chat / CoT rows whose prompt stays clean and whose response is
noised, spec §5.4) -- which the row itself carries as its prompt mask.

Reproducibility across process counts: every row is defined by a global row counter ``k`` per task.
Row ``k``'s source, file row, masking noise and caption dropout all come from a generator seeded by
``(seed, task, k)``, and micro-batch ``n`` of rank ``r`` out of ``W`` holds rows
``(n·W + r)·b ... (n·W + r + 1)·b - 1``. So one process with ``W·b`` rows per micro-batch sees exactly
the rows that ``W`` processes with ``b`` rows each see, which is what lets a DDP run be checked
against a single-process run, and the iterator's whole state is ``n``.
"""

from __future__ import annotations

import bisect
import itertools
import math
from typing import Any

import torch

from mmada_bench.model.prompting import IGNORE_INDEX, MMaDAPrompting
from mmada_bench.train.config import TrainConfig
from mmada_bench.train.data import ImageTokens, read_source
from mmada_bench.train.losses import scored_positions, stage1_losses, training_attention_bias
from mmada_bench.train.noising import mask_image_tokens, mask_text_tokens
from mmada_bench.train.stage import CountedBatches, StageContext

TASKS = ("t2i", "lm", "mmu")
_TASK_STREAM = {"t2i": 1, "lm": 2, "mmu": 3}


def row_generator(seed: int, stream: int, k: int) -> torch.Generator:
    """A generator for global row ``k`` of a stream, independent of batch layout and process count."""
    mixed = (seed * 0x9E3779B97F4A7C15 + stream * 0xBF58476D1CE4E5B9 + k * 0x94D049BB133111EB) % (2**63 - 1)
    return torch.Generator().manual_seed(mixed)


class MixedStage:
    """Mixed-task masked-diffusion training (stage 1 and stage 2)."""

    name = "mixed"

    def __init__(self, ctx: StageContext) -> None:
        config: TrainConfig = ctx.config
        self.config = config
        model_config = ctx.model.config
        self.prompting = MMaDAPrompting.from_config(ctx.tokenizer, model_config, config.seq.max_text_len)
        self.mask_id = self.prompting.special.mask
        self.num_image_tokens = int(model_config.num_vq_tokens)
        resolution = config.seq.resolution
        if resolution is None:
            factor = ctx.vq_model.config.downsample_factor if ctx.vq_model is not None else 16
            resolution = int(math.isqrt(self.num_image_tokens)) * factor
        elif ctx.vq_model is not None:
            side = resolution // ctx.vq_model.config.downsample_factor
            self.num_image_tokens = side * side
        self.images = ImageTokens(ctx.vq_model, resolution, self.num_image_tokens, config.data.image_token_cache)
        self.text_length = self.prompting.max_text_len  # M + 1: where <|soi|> sits in t2i rows
        self.seq_len = self.text_length + self.num_image_tokens + 2
        self.sizes = {task: getattr(config.batch, task) for task in TASKS}
        self.rows: dict[str, list[list[dict[str, Any]]]] = {}
        self.cumulative: dict[str, list[float]] = {}
        for task in TASKS:
            sources = config.sources(task) if self.sizes[task] else []
            self.rows[task] = [read_source(task, source) for source in sources]
            self.cumulative[task] = list(itertools.accumulate(s.ratio for s in sources))
        self.check_data()

    def check_data(self) -> None:
        """Stage-specific data rules (stage 2 overrides)."""

    # -- rows ---------------------------------------------------------------------------------------
    def _pick(self, task: str, gen: torch.Generator) -> dict[str, Any]:
        cumulative = self.cumulative[task]
        u = float(torch.rand(1, generator=gen)) * cumulative[-1]
        source = min(bisect.bisect_right(cumulative, u), len(cumulative) - 1)
        rows = self.rows[task][source]
        return rows[int(torch.randint(len(rows), (1,), generator=gen))]

    def _t2i_row(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gen = row_generator(self.config.seed, _TASK_STREAM["t2i"], k)
        sample = self._pick("t2i", gen)
        codes = self.images.codes(sample)[None]
        noised = mask_image_tokens(codes, self.mask_id, gen, self.config.loss.min_masking_rate)
        batch = self.prompting.t2i(
            [sample["caption"]],
            codes,
            noised.labels != IGNORE_INDEX,
            cond_dropout_prob=self.config.loss.cond_dropout_prob,
            generator=gen,
        )
        return batch.input_ids, batch.labels, batch.attention_mask

    def _text_row(self, task: str, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        gen = row_generator(self.config.seed, _TASK_STREAM[task], k)
        sample = self._pick(task, gen)
        if task == "mmu":
            batch = self.prompting.mmu(self.images.codes(sample)[None], [sample["chat"]])
        elif "chat" in sample:
            batch = self.prompting.lm_chat([sample["chat"]], self.seq_len)
        elif "completion" in sample:
            batch = self.prompting.lm_prompted([sample["prompt"]], [sample["completion"]], self.seq_len)
        else:
            batch = self.prompting.lm([sample["text"]], self.seq_len)
        noised = mask_text_tokens(batch.input_ids, self.mask_id, batch.prompt_mask, self.config.loss.mask_eps, gen)
        return noised.input_ids, batch.labels, noised.p_mask, noised.answer_lengths

    def build_batch(self, micro_index: int) -> dict[str, Any]:
        """Micro-batch number ``micro_index`` in the global order (``n·W + r``)."""
        parts: dict[str, list] = {"ids": [], "labels": [], "t2i_mask": []}
        text: dict[str, dict[str, list]] = {t: {"p": [], "a": []} for t in ("lm", "mmu")}
        for task in TASKS:
            size = self.sizes[task]
            for k in range(micro_index * size, (micro_index + 1) * size):
                if task == "t2i":
                    ids, labels, mask = self._t2i_row(k)
                    parts["t2i_mask"].append(mask)
                else:
                    ids, labels, p_mask, answer = self._text_row(task, k)
                    text[task]["p"].append(p_mask)
                    text[task]["a"].append(answer)
                parts["ids"].append(ids)
                parts["labels"].append(labels)
        length = self.seq_len
        empty = torch.zeros(0, length)

        def cat(rows: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
            return torch.cat(rows) if rows else like

        input_ids = torch.cat(parts["ids"])
        t2i_mask = cat(parts["t2i_mask"], empty.long())
        if self.config.loss.attention == "reference":
            attention = {"attention_bias": training_attention_bias(t2i_mask, input_ids.shape[0])}
        else:
            rest = torch.ones(input_ids.shape[0] - t2i_mask.shape[0], length, dtype=torch.long)
            attention = {"attention_mask": torch.cat([t2i_mask, rest])}
        return {
            "input_ids": input_ids,
            "labels": torch.cat(parts["labels"]),
            **attention,
            "p_mask_lm": cat(text["lm"]["p"], empty),
            "answer_lengths_lm": cat(text["lm"]["a"], empty.long()),
            "p_mask_mmu": cat(text["mmu"]["p"], empty),
            "answer_lengths_mmu": cat(text["mmu"]["a"], empty.long()),
        }

    # -- TrainingStage -----------------------------------------------------------------------------
    def batches(self, rank: int, world_size: int) -> CountedBatches:
        # rows are numbered globally (micro-batch k of rank r is global batch k * world_size + r)
        return CountedBatches(lambda k, r, w: self.build_batch(k * w + r), rank, world_size)

    def loss(self, model: torch.nn.Module, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        extra = {key: batch[key] for key in ("attention_bias", "attention_mask") if key in batch}
        positions = scored_positions(batch["input_ids"], batch["labels"], self.mask_id)
        logits = model(batch["input_ids"], logits_positions=positions, **extra).logits
        losses = stage1_losses(
            logits,
            batch["input_ids"],
            batch["labels"],
            batch_size_t2i=self.sizes["t2i"],
            batch_size_lm=self.sizes["lm"],
            batch_size_mmu=self.sizes["mmu"],
            t2i_text_length=self.text_length,
            p_mask_lm=batch["p_mask_lm"],
            p_mask_mmu=batch["p_mask_mmu"],
            answer_lengths_mmu=batch["answer_lengths_mmu"],
            answer_lengths_lm=batch["answer_lengths_lm"],
            mask_token_id=self.mask_id,
            positions=positions,
        )
        coeff = self.config.loss
        total = losses.total(coeff.coeff_t2i, coeff.coeff_lm, coeff.coeff_mmu)
        logs = {"tokens": float(batch["input_ids"].numel())}
        for task in TASKS:
            if self.sizes[task]:
                logs[f"loss_{task}"] = float(getattr(losses, task).detach())
        return total, logs

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Stateless: every row is a function of the seed and its counter."""
