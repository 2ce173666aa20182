"""MMaDA model, MAGVIT-v2 image tokenizer, prompting and checkpoint loading."""

from mmada_bench.model.configuration_mmada import MMaDAConfig
from mmada_bench.model.modeling_mmada import MMaDAModelLM, MMaDAOutput

__all__ = ["MMaDAConfig", "MMaDAModelLM", "MMaDAOutput"]
