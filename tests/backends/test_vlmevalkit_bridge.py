"""The VLMEvalKit bridge, driven the way VLMEvalKit's ``infer_data`` drives a model.

VLMEvalKit itself cannot be imported here (not on PyPI; its repackagings ``ms-vlmeval`` and
``nvidia-vlmeval`` import torchvision, which fails to load with the pinned CPU torch), so the test
holds a small stand-in for its image dataset (rows read with ``pd.read_csv`` as VLMEvalKit does,
``dump_image`` decoding base64 through PIL into ``<index>.png`` files, ``build_prompt`` = images +
question) and repeats its inference loop: ``set_dump_image``, then per row ``use_custom_prompt`` ->
``model.build_prompt(line, dataset=name)`` or ``dataset.build_prompt(line)``, then
``model.generate(message=struct, dataset=name)``. Predictions must equal ``mmada-bench run``'s.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from mmada_bench.backends.vlmevalkit import DEFAULT_SEED, MMaDAVLMEval
from mmada_bench.cli import main
from mmada_bench.errors import ConfigError, DataError
from mmada_bench.results.reader import RunFolder
from mmada_bench.runner import DEFAULT_ADAPTER_SEED

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mmu_samples"
SAMPLER = "gen_length=4,steps=4,block_length=4"
LIMIT = 6


@pytest.fixture(scope="module", autouse=True)
def image_cache(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("MMADA_BENCH_CACHE", str(tmp_path_factory.mktemp("bridge_cache")))
    yield
    patch.undo()


class StandInDataset:
    """What VLMEvalKit's ImageBaseDataset offers the inference loop (name, data, dump_image, build_prompt)."""

    def __init__(self, name: str, tsv: Path, img_root: Path) -> None:
        self.dataset_name = name
        self.data = pd.read_csv(tsv, sep="\t")
        self.img_root = img_root

    def dump_image(self, line: pd.Series) -> list[str]:
        self.img_root.mkdir(parents=True, exist_ok=True)
        path = self.img_root / f"{line['index']}.png"
        if not path.exists():
            image = Image.open(io.BytesIO(base64.b64decode(line["image"])))
            if image.mode in ("RGBA", "P", "LA"):
                image = image.convert("RGB")
            image.save(path)
        return [str(path)]

    def build_prompt(self, line: pd.Series) -> list[dict]:
        images = [{"type": "image", "value": p} for p in self.dump_image(line)]
        return [*images, {"type": "text", "value": line["question"]}]


def infer_data(model, dataset: StandInDataset) -> dict:
    """VLMEvalKit's per-row inference loop (non-API model, one process)."""
    assert not getattr(model, "is_api", False)
    model.set_dump_image(dataset.dump_image)
    name = dataset.dataset_name
    out = {}
    for i in range(len(dataset.data)):
        line = dataset.data.iloc[i]
        if getattr(dataset, "force_use_dataset_prompt", False):
            struct = dataset.build_prompt(line)
        elif hasattr(model, "use_custom_prompt") and model.use_custom_prompt(name):
            struct = model.build_prompt(line, dataset=name)
        else:
            struct = dataset.build_prompt(line)
        out[line["index"]] = model.generate(message=struct, dataset=name)
    return out


@pytest.fixture(scope="module")
def native_run(tiny_path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bridge_native") / "run"
    assert main(["run", "--model", str(tiny_path), "--tasks", "pope,mmmu", "--data-dir", str(FIXTURES),
                 "--output", str(out), "--limit", str(LIMIT), "--batch-size", "4", "--sampler", SAMPLER,
                 "--no-progress", "--bootstrap-iters", "0"]) == 0
    return out


def _native_answers(run: Path, task: str) -> dict:
    return {s["doc_id"]: s["predictions"]["answer"] for s in RunFolder.open(run).samples(task)}


@pytest.mark.parametrize(("task", "name", "file"), [("pope", "POPE", "POPE.tsv"),
                                                     ("mmmu", "MMMU_DEV_VAL", "MMMU_DEV_VAL.tsv")])
def test_predictions_through_vlmevalkit_loop_equal_native_run(native_run, tiny_adapter, tmp_path, task, name, file):
    dataset = StandInDataset(name, FIXTURES / file, tmp_path / "images")
    if "split" in dataset.data:
        dataset.data = dataset.data[dataset.data["split"] == "validation"]
    dataset.data = dataset.data.iloc[:LIMIT]
    model = MMaDAVLMEval(adapter=tiny_adapter, sampler=SAMPLER)
    assert model.use_custom_prompt(name) and not model.INTERLEAVE
    predictions = infer_data(model, dataset)
    native = _native_answers(native_run, task)
    assert len(native) == LIMIT
    assert predictions == native
    assert model.engine.counts == {"from_log": 0, "computed": LIMIT}
    # the prompt VLMEvalKit stores is the one the native run recorded
    first = dataset.data.iloc[0]
    text = model.build_prompt(first, dataset=name)[-1]["value"]
    assert text == RunFolder.open(native_run).samples(task)[0]["prompt"]


def test_same_request_keys_as_native_run_so_its_log_answers_everything(native_run, tiny_adapter):
    """Without VLMEvalKit's dump the bridge decodes images itself: same bytes, same keys, same seeds."""
    assert DEFAULT_SEED == DEFAULT_ADAPTER_SEED
    data = pd.read_csv(FIXTURES / "POPE.tsv", sep="\t").iloc[:LIMIT]
    model = MMaDAVLMEval(adapter=tiny_adapter, sampler=SAMPLER, request_log=native_run / "requests")
    messages = [model.build_prompt(data.iloc[i], dataset="POPE") for i in range(LIMIT)]
    answers = model.generate_many(messages, dataset="POPE")
    assert model.engine.counts == {"from_log": LIMIT, "computed": 0}
    assert dict(zip(data["index"], answers, strict=True)) == _native_answers(native_run, "pope")


def test_other_datasets_keep_vlmevalkit_prompts_and_message_forms(tiny_adapter, tmp_path):
    model = MMaDAVLMEval(adapter=tiny_adapter, sampler="preset=cot,gen_length=4,steps=4,block_length=4")
    assert not model.use_custom_prompt("AI2D_TEST") and not model.use_custom_prompt(None)
    with pytest.raises(ConfigError, match="AI2D_TEST"):
        model.build_prompt({"index": 0, "question": "q"}, dataset="AI2D_TEST")
    assert model.settings_for("MathVista_MINI").gen_length == 4 and model.settings_for("x").cot is True
    assert MMaDAVLMEval(adapter=tiny_adapter).settings_for("MathVista_MINI").gen_length == 96
    dataset = StandInDataset("AI2D_TEST", FIXTURES / "POPE.tsv", tmp_path / "images")
    dataset.data = dataset.data.iloc[:2]
    answers = infer_data(model, dataset)
    assert set(answers) == {0, 1} and all(isinstance(a, str) for a in answers.values())
    # VLMEvalKit's other message forms: a list of strings (image paths become images)
    image = dataset.dump_image(dataset.data.iloc[0])[0]
    assert model.generate([image, dataset.data.iloc[0]["question"]], dataset="AI2D_TEST") == answers[0]
    with pytest.raises(DataError, match="without an image"):
        model.generate("What is shown?", dataset="AI2D_TEST")
    with pytest.raises(DataError, match="video"):
        model.generate([{"type": "video", "value": "clip.mp4"}], dataset="AI2D_TEST")
    with pytest.raises(ConfigError, match="preset"):
        MMaDAVLMEval(adapter=tiny_adapter, sampler="preset=nope")
