"""The committed toy MMaDA stage checkpoints: each loads as a real checkpoint folder, and each earns a
score inside its band on fixed subsets (through the ordinary run path), so a broken checkpoint,
tokenizer, sampler or prompt layout fails here rather than in a user's table."""

from __future__ import annotations

import json

import pytest
import torch

from mmada_bench.model.configuration_mmada import T2I_TEXT_BUDGET_KEY
from mmada_bench.model.loading import load_bundle
from mmada_bench.model.presets import ASSETS, PRESETS, materialize_preset
from mmada_bench.reports.tables import points_scale
from mmada_bench.results.reader import find_entry
from mmada_bench.runner import RunConfig, run_suite

STAGES = {"stage1": "toy-stage1", "stage2": "toy-stage2", "stage3": "toy"}
#: Fixed subsets: the first rows of each test set (easy-VQA questions come ~10 per image, in image order).
LIMITS = {"easyvqa": 300, "easyvqa_t2i": 48, "toy_count": 100}
#: Score bands on those subsets, in points, around the values measured when the weights were
#: committed (easy-VQA 90.0 / 85.7 / 89.7 at stages 1 / 2 / 3; counting 59 and 56 of 100 at stages 1
#: and 3; stage-3 images: 42 of 48 both right, colour 48 of 48). A broken checkpoint, tokenizer or
#: sampler lands at the majority answer (37) or at the 69 that the question wording alone earns; a
#: broken image path draws nothing of the prompted colour (chance 12.5) and nothing the judge accepts;
#: a broken text path garbles the numbers (the checkpoints trained on plain text rows scored 0-4),
#: below the 8 that always answering the test set's most common number earns, and a model that has
#: lost text pretraining counts 16-21 (the builds before it).
BANDS = {
    ("stage1", "easyvqa", "Overall/acc"): (78, 96),
    ("stage1", "toy_count", "exact_match,flexible-extract"): (35, 80),
    ("stage2", "easyvqa", "Overall/acc"): (73, 93),
    ("stage3", "easyvqa", "Overall/acc"): (75, 95),
    ("stage3", "easyvqa_t2i", "both"): (60, 100),
    ("stage3", "easyvqa_t2i", "color"): (75, 100),
    ("stage3", "toy_count", "exact_match,flexible-extract"): (35, 80),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy-presets")
    return {stage: materialize_preset(name, root=root) for stage, name in STAGES.items()}


def test_stage_checkpoints_load_as_real_folders(folders):
    weights = []
    for stage, folder in folders.items():
        bundle = load_bundle(folder)
        config = bundle.config
        assert config.num_vq_tokens == 64 and getattr(config, T2I_TEXT_BUDGET_KEY) == 32, stage
        assert bundle.vq_model.config.downsample_factor == 8
        assert bundle.tokenizer.tokenize("triangle") == ["triangle"]  # the toy tokenizer, not tiny's
        weights.append(bundle.model.state_dict()["model.transformer.wte.weight"].clone())
        assert folder.name.startswith(f"{PRESETS[STAGES[stage]].name}-v1-")  # digest of the committed weights
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])


def test_committed_stage_weights_are_small():
    files = [ASSETS / "toy" / "mmada" / stage / name for stage in STAGES for name in ("config.json", "model.safetensors")]
    assert sum(f.stat().st_size for f in files) < 30 * 2**20
    report = json.loads((ASSETS / "toy" / "mmada" / "train.json").read_text())
    assert set(report["stages"]) == {"text", *STAGES}  # text pretraining first; no preset of its own


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGES))
def test_each_stage_scores_inside_its_band(folders, stage, tmp_path):
    tasks = sorted({task for (s, task, _) in BANDS if s == stage})
    results = run_suite(RunConfig(model=str(folders[stage]), tasks=tasks, output=tmp_path / stage,
                                  limit={t: LIMITS[t] for t in tasks}, batch_size=32, bootstrap_iters=0,
                                  progress=False))
    for (s, task, metric), (low, high) in BANDS.items():
        if s == stage:
            stored = find_entry(results, task)["metrics"][metric]
            value = stored["value"] * points_scale(metric, stored.get("unit", ""))
            assert low <= value <= high, (stage, task, metric, value)
