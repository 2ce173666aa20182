"""Prompt builders and answer post-processing of the reference MMaDA VLMEvalKit wrapper."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from mmada_bench.errors import ConfigError
from mmada_bench.tasks.mmu.prompts import build_prompt, dataset_family, postprocess
from mmada_bench.tasks.mmu.rows import ImageRef, MMURow
from mmada_bench.tasks.mmu.tsv import read_tsv
from mmada_bench.tasks.mmu.vqav2 import read_vqav2

SAMPLES = Path(__file__).parents[1] / "fixtures" / "mmu_samples"
SUFFIX = "Answer the question using a single word or phrase."
LETTER = "Answer with the option's letter from the given choices directly."


@pytest.fixture(autouse=True)
def image_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMADA_BENCH_CACHE", str(tmp_path / "cache"))


def test_pope_raw_question():
    row = read_tsv(SAMPLES / "POPE.tsv")[0]
    assert build_prompt("POPE", row) == ("Is there a circle in the image?", row.images[0])


def test_mme_suffix_with_space():
    row = read_tsv(SAMPLES / "MME.tsv")[1]
    text, image = build_prompt("MME", row)
    assert text == f"Is there a yellow triangle in this image? Please answer yes or no. {SUFFIX}"
    assert image == row.images[0]


def test_gqa_suffix_on_new_line():
    row = read_tsv(SAMPLES / "GQA_TestDev_Balanced.tsv")[0]
    assert build_prompt("GQA_TestDev_Balanced", row)[0] == f"Is the triangle gray or green?\n{SUFFIX}"


def test_vqav2_like_lmms_eval():
    row = read_vqav2(SAMPLES)[0]
    assert build_prompt("VQAv2", row)[0] == f"Is this a triangle?\n{SUFFIX}"


def test_easyvqa_raw_question():
    row = MMURow("0", "what is the red shape?", "triangle", (ImageRef(SAMPLES / "x.png"),), MappingProxyType({}))
    assert build_prompt("easy-VQA", row)[0] == "what is the red shape?"


def test_mmmu_options_block():
    rows = read_tsv(SAMPLES / "MMMU_DEV_VAL.tsv")
    assert build_prompt("MMMU_DEV_VAL", rows[3])[0] == (
        "Consider the figure in <image 1>.\nWhat is the sum of the interior angles of this figure?\n"
        f"A. 540°\nB. 90°\nC. 270°\nD. 360°\n{LETTER}")
    assert build_prompt("MMMU_DEV_VAL", rows[6])[0] == (
        "How many vertices does the polygon shown in <image 1> have?\n"
        f"A. Five\nB. Six\nC. Four\nD. Three\nE. Two\n{LETTER}")


def test_mmmu_open_question():
    row = read_tsv(SAMPLES / "MMMU_DEV_VAL.tsv")[4]
    assert build_prompt("MMMU_DEV_VAL", row)[0] == (
        "How many straight edges does the figure in <image 1> have? Answer with an integer.\n"
        "Answer the question directly.")


def test_mmmu_two_images_first_only():
    row = read_tsv(SAMPLES / "MMMU_DEV_VAL.tsv")[10]
    text, image = build_prompt("MMMU_DEV_VAL", row)
    assert text.startswith("Two graphic elements are shown in <image 1> and <image 2>. Which")
    assert image == row.images[0] and len(row.images) == 2


def test_mmmu_hint_and_pandas_na_option():
    fields = MappingProxyType({"hint": "Look closely.", "A": "red", "B": "None", "C": None, "D": "blue"})
    row = MMURow("1", "Colour?", "A", (ImageRef(SAMPLES / "x.png"),), fields)
    assert build_prompt("MMMU_DEV_VAL", row)[0] == f"Look closely.\nColour?\nA. red\nD. blue\n{LETTER}"


@pytest.mark.parametrize(("dataset", "raw", "expected"), [
    ("POPE", " Yes, there is.", "Yes"),
    ("POPE", "There is not", "No"),          # substring "no" in "not", as the wrapper does
    ("POPE", "no, yes", "No"),                # both present: leading word decides
    ("POPE", " maybe ", "maybe"),
    ("MME", "It is hard to say really", "It is hard"),
    ("MME", "Yes", "Yes"),
    ("MMMU_DEV_VAL", "A triangle, so B", "B"),
    ("MMMU_DEV_VAL", "The answer is (C).", "C"),
    ("MMMU_DEV_VAL", "F", "F"),               # only A-E are extracted; other text is kept
    ("GQA_TestDev_Balanced", " green \n", "green"),
    ("VQAv2", "2", "2"),
])
def test_postprocess(dataset, raw, expected):
    assert postprocess(dataset, raw) == expected


def test_dataset_family():
    assert dataset_family("MMMU_TEST") == "MMMU"
    assert dataset_family("easy_vqa") == "easyVQA"
    assert dataset_family("vqav2_val") == "VQAv2"
    with pytest.raises(ConfigError, match="no MMU prompt rule for dataset 'MathVista'"):
        dataset_family("MathVista")
