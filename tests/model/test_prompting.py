"""Sequence formats, special ids and chat strings against the spec and the reference's golden rows."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
from safetensors.torch import load_file

from mmada_bench.errors import ConfigError
from mmada_bench.model.configuration_mmada import MMaDAConfig
from mmada_bench.model.prompting import (
    COT_INSTRUCTION,
    MMADA_8B_SPECIAL_TOKENS,
    TOKEN_STRINGS,
    MMaDAPrompting,
    SpecialTokens,
    TextBatch,
    apply_text_chat_template,
    mmu_chat_text,
    with_cot,
)

# The golden tiny vocabulary (meta.json tiny_vocab) plus ids for the roles it does not use.
GOLDEN_SPECIAL = SpecialTokens(
    t2i=180, mmu=181, soi=182, eoi=183, pad=184, mask=190, eos=191, bos=192,
    sov=185, eov=186, t2v=187, v2v=188, lvg=189, r2i=193, start_header=194, end_header=195, eot_id=196,
)
IMAGE_OFFSET = 200


class IdTokenizer:
    """Stub tokenizer: ``"5 6 7"`` -> ``[5, 6, 7]``, so golden text ids pass through unchanged.

    ``auto_bos`` prepends BOS when special tokens are requested (like a Llama tokenizer);
    ``always_bos`` prepends it whatever the caller asks (like a careless custom tokenizer).
    """

    bos_token_id = 192
    eos_token_id = 191

    def __init__(self, auto_bos: bool = False, always_bos: bool = False) -> None:
        self.auto_bos = auto_bos
        self.always_bos = always_bos

    def __call__(self, texts: Sequence[str], add_special_tokens: bool = True) -> dict[str, list[list[int]]]:
        ids = [[int(tok) for tok in text.split()] for text in texts]
        if self.always_bos or (self.auto_bos and add_special_tokens):
            ids = [[self.bos_token_id, *row] for row in ids]
        return {"input_ids": ids}


def prompting(max_text_len: int = 11, tokenizer: IdTokenizer | None = None) -> MMaDAPrompting:
    return MMaDAPrompting(
        tokenizer or IdTokenizer(), GOLDEN_SPECIAL, IMAGE_OFFSET, max_text_len, codebook_size=64
    )


@pytest.fixture(scope="module")
def t2i_golden(golden_dir) -> dict[str, torch.Tensor]:
    return load_file(golden_dir / "t2i_generate.safetensors")


@pytest.fixture(scope="module")
def stage1_golden(golden_dir) -> dict[str, torch.Tensor]:
    return load_file(golden_dir / "stage1_loss.safetensors")


# -- special tokens ---------------------------------------------------------------------------------


def test_8b_special_ids_match_spec_table() -> None:
    assert MMADA_8B_SPECIAL_TOKENS.as_dict() == {
        "soi": 126084, "eoi": 126085, "sov": 126086, "eov": 126087, "t2i": 126088, "mmu": 126089,
        "t2v": 126090, "v2v": 126091, "lvg": 126092, "pad": 126093, "r2i": 126094,
        "bos": 126080, "eos": 126081, "mask": 126336,
        "start_header": 126346, "end_header": 126347, "eot_id": 126348,
    }
    assert set(TOKEN_STRINGS) == set(SpecialTokens.field_names())
    assert TOKEN_STRINGS["pad"] == "[iPAD]" and TOKEN_STRINGS["mask"] == "<|mdm_mask|>"
    assert TOKEN_STRINGS["bos"] == "<|startoftext|>" and TOKEN_STRINGS["eos"] == "<|endoftext|>"
    assert TOKEN_STRINGS["soi"] == "<|soi|>" and TOKEN_STRINGS["start_header"] == "<|start_header_id|>"


def test_from_config_defaults_to_8b_and_validates_inside_text_range() -> None:
    assert SpecialTokens.from_config(MMaDAConfig()) == MMADA_8B_SPECIAL_TOKENS


def test_from_config_reads_special_token_ids() -> None:
    ids = GOLDEN_SPECIAL.as_dict()
    config = MMaDAConfig(llm_vocab_size=200, vocab_size=264, mask_token_id=190, eos_token_id=191,
                         special_token_ids=ids)
    assert SpecialTokens.from_config(config) == GOLDEN_SPECIAL


def test_from_config_takes_mask_bos_eos_from_config_fields() -> None:
    config = MMaDAConfig(mask_token_id=126000, bos_token_id=126001, eos_token_id=126002)
    special = SpecialTokens.from_config(config)
    assert (special.mask, special.bos, special.eos) == (126000, 126001, 126002)
    assert special.soi == 126084


def test_from_config_refuses_8b_ids_for_a_small_vocab(golden_dir) -> None:
    config = MMaDAConfig.from_pretrained(golden_dir / "mmada_tiny")
    with pytest.raises(ConfigError, match=r"outside the text id range \[0, 200\).*special_token_ids"):
        SpecialTokens.from_config(config)


def test_from_config_refuses_unknown_keys_and_shared_ids() -> None:
    with pytest.raises(ConfigError, match="unknown keys.*'image'"):
        SpecialTokens.from_config(MMaDAConfig(special_token_ids={"image": 5}))
    with pytest.raises(ConfigError, match="soi and eoi share id 126084"):
        SpecialTokens.from_config(MMaDAConfig(special_token_ids={"eoi": 126084}))


def test_prompting_refuses_tokenizer_of_another_model() -> None:
    class Other(IdTokenizer):
        bos_token_id = 1

    with pytest.raises(ConfigError, match="bos_token_id=1 differs"):
        MMaDAPrompting(Other(), GOLDEN_SPECIAL, IMAGE_OFFSET, 11)


# -- text to image ----------------------------------------------------------------------------------


def test_t2i_gen_reproduces_golden_conditional_and_unconditional(t2i_golden, golden_meta) -> None:
    text_part = golden_meta["t2i"]["text_part_length"]
    p = prompting(max_text_len=text_part - 1)
    assert p.max_text_len == text_part
    cond = p.t2i_gen(["5 6 7 8", "9 10 11 12 13 14"], num_image_tokens=16)
    assert torch.equal(cond.input_ids, t2i_golden["input_ids"])
    assert torch.equal(cond.attention_mask, t2i_golden["attention_mask"])
    uncond = p.t2i_gen(["", ""], num_image_tokens=16)
    assert torch.equal(uncond.input_ids, t2i_golden["uncond_input_ids"])
    assert torch.equal(uncond.attention_mask, t2i_golden["uncond_attention_mask"])


def _golden_t2i_inputs(stage1: dict[str, torch.Tensor], m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Image codes and mask positions of the golden t2i row (labels hold the masked codes)."""
    ids, labels = stage1["input_ids"][0, m + 2 : -1], stage1["labels"][0, m + 2 : -1]
    masked = ids == GOLDEN_SPECIAL.mask
    codes = torch.where(masked, labels, ids) - IMAGE_OFFSET
    return codes[None], masked[None]


