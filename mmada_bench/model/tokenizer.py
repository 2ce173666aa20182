"""Text tokenizers: any Hugging Face tokenizer from a local folder, and the project's tiny tokenizer.

Real checkpoints ship the LLaDA tokenizer; :func:`load_tokenizer` reads it (or any other) from disk
only, left-padded as the reference loads it. Tiny presets need a tokenizer whose ids fit a small
embedding, with the MMaDA special tokens at known ids, that is identical on every machine. The project
therefore ships its own (``assets/tiny_tokenizer``, built by ``scripts/build_tiny_tokenizer.py`` with
:func:`build_tiny_tokenizer`): a byte-level BPE, so every string (digits, LaTeX, any unicode) encodes and
decodes back unchanged.

Tiny id layout for a text range of ``V`` ids (``llm_vocab_size``): BPE tokens fill ``[0, V - 17)``
(256 byte tokens first, then merges in training order), and the 17 special tokens take the top ids in
the same relative order as the real vocabulary (BOS, EOS, the eleven MMaDA task/image tokens, mask,
the three chat-header tokens): see :func:`tiny_special_token_ids`. Image code ``c`` is then ``V + c``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from mmada_bench.errors import CheckpointError, ConfigError
from mmada_bench.model.prompting import TOKEN_STRINGS, SpecialTokens

#: Folder of the shipped tiny tokenizer.
TINY_TOKENIZER_DIR = Path(__file__).resolve().parent / "assets" / "tiny_tokenizer"
#: Text range of the shipped tiny tokenizer (``llm_vocab_size`` of the tiny presets).
TINY_TEXT_VOCAB_SIZE = 2048

#: Special tokens of the tiny layout, lowest id first (mirrors their order in the LLaDA vocabulary).
TINY_SPECIAL_ORDER: tuple[str, ...] = (
    "bos",
    "eos",
    "soi",
    "eoi",
    "sov",
    "eov",
    "t2i",
    "mmu",
    "t2v",
    "v2v",
    "lvg",
    "pad",
    "r2i",
    "mask",
    "start_header",
    "end_header",
    "eot_id",
)

#: The MMaDA generation chat template (spec §3.3) in Jinja, so ``apply_chat_template`` on the tiny
#: tokenizer gives the same string as :func:`mmada_bench.model.prompting.apply_text_chat_template`.
MMADA_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first -%}{{ bos_token }}{%- endif -%}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n' + (message['content'] | trim)"
    " + '<|eot_id|>' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\n' }}{%- endif -%}"
)


def tiny_special_token_ids(llm_vocab_size: int = TINY_TEXT_VOCAB_SIZE) -> dict[str, int]:
    """Special-token ids of the tiny layout, keyed like :class:`SpecialTokens` (config ``special_token_ids``)."""
    first = llm_vocab_size - len(TINY_SPECIAL_ORDER)
    if first < 256:
        raise ConfigError(
            f"llm_vocab_size={llm_vocab_size} is too small for a byte-level tokenizer "
            f"(needs 256 byte tokens + {len(TINY_SPECIAL_ORDER)} special tokens)"
        )
    return {name: first + i for i, name in enumerate(TINY_SPECIAL_ORDER)}


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """Load the tokenizer in a local folder (never the hub), left-padded like the reference.

    A tokenizer without a pad token gets EOS as pad (what LLaDA uses), so batching always works.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"tokenizer folder {folder} does not exist")
    _check_tokenizer_json(folder / "tokenizer.json")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), padding_side="left", local_files_only=True)
    except Exception as exc:  # any failure (bad JSON, unknown class, missing files) -> one line
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise CheckpointError(f"cannot load a tokenizer from {folder}: {detail}") from exc
    if tokenizer is None:
        raise CheckpointError(f"cannot load a tokenizer from {folder}: no tokenizer files found")
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _check_tokenizer_json(file: Path) -> None:
    """A present ``tokenizer.json`` must be a JSON tokenizers file; transformers would only say ``'added_tokens'``."""
    if not file.is_file():
        return
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{file} is not valid JSON ({exc}); restore it from the checkpoint") from None
    missing = [key for key in ("model", "added_tokens") if not isinstance(raw, dict) or key not in raw]
    if missing:
        raise CheckpointError(f"{file} is not a tokenizers file (no {' or '.join(repr(k) for k in missing)} key); "
                              "restore it from the checkpoint")


def coverage_text() -> str:
    """Text that makes the tiny BPE see digits, arithmetic, LaTeX, punctuation and the chat format.

    Byte-level BPE encodes anything without it; it only makes common evaluation strings shorter.
    """
    lines = [
        " ".join(str(n) for n in range(0, 1000, 7)),
        "0 1 2 3 4 5 6 7 8 9 10 100 1000 3.14 -42 1,000 $5.00 50% 2/3 #### 72",
        "1 + 1 = 2. 12 - 7 = 5. 6 * 7 = 42. 81 / 9 = 9. 2^10 = 1024. (3 + 4) * 2 = 14.",
        r"\frac{1}{2} \sqrt{2} x^{2} + y_{1} \cdot \times \div \pm \leq \geq \neq \infty \pi \alpha \beta",
        r"$\boxed{42}$ \left( \right) \begin{align} \end{align} \text{ cm} \mathbb{R} \sum_{i=1}^{n} i",
        "! \" # $ % & ' ( ) * + , - . / : ; < = > ? @ [ \\ ] ^ _ ` { | } ~",
        "Question: Answer: Q: A: The answer is Let's think step by step. A. B. C. D. E.",
        "user assistant system <think> </think> <eot_id> Yes No yes no True False",
        "Please describe this image in detail. Answer the question using a single word or phrase.",
        "Answer with the option's letter from the given choices directly.",
    ]
    return "\n".join(lines) + "\n"


