"""Training stages of MMaDA: noising processes and losses (stage 1 now; stages 2-3 build on them)."""

from mmada_bench.train.losses import Stage1Losses, scored_positions, stage1_losses
from mmada_bench.train.noising import mask_image_tokens, mask_text_tokens

__all__ = [
    "Stage1Losses",
    "mask_image_tokens",
    "mask_text_tokens",
    "scored_positions",
    "stage1_losses",
]
