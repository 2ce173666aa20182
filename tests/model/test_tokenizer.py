"""The shipped tiny tokenizer, its id layout, rebuild determinism, and local-folder loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmada_bench.errors import CheckpointError, ConfigError
from mmada_bench.model.configuration_mmada import MMaDAConfig
from mmada_bench.model.prompting import (
    TOKEN_STRINGS,
    MMaDAPrompting,
    SpecialTokens,
    apply_text_chat_template,
)
from mmada_bench.model.tokenizer import (
    TINY_TOKENIZER_DIR,
    build_tiny_tokenizer,
    corpus_digest,
    default_tiny_corpus,
    load_tokenizer,
    save_tiny_tokenizer,
    tiny_special_token_ids,
    tiny_special_tokens,
    tiny_tokenizer,
)

TEXTS = [
    "Natalia sold 48/2 = 24 clips in May. The answer is 72.",
    r"Solve $x^2 - 5x + 6 = 0$: \frac{-b \pm \sqrt{b^2-4ac}}{2a}, so $\boxed{2}$ or $\boxed{3}$.",
    "Unicode: café, naïve, 中文字符, Ελληνικά, emoji 🙂🚀, tab\tand  double  spaces\n\nnew lines",
    "1234567890 3.14159 -0.5 1,000,000 #### 18",
    "",
]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def test_tiny_layout_ids() -> None:
    ids = tiny_special_token_ids(2048)
    assert set(ids) == set(SpecialTokens.field_names())
    assert ids == {
        "bos": 2031, "eos": 2032, "soi": 2033, "eoi": 2034, "sov": 2035, "eov": 2036, "t2i": 2037,
        "mmu": 2038, "t2v": 2039, "v2v": 2040, "lvg": 2041, "pad": 2042, "r2i": 2043, "mask": 2044,
        "start_header": 2045, "end_header": 2046, "eot_id": 2047,
    }
    assert tiny_special_token_ids(300)["eot_id"] == 299
    with pytest.raises(ConfigError, match="too small"):
        tiny_special_token_ids(200)


def test_shipped_tokenizer_ids_cover_text_range_exactly(tok) -> None:
    assert len(tok) == 2048
    assert sorted(tok.get_vocab().values()) == list(range(2048))
    for name, token_id in tiny_special_token_ids(2048).items():
        assert tok.convert_tokens_to_ids(TOKEN_STRINGS[name]) == token_id
        assert tok.encode(TOKEN_STRINGS[name], add_special_tokens=False) == [token_id]
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.mask_token_id) == (2031, 2032, 2032, 2044)
    assert tok.padding_side == "left"


def test_shipped_tokenizer_adds_no_bos(tok) -> None:
    ids = tok("hello world")["input_ids"]
    assert ids and tok.bos_token_id not in ids and tok.eos_token_id not in ids


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip_any_text(tok, text: str) -> None:
    ids = tok.encode(text, add_special_tokens=False)
    assert all(0 <= i < 2048 for i in ids)
    assert tok.decode(ids) == text


def test_digits_are_single_tokens(tok) -> None:
    ids = tok.encode("2024", add_special_tokens=False)
    assert [tok.decode([i]) for i in ids] == ["2", "0", "2", "4"]


def test_literal_eot_is_plain_text_and_special_eot_is_one_token(tok) -> None:
    literal = tok.encode("a<eot_id>b", add_special_tokens=False)
    assert 2047 not in literal and tok.decode(literal) == "a<eot_id>b"
    assert tok.encode("a<|eot_id|>b", add_special_tokens=False).count(2047) == 1


def test_chat_template_matches_generation_format(tok) -> None:
    messages = [{"role": "user", "content": "  What is 6*7?  "}]
    rendered = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == apply_text_chat_template(messages, tok.bos_token)
    assert rendered == (
        "<|startoftext|><|start_header_id|>user<|end_header_id|>\nWhat is 6*7?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n"
    )


def test_tiny_tokenizer_returns_independent_copies() -> None:
    first = tiny_tokenizer()
    first.padding_side = "right"
    assert tiny_tokenizer().padding_side == "left"


def test_shipped_asset_is_what_the_build_script_produces(tmp_path: Path) -> None:
    info = json.loads((TINY_TOKENIZER_DIR / "build_info.json").read_text())
    corpus = default_tiny_corpus()
    digest = corpus_digest(corpus)
    if digest != info["corpus_sha256"]:
        pytest.skip("installed lm_eval ships different corpus text than the tokenizer was built from")
    save_tiny_tokenizer(build_tiny_tokenizer(info["text_vocab_size"], corpus), tmp_path, digest)
    for name in ("tokenizer.json", "tokenizer_config.json", "build_info.json"):
        assert (tmp_path / name).read_bytes() == (TINY_TOKENIZER_DIR / name).read_bytes(), name
    assert info["special_token_ids"] == tiny_special_token_ids(2048)


def test_build_refuses_corpus_too_small_for_vocab() -> None:
    with pytest.raises(ConfigError, match="corpus is too small"):
        build_tiny_tokenizer(4096, ["just a few words"])


def test_save_pretrained_then_load_tokenizer_round_trips(tok, tmp_path: Path) -> None:
    tok.save_pretrained(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert loaded.padding_side == "left"
    assert len(loaded) == 2048
    assert (loaded.bos_token_id, loaded.eos_token_id, loaded.pad_token_id, loaded.mask_token_id) == (
        2031, 2032, 2032, 2044,
    )
    for text in TEXTS:
        assert loaded.encode(text, add_special_tokens=False) == tok.encode(text, add_special_tokens=False)
    assert loaded.chat_template == tok.chat_template


def test_load_tokenizer_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_checkpoint"
    with pytest.raises(CheckpointError) as info:
        load_tokenizer(missing)
    message = str(info.value)
    assert str(missing) in message and "\n" not in message


@pytest.mark.parametrize("content", [None, "{not json"])
def test_load_tokenizer_unreadable_folder(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "tokenizer.json").write_text(content)
        (tmp_path / "tokenizer_config.json").write_text('{"tokenizer_class": "PreTrainedTokenizerFast"}')
    with pytest.raises(CheckpointError) as info:
        load_tokenizer(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "\n" not in message


def test_prompting_with_tiny_tokenizer_and_config(tok) -> None:
    ids = tiny_special_token_ids(2048)
    config = MMaDAConfig(
        vocab_size=2048 + 64, llm_vocab_size=2048, codebook_size=64, mask_token_id=ids["mask"],
        bos_token_id=ids["bos"], eos_token_id=ids["eos"], special_token_ids=ids,
    )
    assert SpecialTokens.from_config(config) == tiny_special_tokens(2048)
    p = MMaDAPrompting.from_config(tok, config, max_text_len=32)
    batch = p.mmu_gen(torch.tensor([[0, 63], [1, 2]]), ["Is it red?", "How many cubes are there in total?"])
    short, long = batch.input_ids
    assert long[:5].tolist() == [2038, 2033, 2049, 2050, 2034]
    assert long[5].item() == 2031 and long.tolist().count(2031) == 1
    text = tok.decode(long[6:].tolist())
    assert text == mmu_chat_string("How many cubes are there in total?")
    assert 2047 not in long.tolist()
    pad = batch.attention_mask[0].tolist().index(1)
    assert pad > 0 and short[:pad].tolist() == [2032] * pad
    assert short[pad : pad + 5].tolist() == [2038, 2033, 2048, 2111, 2034]
    assert batch.attention_mask[1].tolist() == [1] * len(long)


def test_text_gen_keeps_one_bos_for_templated_prompts(tok) -> None:
    p = MMaDAPrompting(tok, tiny_special_tokens(2048), 2048, max_text_len=32)
    prompts = [apply_text_chat_template([{"role": "user", "content": q}], tok.bos_token) for q in ("Hi", "2+2?")]
    batch = p.text_gen(prompts)
    for row, mask in zip(batch.input_ids.tolist(), batch.attention_mask.tolist(), strict=True):
        real = [t for t, m in zip(row, mask, strict=True) if m]
        assert real[0] == 2031 and real.count(2031) == 1 and real[1] == 2045
        assert real[-2:] == tok.encode("<|end_header_id|>\n", add_special_tokens=False)


def mmu_chat_string(question: str) -> str:
    return (
        f"<|start_header_id|>user<|end_header_id|>\n{question}<eot_id>"
        "<|start_header_id|>assistant<|end_header_id|>\n"
    )