def default_tiny_corpus() -> list[str]:
    """Training text for the tiny BPE: lm-eval's packaged few-shot prompts plus :func:`coverage_text`.

    Read from the installed ``lm_eval`` package (a project dependency), so no download is needed.
    """
    import lm_eval

    tasks = Path(lm_eval.__file__).resolve().parent / "tasks"
    sources = [tasks / "gsm8k" / "gsm8k-cot.yaml", tasks / "mmlu" / "flan_cot_fewshot" / "_cot_prompts.json"]
    for source in sources:
        if not source.is_file():
            raise ConfigError(f"tiny tokenizer corpus file {source} is missing from the installed lm_eval")
    texts = [sources[0].read_text(encoding="utf-8")]
    prompts = json.loads(sources[1].read_text(encoding="utf-8"))
    texts.extend(prompts[key] for key in sorted(prompts))
    texts.append(coverage_text())
    return texts


def corpus_digest(corpus: Iterable[str]) -> str:
    """sha256 of the corpus, recorded with the shipped tokenizer to tell when a rebuild must match it."""
    digest = hashlib.sha256()
    for text in corpus:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def build_tiny_tokenizer(
    text_vocab_size: int = TINY_TEXT_VOCAB_SIZE, corpus: Iterable[str] | None = None
) -> PreTrainedTokenizerFast:
    """Train the tiny byte-level BPE; its ids cover ``[0, text_vocab_size)`` exactly.

    Digits are split one per token (so numbers tokenize uniformly, which helps tiny arithmetic models),
    no BOS/EOS is added automatically (prompting adds them), and specials sit at
    :func:`tiny_special_token_ids`. Training is single-pass and deterministic for a given corpus.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    special_ids = tiny_special_token_ids(text_vocab_size)
    texts = list(default_tiny_corpus() if corpus is None else corpus)
    bpe_size = text_vocab_size - len(TINY_SPECIAL_ORDER)

    backend = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_size,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    if backend.get_vocab_size() != bpe_size:
        raise ConfigError(
            f"tiny tokenizer corpus is too small: BPE learned {backend.get_vocab_size()} tokens, "
            f"{bpe_size} are needed for text_vocab_size={text_vocab_size}"
        )
    names = [TOKEN_STRINGS[name] for name in TINY_SPECIAL_ORDER]
    backend.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in names])
    for name in TINY_SPECIAL_ORDER:
        got = backend.token_to_id(TOKEN_STRINGS[name])
        if got != special_ids[name]:  # pragma: no cover - guards against a tokenizers behaviour change
            raise ConfigError(f"tiny tokenizer placed {TOKEN_STRINGS[name]} at {got}, expected {special_ids[name]}")

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=TOKEN_STRINGS["bos"],
        eos_token=TOKEN_STRINGS["eos"],
        pad_token=TOKEN_STRINGS["eos"],
        mask_token=TOKEN_STRINGS["mask"],
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = MMADA_CHAT_TEMPLATE
    return tokenizer


def save_tiny_tokenizer(
    tokenizer: PreTrainedTokenizerBase, folder: str | Path, digest: str, built_by: str = "scripts/build_tiny_tokenizer.py"
) -> None:
    """Write the tokenizer files plus ``build_info.json`` (corpus digest, so tests can check a rebuild)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # The chat template goes into tokenizer_config.json (not chat_template.jinja): the package data
    # rules ship *.json only, and older readers expect it there. "PreTrainedTokenizerFast" is the class
    # name both transformers 4 and 5 resolve (5 writes its internal "TokenizersBackend").
    tokenizer.save_pretrained(str(folder), save_jinja_files=False)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    info = {
        "text_vocab_size": len(tokenizer),
        "corpus_sha256": digest,
        "special_token_ids": tiny_special_token_ids(len(tokenizer)),
        "built_by": built_by,
    }
    (folder / "build_info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@lru_cache(maxsize=1)
def _tiny_tokenizer_cached() -> PreTrainedTokenizerBase:
    if not (TINY_TOKENIZER_DIR / "tokenizer.json").is_file():
        raise CheckpointError(
            f"shipped tiny tokenizer missing in {TINY_TOKENIZER_DIR}; run scripts/build_tiny_tokenizer.py"
        )
    return load_tokenizer(TINY_TOKENIZER_DIR)


def tiny_tokenizer() -> PreTrainedTokenizerBase:
    """The shipped tiny tokenizer (a fresh copy each call, since HF tokenizers are mutable)."""
    import copy

    return copy.deepcopy(_tiny_tokenizer_cached())


def tiny_special_tokens(llm_vocab_size: int = TINY_TEXT_VOCAB_SIZE) -> SpecialTokens:
    """:class:`SpecialTokens` of the tiny layout."""
    return SpecialTokens.from_dict(tiny_special_token_ids(llm_vocab_size))
