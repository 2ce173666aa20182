"""MMaDA: a LLaDA-style bidirectional transformer over a shared text + image-token vocabulary.

One file holds the whole network, in the style of Hugging Face's per-model modeling files. Module
names mirror the released checkpoints (``model.transformer.blocks.N.q_proj`` ...), so a real
MMaDA-8B ``model.safetensors`` loads by name with no key mapping.

Numerics follow the reference exactly (spec §1): RMSNorm normalises in fp32 and multiplies by the
weight after casting back; RoPE (rotate-half, absolute positions, no offset for left padding) runs
in fp32; attention is never causal. ``ff_proj`` is the SiLU gate and ``up_proj`` the linear branch.

Beyond the reference, ``forward`` can compute only a contiguous *segment* of the sequence against a
key/value cache of the whole sequence. That one hook serves both Fast-dLLM-style caches of the text
sampler: the prefix cache (segment = current block to the end) and the dual cache (segment = the
current block only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from mmada_bench.model.checkpoint import assign_weights_strict, read_config, resolve_dtype, weight_files
from mmada_bench.model.configuration_mmada import MMaDAConfig

#: Per-layer (key, value), each (batch, kv_heads, seq_len, head_dim); keys already rotated.
KVCache = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class MMaDAOutput(ModelOutput):
    """Forward result: ``logits`` (B, L, V) and, when asked for, the per-layer key/value cache."""

    logits: torch.Tensor | None = None
    past_key_values: KVCache | None = None


class RMSNorm(nn.Module):
    """RMSNorm as LLaDA computes it: normalise in fp32, cast back, then scale by the weight."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        with torch.autocast(device_type=x.device.type, enabled=False):
            h = x.float()
            h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    """NeoX-style rotary embedding over absolute positions, computed in fp32.

    Tables are rebuilt lazily per device and length rather than stored as buffers, so a model made
    on the meta device (to load weights without a second copy) needs no special re-initialisation.
    """

    def __init__(self, head_dim: int, theta: float, full_precision: bool) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.theta = theta
        self.full_precision = full_precision
        self._cache: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def tables(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (str(device), length)
        cached = self._cache.get(key)
        # Tables made under inference_mode (a sampler call) cannot enter autograd: rebuild them for training.
        if cached is None or (cached[0].is_inference() and not torch.is_inference_mode_enabled()):
            with torch.autocast(device_type=device.type, enabled=False):
                exponent = torch.arange(0, self.head_dim, 2, device=device, dtype=torch.float32) / self.head_dim
                inv_freq = 1.0 / (self.theta**exponent)
                positions = torch.arange(length, device=device, dtype=torch.float32)
                angles = torch.outer(positions, inv_freq)
                angles = torch.cat((angles, angles), dim=-1)
                cached = (angles.sin(), angles.cos())
            self._cache = {key: cached}
        return cached

    def forward(self, q: torch.Tensor, k: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate ``q``/``k`` (B, H, S, D) sitting at absolute positions ``start .. start+S-1``."""
        seg = q.shape[-2]
        sin, cos = self.tables(start + seg, q.device)
        sin, cos = sin[start : start + seg], cos[start : start + seg]
        q_, k_ = (q.float(), k.float()) if self.full_precision else (q, k)
        sin, cos = sin.to(q_.dtype), cos.to(q_.dtype)
        q_ = q_ * cos + _rotate_half(q_) * sin
        k_ = k_ * cos + _rotate_half(k_) * sin
        return q_.to(q.dtype), k_.to(k.dtype)


class LLaDABlock(nn.Module):
    """Pre-norm "llama" block: bidirectional attention and a SiLU-gated MLP, two residuals."""

    def __init__(self, config: MMaDAConfig) -> None:
        super().__init__()
        d, kv_dim = config.d_model, config.num_kv_heads * config.head_dim
        self.n_heads = config.n_heads
        self.n_kv_heads = config.num_kv_heads
        self.head_dim = config.head_dim
        self.attn_norm = RMSNorm(d, config.rms_norm_eps)
        self.ff_norm = RMSNorm(d, config.rms_norm_eps)
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, kv_dim, bias=False)
        self.v_proj = nn.Linear(d, kv_dim, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_proj = nn.Linear(d, config.mlp_width, bias=False)  # gate (through SiLU)
        self.up_proj = nn.Linear(d, config.mlp_width, bias=False)  # linear branch
        self.ff_out = nn.Linear(config.mlp_width, d, bias=False)
        self.rotary = RotaryEmbedding(config.head_dim, config.rope_theta, config.rope_full_precision)

    def _heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        b, s, _ = x.shape
        return x.view(b, s, n, self.head_dim).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        bias: torch.Tensor | None,
        start: int,
        cache: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, s, d = x.shape
        h = self.attn_norm(x)
        q = self._heads(self.q_proj(h), self.n_heads)
        k = self._heads(self.k_proj(h), self.n_kv_heads)
        v = self._heads(self.v_proj(h), self.n_kv_heads)
        q, k = self.rotary(q, k, start)
        new_kv = (k, v)
        if cache is not None:  # segment mode: splice this segment's fresh keys into the full cache
            ck, cv = cache
            k = torch.cat((ck[:, :, :start], k, ck[:, :, start + s :]), dim=2)
            v = torch.cat((cv[:, :, :start], v, cv[:, :, start + s :]), dim=2)
            new_kv = (k, v)
        if self.n_kv_heads != self.n_heads:
            rep = self.n_heads // self.n_kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, is_causal=False)
        x = x + self.attn_out(att.transpose(1, 2).reshape(b, s, d))
        h = self.ff_norm(x)
        x = x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h))
        return x, new_kv


class LLaDAModel(nn.Module):
    """Embedding, blocks, final norm and untied output head under ``transformer.*`` (checkpoint names)."""

    def __init__(self, config: MMaDAConfig) -> None:
        super().__init__()
        self.config = config
        rows = config.embedding_rows
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(rows, config.d_model),
                "blocks": nn.ModuleList(LLaDABlock(config) for _ in range(config.n_layers)),
                "ln_f": RMSNorm(config.d_model, config.rms_norm_eps),
                "ff_out": nn.Linear(config.d_model, rows, bias=False),
            }
        )
        self.gradient_checkpointing = False


def build_attention_bias(
    attention_mask: torch.Tensor | None,
    attention_bias: torch.Tensor | None,
    query_start: int,
    query_len: int,
    dtype: torch.dtype,
) -> torch.Tensor | None:
    """Additive (B, 1, Lq, Lk) bias from a 0/1 padding mask or an explicit bias.

    A padding mask ``m`` (B, L) allows query i to see key j iff ``m_i AND m_j`` -- how every MMaDA
    script builds its masks; it is never causal. A bool bias follows the same allow/deny reading. A
    float bias is added as is, as the reference does in training (where a 1/0 float "mask" is
    therefore not a mask). An all-ones padding mask gives ``None`` so SDPA can take its fastest path.
    """
    if attention_bias is not None:
        bias = attention_bias[:, :, query_start : query_start + query_len]
        if bias.dtype == torch.bool or not bias.is_floating_point():
            return torch.zeros(bias.shape, dtype=dtype, device=bias.device).masked_fill(
                ~bias.bool(), torch.finfo(dtype).min
            )
        return bias.to(dtype)
    if attention_mask is None:
        return None
    keep = attention_mask.bool()
    if bool(keep.all()):
        return None
    allowed = keep[:, None, query_start : query_start + query_len, None] & keep[:, None, None, :]
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
        ~allowed, torch.finfo(dtype).min
    )


class MMaDAModelLM(PreTrainedModel):
    """MMaDA language model: ``model(input_ids, attention_mask=None).logits`` is (B, L, vocab).

    ``attention_mask`` (B, L) of 0/1 means pads neither attend nor are attended. Without it every
    position attends to every other, pads included -- what the reference does for text and MMU
    sampling at batch size 1.
    """

    config_class = MMaDAConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["LLaDABlock"]

    def __init__(self, config: MMaDAConfig) -> None:
        super().__init__(config)
        config.validate_architecture()
        self.model = LLaDAModel(config)
        self.post_init()

    # -- Hugging Face plumbing ------------------------------------------------------------------
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.init_std
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, RMSNorm):
            nn.init.ones_(module.weight)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.transformer["wte"]

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.transformer["wte"] = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.model.transformer["ff_out"]

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.model.transformer["ff_out"] = value

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        path: str | Path,
        torch_dtype: torch.dtype | str | None = torch.float32,
        device: torch.device | str | None = None,
        **kwargs: object,
    ) -> MMaDAModelLM:
        """Load a real-layout checkpoint folder strictly (see :mod:`mmada_bench.model.checkpoint`).

        ``torch_dtype`` may be a dtype, its name, or ``"auto"`` (the config's ``torch_dtype``).
        Unknown keyword arguments are refused rather than silently ignored.
        """
        if kwargs:
            from mmada_bench.errors import ConfigError

            raise ConfigError(f"MMaDAModelLM.from_pretrained got unsupported arguments: {sorted(kwargs)}")
        folder = Path(path)
        config = read_config(folder)
        dtype = resolve_dtype(torch_dtype, config)
        with torch.device("meta"):  # no second copy of the weights: tensors are assigned in place
            model = cls(config)
        target = torch.device(device) if device is not None else torch.device("cpu")
        assign_weights_strict(model, weight_files(folder), folder, dtype, target)
        model.config.dtype = dtype
        return model.eval()

    # -- forward -----------------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        attention_bias: torch.Tensor | None = None,
        past_key_values: KVCache | None = None,
        cache_start: int = 0,
        use_cache: bool = False,
        logits_range: tuple[int, int] | None = None,
        logits_positions: torch.Tensor | None = None,
        **unused: object,
    ) -> MMaDAOutput:
        """Logits for ``input_ids``.

        Args:
            input_ids: (B, S) token ids. With ``past_key_values`` this is a segment of the sequence
                that starts at absolute position ``cache_start``.
            attention_mask: optional (B, L) 0/1 padding mask over the *whole* sequence.
            attention_bias: optional (B, 1, L, L) bool (allow) or float (added) bias; overrides
                ``attention_mask`` as in the reference.
            past_key_values: key/value cache of the whole sequence (from ``use_cache=True``). The
                segment's own keys replace the cached ones at its positions; every other position
                uses the cached keys -- exact when those positions did not change since caching.
            use_cache: return the (spliced) full-sequence cache in ``past_key_values``.
            logits_range: ``(start, end)`` within ``input_ids``: apply the final norm and the output
                head only there (``logits`` is then (B, end - start, V)). The head is the widest
                matmul of the model, and samplers need logits for the current block only.
            logits_positions: (B, S) bool: apply norm and head only where True; ``logits`` is then
                (N, V), the True positions in row-major order (``full_logits[logits_positions]``).
                Training losses read only masked / labelled positions: computing the rest costs the
                head's matmul and its backward for nothing (about a fifth of a toy stage-1 step) and,
                at 8B with 134,656 ids, a (B, L, V) float tensor as large as several layers' activations.
        """
        if unused.get("labels") is not None:
            raise ValueError("MMaDAModelLM does not compute losses in forward; use mmada_bench.train.losses")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, seq), got shape {tuple(input_ids.shape)}")
        transformer = self.model.transformer
        seg = input_ids.shape[1]
        if past_key_values is None and cache_start:
            raise ValueError("cache_start needs past_key_values")
        if past_key_values is not None and len(past_key_values) != len(transformer["blocks"]):
            raise ValueError("past_key_values has the wrong number of layers")
        if logits_range is not None and logits_positions is not None:
            raise ValueError("give logits_range or logits_positions, not both")
        if logits_positions is not None and (logits_positions.shape != input_ids.shape
                                             or logits_positions.dtype != torch.bool):
            raise ValueError(f"logits_positions must be a bool tensor shaped like input_ids {tuple(input_ids.shape)}")
        x = transformer["wte"](input_ids)
        bias = build_attention_bias(attention_mask, attention_bias, cache_start, seg, x.dtype)
        new_cache: KVCache = []
        for i, block in enumerate(transformer["blocks"]):
            layer_cache = past_key_values[i] if past_key_values is not None else None
            if self.model.gradient_checkpointing and self.training:
                x, kv = torch.utils.checkpoint.checkpoint(
                    block, x, bias, cache_start, layer_cache, use_reentrant=False
                )
            else:
                x, kv = block(x, bias, cache_start, layer_cache)
            if use_cache:
                new_cache.append(kv)
        if logits_range is not None:
            x = x[:, logits_range[0] : logits_range[1]]
        if logits_positions is not None:
            x = x[logits_positions]
        logits = transformer["ff_out"](transformer["ln_f"](x))
        if self.config.scale_logits:
            logits = logits * (1.0 / math.sqrt(self.config.d_model))
        return MMaDAOutput(logits=logits, past_key_values=new_cache if use_cache else None)

    def _set_gradient_checkpointing(self, enable: bool = True, gradient_checkpointing_func: object = None) -> None:
        self.model.gradient_checkpointing = enable

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        self.model.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        self.model.gradient_checkpointing = False


def _register_auto_classes() -> None:
    """Let transformers' Auto* factories build MMaDA from a local folder (no remote code)."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    AutoConfig.register("mmada", MMaDAConfig, exist_ok=True)
    AutoModel.register(MMaDAConfig, MMaDAModelLM, exist_ok=True)
    AutoModelForCausalLM.register(MMaDAConfig, MMaDAModelLM, exist_ok=True)


_register_auto_classes()
