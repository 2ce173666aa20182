"""The toy tokenizer: the tiny byte-level BPE, trained with the toy world's text added to its corpus.

Why not the shipped tiny tokenizer: its 2,048 tokens were learned from lm-eval prompts, so "triangle"
is five tokens and "teal" two, and a diffusion model that decodes an answer's tokens in parallel
garbles them ("rectrianle"). Adding the toy world's captions, questions, answers and counting
problems to the corpus makes every answer word, colour and shape one token (so easy-VQA answers fit
the reference's 2-token answer budget) and makes the training rows about half as long, while the
layout -- 2,048 ids, the same special tokens at the same ids, byte-level so any text encodes -- stays
the tiny one's, and so does the model's shape.
"""

from __future__ import annotations

from pathlib import Path

from transformers import PreTrainedTokenizerBase

from mmada_bench.model.prompting import mmu_chat_text, with_cot
from mmada_bench.model.tokenizer import (
    TINY_TEXT_VOCAB_SIZE,
    build_tiny_tokenizer,
    corpus_digest,
    default_tiny_corpus,
    save_tiny_tokenizer,
)

BUILT_BY = "python -m mmada_bench.toy.build --stage tokenizer"


def toy_corpus() -> list[str]:
    """The train split's texts in the forms the model reads them (chat rows, CoT rows, counting text), in
    a fixed order. Repeats are kept: BPE merges by frequency, and an answer word must be frequent in its
    no-leading-space form (it follows the assistant header's newline) to become one token."""
    from mmada_bench.toy.arithmetic import shape_problems
    from mmada_bench.toy.export import cot_rows, text_rows
    from mmada_bench.toy.world import load_world

    world = load_world("train")
    texts = [item.caption for item in world]
    texts += [mmu_chat_text(question, answer) for item in world for question, answer in item.questions]
    texts += [mmu_chat_text(with_cot(row["question"]), row["answer"]) for row in cot_rows(world)]
    texts += [row["prompt"] + row["completion"] for row in text_rows(shape_problems("train"))]
    return texts


def build_toy_tokenizer() -> tuple[PreTrainedTokenizerBase, str]:
    """The tokenizer and the digest of the corpus it was trained on (deterministic for a corpus)."""
    corpus = default_tiny_corpus() + toy_corpus()
    return build_tiny_tokenizer(TINY_TEXT_VOCAB_SIZE, corpus), corpus_digest(corpus)


def save_toy_tokenizer(folder: Path) -> dict[str, object]:
    tokenizer, digest = build_toy_tokenizer()
    save_tiny_tokenizer(tokenizer, folder, digest, built_by=BUILT_BY)
    return {"text_vocab_size": len(tokenizer), "corpus_sha256": digest}