def test_t2i_reproduces_golden_stage1_row(stage1_golden, golden_meta) -> None:
    m = golden_meta["stage1_loss"]["t2i_text_part_length"] - 1
    codes, masked = _golden_t2i_inputs(stage1_golden, m)
    batch = prompting(m).t2i(["5 6 7"], codes, masked, image_labels_only=True)
    assert torch.equal(batch.input_ids[0], stage1_golden["input_ids"][0])
    assert torch.equal(batch.attention_mask[0], stage1_golden["t2i_attention_mask"][0])
    assert torch.equal(batch.labels[0], stage1_golden["labels"][0])


def test_t2i_default_labels_follow_reference_rules(stage1_golden) -> None:
    codes, masked = _golden_t2i_inputs(stage1_golden, 11)
    labels = prompting(11).t2i(["5 6 7"], codes, masked).labels[0]
    # text part: [iPAD] -> -100, the rest keeps its ids; then <|soi|>, image labels, <|eoi|>.
    assert labels[:13].tolist() == [-100] * 6 + [180, 192, 5, 6, 7, 191, 182]
    assert labels[-1].item() == 183
    assert torch.equal(labels[13:-1], stage1_golden["labels"][0, 13:-1])


def test_t2i_truncates_overlong_text_to_first_m_tokens_plus_eos() -> None:
    codes = torch.arange(4)[None]
    batch = prompting(max_text_len=5).t2i_gen(["1 2 3 4 5 6 7"], num_image_tokens=4)
    # M+1 = 6 text-part tokens: <|t2i|> BOS 1 2 3, then EOS replaces the rest.
    assert batch.input_ids[0].tolist() == [180, 192, 1, 2, 3, 191, 182, 190, 190, 190, 190, 183]
    assert batch.attention_mask[0].tolist() == [1] * 12
    train = prompting(max_text_len=5).t2i(["1 2 3 4 5 6 7"], codes)
    assert train.input_ids[0].tolist() == [180, 192, 1, 2, 3, 191, 182, 200, 201, 202, 203, 183]
    assert train.labels[0].tolist() == [180, 192, 1, 2, 3, 191, 182, -100, -100, -100, -100, 183]


