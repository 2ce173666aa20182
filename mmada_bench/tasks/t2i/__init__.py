"""Text-to-image tasks: CLIPScore, ImageReward and GenEval (:mod:`.benchmarks`), WISE (:mod:`.wise`).

Shape: each registers a :class:`~mmada_bench.tasks.spec.TaskSpec` with
``modality="t2i"``; its backend calls the adapter's ``generate_images`` with one seed per
(prompt, image index), writes images in the benchmark's own folder layout (GenEval's
``<index>/samples/NNNN.png`` + ``metadata.jsonl``) so the official scorers can be run on them, and
records each finished prompt in the request log so an interrupted run resumes.
"""

from mmada_bench.tasks.spec import TaskSpec
from mmada_bench.tasks.t2i.benchmarks import SPECS as _BENCHMARKS
from mmada_bench.tasks.t2i.easyvqa_t2i import SPEC as _EASYVQA_T2I
from mmada_bench.tasks.t2i.wise import SPECS as _WISE

#: The tasks of this modality, as the catalog lists them.
SPECS: list[TaskSpec] = [*_BENCHMARKS, *_WISE, _EASYVQA_T2I]
