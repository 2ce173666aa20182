"""GSM8K on lm-eval's packaged ``gsm8k`` task (5-shot, ``Question: ...\\nAnswer:``).

Why this variant: it is the configuration MMaDA's own ``evaluation/lm/eval.sh`` and LLaDA's lm-eval
runs use (5 random train exemplars, both ``strict-match`` and ``flexible-extract`` filters), so our
numbers compare with theirs. Data: ``openai/gsm8k`` rows ``{question, answer}`` where ``answer`` ends in
``#### <number>``; ``test`` is scored, ``train`` supplies the few-shot examples.
"""

from __future__ import annotations

from mmada_bench.tasks.datafiles import Field
from mmada_bench.tasks.spec import TaskSpec
from mmada_bench.tasks.text.lm_eval_tasks import LmEvalTask, Subtask


def _final_answer(answer: str) -> str | None:
    return None if "#### " in answer else "must end with '#### <final answer>' as in openai/gsm8k"


IMPL = LmEvalTask(
    lm_eval_name="gsm8k",
    fields=(Field("question", str), Field("answer", str, _final_answer)),
    eval_split="test",
    fewshot_split="train",
    subtask=lambda key: Subtask(None, "gsm8k", "gsm8k/gsm8k.yaml"),
)

SPEC = TaskSpec(
    name="gsm8k",
    modality="text",
    description="grade-school math word problems, generated answer, exact match on the final number",
    source="openai/gsm8k (main)",
    splits={"eval": "test", "fewshot": "train"},
    columns=("question", "answer"),
    metrics=("exact_match,flexible-extract", "exact_match,strict-match"),
    num_fewshot=5,
    sampler={"gen_length": 256, "steps": 256, "block_length": 64},
    backend="lm-eval",
    variant="lm-eval gsm8k (v3, packaged YAML)",
    why="MMaDA's eval.sh and LLaDA report lm-eval's 5-shot gsm8k; gen 256 / steps 256 / block 64 as in eval.sh",
    impl=IMPL,
    requires=("generate_text",),
)
