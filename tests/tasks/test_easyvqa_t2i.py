"""``easyvqa_t2i`` end to end: an adapter that returns real test images gives exactly the judge's own
verdicts on those images; the random ``tiny`` model runs through it; bad prompt files fail in one line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from mmada_bench.adapters.base import Adapter, Cost, ImageRequest, ImageResult
from mmada_bench.adapters.settings import ImageSettings
from mmada_bench.errors import DataError
from mmada_bench.results.reader import find_entry
from mmada_bench.runner import RunConfig, run_suite
from mmada_bench.scorers.toy_judge import DEFAULT_JUDGE, ToyJudge
from mmada_bench.tasks import get_task
from mmada_bench.tasks.t2i.easyvqa_t2i import DEFAULT_PROMPTS, read_caption_rows
from mmada_bench.toy.world import load_world


class RealImageAdapter(Adapter):
    """Answers "a red circle" with the first real test image of that caption (or of ``swap[caption]``)."""

    def __init__(self, swap: dict[str, str] | None = None) -> None:
        self.by_caption: dict[str, Path] = {}
        for item in load_world("test"):
            self.by_caption.setdefault(item.caption, item.path)
        self.swap = swap or {}

    def identity(self) -> dict:
        return {"adapter": "real-images", "swap": sorted(self.swap.items())}

    def generate_images(self, requests: Sequence[ImageRequest], settings: ImageSettings) -> list[ImageResult]:
        return [ImageResult(Image.open(self.by_caption[self.swap.get(r.prompt, r.prompt)]).convert("RGB"), Cost(nfe=1))
                for r in requests]


def _run(out: Path, adapter, model: str, **kwargs) -> dict:
    config = RunConfig(model=model, tasks=["easyvqa_t2i"], output=out, progress=False, bootstrap_iters=20, **kwargs)
    with open(out.parent / f"{out.name}.stdout.txt", "w") as stdout:
        return run_suite(config, adapter=adapter, out=stdout)


def test_registered_and_prompts_match_the_world():
    spec = get_task("easyvqa_t2i")
    assert spec.modality == "t2i" and spec.metrics[0] == "both"
    rows = read_caption_rows(DEFAULT_PROMPTS, sample_data=False)
    assert [(r.id, r.prompt) for r in rows] == [(str(i.image_id), i.caption) for i in load_world("test")]
    assert len(read_caption_rows(DEFAULT_PROMPTS, sample_data=True)) == 24


def test_real_images_score_exactly_the_judges_verdicts(tmp_path, tiny_path):
    swap = {"a red circle": "a blue circle", "a gray triangle": "a gray rectangle"}  # two wrong on purpose
    adapter = RealImageAdapter(swap)
    result = _run(tmp_path / "run", adapter, str(tiny_path), sample_data=True,
                  sampler={"easyvqa_t2i.images_per_prompt": "2"})
    metrics = find_entry(result, "easyvqa_t2i")["metrics"]
    judge = ToyJudge.from_pretrained(DEFAULT_JUDGE)
    rows = read_caption_rows(DEFAULT_PROMPTS, sample_data=True)
    expected = {"both": [], "color": [], "shape": []}
    per_colour: dict[str, list[bool]] = {}
    for row in rows:
        verdict = judge.judge([Image.open(adapter.by_caption[swap.get(row.prompt, row.prompt)])])[0]
        ok = {"shape": verdict.shape == row.shape, "color": verdict.color == row.color}
        ok["both"] = ok["shape"] and ok["color"]
        for name in expected:
            expected[name].append(ok[name])
        per_colour.setdefault(row.color, []).append(ok["both"])
    for name, values in expected.items():
        assert metrics[name]["value"] == pytest.approx(sum(values) / len(values), abs=1e-12)
    for colour, values in per_colour.items():
        assert metrics[f"both[color={colour}]"]["value"] == pytest.approx(sum(values) / len(values), abs=1e-12)
    assert metrics["both[color=red]"]["value"] < 1.0 and metrics["shape[shape=triangle]"]["value"] < 1.0
    assert metrics["both"]["value"] < 1.0 and metrics["color"]["value"] > 0.9  # the judge is right on real images


def test_random_tiny_model_runs_and_scores_in_range(tmp_path, tiny_adapter, tiny_path):
    result = _run(tmp_path / "tiny", tiny_adapter, str(tiny_path), limit=3, sampler={"timesteps": "2"})
    entry = find_entry(result, "easyvqa_t2i")
    assert entry["n_samples"] == 3
    metrics = entry["metrics"]
    assert 0.0 <= metrics["both"]["value"] <= min(metrics["color"]["value"], metrics["shape"]["value"])
    first = read_caption_rows(DEFAULT_PROMPTS, sample_data=False)[:3]
    assert {k for k in metrics if k.startswith("both[color=")} == {f"both[color={r.color}]" for r in first}


def test_bad_prompt_file_is_one_line_error(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps({"id": "1", "prompt": "a red square", "shape": "circle", "color": "red"}) + "\n")
    with pytest.raises(DataError, match=r"prompts.jsonl:1: field 'prompt'"):
        read_caption_rows(path, sample_data=False)
    path.write_text('{"id": "1", "prompt": "a red circle"}\n')
    with pytest.raises(DataError, match=r"prompts.jsonl:1: field 'shape'"):
        read_caption_rows(path, sample_data=False)


def test_prompt_the_judge_cannot_name_stops_the_run_before_the_model(tmp_path, tiny_path):
    folder = tmp_path / "data" / "easyvqa_t2i"
    folder.mkdir(parents=True)
    (folder / "prompts.jsonl").write_text(json.dumps({"id": "7", "prompt": "a purple circle", "shape": "circle",
                                                      "color": "purple"}) + "\n")
    with pytest.raises(DataError, match="row id 7: 'a purple circle' names a shape or colour the judge does not know"):
        _run(tmp_path / "run", RealImageAdapter(), str(tiny_path), data_dir=tmp_path / "data")


class SeedRecordingAdapter(RealImageAdapter):
    """Real images, and a note of every (prompt, seed) the engine asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[str, int]] = []

    def generate_images(self, requests: Sequence[ImageRequest], settings: ImageSettings) -> list[ImageResult]:
        self.asked += [(r.prompt, r.seed) for r in requests]
        return super().generate_images(requests, settings)


def test_repeated_captions_are_separate_images_with_their_own_seeds(tmp_path, tiny_path):
    rows = read_caption_rows(DEFAULT_PROMPTS, sample_data=False)[:40]
    repeats = len(rows) - len({r.prompt for r in rows})
    assert repeats > 0, "the first 40 test captions repeat some prompt (24 distinct captions in all)"
    adapter = SeedRecordingAdapter()
    entry = find_entry(_run(tmp_path / "run", adapter, str(tiny_path), limit=40), "easyvqa_t2i")
    assert entry["n_samples"] == 40
    assert entry["cost"]["requests_computed"] == 40  # none served as another row's logged image
    assert len(adapter.asked) == 40 and len({seed for _, seed in adapter.asked}) == 40
