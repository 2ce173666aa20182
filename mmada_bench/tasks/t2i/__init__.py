"""Text-to-image tasks (GenEval, WISE, CLIPScore, ImageReward) -- not implemented yet.

Planned shape: each registers a :class:`~mmada_bench.tasks.spec.TaskSpec` with
``modality="t2i"``; its backend calls the adapter's ``generate_images`` with one seed per
(prompt, image index), writes images in the benchmark's own folder layout (GenEval's
``<index>/samples/NNNN.png`` + ``metadata.jsonl``) so the official scorers can be run on them, and
records each finished prompt in the request log so an interrupted run resumes.
"""

from mmada_bench.tasks.spec import TaskSpec

#: The tasks of this modality, as the catalog lists them.
SPECS: list[TaskSpec] = []
