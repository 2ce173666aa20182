"""Golden parity of ClipScorer with torchmetrics 1.9 CLIPScore (tiny random CLIP, see fixtures README).

Tolerances are the golden README's: 100·cos, clip scores and embeddings abs <= 1e-4; processed pixel
[:, 0, 0] <= 1e-6 and float64 pixel sums <= 1e-2; input_ids equal; a clamped batch is exactly 0.0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmada_bench.errors import ConfigError, DataError
from mmada_bench.scorers.clipscore import ClipScorer, corpus_clip_score, to_uint8_chw

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "clip_tiny"
TOL = 1e-4

pytestmark = pytest.mark.filterwarnings("ignore:Encountered caption longer than")


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads((GOLDEN / "cases.json").read_text())


@pytest.fixture(scope="module")
def by_id(golden: dict) -> dict:
    return {c["id"]: c for c in golden["cases"] + golden["list_cases"]}


@pytest.fixture(scope="module")
def tensors(by_id: dict) -> dict[str, torch.Tensor]:
    """uint8 [3,H,W] per case, the input form the goldens were made with."""
    return {k: to_uint8_chw(Image.open(GOLDEN / c["image"]["file"])) for k, c in by_id.items()}


@pytest.fixture(scope="module")
def scorer() -> ClipScorer:
    return ClipScorer(GOLDEN / "model")


def test_input_ids_equal(scorer: ClipScorer, by_id: dict) -> None:
    for case in by_id.values():
        ids = scorer.processor.tokenizer(case["caption"])["input_ids"]
        assert ids == case["input_ids"], case["id"]


def test_pixel_values(scorer: ClipScorer, by_id: dict, tensors: dict) -> None:
    for cid, case in by_id.items():
        pv = scorer.processor(images=[tensors[cid]], return_tensors="pt")["pixel_values"][0]
        assert pv.shape == (3, 224, 224)
        assert np.allclose(pv[:, 0, 0].numpy(), case["pixel_values_00"], atol=1e-6, rtol=0), cid
        assert abs(pv.double().sum().item() - case["pixel_values_sum"]) <= 1e-2, cid
        assert abs(pv.double().abs().sum().item() - case["pixel_values_abs_sum"]) <= 1e-2, cid


def test_projected_embeddings(scorer: ClipScorer, golden: dict, tensors: dict) -> None:
    cases = golden["cases"]
    pv = scorer.processor(images=[tensors[c["id"]] for c in cases], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        img = scorer.model.get_image_features(pv)
        for i, case in enumerate(cases):
            assert torch.allclose(img[i], torch.tensor(case["image_embeds"]), atol=TOL, rtol=0), case["id"]
            tok = scorer.processor(text=[case["caption"]], return_tensors="pt")
            ids, mask = tok["input_ids"][:, :77], tok["attention_mask"][:, :77]
            txt = scorer.model.get_text_features(ids, mask)[0]
            assert torch.allclose(txt, torch.tensor(case["text_embeds"]), atol=TOL, rtol=0), case["id"]


def test_per_pair_100cos_stacked(scorer: ClipScorer, golden: dict, tensors: dict) -> None:
    cases = golden["cases"]
    stacked = torch.stack([tensors[c["id"]] for c in cases])  # [8,3,64,64], as in the goldens
    got = scorer.score(stacked, [c["caption"] for c in cases])
    diffs = [abs(g - c["expected_100cos"]) for g, c in zip(got, cases, strict=True)]
    assert max(diffs) <= TOL, diffs


def test_per_pair_100cos_list_of_sizes(scorer: ClipScorer, golden: dict) -> None:
    # Different sizes; given as PIL images here, which must equal the uint8 tensor path.
    cases = golden["list_cases"]
    got = scorer.score(
        [Image.open(GOLDEN / c["image"]["file"]) for c in cases], [c["caption"] for c in cases]
    )
    assert max(abs(g - c["expected_100cos"]) for g, c in zip(got, cases, strict=True)) <= TOL


def test_single_pair_clipscore_is_clamped(scorer: ClipScorer, golden: dict, tensors: dict) -> None:
    for case in golden["cases"]:
        got = scorer.score([tensors[case["id"]]], [case["caption"]], clamp=True)[0]
        assert abs(got - case["expected_clipscore_single"]) <= TOL, case["id"]
        if case["expected_clipscore_single"] == 0.0:
            assert got == 0.0


def test_batches_through_torchmetrics_metric(
    scorer: ClipScorer, golden: dict, by_id: dict, tensors: dict
) -> None:
    for batch in golden["batches"]:
        updates = [([tensors[i] for i in u], [by_id[i]["caption"] for i in u]) for u in batch["updates"]]
        got = scorer.corpus_score(updates)
        assert abs(got - batch["expected_clipscore"]) <= TOL, batch["id"]
        if batch["expected_clipscore"] == 0.0:
            assert got == 0.0, batch["id"]
        # Aggregating per-image rows must give the metric's value (mean clamped, not each pair).
        pairs = [s for images, captions in updates for s in scorer.score(images, captions)]
        assert abs(corpus_clip_score(pairs) - batch["expected_clipscore"]) <= TOL, batch["id"]


def test_functional_clip_score_via_loader(
    scorer: ClipScorer, golden: dict, by_id: dict, tensors: dict
) -> None:
    from torchmetrics.functional.multimodal import clip_score

    for batch in golden["batches"]:
        if "expected_functional_clip_score" not in batch:
            continue
        ids = batch["updates"][0]
        got = clip_score(
            torch.stack([tensors[i] for i in ids]),
            [by_id[i]["caption"] for i in ids],
            scorer.model_and_processor,
        )
        assert abs(float(got.detach()) - batch["expected_functional_clip_score"]) <= TOL


def test_input_forms_agree(scorer: ClipScorer, golden: dict) -> None:
    case = golden["cases"][0]
    pil = Image.open(GOLDEN / case["image"]["file"])
    forms = [pil, np.asarray(pil.convert("RGB")), to_uint8_chw(pil), pil.convert("RGBA")]
    values = [scorer.score([f], [case["caption"]])[0] for f in forms]
    assert max(values) - min(values) == 0.0


def test_corpus_clip_score_rule() -> None:
    assert corpus_clip_score([-10.0, 4.0]) == 0.0
    assert corpus_clip_score([10.0, -4.0]) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        corpus_clip_score([])


def test_bad_inputs(scorer: ClipScorer) -> None:
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(DataError, match="2 images but 1 prompts"):
        scorer.score([img, img], ["a"])
    with pytest.raises(DataError, match="uint8"):
        scorer.score([img.astype(np.float32) / 255], ["a"])
    with pytest.raises(DataError, match="uint8 3xHxW tensor"):
        scorer.score([torch.rand(3, 8, 8)], ["a"])
    with pytest.raises(DataError, match="list of strings"):
        scorer.score([img], "a")


def _partial_copy(dst: Path, skip: set[str]) -> Path:
    dst.mkdir()
    for f in (GOLDEN / "model").iterdir():
        if f.name not in skip:
            (dst / f.name).symlink_to(f)
    return dst


@pytest.mark.parametrize(
    ("skip", "message"),
    [
        ({"config.json"}, "is missing config.json"),
        ({"preprocessor_config.json"}, "is missing preprocessor_config.json"),
        ({"model.safetensors"}, "is missing model weights"),
        ({"tokenizer.json", "vocab.json"}, "is missing tokenizer.json"),
    ],
)
def test_missing_files_are_one_line_config_errors(tmp_path: Path, skip: set[str], message: str) -> None:
    folder = _partial_copy(tmp_path / "clip", skip)
    with pytest.raises(ConfigError, match=message) as err:
        ClipScorer(folder)
    assert str(folder) in str(err.value) and "\n" not in str(err.value)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ClipScorer(tmp_path / "nope")


def test_malformed_config_is_config_error(tmp_path: Path) -> None:
    folder = _partial_copy(tmp_path / "clip", {"config.json"})
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="could not be loaded") as err:
        ClipScorer(folder)
    assert "\n" not in str(err.value)


def test_tokenizer_from_vocab_and_merges_only(tmp_path: Path, scorer: ClipScorer) -> None:
    # The openai layout ships both; a folder with only vocab.json + merges.txt must still load the same ids.
    folder = _partial_copy(tmp_path / "clip", {"tokenizer.json"})
    other = ClipScorer(folder)
    text = "Café crème, naïve façade"
    assert other.processor.tokenizer(text)["input_ids"] == scorer.processor.tokenizer(text)["input_ids"]


def test_batch_size_does_not_change_scores(scorer: ClipScorer, golden: dict, tensors: dict) -> None:
    cases = golden["cases"]
    scorer.batch_size, old = 3, scorer.batch_size
    try:
        got = scorer.score([tensors[c["id"]] for c in cases], [c["caption"] for c in cases])
    finally:
        scorer.batch_size = old
    assert max(abs(g - c["expected_100cos"]) for g, c in zip(got, cases, strict=True)) <= TOL
