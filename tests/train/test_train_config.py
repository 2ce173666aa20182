"""Bad training configs fail before training with one line (exit 2 from the CLI); data readers; schedule."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from mmada_bench.cli import main
from mmada_bench.errors import ConfigError, DataError
from mmada_bench.model.presets import resolve_checkpoint
from mmada_bench.train.config import DataSource, config_from_dict
from mmada_bench.train.data import read_source
from mmada_bench.train.trainer import build_scheduler
from tests.train.train_helpers import FIXTURES, stage1_dict, stage2_dict, write_config


def _bad(tmp_path, mutate):
    config = stage1_dict(tmp_path / "out")
    mutate(config)
    return config


BAD = {
    "unknown top key": (lambda c: c.update(learning_rate=1), ConfigError, "learning_rate: unknown key"),
    "unknown nested key": (lambda c: c["optim"].update(lrr=1), ConfigError, "optim.lrr: unknown key"),
    "wrong type": (lambda c: c["optim"].update(max_steps="many"), ConfigError, "optim.max_steps"),
    "unknown stage": (lambda c: c.update(stage="stage9"), ConfigError, "unknown stage 'stage9'"),
    "missing data file": (
        lambda c: c["data"]["lm"][0].update(path="/nonexistent/text.jsonl"), DataError, "data file not found",
    ),
    "ratios do not sum": (
        lambda c: c["data"]["mmu"][0].update(ratio=0.7), ConfigError, "mixing ratios sum to 1.2",
    ),
    "format cannot feed task": (
        lambda c: c["data"]["t2i"][0].update(format="text_jsonl"), ConfigError, "cannot feed task t2i",
    ),
    "rows without sources": (lambda c: c["data"].update(lm=[]), ConfigError, "batch.lm = 2 but data.lm"),
    "warm-up past the end": (lambda c: c["optim"].update(warmup_steps=50), ConfigError, "warmup_steps"),
    "options for a stage that takes none": (
        lambda c: c.update(stage_options={"group_size": 4}), ConfigError, "stage1 takes none",
    ),
    "stage-3 options checked before any model loads": (
        lambda c: c.update(stage="stage3", stage_options={"group_size": 1}), ConfigError, "group_size must be >= 2",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_fails_with_one_line_and_exit_2(case, tmp_path, capsys):
    mutate, error, message = BAD[case]
    config = _bad(tmp_path, mutate)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")):
        config_from_dict(config)
    path = write_config(tmp_path / "bad.yaml", config)
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_resume_from_a_checkpoint_of_another_vocabulary_is_refused_before_loading(tmp_path, capsys):
    foreign = tmp_path / "out" / "checkpoint-4"
    shutil.copytree(resolve_checkpoint("tiny"), foreign, ignore=shutil.ignore_patterns("*.safetensors", "vq_model"))
    config_json = json.loads((foreign / "config.json").read_text())
    config_json["vocab_size"] += 8
    (foreign / "config.json").write_text(json.dumps(config_json))
    (foreign / "trainer_state").mkdir()
    (foreign / "trainer_state" / "trainer.json").write_text(json.dumps({"step": 4, "stage": "stage1", "world_size": 1}))
    path = write_config(tmp_path / "c.yaml", stage1_dict(tmp_path / "out"))
    assert main(["train", str(path), "--resume", "auto"]) == 2
    err = capsys.readouterr().err
    assert "another model or vocabulary" in err and "vocab_size" in err and err.count("\n") == 1


def test_stage2_requires_cot_rows_and_cot_rows_require_think_format(tmp_path):
    config = stage2_dict(tmp_path / "out")
    for source in config["data"]["lm"] + config["data"]["mmu"]:
        source["cot"] = False
    path = write_config(tmp_path / "c.yaml", config)
    assert main(["train", str(path)]) == 2
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"prompt": "What is 1 + 1?", "response": "2"}) + "\n")
    with pytest.raises(DataError, match=r"plain\.jsonl:1: CoT answer must contain <think>"):
        read_source("lm", DataSource(path=str(plain), format="chat_jsonl", cot=True))


def test_readers_build_the_training_chat_format():
    cot = read_source("lm", DataSource(path=str(FIXTURES / "text_cot.jsonl"), format="chat_jsonl", cot=True))
    chat = cot[0]["chat"]
    assert chat.startswith("<|start_header_id|>user<|end_header_id|>\nYou should first think")
    assert "What is 2 + 3?<eot_id><|start_header_id|>assistant<|end_header_id|>\n<think>" in chat
    llava = read_source("mmu", DataSource(path=str(FIXTURES / "llava.json"), format="llava_json"))
    assert llava[0]["image"].endswith("images/0_red_circle.png")
    assert "<image>" not in llava[0]["chat"] and llava[0]["chat"].endswith("A circle.")
    captions = read_source("t2i", DataSource(path=str(FIXTURES / "captions.jsonl"), format="caption_jsonl"))
    assert captions[1] == {"caption": "a blue square on a white background", "image": str(FIXTURES / "images/1_blue_square.png")}


def test_bad_rows_name_file_and_row(tmp_path):
    bad = tmp_path / "rows.jsonl"
    bad.write_text('{"text": "fine"}\n{"txt": "typo"}\n')
    with pytest.raises(DataError, match=r"rows\.jsonl:2: field 'text'"):
        read_source("lm", DataSource(path=str(bad), format="text_jsonl"))
    missing_image = tmp_path / "caps.jsonl"
    missing_image.write_text(json.dumps({"image": "nope.png", "caption": "x"}) + "\n")
    with pytest.raises(DataError, match=r"caps\.jsonl:1: image file not found"):
        read_source("t2i", DataSource(path=str(missing_image), format="caption_jsonl"))


def test_text_rows_may_be_prompt_and_completion_but_not_both_forms(tmp_path):
    rows = tmp_path / "qa.jsonl"
    rows.write_text(json.dumps({"prompt": "Question: 2 + 3?\nAnswer:", "completion": " 5"}) + "\n")
    assert read_source("lm", DataSource(path=str(rows), format="text_jsonl")) == [
        {"prompt": "Question: 2 + 3?\nAnswer:", "completion": " 5"}]
    rows.write_text(json.dumps({"prompt": "Question: 2 + 3?\nAnswer:"}) + "\n")
    with pytest.raises(DataError, match=r"qa\.jsonl:1: field 'completion'"):
        read_source("lm", DataSource(path=str(rows), format="text_jsonl"))
    rows.write_text(json.dumps({"text": "x", "prompt": "y", "completion": "z"}) + "\n")
    with pytest.raises(DataError, match=r"qa\.jsonl:1: give either 'text' or 'prompt' \+ 'completion'"):
        read_source("lm", DataSource(path=str(rows), format="text_jsonl"))


def test_schedule_is_linear_warmup_then_cosine_to_min_lr_scale(tmp_path):
    config = config_from_dict(stage1_dict(tmp_path, optim={"lr": 1.0, "warmup_steps": 4, "max_steps": 14, "min_lr_scale": 0.1}))
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, config)
    lrs = []
    for _ in range(14):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs[:5] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    progress = [(t - 4) / 10 for t in range(4, 14)]
    expected = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)) for p in progress]
    assert lrs[4:] == pytest.approx(expected)
    assert scheduler.get_last_lr()[0] == pytest.approx(0.1)


def test_micro_batches_do_not_depend_on_the_process_count(tmp_path):
    from mmada_bench.model.loading import load_bundle
    from mmada_bench.train.stage import StageContext
    from mmada_bench.train.stages import build_stage

    bundle = load_bundle("tiny")

    def stage(rows):
        config = config_from_dict(stage1_dict(tmp_path, batch={"t2i": rows, "lm": rows, "mmu": rows}))
        return build_stage(StageContext(config, bundle.model, bundle.tokenizer, bundle.vq_model))

    one = next(stage(2).batches(0, 1))
    rank0, rank1 = next(stage(1).batches(0, 2)), next(stage(1).batches(1, 2))
    order = [0, 3, 1, 4, 2, 5]  # ranks hold [t2i lm mmu] each; one process holds [t2i0 t2i1 lm0 lm1 mmu0 mmu1]
    both = torch.cat([rank0["input_ids"], rank1["input_ids"]])[order]
    assert torch.equal(one["input_ids"], both)
    it = stage(2).batches(0, 1)
    next(it)
    state = it.state_dict()
    expected = next(it)
    again = stage(2).batches(0, 1)
    again.load_state_dict(state)
    assert torch.equal(next(again)["input_ids"], expected["input_ids"])
