"""Golden parity of ImageRewardScorer with the official image-reward 1.5 code (tiny random checkpoint).

Tolerances are the golden README's: rewards abs <= 2e-5; ids, masks and ranks equal; intermediates
pixel_values <= 1e-6, image_embeds / text_cls <= 1e-4, mlp_raw <= 2e-5. The tiny ViT has 3 heads,
which shapes cannot tell, hence ``vit_num_heads=3`` (the default rule gives ViT-L's 16).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from mmada_bench.errors import CheckpointError, ConfigError, DataError
from mmada_bench.scorers.imagereward import REWARD_MEAN, REWARD_STD, ImageRewardScorer

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "image_reward_tiny"
WEIGHTS = GOLDEN / "ImageReward.pt"
MED = GOLDEN / "med_config.json"
TOKENIZER = GOLDEN / "tokenizer"
HEADS = 3
TOL = 2e-5


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads((GOLDEN / "cases.json").read_text())


@pytest.fixture(scope="module")
def inter() -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN / "intermediates.safetensors"))


@pytest.fixture(scope="module")
def scorer() -> ImageRewardScorer:
    return ImageRewardScorer(WEIGHTS, MED, TOKENIZER, vit_num_heads=HEADS)


def _img(entry: dict) -> Image.Image:
    return Image.open(GOLDEN / entry["file"])


def test_tokens_equal(scorer: ImageRewardScorer, golden: dict) -> None:
    for case in golden["cases"] + golden["rank_cases"]:
        tok = scorer.tokenize(case["prompt"])
        assert tok["input_ids"][0].tolist() == case["input_ids"], case["id"]
        assert tok["attention_mask"][0].tolist() == case["attention_mask"], case["id"]


def test_intermediates(scorer: ImageRewardScorer, golden: dict, inter: dict) -> None:
    for case in golden["cases"]:
        cid = case["id"]
        pixels = scorer.preprocess(_img(case["image"]))
        assert (pixels - inter[f"{cid}.pixel_values"]).abs().max() <= 1e-6, cid
        tok = scorer.tokenize(case["prompt"])
        with torch.no_grad():
            embeds = scorer.model.image_embeds(pixels[None])
            cls_state = scorer.model.text_cls(tok["input_ids"], tok["attention_mask"], embeds)
            raw = scorer.model.head(cls_state)
        assert (embeds[0] - inter[f"{cid}.image_embeds"]).abs().max() <= 1e-4, cid
        assert (cls_state[0] - inter[f"{cid}.text_cls"]).abs().max() <= 1e-4, cid
        assert (raw[0] - inter[f"{cid}.mlp_raw"]).abs().max() <= TOL, cid


def test_score_cases(scorer: ImageRewardScorer, golden: dict) -> None:
    diffs = {}
    for case in golden["cases"]:
        (reward,) = scorer.score(case["prompt"], _img(case["image"]))
        diffs[case["id"]] = abs(reward - case["expected_reward"])
    assert max(diffs.values()) <= TOL, diffs


def test_rank_case(scorer: ImageRewardScorer, golden: dict) -> None:
    for case in golden["rank_cases"]:
        images = [_img(e) for e in case["images"]]
        ranks, rewards = scorer.rank(case["prompt"], images)
        assert ranks == case["expected_ranks"]
        assert np.abs(np.array(rewards) - case["expected_rewards"]).max() <= TOL
        one_by_one = [scorer.score(case["prompt"], im)[0] for im in images]
        assert np.abs(np.array(one_by_one) - case["expected_rewards_one_by_one"]).max() <= TOL


def test_batching_does_not_change_rewards(golden: dict, scorer: ImageRewardScorer) -> None:
    case = golden["rank_cases"][0]
    images = [_img(e) for e in case["images"]]
    a = scorer.score(case["prompt"], images)
    scorer.batch_size, old = 3, scorer.batch_size
    try:
        b = scorer.score(case["prompt"], images)
    finally:
        scorer.batch_size = old
    assert np.abs(np.array(a) - b).max() <= 1e-6


def test_input_forms_agree(scorer: ImageRewardScorer, golden: dict) -> None:
    # ir_pub_06 is RGBA: the array path must keep the alpha channel for the premultiplied resize.
    case = next(c for c in golden["cases"] if c["image"]["mode"] == "RGBA")
    path = GOLDEN / case["image"]["file"]
    pil = Image.open(path)
    for form in (str(path), path, np.asarray(pil)):
        assert abs(scorer.score(case["prompt"], form)[0] - case["expected_reward"]) <= TOL
    rgb = pil.convert("RGB")
    chw = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)
    assert scorer.score(case["prompt"], chw) == scorer.score(case["prompt"], rgb)


def test_standardisation_constants(scorer: ImageRewardScorer, golden: dict) -> None:
    case = golden["cases"][0]
    tok = scorer.tokenize(case["prompt"])
    raw = scorer.raw_rewards(case["prompt"], [_img(case["image"])])
    assert tok["input_ids"].shape == (1, 35)
    assert abs((float(raw[0]) - REWARD_MEAN) / REWARD_STD - case["expected_reward"]) <= TOL


def test_safetensors_and_missing_position_ids(tmp_path: Path, golden: dict) -> None:
    state = torch.load(WEIGHTS, weights_only=True)
    st = tmp_path / "ImageReward.safetensors"
    save_file(state, str(st))
    state.pop("blip.text_encoder.embeddings.position_ids")
    pt = tmp_path / "no_pos_ids.pt"
    torch.save(state, pt)
    case = golden["cases"][1]
    for weights in (st, pt):
        got = ImageRewardScorer(weights, MED, TOKENIZER, vit_num_heads=HEADS).score(
            case["prompt"], _img(case["image"])
        )
        assert abs(got[0] - case["expected_reward"]) <= TOL


# ---- errors: one line, naming the file or tensor at fault -------------------------------------------


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="weights file .*nope.pt does not exist") as e:
        ImageRewardScorer(tmp_path / "nope.pt", MED, TOKENIZER)
    _one_line(e)
    with pytest.raises(ConfigError, match="med_config file .*missing.json does not exist"):
        ImageRewardScorer(WEIGHTS, tmp_path / "missing.json", TOKENIZER)
    (tmp_path / "tok").mkdir()
    with pytest.raises(ConfigError, match="tokenizer folder .*tok is missing vocab.txt"):
        ImageRewardScorer(WEIGHTS, MED, tmp_path / "tok")
    with pytest.raises(ConfigError, match="tokenizer folder .* does not exist"):
        ImageRewardScorer(WEIGHTS, MED, tmp_path / "no_tok")


def test_bad_med_config(tmp_path: Path) -> None:
    bad = tmp_path / "med.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ImageRewardScorer(WEIGHTS, bad, TOKENIZER, vit_num_heads=HEADS)
    config = json.loads(MED.read_text())
    del config["hidden_size"]
    bad.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="missing the key 'hidden_size'"):
        ImageRewardScorer(WEIGHTS, bad, TOKENIZER, vit_num_heads=HEADS)
    config = json.loads(MED.read_text()) | {"num_attention_heads": 3}
    bad.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="cannot be built from med_config") as e:
        ImageRewardScorer(WEIGHTS, bad, TOKENIZER, vit_num_heads=HEADS)
    _one_line(e)
    config = json.loads(MED.read_text()) | {"num_hidden_layers": 3}
    bad.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"missing \d+ tensors, e.g. blip.text_encoder.encoder.layer.2"):
        ImageRewardScorer(WEIGHTS, bad, TOKENIZER, vit_num_heads=HEADS)
    config = json.loads(MED.read_text()) | {"num_hidden_layers": 1}
    bad.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unexpected tensors, e.g. blip.text_encoder.encoder.layer.1"):
        ImageRewardScorer(WEIGHTS, bad, TOKENIZER, vit_num_heads=HEADS)


def test_wrong_keys_and_shapes(tmp_path: Path) -> None:
    state = torch.load(WEIGHTS, weights_only=True)
    path = tmp_path / "bad.pt"
    broken = dict(state)
    broken.pop("blip.visual_encoder.blocks.1.attn.qkv.weight")
    torch.save(broken, path)
    with pytest.raises(
        CheckpointError, match="missing 1 tensors, e.g. blip.visual_encoder.blocks.1.attn.qkv.weight"
    ):
        ImageRewardScorer(path, MED, TOKENIZER, vit_num_heads=HEADS)
    broken = dict(state)
    broken["mlp.layers.2.weight"] = torch.zeros(128, 1000)
    torch.save(broken, path)
    with pytest.raises(
        CheckpointError, match=r"mlp.layers.2.weight has shape \(128, 1000\), expected in-features 1024"
    ):
        ImageRewardScorer(path, MED, TOKENIZER, vit_num_heads=HEADS)
    torch.save({"model": 1}, path)
    with pytest.raises(CheckpointError, match="not a plain state dict"):
        ImageRewardScorer(path, MED, TOKENIZER)
    torch.save({"x": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="no blip.visual_encoder"):
        ImageRewardScorer(path, MED, TOKENIZER)
    with pytest.raises(ConfigError, match="vit_num_heads=5 does not divide"):
        ImageRewardScorer(WEIGHTS, MED, TOKENIZER, vit_num_heads=5)


class _Payload:
    """An arbitrary object: a pickle holding it must be refused, never unpickled."""


def test_refuses_full_pickles(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"blip.visual_encoder.cls_token": _Payload()}, path)
    with pytest.raises(CheckpointError, match="cannot be read as a state dict") as e:
        ImageRewardScorer(path, MED, TOKENIZER)
    _one_line(e)


def test_bad_images(scorer: ImageRewardScorer) -> None:
    with pytest.raises(DataError, match="no images"):
        scorer.score("a", [])
    with pytest.raises(DataError, match="uint8"):
        scorer.score("a", np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(DataError, match="cannot open"):
        scorer.score("a", "/nonexistent/image.png")
    with pytest.raises(DataError, match="prompt must be a string"):
        scorer.score(["a"], [np.zeros((8, 8, 3), dtype=np.uint8)])
