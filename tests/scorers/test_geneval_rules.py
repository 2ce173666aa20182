"""GenEval decision rules against the golden cases made with GenEval's own evaluator.

Every case must match exactly: verdict, reason text byte for byte (relation names in either order
where the case says the official order is a set's), kept indices and colour-classifier calls. The
summary numbers must match within 1e-12, counts exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmada_bench.errors import DataError
from mmada_bench.scorers import geneval as ge

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "geneval"
CASES = json.loads((GOLDEN / "cases.json").read_text(encoding="utf-8"))
SUMMARY_TOL = 1e-12


class ScriptedColours:
    """Answers each object's colour from the case (matched by identity) and records the calls."""

    def __init__(self, colour_of: dict[int, str], index_of: dict[int, int]) -> None:
        self.colour_of = colour_of
        self.index_of = index_of
        self.calls: list[tuple[str, list[int]]] = []

    def classify(
        self, image: Image.Image | None, objects: Sequence[ge.Detection], classname: str
    ) -> list[str]:
        self.calls.append((classname, [self.index_of[id(o)] for o in objects]))
        return [self.colour_of[id(o)] for o in objects]


def _case_inputs(case: dict) -> tuple[dict[str, list[ge.Detection]], ScriptedColours]:
    detections: dict[str, list[ge.Detection]] = {}
    colour_of: dict[int, str] = {}
    index_of: dict[int, int] = {}
    for cls, items in case["detections"].items():
        detections[cls] = []
        for i, item in enumerate(items):
            det = ge.Detection(box=tuple(item["box"]), score=item["score"])
            detections[cls].append(det)
            index_of[id(det)] = i
            if "color" in item:
                colour_of[id(det)] = item["color"]
    return detections, ScriptedColours(colour_of, index_of)


def _reason_matches(got: str, expected: str, order_free: bool) -> bool:
    if got == expected:
        return True
    if not order_free:
        return False
    # The official code joins a set of relation names; accept any order of the " and "-joined names.
    prefix, _, rest = expected.partition(", found ")
    got_prefix, _, got_rest = got.partition(", found ")
    names = sorted(rest.removesuffix(" target").split(" and "))
    got_names = sorted(got_rest.removesuffix(" target").split(" and "))
    return prefix == got_prefix and names == got_names and got_rest.endswith(" target")


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["id"] for c in CASES["cases"]])
def test_golden_case(case: dict) -> None:
    prompt = ge.parse_metadata(case["metadata"], where=case["id"])
    options = ge.GenEvalOptions.from_mapping(case.get("options"))
    detections, colours = _case_inputs(case)
    verdict = ge.evaluate_detections(None, detections, prompt, colours, options)
    expected = case["expected"]
    assert verdict.correct is expected["correct"]
    assert _reason_matches(
        verdict.reason, expected["reason"], expected.get("reason_relation_order_free", False)
    )
    assert verdict.kept == expected["kept"]
    assert [list(call) for call in colours.calls] == [
        [c["class"], c["detections"]] for c in expected["color_calls"]
    ]
    assert verdict.color_calls == [(c["class"], c["detections"]) for c in expected["color_calls"]]


def test_golden_constants_match() -> None:
    assert list(ge.COLORS) == CASES["colors"]
    assert ge.GenEvalOptions().as_record() == CASES["defaults"]
    assert CASES["source"] == ge.GENEVAL_SOURCE


def test_summary_of_official_results_file(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in CASES["summary"]["rows"]), encoding="utf-8")
    got = ge.summarize_results_file(path)
    exp = CASES["summary"]["expected"]
    assert got.total_images == exp["total_images"]
    assert got.total_prompts == exp["total_prompts"]
    assert got.fraction_correct_images == pytest.approx(exp["fraction_correct_images"], abs=SUMMARY_TOL)
    assert got.fraction_correct_prompts == pytest.approx(exp["fraction_correct_prompts"], abs=SUMMARY_TOL)
    assert list(got.tag_order) == exp["tag_order"]
    assert got.overall == pytest.approx(exp["overall"], abs=SUMMARY_TOL)
    for tag, want in exp["per_tag"].items():
        assert got.per_tag[tag].correct == want["correct"]
        assert got.per_tag[tag].images == want["images"]
        assert got.per_tag[tag].score == pytest.approx(want["score"], abs=SUMMARY_TOL)
    record = got.as_record()
    assert record["rule"] == ge.RULE_SUMMARY and json.dumps(record)


