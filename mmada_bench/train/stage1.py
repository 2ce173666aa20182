"""Stage 1 (pretraining, spec §5.3 rows 1.1-1.3): mixed t2i / lm / mmu micro-batches.

lm rows may be plain text (every position noised, stage 1.1/1.2), plain prompt + completion text
(prompt clean) or chat rows (prompt clean, stage 1.3); mmu rows are image captions or questions about
images.
"""

from __future__ import annotations

from mmada_bench.train.mixed import MixedStage
from mmada_bench.train.stage import StageContext


class Stage1(MixedStage):
    name = "stage1"


def build_stage1(ctx: StageContext) -> Stage1:
    return Stage1(ctx)
