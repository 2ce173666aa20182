"""GPQA (main) on lm-eval's packaged ``gpqa_main_n_shot`` task, scored by log-likelihood.

Why this variant: LLaDA's reported GPQA (quoted for comparison in the MMaDA paper) is lm-eval's
``gpqa_main_n_shot``, 5-shot, multiple choice over ``(A)``..``(D)`` with the Monte Carlo
log-likelihood (128 samples, unsupervised CFG 0.5). The packaged ``process_docs`` shuffles the four
answers with a fixed seed, so the letter of the right answer is lm-eval's choice, not ours.
Data: ``Idavidrein/gpqa`` (gated) rows with ``Question``, ``Correct Answer``, ``Incorrect Answer 1..3``;
the dataset only has ``train``, which is both scored and the few-shot pool.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from types import ModuleType
from typing import Any

from mmada_bench.tasks.datafiles import Field
from mmada_bench.tasks.spec import TaskSpec
from mmada_bench.tasks.text.lm_eval_tasks import FunctionRef, LmEvalTask, Subtask, lm_eval_tasks_dir

#: Seed of the module-level ``random.Random`` in lm-eval's ``gpqa/n_shot/utils.py``.
PACKAGED_SHUFFLE_SEED = 42


@cache
def _packaged_utils() -> ModuleType:
    path = lm_eval_tasks_dir() / "gpqa" / "n_shot" / "utils.py"
    spec = importlib.util.spec_from_file_location("mmada_bench._lm_eval_gpqa_n_shot_utils", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def process_docs(dataset: Any) -> Any:
    """lm-eval's own GPQA ``process_docs``, with its shuffle re-seeded before every call.

    Why: lm-eval 0.4.13's ``gpqa/n_shot/utils.py`` shuffles the four answers with a *module-level*
    ``random.Random(42)`` that every call advances, and lm-eval calls ``process_docs`` separately for
    building prompts, for scoring and for the few-shot pool. Unless the ``datasets`` map cache happens
    to hand back an earlier result, the letter scored as correct is then not the letter the prompt
    showed, and the few-shot pool (shuffled differently) no longer recognises the question being asked
    and may show it, answered, as an example. Re-seeding makes every call return the shuffle a fresh
    process's first call returns, so prompts, targets and few-shot exclusion agree.
    """
    utils = _packaged_utils()
    rng = getattr(utils, "rng", None)
    if rng is not None:
        rng.seed(PACKAGED_SHUFFLE_SEED)
    return utils.process_docs(dataset)


COLUMNS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")

IMPL = LmEvalTask(
    lm_eval_name="gpqa_main_n_shot",
    fields=tuple(Field(name, str) for name in COLUMNS),
    eval_split="train",
    fewshot_split="train",
    fewshot_same_split=True,
    subtask=lambda key: Subtask(None, "gpqa_main_n_shot", "gpqa/n_shot/gpqa_main_n_shot.yaml"),
    overrides={"process_docs": FunctionRef(f"{__name__}.process_docs")},
)

SPEC = TaskSpec(
    name="gpqa",
    modality="text",
    description="graduate-level science multiple choice (main set), log-likelihood of (A)-(D)",
    source="Idavidrein/gpqa (gpqa_main, gated)",
    splits={"eval": "train", "fewshot": "train"},
    columns=COLUMNS,
    metrics=("acc,none", "acc_norm,none"),
    num_fewshot=5,
    sampler={"mc_num": 128, "mc_batch": 8, "cfg": 0.5},
    backend="lm-eval",
    variant="lm-eval gpqa_main_n_shot (v2.2, packaged YAML)",
    why="LLaDA's GPQA protocol: gpqa_main_n_shot 5-shot, MC log-likelihood mc_num 128, batch 8, cfg 0.5",
    impl=IMPL,
    requires=("loglikelihood",),
)
