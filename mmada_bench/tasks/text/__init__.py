"""Text benchmarks (MMLU, GSM8K, MATH, GPQA) run through lm-eval's packaged task configs.

The catalog lists ``SPECS``. ``data/`` holds a handful of rows per task in the original
Hugging Face schemas (``--sample-data``): enough to exercise every code path, not to measure anything.
"""

from __future__ import annotations

from pathlib import Path

from mmada_bench.tasks.text import competition_math, gpqa, gsm8k, mmlu, toy_count

#: Bundled sample rows, laid out as ``--data-dir`` expects (``<task>/<split>.jsonl``).
SAMPLE_DATA_DIR = Path(__file__).parent / "data"

#: The text tasks, as the catalog lists them.
SPECS = [module.SPEC for module in (mmlu, gsm8k, competition_math, gpqa, toy_count)]

__all__ = ["SAMPLE_DATA_DIR", "SPECS"]
