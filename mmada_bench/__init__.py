"""mmada_bench: reproducible evaluation and benchmarking harness for MMaDA diffusion LLMs."""

__version__ = "0.1.0"