def test_t2i_text_exactly_filling_budget_is_not_truncated() -> None:
    batch = prompting(max_text_len=5).t2i_gen(["1 2 3"], num_image_tokens=1)
    assert batch.input_ids[0].tolist() == [180, 192, 1, 2, 3, 191, 182, 190, 183]


def test_t2i_cond_dropout_gives_empty_caption_and_is_seeded() -> None:
    p = prompting(max_text_len=6)
    codes = torch.tensor([[1, 2], [3, 4]])
    dropped = p.t2i(["1 2 3", "4 5"], codes, cond_dropout_prob=1.0)
    assert dropped.input_ids[:, :7].tolist() == [[184, 184, 184, 184, 180, 192, 191]] * 2
    assert dropped.attention_mask[:, :7].tolist() == [[0, 0, 0, 0, 1, 1, 1]] * 2
    kept = p.t2i(["1 2 3", "4 5"], codes, cond_dropout_prob=0.0)
    assert kept.input_ids[0, :7].tolist() == [184, 180, 192, 1, 2, 3, 191]
    draws = [p.t2i(["1"] * 8, torch.zeros(8, 2, dtype=torch.long), cond_dropout_prob=0.5,
                   generator=torch.Generator().manual_seed(7)).input_ids for _ in range(2)]
    assert torch.equal(draws[0], draws[1])


def test_image_codes_out_of_codebook_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        prompting().t2i(["1"], torch.tensor([[64]]))


# -- BOS rule ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("tokenizer", [IdTokenizer(), IdTokenizer(auto_bos=True), IdTokenizer(always_bos=True)])
def test_every_text_segment_starts_with_exactly_one_bos(tokenizer: IdTokenizer) -> None:
    p = prompting(max_text_len=6, tokenizer=tokenizer)
    assert p.encode(["5 6", "", "192 7"]) == [[192, 5, 6], [192], [192, 7]]
    assert p.t2i_gen(["5 6"], 1).input_ids[0].tolist() == [184, 184, 180, 192, 5, 6, 191, 182, 190, 183]
    assert p.lm(["5 6"], 5).input_ids[0].tolist() == [192, 5, 6, 191, 191]


# -- multimodal understanding -----------------------------------------------------------------------


def test_mmu_layout_prompt_mask_and_labels() -> None:
    p = prompting(max_text_len=8)
    # text: <start_header> 1 <end_header> 2 3 -> BOS ... EOS, EOS-padded to M = 8.
    batch = p.mmu(torch.tensor([[0, 5]]), ["194 1 195 2 3"])
    assert batch.input_ids[0].tolist() == [181, 182, 200, 205, 183, 192, 194, 1, 195, 2, 3, 191, 191]
    # prompt: 5 prefix tokens + BOS, <start_header>, 1, <end_header>
    assert batch.prompt_mask[0].tolist() == [1] * 9 + [0] * 4
    assert batch.labels[0].tolist() == [-100] * 5 + [192, 194, 1, 195, 2, 3, 191, 191]
    assert batch.answer_lengths.tolist() == [[4] * 13]


def test_mmu_uses_last_end_header_and_truncates_with_eos() -> None:
    p = prompting(max_text_len=6)
    batch = p.mmu(torch.tensor([[1]]), ["195 7 195 8 9 10 11"])
    assert batch.input_ids[0].tolist() == [181, 182, 201, 183, 192, 195, 7, 195, 8, 191]
    assert batch.prompt_mask[0].tolist() == [1] * 8 + [0] * 2
    no_header = p.mmu(torch.tensor([[1]]), ["7"])
    assert no_header.prompt_mask[0].tolist() == [1] * 4 + [0] * 6


