"""Samplers of MMaDA: text / multimodal-understanding block diffusion and MaskGIT text-to-image.

Exact reference modes by default; Fast-dLLM-style fast modes are keyword options of the same
functions. Every call can report its cost (forward passes, tokens, seconds) into a
:class:`SamplingStats`.
"""

from mmada_bench.sampling.image import generate_image, guided_image_logits, infer_image_layout
from mmada_bench.sampling.schedules import (
    check_image_schedule,
    check_text_schedule,
    image_mask_length,
    image_mask_lengths,
    image_mask_ratio,
    transfer_counts,
)
from mmada_bench.sampling.stats import SamplingStats
from mmada_bench.sampling.text import generate_text

__all__ = [
    "SamplingStats",
    "check_image_schedule",
    "check_text_schedule",
    "generate_image",
    "generate_text",
    "guided_image_logits",
    "image_mask_length",
    "image_mask_lengths",
    "image_mask_ratio",
    "infer_image_layout",
    "transfer_counts",
]
