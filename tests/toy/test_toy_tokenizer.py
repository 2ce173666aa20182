"""The committed toy tokenizer: rebuilt byte for byte from the toy corpus, tiny's special-token layout,
and every easy-VQA answer one token (what lets the trained model answer in the reference's 2 tokens)."""

from __future__ import annotations

import json

from mmada_bench.model.tokenizer import (
    TINY_TEXT_VOCAB_SIZE,
    load_tokenizer,
    tiny_special_token_ids,
    tiny_tokenizer,
)
from mmada_bench.tasks.mmu.easyvqa import easyvqa_answers
from mmada_bench.toy.build import ASSETS, TOKENIZER_FOLDER, main


def test_rebuild_is_byte_identical_to_the_committed_tokenizer(tmp_path):
    assert main(["--stage", "tokenizer", "--out", str(tmp_path), "--no-progress"]) == 0
    for name in ("tokenizer.json", "tokenizer_config.json", "build_info.json"):
        assert (tmp_path / TOKENIZER_FOLDER / name).read_bytes() == (ASSETS / TOKENIZER_FOLDER / name).read_bytes(), name


def test_layout_is_tiny_and_answers_are_single_tokens():
    toy = load_tokenizer(ASSETS / TOKENIZER_FOLDER)
    assert len(toy) == TINY_TEXT_VOCAB_SIZE
    info = json.loads((ASSETS / TOKENIZER_FOLDER / "build_info.json").read_text())
    assert info["special_token_ids"] == tiny_special_token_ids(TINY_TEXT_VOCAB_SIZE)
    for answer in easyvqa_answers():
        assert len(toy.tokenize(answer)) == 1, answer
    tiny = tiny_tokenizer()
    assert len(tiny.tokenize("triangle")) > 1  # the reason the toy world has its own
    text = "Question: 3 + 4 = ?\nAnswer: 7 \\frac{1}{2} ünïcode"
    assert toy.decode(toy(text)["input_ids"]) == text  # byte-level: any text survives
