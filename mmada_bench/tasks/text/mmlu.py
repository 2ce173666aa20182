"""MMLU on lm-eval's packaged per-subject ``mmlu_<subject>`` tasks and its ``mmlu`` groups.

Why this variant: the default (log-likelihood) MMLU is what LLaDA and the MMaDA paper report, 5-shot
from the ``dev`` split (first five, lm-eval's ``first_n`` sampler). The continuation is a single token
(`` A``..`` D``), so the Monte Carlo estimator reduces to one exact forward pass -- LLaDA's ``mc_num=1``.
Subject scores are aggregated by lm-eval into stem / humanities / social sciences / other and
``mmlu``, weighted by size (a micro-average over questions).
Data: ``cais/mmlu`` rows ``{question, subject, choices[4], answer: 0-3}``; one file holds every subject
(``subject`` is split out into lm-eval's per-subject configs); ``test`` is scored, ``dev`` gives shots.
"""

from __future__ import annotations

from functools import cache

from mmada_bench.tasks.datafiles import Field
from mmada_bench.tasks.spec import TaskSpec
from mmada_bench.tasks.text.lm_eval_tasks import (
    GroupDef,
    LmEvalTask,
    Subtask,
    lm_eval_tasks_dir,
    read_packaged_yaml,
)

_DEFAULT = "mmlu/default"


@cache
def subject_categories() -> dict[str, str]:
    """Subject -> category group (``mmlu_stem``...), read from the packaged YAMLs' ``tag``."""
    out = {}
    for path in sorted((lm_eval_tasks_dir() / _DEFAULT).glob("mmlu_*.yaml")):
        config = read_packaged_yaml(f"{_DEFAULT}/{path.name}")
        out[config["dataset_name"]] = str(config["tag"]).removesuffix("_tasks")
    return out


def _subject(value: str) -> str | None:
    if value in subject_categories():
        return None
    return f"is not an MMLU subject (e.g. {', '.join(sorted(subject_categories())[:3])}, ...)"


def _choices(value: list) -> str | None:
    if len(value) != 4 or not all(isinstance(c, str) for c in value):
        return f"must be a list of 4 strings, got {len(value)} item(s)"
    return None


def _answer(value: int) -> str | None:
    return None if 0 <= value <= 3 else f"must be 0-3 (index into choices), got {value}"


def _subtask(subject: str | None) -> Subtask:
    assert subject is not None
    return Subtask(subject, f"mmlu_{subject}", f"{_DEFAULT}/mmlu_{subject}.yaml", subject_categories()[subject])


_CATEGORIES = ("stem", "other", "social_sciences", "humanities")

IMPL = LmEvalTask(
    lm_eval_name="mmlu",
    fields=(
        Field("question", str),
        Field("subject", str, _subject),
        Field("choices", list, _choices),
        Field("answer", int, _answer),
    ),
    eval_split="test",
    fewshot_split="dev",
    subtask=_subtask,
    all_keys=lambda: sorted(subject_categories()),
    subtask_of=lambda row: row["subject"],
    key_field="subject",
    groups=tuple(GroupDef(f"mmlu_{c}", f"{_DEFAULT}/_mmlu_{c}.yaml", parent="mmlu") for c in _CATEGORIES)
    + (GroupDef("mmlu", f"{_DEFAULT}/_mmlu.yaml"),),
)

SPEC = TaskSpec(
    name="mmlu",
    modality="text",
    description="57-subject multiple choice, log-likelihood of the answer letter",
    source="cais/mmlu (all)",
    splits={"eval": "test", "fewshot": "dev"},
    columns=("question", "subject", "choices", "answer"),
    metrics=("acc,none",),
    num_fewshot=5,
    sampler={"mc_num": 1, "cfg": 0.0},
    backend="lm-eval",
    variant="lm-eval mmlu default (per-subject v1.0, groups v2, packaged YAML)",
    why="LLaDA/MMaDA report 5-shot log-likelihood MMLU; one-token answers make the estimate exact (mc_num=1)",
    impl=IMPL,
    requires=("loglikelihood",),
)
