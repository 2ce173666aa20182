"""Stage 2 (mixed long-CoT fine-tuning, spec §5.3 rows 2.1-2.2 and §5.4).

Same mixed loss as stage 1, but the text and understanding rows are conversations: the prompt (up
to the last assistant header) stays clean and only the response is noised and scored. Sources marked
``cot: true`` get the ``<think>`` instruction in their user turn and must answer in the
``<think> ... </think> answer`` format (checked row by row when the data is read); t2i rows keep
the model's image generation from drifting, as in the reference recipe.
"""

from __future__ import annotations

from mmada_bench.errors import ConfigError
from mmada_bench.train.mixed import MixedStage
from mmada_bench.train.stage import StageContext


class Stage2(MixedStage):
    name = "stage2"

    def check_data(self) -> None:
        """Stage 2 is CoT fine-tuning: at least one text or understanding source must be CoT."""
        cot = [s for task in ("lm", "mmu") if self.sizes[task] for s in self.config.sources(task) if s.cot]
        if not cot:
            raise ConfigError("stage2 needs at least one lm or mmu source with cot: true (CoT rows)")


def build_stage2(ctx: StageContext) -> Stage2:
    return Stage2(ctx)
