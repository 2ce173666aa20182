"""Configuration of MMaDA checkpoints.

The class reads a real MMaDA ``config.json`` unchanged: every LLaDA field passes through, and the
MMaDA-specific keys (``llm_vocab_size``, ``codebook_size``, ``num_vq_tokens``, ``new_vocab_size``,
``mask_token_id``, ...) are kept. Defaults are the released MMaDA-8B values, so ``MMaDAConfig()``
describes the 8B architecture.

One value the real config does not carry is where image codes start in the shared vocabulary
(``image_token_offset``). See :func:`derive_image_token_offset` for the rule used when it is absent.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

#: Embedding rows of LLaDA-8B (``llm_vocab_size`` of every MMaDA-8B config).
LLADA_EMBEDDING_SIZE = 126464
#: ``len(tokenizer)`` of the LLaDA tokenizer: the first image-code id of MMaDA-8B (spec §1.3).
LLADA_TOKENIZER_LENGTH = 126349
#: config.json key holding the t2i text budget ``M`` a checkpoint was trained with; ``mmada-bench
#: train`` writes it (released checkpoints lack it, and their stages all used
#: :data:`RELEASED_T2I_TEXT_BUDGET`), and image generation reads it so prompts match training.
T2I_TEXT_BUDGET_KEY = "t2i_max_text_len"
RELEASED_T2I_TEXT_BUDGET = 512


def derive_image_token_offset(llm_vocab_size: int) -> int:
    """First vocabulary id of image code 0 when the config does not say.

    The reference places image code ``c`` at ``len(tokenizer) + c``. For MMaDA-8B the LLaDA tokenizer
    has 126349 entries while the embedding has 126464 rows (``llm_vocab_size``), so the offset is the
    tokenizer length, hard-coded as 126349 in the reference app. For any other ``llm_vocab_size``
    (the tiny reference models, our presets) the text vocabulary fills the embedding exactly and the
    offset equals ``llm_vocab_size``. Checkpoints that differ must set ``image_token_offset``.
    """
    if llm_vocab_size == LLADA_EMBEDDING_SIZE:
        return LLADA_TOKENIZER_LENGTH
    return llm_vocab_size


class MMaDAConfig(PretrainedConfig):
    """LLaDA backbone fields plus MMaDA's shared text + image-token vocabulary."""

    model_type = "mmada"

    def __init__(
        self,
        d_model: int = 4096,
        n_heads: int = 32,
        n_kv_heads: int | None = 32,
        n_layers: int = 32,
        mlp_ratio: int = 4,
        mlp_hidden_size: int | None = 12288,
        activation_type: str = "silu",
        block_type: str = "llama",
        layer_norm_type: str = "rms",
        layer_norm_with_affine: bool = True,
        bias_for_layer_norm: bool | None = None,
        rms_norm_eps: float = 1e-5,
        include_bias: bool = False,
        include_qkv_bias: bool = False,
        rope: bool = True,
        rope_theta: float = 500000.0,
        rope_full_precision: bool = True,
        alibi: bool = False,
        alibi_bias_max: float = 8.0,
        attention_layer_norm: bool = False,
        attention_layer_norm_with_affine: bool = True,
        input_emb_norm: bool = False,
        scale_logits: bool = False,
        weight_tying: bool = False,
        multi_query_attention: bool | None = None,
        attention_dropout: float = 0.0,
        residual_dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        max_sequence_length: int = 4096,
        block_group_size: int = 1,
        init_fn: str = "mitchell",
        init_std: float = 0.02,
        init_device: str | None = None,
        init_cutoff_factor: float | None = None,
        flash_attention: bool = False,
        precision: str | None = None,
        vocab_size: int = 134656,
        embedding_size: int | None = 134656,
        llm_vocab_size: int = LLADA_EMBEDDING_SIZE,
        new_vocab_size: int = 134656,
        codebook_size: int = 8192,
        num_vq_tokens: int = 256,
        num_new_special_tokens: int = 0,
        mask_token_id: int = 126336,
        image_token_offset: int | None = None,
        special_token_ids: dict[str, int] | None = None,
        llm_model_path: str | None = None,
        gradient_checkpointing: bool = False,
        use_cache: bool = False,
        bos_token_id: int | None = None,
        eos_token_id: int | None = 126081,
        pad_token_id: int | None = 126081,
        **kwargs: Any,
    ) -> None:
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.n_layers = n_layers
        self.mlp_ratio = mlp_ratio
        self.mlp_hidden_size = mlp_hidden_size
        self.activation_type = activation_type
        self.block_type = block_type
        self.layer_norm_type = layer_norm_type
        self.layer_norm_with_affine = layer_norm_with_affine
        self.bias_for_layer_norm = bias_for_layer_norm
        self.rms_norm_eps = rms_norm_eps
        self.include_bias = include_bias
        self.include_qkv_bias = include_qkv_bias
        self.rope = rope
        self.rope_theta = rope_theta
        self.rope_full_precision = rope_full_precision
        self.alibi = alibi
        self.alibi_bias_max = alibi_bias_max
        self.attention_layer_norm = attention_layer_norm
        self.attention_layer_norm_with_affine = attention_layer_norm_with_affine
        self.input_emb_norm = input_emb_norm
        self.scale_logits = scale_logits
        self.weight_tying = weight_tying
        self.multi_query_attention = multi_query_attention
        self.attention_dropout = attention_dropout
        self.residual_dropout = residual_dropout
        self.embedding_dropout = embedding_dropout
        self.max_sequence_length = max_sequence_length
        self.block_group_size = block_group_size
        self.init_fn = init_fn
        self.init_std = init_std
        self.init_device = init_device
        self.init_cutoff_factor = init_cutoff_factor
        self.flash_attention = flash_attention
        self.precision = precision
        self.embedding_size = embedding_size
        self.llm_vocab_size = llm_vocab_size
        self.new_vocab_size = new_vocab_size
        self.codebook_size = codebook_size
        self.num_vq_tokens = num_vq_tokens
        self.num_new_special_tokens = num_new_special_tokens
        self.mask_token_id = mask_token_id
        self.image_token_offset = image_token_offset
        self.special_token_ids = special_token_ids
        self.llm_model_path = llm_model_path
        self.gradient_checkpointing = gradient_checkpointing
        self.use_cache = use_cache
        super().__init__(
            vocab_size=vocab_size,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            **kwargs,
        )
        self.vocab_size = vocab_size

    # Derived values are properties, not stored fields, so a saved config stays identical in shape to
    # the reference's and cannot disagree with itself.
    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def num_kv_heads(self) -> int:
        if self.multi_query_attention:
            return 1
        return self.n_kv_heads or self.n_heads

    @property
    def mlp_width(self) -> int:
        return self.mlp_hidden_size if self.mlp_hidden_size is not None else self.mlp_ratio * self.d_model

    @property
    def embedding_rows(self) -> int:
        return self.embedding_size or self.vocab_size

    @property
    def image_offset(self) -> int:
        """Vocabulary id of image code 0 (explicit field, else :func:`derive_image_token_offset`)."""
        if self.image_token_offset is not None:
            return int(self.image_token_offset)
        return derive_image_token_offset(int(self.llm_vocab_size))

    def validate_architecture(self) -> None:
        """Refuse configurations this implementation does not compute faithfully."""
        from mmada_bench.errors import CheckpointError

        unsupported = {
            "block_type": (self.block_type, "llama"),
            "layer_norm_type": (self.layer_norm_type, "rms"),
            "activation_type": (self.activation_type, "silu"),
        }
        for name, (value, expected) in unsupported.items():
            if value != expected:
                raise CheckpointError(f"config field {name}={value!r} is not supported (expected {expected!r})")
        for flag in ("alibi", "attention_layer_norm", "input_emb_norm", "include_bias", "include_qkv_bias"):
            if getattr(self, flag):
                raise CheckpointError(f"config field {flag}=true is not supported by mmada_bench")
        if not self.rope:
            raise CheckpointError("config field rope=false is not supported by mmada_bench")
        if self.d_model % self.n_heads:
            raise CheckpointError(f"config d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.n_heads % self.num_kv_heads:
            raise CheckpointError(f"config n_heads={self.n_heads} is not divisible by n_kv_heads={self.num_kv_heads}")