def test_rows_round_trip_through_summary() -> None:
    """Rows this module writes are read back by the same summary (the official format)."""
    prompt = ge.parse_metadata(CASES["cases"][0]["metadata"])
    det = {"bench": [ge.Detection(box=(1.0, 2.0, 30.0, 40.0), score=0.5)]}
    row = ge.result_row("x/00000/samples/0000.png", prompt, ge.evaluate_detections(None, det, prompt))
    assert row["correct"] is True and json.loads(row["details"]) == {"bench": [[1.0, 2.0, 30.0, 40.0, 0.5]]}
    assert json.loads(row["metadata"]) == CASES["cases"][0]["metadata"]
    summary = ge.summarize([row, {**row, "correct": False}])
    assert summary.total_prompts == 1 and summary.overall == 0.5 and summary.fraction_correct_prompts == 1.0


class BoxDetector:
    def detect(self, image: Image.Image) -> dict[str, list[ge.Detection]]:
        mask = np.zeros((image.height, image.width), dtype=bool)
        mask[4:12, 4:12] = True
        return {"car": [ge.Detection(box=(4.0, 4.0, 12.0, 12.0), score=0.9, mask=mask)]}


class RedIfRed:
    """Colour from the cropped object's mean pixel: checks the crop helper feeds the object region."""

    def classify(self, image: Image.Image, objects: Sequence[ge.Detection], classname: str) -> list[str]:
        out = []
        for obj in objects:
            pixels = np.asarray(ge.crop_object(image, obj), dtype=float).reshape(-1, 3).mean(0)
            out.append("red" if pixels[0] > 200 and pixels[1] < 50 else "white")
        return out


def test_evaluate_image_folder_with_pluggable_detector(tmp_path: Path) -> None:
    meta = {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}], "prompt": "a red car"}
    sample_dir = tmp_path / "00000" / "samples"
    sample_dir.mkdir(parents=True)
    (tmp_path / "00000" / "metadata.jsonl").write_text(json.dumps(meta) + "\n")
    image = Image.new("RGB", (16, 16), "white")
    image.paste((255, 0, 0), (4, 4, 12, 12))
    image.save(sample_dir / "0000.png")
    (sample_dir / "grid.png").write_bytes(b"not scanned")
    pairs = ge.iter_image_folder(tmp_path)
    assert [p.name for p, _ in pairs] == ["0000.png"]
    path, prompt = pairs[0]
    assert isinstance(BoxDetector(), ge.Detector) and isinstance(RedIfRed(), ge.ColorClassifier)
    row = ge.evaluate_image(Image.open(path), prompt, BoxDetector(), RedIfRed(), filename=str(path))
    assert row["correct"] is True, row["reason"]


def test_colour_prompt_without_classifier_is_a_clear_error() -> None:
    prompt = ge.parse_metadata(CASES["cases"][17]["metadata"])
    det = {"fire hydrant": [ge.Detection(box=(0.0, 0.0, 5.0, 5.0), score=0.9)]}
    with pytest.raises(DataError, match="colour classifier"):
        ge.evaluate_detections(None, det, prompt)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("{not json", "<line>"),
        ('{"tag": "nope", "include": [{"class": "cow", "count": 1}], "prompt": "p"}', "tag"),
        ('{"tag": "colors", "include": [], "prompt": "p"}', "include"),
        ('{"tag": "colors", "include": [{"class": "unicorn", "count": 1}], "prompt": "p"}', "include[0].class"),
        ('{"tag": "colors", "include": [{"class": "cow", "count": 0}], "prompt": "p"}', "include[0].count"),
        ('{"tag": "colors", "include": [{"class": "cow", "count": true}], "prompt": "p"}', "include[0].count"),
        ('{"tag": "colors", "include": [{"class": "cow", "count": 1, "color": "teal"}], "prompt": "p"}',
         "include[0].color"),
        ('{"tag": "colors", "include": [{"class": "cow", "count": 1, "colour": "red"}], "prompt": "p"}',
         "include[0]"),
        ('{"tag": "position", "include": [{"class": "cow", "count": 1, "position": ["above", 0]}], "prompt": "p"}',
         "include[0].position"),
        ('{"tag": "position", "include": [{"class": "cow", "count": 1}, '
         '{"class": "dog", "count": 1, "position": ["beside", 0]}], "prompt": "p"}', "include[1].position"),
        ('{"tag": "counting", "include": [{"class": "cow", "count": 2}], "exclude": [{"class": "cow"}], '
         '"prompt": "p"}', "exclude[0].count"),
        ('{"tag": "colors", "include": [{"class": "cow", "count": 1}]}', "prompt"),
    ],
)  # fmt: skip
def test_metadata_validator_names_file_line_field(line: str, field: str, tmp_path: Path) -> None:
    path = tmp_path / "evaluation_metadata.jsonl"
    good = json.dumps(CASES["cases"][0]["metadata"])
    path.write_text(f"{good}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        ge.read_metadata_jsonl(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: {field}:"), message
    assert "\n" not in message


