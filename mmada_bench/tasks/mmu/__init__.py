"""Multimodal-understanding tasks: POPE, MME, GQA, MMMU, VQAv2 (VLMEvalKit data) and easy-VQA (pip).

Each is a :class:`~mmada_bench.tasks.native.NativeTask` (:mod:`mmada_bench.tasks.mmu.benchmarks`) that
reads VLMEvalKit-style rows, asks the adapter's ``answer_about_image`` through the same resumable
request engine the other native tasks use, and scores with the benchmark's own rule (VLMEvalKit's,
named in the results).
"""

from mmada_bench.tasks.mmu.benchmarks import SPECS as _BENCHMARK_SPECS
from mmada_bench.tasks.spec import TaskSpec

#: The tasks of this modality, as the catalog lists them.
SPECS: list[TaskSpec] = list(_BENCHMARK_SPECS)
