"""The transformers-only GenEval detector: a tiny random Mask2Former saved to a folder, loaded back
offline, its instances turned into boxes/scores/masks that GenEval's rules consume (the rules
themselves are pinned by the golden cases in test_geneval_rules.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmada_bench.errors import ConfigError
from mmada_bench.scorers.geneval import (
    COCO_CLASSES,
    COLORS,
    GenEvalOptions,
    evaluate_image,
    filter_detections,
    parse_metadata_line,
)
from mmada_bench.scorers.geneval_detector import (
    Mask2FormerDetector,
    build_random_detector,
    load_geneval_scorers,
    mask_box,
)

CLIP = Path(__file__).parents[1] / "fixtures" / "golden" / "clip_tiny" / "model"


@pytest.fixture(scope="module")
def detector_folder(tmp_path_factory) -> Path:
    return build_random_detector(tmp_path_factory.mktemp("m2f"), num_queries=12)


def _image() -> Image.Image:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    pixels[8:30, 10:40] = (220, 30, 30)
    return Image.fromarray(pixels)


def test_mask_box_is_the_mask_extent_right_bottom_exclusive():
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:9] = True
    assert mask_box(mask) == (3.0, 2.0, 9.0, 5.0)
    assert mask_box(np.zeros((4, 4), dtype=bool)) == (0.0, 0.0, 0.0, 0.0)


def test_random_mask2former_detections_have_geneval_structure(detector_folder):
    detector = Mask2FormerDetector.from_pretrained(detector_folder)
    assert detector.classnames == COCO_CLASSES
    image = _image()
    found = detector.detect(image)
    detections = [d for dets in found.values() for d in dets]
    assert 0 < len(detections) <= 12 and set(found) <= set(COCO_CLASSES)
    for det in detections:
        assert det.mask.shape == (40, 56) and det.mask.dtype == bool and det.mask.any()
        assert det.box == mask_box(det.mask)
        x1, y1, x2, y2 = det.box
        assert 0 <= x1 < x2 <= 56 and 0 <= y1 < y2 <= 40 and 0.0 <= det.score <= 1.0
    again = detector.detect(image)  # deterministic: same folder, same image, same detections
    assert {k: [(d.box, d.score) for d in v] for k, v in again.items()} == \
        {k: [(d.box, d.score) for d in v] for k, v in found.items()}


def test_evaluator_consumes_the_detections(detector_folder):
    """With threshold 0 every instance is kept; the rules' details list exactly the detector's boxes and
    scores, and colour prompts go through the CLIP classifier on the detector's masks."""
    detector, colour = load_geneval_scorers(detector_folder, CLIP)
    image = _image()
    found = detector.detect(image)
    cls, dets = max(found.items(), key=lambda item: len(item[1]))
    options = GenEvalOptions(threshold=0.0)
    meta = parse_metadata_line(json.dumps({"tag": "colors", "prompt": f"a photo of a red {cls}",
                                           "include": [{"class": cls, "count": 1, "color": "red"}]}))
    row = evaluate_image(image, meta, detector, colour, options, filename="00000/samples/0000.png")
    details = json.loads(row["details"])
    kept = filter_detections(found, "colors", options)
    assert sorted(details) == sorted(kept) and len(details[cls]) == len(kept[cls])
    best = max(dets, key=lambda d: d.score)
    assert details[cls][0][:4] == pytest.approx(list(best.box)) and details[cls][0][4] == pytest.approx(best.score)
    named = colour.classify(image, [best], cls)[0]
    assert named in COLORS
    assert row["correct"] is (named == "red")
    assert row["reason"] == ("" if named == "red" else f"expected red {cls}>=1, found 0 red; and 1 {named}")


def test_default_threshold_leaves_a_random_model_nothing(detector_folder):
    """The random model's scores are far below GenEval's 0.3, so the official threshold drops them all."""
    detector = Mask2FormerDetector.from_pretrained(detector_folder)
    meta = parse_metadata_line('{"tag": "single_object", "prompt": "a photo of a cup", '
                               '"include": [{"class": "cup", "count": 1}]}')
    row = evaluate_image(_image(), meta, detector)
    assert row["correct"] is False and json.loads(row["details"]) == {}


@pytest.mark.parametrize(("remove", "message"), [
    ("config.json", "missing config.json"),
    ("preprocessor_config.json", "missing preprocessor_config.json"),
    ("model.safetensors", "has no weights"),
])
def test_broken_detector_folders_fail_in_one_line(detector_folder, tmp_path, remove, message):
    import shutil

    folder = tmp_path / "det"
    shutil.copytree(detector_folder, folder)
    (folder / remove).unlink()
    with pytest.raises(ConfigError, match=message) as err:
        Mask2FormerDetector.from_pretrained(folder)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="does not exist"):
        Mask2FormerDetector.from_pretrained(tmp_path / "nowhere")
