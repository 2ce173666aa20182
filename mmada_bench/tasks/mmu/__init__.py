"""Multimodal-understanding tasks (POPE, MME, VQAv2, GQA, MMMU) -- not implemented yet.

Planned shape, so the spine does not change when they land: each registers a
:class:`~mmada_bench.tasks.spec.TaskSpec` with ``modality="mmu"`` and a backend that reads
VLMEvalKit-style rows (``index``, ``image``/``image_path``, ``question``, ``answer``, options ``A``..),
asks the adapter's ``answer_about_image`` in batches through the same resumable request log the text
tasks use, and scores with the benchmark's own rule (VLMEvalKit's, named in the results).
"""

from mmada_bench.tasks.spec import TaskSpec

#: The tasks of this modality, as the catalog lists them.
SPECS: list[TaskSpec] = []
