"""The yes/no comparison probe: its statistics separate a comparing answerer from a wording-only one,
its margins are the model's own logits on the benchmark's prompt, and bad input stops with one line."""

from __future__ import annotations

import json

import pytest
import torch

from mmada_bench.model import image_processing
from mmada_bench.model.loading import load_bundle
from mmada_bench.model.presets import materialize_preset
from mmada_bench.model.prompting import MMaDAPrompting
from mmada_bench.toy import probe
from mmada_bench.toy.world import load_world


def test_a_comparer_scores_auc_one_and_a_wording_only_answerer_one_half():
    truth = torch.tensor([0, 2, 1, 2])
    comparer = torch.nn.functional.one_hot(truth, 3).float() * 2 - 1  # +1 on the own attribute, -1 elsewhere
    compared = probe.summarise("shape", comparer, truth)
    assert compared.auc == 1.0 and compared.match_ranked_first == 1.0
    assert compared.margin_match_mean == 1.0 and compared.margin_mismatch_mean == -1.0
    wording = probe.summarise("shape", torch.full((4, 3), -2.0), truth)
    assert wording.auc == 0.5 and wording.margin_std == 0.0
    assert probe.summarise("shape", -comparer, truth).auc == 0.0  # says "yes" to everything but the truth
    assert compared.chance_ranked_first == pytest.approx(1 / 3)


def test_auc_counts_pairs_and_ties_half():
    assert probe.match_auc(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0, 0.0])) == pytest.approx(4 / 6)
    assert probe.match_auc(torch.tensor([1.0]), torch.tensor([1.0])) == 0.5
    with pytest.raises(ValueError, match="at least one"):
        probe.match_auc(torch.tensor([]), torch.tensor([1.0]))


def test_summarise_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one truth per image"):
        probe.summarise("color", torch.zeros(3, 8), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=">=2 attributes"):
        probe.summarise("color", torch.zeros(3, 1), torch.zeros(3, dtype=torch.long))


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    return materialize_preset("toy-stage1", root=tmp_path_factory.mktemp("probe"))


def test_margins_are_the_models_logits_whatever_the_batch(stage1):
    bundle = load_bundle(stage1)
    codes = bundle.vq_model.encode(image_processing.preprocess_images([load_world("test")[0].path], 64))
    questions = ["is there a red shape?", "is there a blue shape?", "is there a circle?"]
    batched = probe.answer_margins(bundle, codes.expand(3, -1), questions)
    alone = torch.cat([probe.answer_margins(bundle, codes, [q]) for q in questions])
    torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-4)
    # By hand: the benchmark's prompt, two masks, logit("yes") - logit("no") at the first mask.
    prompt = MMaDAPrompting.from_config(bundle.tokenizer, bundle.config, 2).mmu_gen(codes, questions[:1])
    ids = torch.cat([prompt.input_ids, torch.full((1, 2), bundle.config.mask_token_id)], dim=1)
    with torch.inference_mode():
        logits = bundle.model(input_ids=ids).logits[0, prompt.input_ids.shape[1]]
    yes, no = bundle.tokenizer.convert_tokens_to_ids(["yes", "no"])
    assert float(batched[0]) == pytest.approx(float(logits[yes] - logits[no]), abs=1e-4)


def test_cli_prints_json_for_colours_and_shapes(stage1, capsys):
    assert probe.main(["--model", str(stage1), "--images", "3", "--json", "--no-progress"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in rows] == ["color", "shape"] and all(r["images"] == 3 for r in rows)
    assert all(0.0 <= r["auc"] <= 1.0 for r in rows)
    assert [r["chance_ranked_first"] for r in rows] == [pytest.approx(1 / 8), pytest.approx(1 / 3)]


@pytest.mark.parametrize("argv, message", [
    (["--images", "0"], "--images must be at least 1"),
    (["--model", "/nonexistent/checkpoint"], "/nonexistent/checkpoint"),
])
def test_bad_input_is_one_line_and_nonzero(argv, message, capsys):
    assert probe.main([*argv, "--no-progress"]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
