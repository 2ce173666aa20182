"""The committed toy judge: accuracy band on real test images, GenEval protocols, strict loading."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image
from safetensors.torch import load_file, save_file

from mmada_bench.errors import CheckpointError
from mmada_bench.scorers.geneval import (
    ColorClassifier,
    Detector,
    GenEvalPrompt,
    IncludeClause,
    evaluate_image,
)
from mmada_bench.scorers.toy_judge import DEFAULT_JUDGE, REPORT_NAME, ToyJudge
from mmada_bench.toy.world import load_world

#: A fixed subset: the first 300 test images (image-id order).
SUBSET = 300


@pytest.fixture(scope="module")
def judge() -> ToyJudge:
    return ToyJudge.from_pretrained(DEFAULT_JUDGE)


@pytest.fixture(scope="module")
def subset():
    items = load_world("test")[:SUBSET]
    return items, [Image.open(item.path).convert("RGB") for item in items]


def _prompt(shape: str, colour: str) -> GenEvalPrompt:
    raw = {"tag": "colors", "prompt": f"a {colour} {shape}", "include": [{"class": shape, "count": 1, "color": colour}]}
    return GenEvalPrompt("colors", raw["prompt"], (IncludeClause(shape, 1, colour),), (), raw)


def test_accuracy_on_real_test_images_is_at_least_95_percent(judge, subset):
    items, images = subset
    verdicts = judge.judge(images)
    both = sum(v.shape == i.shape and v.color == i.color for v, i in zip(verdicts, items, strict=True))
    assert both / len(items) >= 0.95
    report = json.loads((DEFAULT_JUDGE / REPORT_NAME).read_text())
    assert report["accuracy_real_test"]["both"] >= 0.95 and report["accuracy_real_test"]["images"] == 1000


def test_geneval_rules_accept_the_right_caption_and_reject_wrong_ones(judge, subset):
    assert isinstance(judge, Detector) and isinstance(judge, ColorClassifier)
    items, images = subset
    verdict = judge.judge([images[0]])[0]
    assert verdict.shape == items[0].shape and verdict.color == items[0].color
    detections = judge.detect(images[0])
    assert list(detections) == [items[0].shape] and len(detections[items[0].shape]) == 1
    assert detections[items[0].shape][0].score > 0.3
    assert evaluate_image(images[0], _prompt(items[0].shape, items[0].color), judge, judge)["correct"] is True
    other_colour = next(c for c in judge.config.colors if c != items[0].color)
    wrong = evaluate_image(images[0], _prompt(items[0].shape, other_colour), judge, judge)
    assert wrong["correct"] is False and f"expected {other_colour} {items[0].shape}>=1" in wrong["reason"]
    other_shape = next(s for s in judge.config.shapes if s != items[0].shape)
    assert evaluate_image(images[0], _prompt(other_shape, items[0].color), judge, judge)["correct"] is False


def test_loading_is_strict(tmp_path):
    folder = tmp_path / "judge"
    shutil.copytree(DEFAULT_JUDGE, folder)
    state = load_file(str(folder / "model.safetensors"))
    dropped = sorted(state)[0]
    save_file({k: v for k, v in state.items() if k != dropped}, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=f"missing key {dropped}"):
        ToyJudge.from_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({"widths": [8], "colour": ["red"]}))
    with pytest.raises(CheckpointError, match="config.json"):
        ToyJudge.from_pretrained(folder)
    with pytest.raises(CheckpointError, match="not found"):
        ToyJudge.from_pretrained(tmp_path / "missing")
