"""Text-to-image tasks end to end: tiny MMaDA makes the images, tiny CLIP / ImageReward score them.

One run of ``clipscore`` + ``imagereward`` (+ ``geneval`` without a detector) feeds most tests; a
second run into the same folder must compute nothing and give the same numbers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from mmada_bench.errors import ConfigError, DataError
from mmada_bench.hashing import file_sha256
from mmada_bench.results.reader import RunFolder, find_entry
from mmada_bench.runner import RunConfig, run_suite
from mmada_bench.tasks import get_task
from mmada_bench.tasks.t2i.benchmarks import CLIP_ENV, IMAGEREWARD_ENV, write_run_outputs
from mmada_bench.tasks.t2i.prompts import read_prompts

FIXTURES = Path(__file__).parent.parent / "fixtures" / "t2i"
GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden"
TASKS = ["clipscore", "imagereward", "geneval"]


@pytest.fixture(scope="module")
def scorer_env(tmp_path_factory):
    """Env pointing at the tiny scorers; the tiny ImageReward ViT needs 3 heads (scorer.json)."""
    reward = tmp_path_factory.mktemp("ir")
    source = GOLDEN / "image_reward_tiny"
    for name in ("ImageReward.pt", "med_config.json"):
        shutil.copyfile(source / name, reward / name)
    shutil.copytree(source / "tokenizer", reward / "tokenizer")
    (reward / "scorer.json").write_text(json.dumps({"vit_num_heads": 3}))
    patch = pytest.MonkeyPatch()
    patch.setenv(CLIP_ENV, str(GOLDEN / "clip_tiny" / "model"))
    patch.setenv(IMAGEREWARD_ENV, str(reward))
    patch.setenv("MMADA_BENCH_SCORER_DEVICE", "cpu")
    yield reward
    patch.undo()


def _run(out: Path, adapter, tiny_path) -> dict:
    config = RunConfig(model=str(tiny_path), tasks=TASKS, output=out, data_dir=FIXTURES, progress=False,
                       bootstrap_iters=50, sampler={"timesteps": "2", "geneval.images_per_prompt": "2"})
    with open(out.parent / f"{out.name}.stdout.txt", "w") as stdout:
        return run_suite(config, adapter=adapter, out=stdout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, scorer_env, tiny_adapter, tiny_path):
    out = tmp_path_factory.mktemp("t2i") / "run"
    first = _run(out, tiny_adapter, tiny_path)
    second = _run(out, tiny_adapter, tiny_path)
    return first, second, out


def test_images_are_written_and_recorded(runs):
    _, _, out = runs
    folder = RunFolder.open(out)
    for task, n_images in (("clipscore", 3), ("imagereward", 3), ("geneval", 6)):
        samples = folder.samples(task)
        infos = [info for s in samples for info in s["predictions"]["images"]]
        assert len(infos) == n_images
        for info in infos:
            image = Image.open(out / info["path"])
            assert image.mode == "RGB" and list(image.size) == info["size"]
            assert file_sha256(out / info["path"]) == info["sha256"]


def test_clip_scores_equal_a_direct_scorer_call(runs):
    from mmada_bench.scorers.clipscore import ClipScorer, corpus_clip_score

    first, _, out = runs
    scorer = ClipScorer(GOLDEN / "clip_tiny" / "model")
    samples = RunFolder.open(out).samples("clipscore")
    assert [s["prompt"] for s in samples] == [r.prompt for r in read_prompts(FIXTURES / "clipscore/prompts.txt")]
    values = []
    for s in samples:
        images = [Image.open(out / info["path"]).convert("RGB") for info in s["predictions"]["images"]]
        direct = scorer.score(images, [s["prompt"]] * len(images))
        assert s["extra"]["per_image"] == direct
        values += direct
    assert find_entry(first, "clipscore")["metrics"]["clip_score"]["value"] == corpus_clip_score(values)


def test_image_reward_equals_a_direct_scorer_call(runs, scorer_env):
    from mmada_bench.scorers.imagereward import ImageRewardScorer

    first, _, out = runs
    scorer = ImageRewardScorer(scorer_env / "ImageReward.pt", scorer_env / "med_config.json",
                               scorer_env / "tokenizer", vit_num_heads=3)
    samples = RunFolder.open(out).samples("imagereward")
    assert [s["doc_id"] for s in samples] == ["kite", "teapot", "fox"]
    values = []
    for s in samples:
        images = [Image.open(out / info["path"]).convert("RGB") for info in s["predictions"]["images"]]
        assert s["extra"]["per_image"] == scorer.score(s["prompt"], images)
        values += s["extra"]["per_image"]
    assert find_entry(first, "imagereward")["metrics"]["image_reward"]["value"] == pytest.approx(
        sum(values) / len(values))


def test_rerun_computes_nothing_and_gives_identical_scores(runs):
    first, second, _ = runs
    for task in TASKS:
        entry = find_entry(second, task)
        assert entry["cost"]["requests_computed"] == 0
        assert entry["metrics"] == find_entry(first, task)["metrics"]


def test_geneval_without_detector_is_unavailable_and_exports_its_layout(runs):
    first, _, out = runs
    metric = find_entry(first, "geneval")["metrics"]["geneval_overall"]
    assert metric["value"] is None and "detector" in metric["extra"]["reason"]
    written = write_run_outputs(out, "geneval")
    export = Path(written["geneval"])
    assert sorted(p.name for p in export.iterdir()) == ["00000", "00001", "00002"]
    meta = json.loads((export / "00002" / "metadata.jsonl").read_text())
    assert meta["tag"] == "counting" and meta["include"][0] == {"class": "cup", "count": 2}
    assert sorted(p.name for p in (export / "00002" / "samples").iterdir()) == ["0000.png", "0001.png"]
    sheet = Image.open(written["contact_sheet"])
    assert sheet.width > 128 and sheet.height > 128


def test_missing_scorer_folder_fails_in_one_line_before_loading(tmp_path, monkeypatch):
    monkeypatch.setenv(CLIP_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="nowhere") as err:
        get_task("clipscore").impl.load(FIXTURES, False)
    assert "\n" not in str(err.value)
    monkeypatch.delenv(IMAGEREWARD_ENV, raising=False)
    with pytest.raises(ConfigError, match="imagereward/model") as err:
        get_task("imagereward").impl.load(FIXTURES, False)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("p.jsonl", '{"prompt": "ok"}\n{"prompt": ""}\n', r"p\.jsonl:2: field 'prompt'"),
    ("p.jsonl", '{"prompt": "ok"}\nnot json\n', r"p\.jsonl:2: invalid JSON"),
    ("p.jsonl", '{"id": 1, "prompt": "a"}\n{"id": "1", "prompt": "b"}\n', r"p\.jsonl:2: id '1' repeats line 1"),
    ("p.txt", "\n\n", r"p\.txt: no prompts"),
    ("p.csv", "a\n", r"must be \.txt or \.jsonl"),
])
def test_prompt_file_errors_name_file_and_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=message) as err:
        read_prompts(tmp_path / name)
    assert "\n" not in str(err.value)


def test_images_per_prompt_is_not_in_the_request_key():
    from mmada_bench.adapters.settings import ImageSettings

    assert ImageSettings(images_per_prompt=4).key_dict() == ImageSettings().key_dict()
    with pytest.raises(ConfigError):
        ImageSettings(images_per_prompt=0)


def test_geneval_scores_with_a_detector_and_aggregate_writes_outputs(tmp_path):
    """A stand-in detector (an umbrella in every image) drives the official rules and summary; with
    ``write_outputs`` writes the contact sheet and the export."""
    from mmada_bench.adapters.base import ImageResult
    from mmada_bench.results.schema import SampleRecord
    from mmada_bench.scorers.geneval import Detection
    from mmada_bench.tasks.t2i.benchmarks import GenEvalTask

    class UmbrellaEverywhere:
        def detect(self, image):
            return {"umbrella": [Detection((1.0, 1.0, 30.0, 30.0), 0.99)]}

    task = GenEvalTask()
    task.detector = UmbrellaEverywhere()
    rows = task.load(FIXTURES, False).rows
    records = []
    for n, row in enumerate(rows[:3:2]):  # single_object (passes), counting (fails)
        images = [Image.new("RGB", (32, 32), (40 * n, 90, 200)) for _ in range(2)]
        keys = [f"{n}{k}" + "0" * 62 for k in range(2)]
        for key, image in zip(keys, images, strict=True):
            (tmp_path / "artifacts" / key[:2]).mkdir(parents=True, exist_ok=True)
            image.save(tmp_path / "artifacts" / key[:2] / f"{key}.png")
        scored = task.score(row, [ImageResult(im, artifact=f"artifacts/{key[:2]}/{key}.png")
                                  for im, key in zip(images, keys, strict=True)])
        records.append(SampleRecord(task="geneval", doc_id=row.id, prompt=scored.prompt, target=scored.target,
                                    predictions=scored.predictions, metrics=scored.metrics, doc=scored.doc,
                                    extra={**scored.extra, "request_keys": keys}))
    assert [r.metrics["correct"] for r in records] == [1.0, 0.0]
    metrics = task.aggregate(records, 0)
    task.write_outputs(records, tmp_path)
    assert metrics["geneval_overall"].value == pytest.approx(0.5)
    assert metrics["geneval[single_object]"].value == 1.0 and metrics["geneval[counting]"].value == 0.0
    assert (tmp_path / "contact_sheet_geneval.png").is_file()
    assert (tmp_path / "geneval" / "00002" / "samples" / "0001.png").is_file()
