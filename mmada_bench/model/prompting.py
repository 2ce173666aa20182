"""Special tokens, sequence formats and chat conventions of MMaDA (spec §1.3, §3, §6.1-6.2).

MMaDA puts text, task markers and image codes into one id space and feeds the model fixed layouts.
A checkpoint only works if its inputs reproduce the layouts it was trained on token for token, so this
module rebuilds each format of the reference's prompting code (``Gen-Verse/MMaDA:
training/prompting_utils.py``) with the same padding, truncation, mask and label rules:

=========  =====================================================================================
format     layout (``M`` = text budget, ``N`` = image tokens)
=========  =====================================================================================
t2i        ``[iPAD]*k <|t2i|> BOS text EOS`` (M+1 tokens) ``<|soi|> image*N <|eoi|>``
t2i_gen    as t2i with every image token ``<|mdm_mask|>``; ``""`` gives the unconditional prompt
mmu        ``<|mmu|> <|soi|> image*N <|eoi|>`` + ``BOS text EOS`` right-padded with EOS to M
mmu_gen    ``<|mmu|> <|soi|> image*N <|eoi|> BOS`` + the chat question (literal ``<eot_id>``)
lm         ``BOS text EOS`` right-padded with EOS to the sequence length
lm_chat    as lm; prompt = everything up to and including the last ``<|end_header_id|>``
r2i        ``<|r2i|>`` + EOS-padded text (M) + ``<|soi|> image*N <|eoi|>``
=========  =====================================================================================

Special tokens are always placed by id, never by string: in the real LLaDA tokenizer ids
126084-126094 are named ``<|reserved_token_N|>``, so the MMaDA names of :data:`TOKEN_STRINGS` only exist
as strings in our own tiny tokenizer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

import torch

from mmada_bench.errors import ConfigError
from mmada_bench.model.padding import left_pad

IGNORE_INDEX = -100


@dataclass(frozen=True)
class SpecialTokens:
    """Vocabulary ids of every token the MMaDA formats place by id (field names = config keys).

    ``pad`` is the t2i left-padding token ``[iPAD]``, not the text pad (text is padded with ``eos``).
    """

    soi: int
    eoi: int
    sov: int
    eov: int
    t2i: int
    mmu: int
    t2v: int
    v2v: int
    lvg: int
    pad: int
    r2i: int
    bos: int
    eos: int
    mask: int
    start_header: int
    end_header: int
    eot_id: int

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, ids: Mapping[str, int], *, base: SpecialTokens | None = None) -> SpecialTokens:
        """Build from a mapping keyed by field name; keys missing from ``ids`` come from ``base``.

        Unknown keys are refused: a misspelt key in a config would otherwise silently keep the 8B id.
        """
        names = cls.field_names()
        unknown = sorted(set(ids) - set(names))
        if unknown:
            raise ConfigError(f"special_token_ids has unknown keys {unknown}; valid keys are {list(names)}")
        merged: dict[str, int] = base.as_dict() if base is not None else {}
        merged.update({k: int(v) for k, v in ids.items()})
        missing = [n for n in names if n not in merged]
        if missing:
            raise ConfigError(f"special_token_ids is missing keys {missing}")
        return cls(**merged)

    @classmethod
    def from_config(cls, config: Any) -> SpecialTokens:
        """Ids for a checkpoint: ``config.special_token_ids`` over the config's own fields over the 8B ids.

        The config's ``mask_token_id`` / ``bos_token_id`` / ``eos_token_id`` are used when set, since
        real MMaDA configs carry those and nothing else. Every id must lie inside the text range
        (below both ``llm_vocab_size`` and the image offset), or it would collide with an image code.
        """
        ids: dict[str, int] = {}
        for key, attr in (("mask", "mask_token_id"), ("bos", "bos_token_id"), ("eos", "eos_token_id")):
            value = getattr(config, attr, None)
            if isinstance(value, int):
                ids[key] = value
        override = getattr(config, "special_token_ids", None) or {}
        ids.update(override)
        special = cls.from_dict(ids, base=MMADA_8B_SPECIAL_TOKENS)
        text_range = min(int(config.llm_vocab_size), int(config.image_offset))
        special.validate(text_range, source="config" if not override else "config special_token_ids")
        return special

    def validate(self, text_range: int, *, source: str = "special tokens") -> None:
        """Refuse ids outside ``[0, text_range)`` and ids shared by two roles."""
        for name, value in self.as_dict().items():
            if not 0 <= value < text_range:
                raise ConfigError(
                    f"{source}: special token {name}={value} lies outside the text id range [0, {text_range}); "
                    "set config.json 'special_token_ids' to this checkpoint's layout"
                )
        seen: dict[int, str] = {}
        for name, value in self.as_dict().items():
            if value in seen:
                raise ConfigError(f"{source}: special tokens {seen[value]} and {name} share id {value}")
            seen[value] = name


#: Ids of the released MMaDA-8B checkpoints (spec §1.3 / §3.1; ``use_reserved_token=True``).
MMADA_8B_SPECIAL_TOKENS = SpecialTokens(
    soi=126084,
    eoi=126085,
    sov=126086,
    eov=126087,
    t2i=126088,
    mmu=126089,
    t2v=126090,
    v2v=126091,
    lvg=126092,
    pad=126093,
    r2i=126094,
    bos=126080,
    eos=126081,
    mask=126336,
    start_header=126346,
    end_header=126347,
    eot_id=126348,
)

#: String form of each special token, keyed like :class:`SpecialTokens` (the MMaDA names; see module doc).
TOKEN_STRINGS: dict[str, str] = {
    "soi": "<|soi|>",
    "eoi": "<|eoi|>",
    "sov": "<|sov|>",
    "eov": "<|eov|>",
    "t2i": "<|t2i|>",
    "mmu": "<|mmu|>",
    "t2v": "<|t2v|>",
    "v2v": "<|v2v|>",
    "lvg": "<|lvg|>",
    "pad": "[iPAD]",
    "r2i": "<|r2i|>",
    "bos": "<|startoftext|>",
    "eos": "<|endoftext|>",
    "mask": "<|mdm_mask|>",
    "start_header": "<|start_header_id|>",
    "end_header": "<|end_header_id|>",
    "eot_id": "<|eot_id|>",
}

# --------------------------------------------------------------------------------------------------
# Chat text conventions (spec §3.3)
# --------------------------------------------------------------------------------------------------

#: The reference's "thinking" instruction. It is a prompt the MixCoT model was trained on: keep verbatim.
COT_INSTRUCTION = (
    "You should first think about the reasoning process in the mind and then provide the user with the "
    "answer. The reasoning process is enclosed within <think> </think> tags, i.e. <think> reasoning "
    "process here </think> answer here"
)

#: Reasoning-to-image variant of the instruction (reference r2i data; kept verbatim for the same reason).
R2I_COT_INSTRUCTION = (
    "You should first think out a more detailed version of the description and then provide the user "
    "with the image. The detailed description is enclosed within <think> </think> tags, i.e. <think> "
    "detailed description here </think> image here"
)

_START_HEADER = TOKEN_STRINGS["start_header"]
_END_HEADER = TOKEN_STRINGS["end_header"]
_EOT_ID = TOKEN_STRINGS["eot_id"]
#: The trained-in typo of the MMU / training chat format: a plain-text ``<eot_id>``, not ``<|eot_id|>``.
LITERAL_EOT = "<eot_id>"


def with_cot(question: str, separator: str = "\n") -> str:
    """Prepend :data:`COT_INSTRUCTION` to a user message.

    The app and the CoT training data join with ``"\\n"``; ``eval_llada.py`` joins with ``"\\n\\n"``.
    """
    return f"{COT_INSTRUCTION}{separator}{question}"


def with_single_bos(ids: Sequence[int], bos: int) -> list[int]:
    """``ids`` starting with exactly one BOS, the reference's rule for every text segment.

    A tokenizer that prepends BOS regardless of ``add_special_tokens``, applied to a text that already
    starts with the BOS string (a chat template), would give two: any leading run collapses to one.
    """
    start = 0
    while start < len(ids) and ids[start] == bos:
        start += 1
    return [bos, *ids[start:]]


def apply_text_chat_template(messages: Sequence[Mapping[str, str]], bos_token: str) -> str:
    """The text-generation chat format of ``generate.py`` / ``app.py`` (not the LLaDA tokenizer's).

    Each message becomes ``<|start_header_id|>{role}<|end_header_id|>\\n{content.strip()}<|eot_id|>``,
    BOS goes before the first message, and the assistant header with a single ``"\\n"`` always ends the
    prompt (LLaDA's own template uses ``"\\n\\n"``; MMaDA was tuned on the single newline).
    """
    parts = [
        f"{_START_HEADER}{message['role']}{_END_HEADER}\n{message['content'].strip()}{_EOT_ID}"
        for message in messages
    ]
    if parts:
        parts[0] = bos_token + parts[0]
    return "".join(parts) + f"{_START_HEADER}assistant{_END_HEADER}\n"


def mmu_chat_text(question: str, answer: str = "") -> str:
    """Question (and answer) in the MMU / training chat format, with the literal ``<eot_id>`` typo.

    With ``answer=""`` this is the text part of the MMU inference prompt used by VLMEvalKit and the
    reference's validation; with an answer it is the training text of a single-turn sample.
    """
    return (
        f"{_START_HEADER}user{_END_HEADER}\n{question}{LITERAL_EOT}"
        f"{_START_HEADER}assistant{_END_HEADER}\n{answer}"
    )


# --------------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------------


@dataclass
class T2IBatch:
    """Text-to-image training rows: ``attention_mask`` is 0 on ``[iPAD]`` and 1 elsewhere."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor


@dataclass
class GenerationBatch:
    """Inference prompts: ``attention_mask`` is 0 on padding, 1 on real tokens."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor


@dataclass
class TextBatch:
    """Rows trained with the masked-diffusion text loss (lm, lm_chat, mmu, r2i).

    ``prompt_mask`` is 1 on positions that are never noised and carry no loss.
    """

    input_ids: torch.Tensor
    prompt_mask: torch.Tensor
    labels: torch.Tensor

    @property
    def answer_lengths(self) -> torch.Tensor:
        """Answer positions per row, repeated over the sequence as the reference's loss expects (B, L)."""
        lengths = (1 - self.prompt_mask.long()).sum(dim=-1, keepdim=True)
        return lengths.expand(-1, self.input_ids.shape[1]).contiguous()


class TextTokenizer(Protocol):
    """What the prompting code needs from a tokenizer (any HF tokenizer qualifies)."""

    bos_token_id: int | None
    eos_token_id: int | None

    def __call__(self, text: list[str], add_special_tokens: bool = ...) -> Mapping[str, Any]: ...


# --------------------------------------------------------------------------------------------------
# Prompting
# --------------------------------------------------------------------------------------------------


class MMaDAPrompting:
    """Builds every MMaDA sequence format as batched tensors (spec §3.2).

    ``max_text_len`` is the stage's ``M``. As in the reference it is stored as ``M + 1``
    (:attr:`max_text_len`) because the t2i text part also holds the task token; mmu and r2i use ``M``.
    Texts are tokenized without the tokenizer's own special tokens and then forced to start with exactly
    one BOS, so the layout does not depend on whether a tokenizer auto-prepends BOS.
    """

    def __init__(
        self,
        tokenizer: TextTokenizer,
        special: SpecialTokens,
        image_offset: int,
        max_text_len: int,
        *,
        codebook_size: int | None = None,
        ignore_id: int = IGNORE_INDEX,
    ) -> None:
        if max_text_len < 2:
            raise ConfigError(f"max_text_len must be at least 2 (BOS + EOS), got {max_text_len}")
        for name in ("bos", "eos"):
            tok_id = getattr(tokenizer, f"{name}_token_id", None)
            if tok_id is not None and tok_id != getattr(special, name):
                raise ConfigError(
                    f"tokenizer {name}_token_id={tok_id} differs from the model's {name} id "
                    f"{getattr(special, name)}; tokenizer and checkpoint do not belong together"
                )
        self.tokenizer = tokenizer
        self.special = special
        self.image_offset = int(image_offset)
        self.max_text_len = max_text_len + 1
        self.codebook_size = codebook_size
        self.ignore_id = ignore_id

    @classmethod
    def from_config(cls, tokenizer: TextTokenizer, config: Any, max_text_len: int) -> MMaDAPrompting:
        """Prompting for a checkpoint config (special ids, image offset and codebook size from it)."""
        return cls(
            tokenizer,
            SpecialTokens.from_config(config),
            config.image_offset,
            max_text_len,
            codebook_size=int(config.codebook_size),
        )

    @property
    def text_budget(self) -> int:
        """``M``: text tokens (BOS and EOS included) of the mmu / r2i text part."""
        return self.max_text_len - 1

    # -- helpers ------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, starting with exactly one BOS (the reference's rule)."""
        texts = list(texts)
        if not texts:
            return []
        encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [with_single_bos(ids, self.special.bos) for ids in encoded]

    def image_ids(self, image_codes: torch.Tensor | Sequence[Sequence[int]]) -> torch.Tensor:
        """(B, N) codebook indices -> vocabulary ids (``image_offset + code``)."""
        codes = torch.as_tensor(image_codes, dtype=torch.long)
        if codes.dim() != 2:
            raise ValueError(f"image codes must be (batch, tokens), got shape {tuple(codes.shape)}")
        if codes.numel():
            low, high = int(codes.min()), int(codes.max())
            if low < 0 or (self.codebook_size is not None and high >= self.codebook_size):
                raise ValueError(f"image codes must lie in [0, {self.codebook_size}), got [{low}, {high}]")
        return codes + self.image_offset

    def _t2i_text_part(self, ids: list[int]) -> tuple[list[int], int]:
        """``[iPAD]*k <|t2i|> ids EOS`` of exactly ``M + 1`` tokens, and the pad count ``k``."""
        part = [self.special.t2i, *ids, self.special.eos]
        if len(part) > self.max_text_len:
            return part[: self.max_text_len - 1] + [self.special.eos], 0
        pads = self.max_text_len - len(part)
        return [self.special.pad] * pads + part, pads

    def _eos_padded(self, ids: list[int], length: int) -> list[int]:
        """``ids EOS`` right-padded with EOS to ``length``; overlong text keeps ``length - 1`` tokens + EOS."""
        body = [*ids, self.special.eos]
        if len(body) > length:
            return body[: length - 1] + [self.special.eos]
        return body + [self.special.eos] * (length - len(body))

    def _prompt_length_to_last_header(self, ids: Sequence[int]) -> int:
        """Length of the prefix that ends with the last ``<|end_header_id|>`` (0 when there is none)."""
        end_header = self.special.end_header
        for pos in range(len(ids) - 1, -1, -1):
            if ids[pos] == end_header:
                return pos + 1
        return 0

    # -- text to image ------------------------------------------------------------------------------
    def t2i(
        self,
        texts: Sequence[str],
        image_codes: torch.Tensor | Sequence[Sequence[int]],
        masked: torch.Tensor | None = None,
        *,
        cond_dropout_prob: float = 0.0,
        generator: torch.Generator | None = None,
        image_labels_only: bool = False,
    ) -> T2IBatch:
        """Training rows ``[iPAD]*k <|t2i|> BOS text EOS <|soi|> image <|eoi|>``.

        ``masked`` (B, N bool) marks image positions replaced by ``<|mdm_mask|>``; labels there are the
        image ids, -100 on the other image positions. The reference's labels also keep the text part
        (``[iPAD]`` -> -100) and the ``<|soi|>`` / ``<|eoi|>`` ids; its loss reads positions ``M+1`` on,
        so ``<|soi|>`` and ``<|eoi|>`` are trained targets. ``image_labels_only=True`` sets everything but
        the masked image positions to -100 instead.

        Classifier-free-guidance dropout draws one uniform per row (always, as the reference does, so
        the random stream matches); rows below ``cond_dropout_prob`` get the empty caption
        ``<|t2i|> BOS EOS``.
        """
        image = self.image_ids(image_codes)
        if len(texts) != image.shape[0]:
            raise ValueError(f"{len(texts)} texts for {image.shape[0]} images")
        if masked is None:
            masked = torch.zeros_like(image, dtype=torch.bool)
        masked = torch.as_tensor(masked, dtype=torch.bool)
        if masked.shape != image.shape:
            raise ValueError(f"masked has shape {tuple(masked.shape)}, image codes {tuple(image.shape)}")
        image_input = torch.where(masked, torch.full_like(image, self.special.mask), image)
        image_label = torch.where(masked, image, torch.full_like(image, self.ignore_id))

        encoded = self.encode(texts)
        drop = torch.rand(len(encoded), generator=generator) < cond_dropout_prob
        rows, masks, labels = [], [], []
        for i, ids in enumerate(encoded):
            if drop[i]:
                ids = [self.special.bos]
            text_part, pads = self._t2i_text_part(ids)
            n = image.shape[1]
            rows.append(torch.tensor([*text_part, self.special.soi, *image_input[i].tolist(), self.special.eoi]))
            masks.append(torch.tensor([0] * pads + [1] * (len(text_part) - pads + n + 2)))
            if image_labels_only:
                head = [self.ignore_id] * (len(text_part) + 1)
                tail = [self.ignore_id]
            else:
                head = [self.ignore_id if t == self.special.pad else t for t in text_part] + [self.special.soi]
                tail = [self.special.eoi]
            labels.append(torch.tensor([*head, *image_label[i].tolist(), *tail]))
        return T2IBatch(torch.stack(rows), torch.stack(masks), torch.stack(labels))

    def t2i_gen(self, texts: Sequence[str], num_image_tokens: int) -> GenerationBatch:
        """Inference rows of t2i with every image token ``<|mdm_mask|>``.

        The unconditional (CFG) prompt is ``t2i_gen([""] * B, N)``: ``[iPAD]*(M-2) <|t2i|> BOS EOS ...``.
        """
        rows, masks = [], []
        for ids in self.encode(texts):
            text_part, pads = self._t2i_text_part(ids)
            image = [self.special.mask] * num_image_tokens
            rows.append(torch.tensor([*text_part, self.special.soi, *image, self.special.eoi]))
            masks.append(torch.tensor([0] * pads + [1] * (len(text_part) - pads + num_image_tokens + 2)))
        return GenerationBatch(torch.stack(rows), torch.stack(masks))

    # -- multimodal understanding -----------------------------------------------------------------
    def _image_prefix(self, image_row: torch.Tensor, task: int) -> list[int]:
        return [task, self.special.soi, *image_row.tolist(), self.special.eoi]

    def mmu(self, image_codes: torch.Tensor | Sequence[Sequence[int]], texts: Sequence[str]) -> TextBatch:
        """Training rows ``<|mmu|> <|soi|> image <|eoi|>`` + ``BOS text EOS`` EOS-padded to M.

        Labels are -100 on the image prefix and the text ids after it. The prompt mask covers the
        image prefix and the text up to and including its last ``<|end_header_id|>``; the answer starts
        at the ``"\\n"`` after that header and includes all EOS padding.
        """
        image = self.image_ids(image_codes)
        if len(texts) != image.shape[0]:
            raise ValueError(f"{len(texts)} texts for {image.shape[0]} images")
        rows, prompts, labels = [], [], []
        for i, ids in enumerate(self.encode(texts)):
            text = self._eos_padded(ids, self.text_budget)
            prefix = self._image_prefix(image[i], self.special.mmu)
            prompt_len = len(prefix) + self._prompt_length_to_last_header(text)
            row = prefix + text
            rows.append(torch.tensor(row))
            prompts.append(torch.tensor([1] * prompt_len + [0] * (len(row) - prompt_len)))
            labels.append(torch.tensor([self.ignore_id] * len(prefix) + text))
        return TextBatch(torch.stack(rows), torch.stack(prompts), torch.stack(labels))

    def mmu_gen(
        self,
        image_codes: torch.Tensor | Sequence[Sequence[int]],
        questions: str | Sequence[str],
        *,
        chat_format: bool = True,
    ) -> GenerationBatch:
        """MMU inference prompts ``<|mmu|> <|soi|> image <|eoi|> BOS`` + tokenized question text.

        With ``chat_format`` the question is wrapped by :func:`mmu_chat_text` (literal ``<eot_id>``), as
        VLMEvalKit and the reference validation do; pass ``False`` for already formatted text. Rows of
        different lengths are left-padded with EOS (the text pad) and masked out.
        """
        image = self.image_ids(image_codes)
        if isinstance(questions, str):
            questions = [questions]
        if len(questions) != image.shape[0]:
            raise ValueError(f"{len(questions)} questions for {image.shape[0]} images")
        texts = [mmu_chat_text(q) if chat_format else q for q in questions]
        rows = [self._image_prefix(image[i], self.special.mmu) + ids for i, ids in enumerate(self.encode(texts))]
        return self._left_pad(rows)

    def _left_pad(self, rows: Sequence[Sequence[int]]) -> GenerationBatch:
        return GenerationBatch(*left_pad(rows, self.special.eos))

    def text_gen(self, prompts: Sequence[str]) -> GenerationBatch:
        """Text-generation prompts (already chat-formatted strings), one BOS each, left-padded with EOS."""
        return self._left_pad(self.encode(prompts))

    # -- language modelling -------------------------------------------------------------------------
    def _lm_row(self, ids: Sequence[int], seq_len: int) -> list[int]:
        # Overlong text is cut without a final EOS here, unlike the image formats (reference rule).
        body = [*ids, self.special.eos][:seq_len]
        return body + [self.special.eos] * (seq_len - len(body))

    def _lm_rows(self, texts: Sequence[str], seq_len: int) -> list[list[int]]:
        return [self._lm_row(ids, seq_len) for ids in self.encode(texts)]

    def lm(self, texts: Sequence[str], seq_len: int) -> TextBatch:
        """Pretraining text rows ``BOS text EOS`` EOS-padded to ``seq_len``; no prompt, labels = ids.

        The reference also returns an "attention mask" that is all ones (its padding arithmetic runs
        after padding); it is never used, so it is not reproduced.
        """
        rows = torch.tensor(self._lm_rows(texts, seq_len))
        return TextBatch(rows, torch.zeros_like(rows), rows.clone())

    def lm_chat(self, conversations: Sequence[str], seq_len: int) -> TextBatch:
        """Chat text rows as :meth:`lm`; prompt = up to and including the last ``<|end_header_id|>``.

        ``conversations`` are formatted strings (header tokens written out, as in the training data).
        """
        rows = self._lm_rows(conversations, seq_len)
        prompts = []
        for row in rows:
            n = self._prompt_length_to_last_header(row)
            prompts.append([1] * n + [0] * (seq_len - n))
        ids = torch.tensor(rows)
        return TextBatch(ids, torch.tensor(prompts), ids.clone())

    def lm_prompted(self, prompts: Sequence[str], completions: Sequence[str], seq_len: int) -> TextBatch:
        """Plain-text prompt + completion rows as :meth:`lm`; the prompt (with its BOS) stays clean.

        The two parts are tokenized apart, as inference sees them: an evaluator encodes the prompt
        alone and the model writes the completion after it (LLaDA's SFT objective on plain text, and
        TRL's prompt-completion rows). Not in the reference, whose pretraining text has no prompt.
        """
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
        tails = self.tokenizer(list(completions), add_special_tokens=False)["input_ids"]
        rows, masks = [], []
        for head, tail in zip(self.encode(prompts), tails, strict=True):
            rows.append(self._lm_row([*head, *tail], seq_len))
            n = min(len(head), seq_len)
            masks.append([1] * n + [0] * (seq_len - n))
        ids = torch.tensor(rows)
        return TextBatch(ids, torch.tensor(masks), ids.clone())

    # -- reasoning to image (present in the reference, unused by its scripts) ------------------------
    def r2i(self, image_codes: torch.Tensor | Sequence[Sequence[int]], texts: Sequence[str]) -> TextBatch:
        """Rows ``<|r2i|>`` + ``BOS text EOS`` EOS-padded to M + ``<|soi|> image <|eoi|>``; labels = ids.

        Prompt mask: the task token, the text up to and including its last ``<|end_header_id|>`` (all
        of the text when there is none), ``<|soi|>`` and ``<|eoi|>``; the reasoning answer and the image
        tokens are the predicted part.
        """
        image = self.image_ids(image_codes)
        if len(texts) != image.shape[0]:
            raise ValueError(f"{len(texts)} texts for {image.shape[0]} images")
        rows, prompts = [], []
        for i, ids in enumerate(self.encode(texts)):
            text = self._eos_padded(ids, self.text_budget)
            row = [self.special.r2i, *text, self.special.soi, *image[i].tolist(), self.special.eoi]
            header = self._prompt_length_to_last_header(text)
            prompt = [0] * len(row)
            prompt[0] = 1
            for pos in range(1, 1 + (header if header else len(text))):
                prompt[pos] = 1
            prompt[len(text) + 1] = 1
            prompt[-1] = 1
            rows.append(torch.tensor(row))
            prompts.append(torch.tensor(prompt))
        ids = torch.stack(rows)
        return TextBatch(ids, torch.stack(prompts), ids.clone())
