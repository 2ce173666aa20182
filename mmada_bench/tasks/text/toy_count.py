"""The toy world's text task: shape-counting word problems, scored like GSM8K (lm-eval, 0-shot).

Rows are ``{"question", "answer"}`` with worked steps ending in ``#### <number>``
(:mod:`mmada_bench.toy.arithmetic`); they ship in ``toy_data/toy_count/`` (2,000 train, 200 test),
so the task runs anywhere without ``--data-dir``. It reuses lm-eval's packaged ``gsm8k`` YAML (prompt
``Question: ...\\nAnswer:``, strict and flexible extraction) under its own name, so a toy score never
lands in a GSM8K column next to the paper's numbers. Zero-shot because the toy MMaDA is trained on
single ``Question/Answer`` texts of ~100 tokens: five exemplars would put it far outside the lengths
it has seen. Chance is about 1 in 20 (answers are small whole numbers).
"""

from __future__ import annotations

from pathlib import Path

from mmada_bench.tasks.spec import TaskSpec
from mmada_bench.tasks.text.gsm8k import IMPL as GSM8K
from mmada_bench.tasks.text.lm_eval_tasks import LmEvalTask, Subtask

NAME = "toy_count"
#: ``--data-dir`` layout of the shipped rows (rebuilt byte for byte by ``mmada_bench.toy.export``).
DATA_DIR = Path(__file__).parent / "toy_data"

IMPL = LmEvalTask(
    lm_eval_name=NAME,
    fields=GSM8K.fields,
    eval_split="test",
    fewshot_split="train",
    subtask=lambda key: Subtask(None, NAME, "gsm8k/gsm8k.yaml"),
    check_dependencies=GSM8K.check_dependencies,
)

SPEC = TaskSpec(
    name=NAME,
    modality="text",
    description="toy-world shape-counting word problems (GSM8K format, 0-shot, exact match on the number)",
    source="mmada_bench.toy.arithmetic (shipped: 2,000 train / 200 test)",
    splits={"eval": "test", "fewshot": "train"},
    columns=("question", "answer"),
    metrics=("exact_match,flexible-extract", "exact_match,strict-match"),
    num_fewshot=0,
    sampler={"gen_length": 48, "steps": 48, "block_length": 16},
    backend="lm-eval",
    variant="lm-eval gsm8k (v3, packaged YAML) under the name toy_count, 0-shot",
    why="gives the text path of the trained toy MMaDA a real number; GSM8K's prompt and filters, the toy's lengths",
    impl=IMPL,
    requires=("generate_text",),
    bundled_data=DATA_DIR,
)
