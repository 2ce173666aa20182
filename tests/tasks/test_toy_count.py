"""``toy_count``: the shipped rows are the toy world's counting problems byte for byte, the task reads
them without --data-dir, and it is lm-eval's GSM8K prompt under its own name, 0-shot."""

from __future__ import annotations

import json

from mmada_bench.tasks.catalog import get_task
from mmada_bench.tasks.text.toy_count import DATA_DIR, NAME
from mmada_bench.toy.arithmetic import shape_problems


def test_shipped_rows_equal_the_generated_problems():
    for split in ("train", "test"):
        lines = (DATA_DIR / NAME / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == shape_problems(split)


def test_task_reads_its_bundled_rows_zero_shot(tmp_path):
    spec = get_task(NAME)
    assert spec.num_fewshot == 0 and spec.bundled_data == DATA_DIR
    loaded = spec.impl.load(spec.bundled_data / NAME, spec.num_fewshot)
    assert loaded.source == "local" and loaded.info()["rows"] == {"None": 200}
    prepared = spec.impl.write(tmp_path, loaded)
    config = (tmp_path / f"{NAME}.yaml").read_text()
    assert "gsm8k/gsm8k.yaml" in config and f"task: {NAME}" in config
    assert prepared.subtasks == [NAME]