def test_answer_lengths_match_golden_stage1(stage1_golden, golden_meta) -> None:
    prompt_len = golden_meta["stage1_loss"]["mmu_prompt_length"]
    ids = stage1_golden["input_ids"][2:3]
    mmu = TextBatch(ids, torch.tensor([[1] * prompt_len + [0] * (30 - prompt_len)]), ids)
    assert torch.equal(mmu.answer_lengths, stage1_golden["answer_lengths_mmu"])
    lm = prompting().lm(["1 2 3"], 30)
    assert torch.equal(lm.answer_lengths, stage1_golden["answer_lengths_lm"])


def test_mmu_chat_text_keeps_literal_eot_typo() -> None:
    assert mmu_chat_text("What is shown?") == (
        "<|start_header_id|>user<|end_header_id|>\nWhat is shown?<eot_id>"
        "<|start_header_id|>assistant<|end_header_id|>\n"
    )
    assert mmu_chat_text("Q", "A").endswith("<|end_header_id|>\nA")


# -- language modelling -----------------------------------------------------------------------------


def test_lm_pads_with_eos_and_truncates_without_eos() -> None:
    p = prompting()
    batch = p.lm(["1 2", "3 4 5 6 7"], 5)
    assert batch.input_ids.tolist() == [[192, 1, 2, 191, 191], [192, 3, 4, 5, 6]]
    assert torch.equal(batch.labels, batch.input_ids)
    assert batch.prompt_mask.tolist() == [[0] * 5] * 2


def test_lm_chat_prompt_ends_at_last_end_header() -> None:
    batch = prompting().lm_chat(["194 1 195 2 196 194 3 195 4", "5"], 12)
    assert batch.input_ids[0].tolist() == [192, 194, 1, 195, 2, 196, 194, 3, 195, 4, 191, 191]
    assert batch.prompt_mask[0].tolist() == [1] * 9 + [0] * 3
    assert batch.prompt_mask[1].tolist() == [0] * 12


def test_lm_prompted_keeps_the_prompt_clean_and_tokenizes_the_parts_apart() -> None:
    batch = prompting().lm_prompted(["1 2", "3"], ["4 5", "6 7 8 9"], 6)
    # BOS + prompt is the clean part; the completion follows without a BOS of its own, then EOS padding.
    assert batch.input_ids.tolist() == [[192, 1, 2, 4, 5, 191], [192, 3, 6, 7, 8, 9]]
    assert batch.prompt_mask.tolist() == [[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]]
    assert torch.equal(batch.labels, batch.input_ids)
    assert batch.answer_lengths[:, 0].tolist() == [3, 4]


def test_lm_prompted_refuses_unpaired_rows() -> None:
    with pytest.raises(ValueError, match="2 prompts for 1 completions"):
        prompting().lm_prompted(["1", "2"], ["3"], 6)


def test_r2i_layout_and_prompt_mask() -> None:
    batch = prompting(max_text_len=6).r2i(torch.tensor([[3, 4]]), ["194 1 195 2"])
    assert batch.input_ids[0].tolist() == [193, 192, 194, 1, 195, 2, 191, 182, 203, 204, 183]
    assert batch.prompt_mask[0].tolist() == [1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1]
    assert torch.equal(batch.labels, batch.input_ids)


# -- chat conventions -------------------------------------------------------------------------------


def test_text_chat_template_exact_string() -> None:
    messages = [{"role": "system", "content": " Be brief. "}, {"role": "user", "content": "2+2?\n"}]
    assert apply_text_chat_template(messages, "<|startoftext|>") == (
        "<|startoftext|><|start_header_id|>system<|end_header_id|>\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n"
    )


def test_cot_instruction_is_the_reference_wording() -> None:
    assert COT_INSTRUCTION == (
        "You should first think about the reasoning process in the mind and then provide the user with "
        "the answer. The reasoning process is enclosed within <think> </think> tags, i.e. <think> "
        "reasoning process here </think> answer here"
    )
    assert with_cot("Q?") == COT_INSTRUCTION + "\nQ?"
    assert with_cot("Q?", "\n\n") == COT_INSTRUCTION + "\n\nQ?"