def test_metadata_validator_accepts_every_golden_prompt() -> None:
    for case in CASES["cases"]:
        prompt = ge.parse_metadata(case["metadata"])
        assert prompt.metadata_json == json.dumps(case["metadata"])


def test_unknown_option_is_refused() -> None:
    with pytest.raises(DataError, match="max_overlapp"):
        ge.GenEvalOptions.from_mapping({"max_overlapp": 0.5})


def test_results_reader_rejects_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text('{"tag": "colors", "correct": "yes", "metadata": "{}"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"results.jsonl:1: correct:"):
        ge.read_results_jsonl(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="no result rows"):
        ge.summarize_results_file(empty)


def test_relations_and_iou_helpers() -> None:
    assert ge.relative_position((250, 200, 350, 300), (100, 200, 200, 300), 0.1) == {"right of"}
    assert ge.relative_position((140, 200, 240, 300), (100, 200, 200, 300), 0.1) == set()
    assert ge.compute_iou((0, 0, 9, 9), (0, 0, 9, 9)) == 1.0
    assert ge.compute_iou((0, 0, 9, 9), (20, 20, 29, 29)) == 0.0


# --------------------------------------------------------------------------------------------------
# Optional CLIP colour classifier (transformers, local folders only)
# --------------------------------------------------------------------------------------------------

PALETTE = {"red": (255, 0, 0), "blue": (0, 0, 255), "white": (255, 255, 255), "green": (0, 160, 0)}


class _Batch(dict):
    def to(self, device: str) -> _Batch:
        return self


class FakeClipProcessor:
    """Text -> index of the colour named after 'a photo of a '; image -> nearest palette colour."""

    def __call__(self, text=None, images=None, return_tensors=None, padding=None) -> _Batch:
        import torch

        if text is not None:
            names = [t.removeprefix("a photo of a ").split()[0].removesuffix("-colored") for t in text]
            return _Batch(ids=torch.tensor([ge.COLORS.index(n) for n in names]))
        means = [np.asarray(im, dtype=float).reshape(-1, 3).mean(0) for im in images]
        nearest = [min(PALETTE, key=lambda c: np.sum((np.array(PALETTE[c]) - m) ** 2)) for m in means]
        return _Batch(ids=torch.tensor([ge.COLORS.index(n) for n in nearest]))


class FakeClip:
    def eval(self) -> FakeClip:
        return self

    def to(self, device: str) -> FakeClip:
        return self

    def get_text_features(self, ids):
        import torch

        return torch.nn.functional.one_hot(ids, len(ge.COLORS)).float()

    get_image_features = get_text_features


def test_clip_colour_classifier_pipeline_with_fake_model() -> None:
    image = Image.new("RGB", (32, 16), "white")
    image.paste((255, 0, 0), (2, 2, 10, 10))
    image.paste((0, 0, 255), (18, 2, 30, 14))
    mask = np.zeros((16, 32), dtype=bool)
    mask[2:10, 2:10] = True  # the red square only; the rest of its box becomes grey background
    objects = [
        ge.Detection(box=(2.0, 2.0, 10.0, 10.0), score=0.9, mask=mask),
        ge.Detection(box=(18.0, 2.0, 30.0, 14.0), score=0.8),
    ]
    clf = ge.ClipColorClassifier(FakeClip(), FakeClipProcessor())
    assert clf.classify(image, objects, "car") == ["red", "blue"]
    assert clf.classify(image, [], "car") == []
    assert set(clf._text_weights) == {"car"}


@pytest.mark.slow
def test_clip_colour_classifier_loads_tiny_local_model() -> None:
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "clip_tiny" / "model"
    if not (folder / "config.json").is_file():
        pytest.skip("tiny CLIP fixture not present")
    clf = ge.ClipColorClassifier.from_pretrained(folder)
    image = Image.new("RGB", (64, 64), (200, 30, 30))
    colours = clf.classify(image, [ge.Detection(box=(0.0, 0.0, 40.0, 40.0), score=0.9)] * 2, "car")
    assert len(colours) == 2 and all(c in ge.COLORS for c in colours) and colours[0] == colours[1]
    with pytest.raises(DataError, match="config.json"):
        ge.ClipColorClassifier.from_pretrained(folder.parent / "missing")
