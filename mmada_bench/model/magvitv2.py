"""MAGVIT-v2 image tokenizer (Show-o's ``showlab/magvitv2``), as MMaDA uses it.

MMaDA turns every image into a grid of discrete codes with this network and back. Its released
weights (``pytorch_model.safetensors``, fp32) carry keys ``encoder.*``, ``decoder.*`` and ``quantize.*``
laid out by a taming-style VQGAN encoder/decoder and a look-up-free quantiser (LFQ); the module tree
below reproduces that layout exactly so checkpoints load strictly, key for key.

Conventions that matter for parity with the reference (spec §2):

* codes: one per latent position, row-major over the ``h x w`` grid; the bit of channel ``c`` is
  ``z_c > 0`` (zero maps to bit 0) and channel 0 is the most significant bit;
* decoding a code maps its bits back to a ``+-1`` vector; the decoder output is returned *unclamped*
  (the reference's ``decode_code`` does not clamp; post-processing clamps, see
  :mod:`mmada_bench.model.image_processing`);
* everything runs in fp32.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from mmada_bench.errors import CheckpointError, ConfigError
from mmada_bench.model.checkpoint import assign_weights_strict, read_json_object, weight_files

CONFIG_NAME = "config.json"
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.safetensors")
NORM_GROUPS = 32
NORM_EPS = 1e-6


def default_encoder() -> dict[str, Any]:
    """Constructor arguments of the released encoder (``showlab/magvitv2`` has no config values)."""
    return {
        "ch": 128,
        "ch_mult": [1, 2, 2, 4, 4],
        "num_res_blocks": [4, 3, 4, 3, 4],
        "attn_resolutions": [5],
        "dropout": 0.0,
        "in_ch": 3,
        "out_ch": 3,
        "resolution": 256,
        "z_channels": 13,
        "double_z": False,
    }


def default_decoder() -> dict[str, Any]:
    """Constructor arguments of the released decoder (mirrors the encoder with its own multipliers)."""
    return {**default_encoder(), "ch_mult": [1, 1, 2, 2, 4], "num_res_blocks": [4, 4, 3, 4, 3]}


@dataclass
class MAGVITv2Config:
    """Architecture of a MAGVIT-v2 tokenizer; the defaults are the released ``showlab/magvitv2``.

    ``encoder``/``decoder`` hold the reference constructor arguments (``ch``, ``ch_mult``,
    ``num_res_blocks`` per level, ``attn_resolutions``, ``resolution``, ``z_channels``, ...);
    ``codebook_dim`` is the number of LFQ bits, which must equal ``z_channels``.
    """

    encoder: dict[str, Any] = field(default_factory=default_encoder)
    decoder: dict[str, Any] = field(default_factory=default_decoder)
    codebook_dim: int = 13

    def __post_init__(self) -> None:
        self.encoder = _merge_section("encoder", default_encoder(), self.encoder)
        self.decoder = _merge_section("decoder", default_decoder(), self.decoder)
        self.validate()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MAGVITv2Config:
        """Read either the nested format (``encoder``/``decoder``/``quantizer``) or an argument-free one.

        The released folder's ``config.json`` only holds bookkeeping such as ``_class_name`` and
        ``_diffusers_version`` (the reference class takes no arguments), so keys starting with ``_``
        are ignored and anything left unspecified takes the released value.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"MAGVIT-v2 config must be a JSON object, got {type(data).__name__}")
        known = {"encoder", "decoder", "quantizer"}
        unknown = sorted(k for k in data if k not in known and not k.startswith("_"))
        if unknown:
            raise ConfigError(f"MAGVIT-v2 config has unknown keys {unknown}; expected {sorted(known)}")
        quantizer = data.get("quantizer", {})
        if not isinstance(quantizer, dict) or set(quantizer) - {"codebook_dim"}:
            raise ConfigError(f"MAGVIT-v2 config 'quantizer' must be {{'codebook_dim': int}}, got {quantizer!r}")
        return cls(
            encoder=data.get("encoder", {}),
            decoder=data.get("decoder", {}),
            codebook_dim=quantizer.get("codebook_dim", 13),
        )

    def to_dict(self) -> dict[str, Any]:
        """Nested format, the one :meth:`from_dict` and the golden tiny folder use."""
        return {
            "encoder": dict(self.encoder),
            "decoder": dict(self.decoder),
            "quantizer": {"codebook_dim": self.codebook_dim},
        }

    @property
    def codebook_size(self) -> int:
        return 2**self.codebook_dim

    @property
    def downsample_factor(self) -> int:
        """Pixels per latent position along each side (16 for the released model)."""
        return 2 ** (len(self.encoder["ch_mult"]) - 1)

    def validate(self) -> None:
        """Reject settings the reference network cannot run with, before any module is built."""
        if not isinstance(self.codebook_dim, int) or not 1 <= self.codebook_dim <= 30:
            raise ConfigError(f"codebook_dim must be an integer in [1, 30], got {self.codebook_dim!r}")
        for name, section in (("encoder", self.encoder), ("decoder", self.decoder)):
            levels = len(section["ch_mult"])
            if levels < 1 or len(section["num_res_blocks"]) != levels:
                raise ConfigError(f"{name}: num_res_blocks needs one entry per ch_mult level ({levels})")
            if any(n < 1 for n in section["num_res_blocks"]):
                raise ConfigError(f"{name}: every level needs at least one residual block")
            widths = [section["ch"] * m for m in section["ch_mult"]]
            if any(w % NORM_GROUPS for w in widths):
                raise ConfigError(f"{name}: channel widths {widths} must be multiples of {NORM_GROUPS} (GroupNorm)")
            if section["z_channels"] != self.codebook_dim:
                raise ConfigError(
                    f"{name}.z_channels ({section['z_channels']}) must equal codebook_dim ({self.codebook_dim}): "
                    "the look-up-free quantiser turns each latent channel into one bit"
                )
            if section["double_z"]:
                raise ConfigError(f"{name}.double_z must be false (quant_conv takes z_channels inputs)")
        if len(self.encoder["ch_mult"]) != len(self.decoder["ch_mult"]):
            raise ConfigError("encoder and decoder need the same number of levels (same stride)")


def _merge_section(name: str, defaults: dict[str, Any], given: Any) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise ConfigError(f"MAGVIT-v2 config '{name}' must be an object, got {type(given).__name__}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(f"MAGVIT-v2 config '{name}' has unknown keys {unknown}")
    merged = {**defaults, **given}
    for key in ("ch_mult", "num_res_blocks", "attn_resolutions"):
        merged[key] = [int(v) for v in merged[key]]
    return merged


# --------------------------------------------------------------------------------------------------
# Building blocks (each does one thing; names match the checkpoint keys)


def normalize(channels: int) -> nn.GroupNorm:
    """GroupNorm(32, eps 1e-6) with affine parameters, the only normalisation in the network."""
    return nn.GroupNorm(num_groups=NORM_GROUPS, num_channels=channels, eps=NORM_EPS, affine=True)


def swish(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(x), the network's only nonlinearity."""
    return F.silu(x)


class ResnetBlock(nn.Module):
    """Pre-activation residual block; a 1x1 ``nin_shortcut`` appears only when the width changes."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = normalize(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = normalize(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(self.dropout(swish(self.norm2(h))))
        skip = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return skip + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all ``h*w`` positions (1x1 conv projections), residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = normalize(channels)
        self.q = nn.Conv2d(channels, channels, kernel_size=1)
        self.k = nn.Conv2d(channels, channels, kernel_size=1)
        self.v = nn.Conv2d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        normed = self.norm(x)
        q = self.q(normed).reshape(b, c, h * w).transpose(1, 2)  # (b, hw, c)
        k = self.k(normed).reshape(b, c, h * w)  # (b, c, hw)
        v = self.v(normed).reshape(b, c, h * w)  # (b, c, hw)
        weights = torch.softmax(torch.bmm(q, k) * (c**-0.5), dim=2)  # (b, query, key)
        out = torch.bmm(v, weights.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Halve the resolution: zero-pad one column right and one row bottom, then a stride-2 3x3 conv.

    The asymmetric padding is what the checkpoint was trained with; symmetric ``padding=1`` would
    shift the sampling grid by half a pixel.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class MidBlock(nn.Module):
    """Residual block, attention, residual block at the lowest resolution (encoder and decoder alike)."""

    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Level(nn.Module):
    """One resolution level: residual blocks (each optionally followed by attention), then resampling.

    ``resample`` is a :class:`Downsample` (stored as ``downsample``) or :class:`Upsample` (stored as
    ``upsample``) so the keys read ``down.{l}.downsample.conv`` / ``up.{l}.upsample.conv``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, num_blocks: int, with_attn: bool, dropout: float
    ) -> None:
        super().__init__()
        self.block = nn.ModuleList(
            ResnetBlock(in_channels if i == 0 else out_channels, out_channels, dropout) for i in range(num_blocks)
        )
        self.attn = nn.ModuleList(AttnBlock(out_channels) for _ in range(num_blocks if with_attn else 0))

    def run_blocks(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.block):
            x = block(x)
            if len(self.attn) > 0:
                x = self.attn[i](x)
        return x


# --------------------------------------------------------------------------------------------------
# Encoder, quantiser, decoder


class Encoder(nn.Module):
    """Pixels (B, in_ch, H, W) -> pre-quantisation latents (B, z_channels, H/f, W/f)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        ch, ch_mult = cfg["ch"], cfg["ch_mult"]
        self.conv_in = nn.Conv2d(cfg["in_ch"], ch, kernel_size=3, padding=1)
        widths_in = [ch] + [ch * m for m in ch_mult[:-1]]
        curr_res = cfg["resolution"]
        self.down = nn.ModuleList()
        for level, mult in enumerate(ch_mult):
            stage = Level(
                widths_in[level], ch * mult, cfg["num_res_blocks"][level],
                curr_res in cfg["attn_resolutions"], cfg["dropout"],
            )  # fmt: skip
            if level != len(ch_mult) - 1:
                stage.downsample = Downsample(ch * mult)
                curr_res //= 2
            self.down.append(stage)
        width = ch * ch_mult[-1]
        self.mid = MidBlock(width, cfg["dropout"])
        self.norm_out = normalize(width)
        self.conv_out = nn.Conv2d(width, cfg["z_channels"], kernel_size=3, padding=1)
        self.quant_conv = nn.Conv2d(cfg["z_channels"], cfg["z_channels"], kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in self.down:
            h = stage.run_blocks(h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = self.mid(h)
        h = self.conv_out(swish(self.norm_out(h)))
        return self.quant_conv(h)


class Decoder(nn.Module):
    """Quantised latents (B, z_channels, h, w) -> pixels (B, out_ch, h*f, w*f), unclamped.

    Levels are stored in ``up`` by level index but run from the deepest (last) to level 0; each
    level uses ``num_res_blocks[level]`` blocks.
    """

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        ch, ch_mult = cfg["ch"], cfg["ch_mult"]
        levels = len(ch_mult)
        width = ch * ch_mult[-1]
        self.post_quant_conv = nn.Conv2d(cfg["z_channels"], cfg["z_channels"], kernel_size=1)
        self.conv_in = nn.Conv2d(cfg["z_channels"], width, kernel_size=3, padding=1)
        self.mid = MidBlock(width, cfg["dropout"])
        curr_res = cfg["resolution"] // 2 ** (levels - 1)
        stages: list[Level] = []  # built deepest first, stored by level index below
        for level in reversed(range(levels)):
            out_width = ch * ch_mult[level]
            stage = Level(
                width, out_width, cfg["num_res_blocks"][level],
                curr_res in cfg["attn_resolutions"], cfg["dropout"],
            )  # fmt: skip
            width = out_width
            if level != 0:
                stage.upsample = Upsample(width)
                curr_res *= 2
            stages.append(stage)
        self.up = nn.ModuleList(reversed(stages))
        self.norm_out = normalize(width)
        self.conv_out = nn.Conv2d(width, cfg["out_ch"], kernel_size=3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(self.post_quant_conv(z)))
        for stage in reversed(self.up):
            h = stage.run_blocks(h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


class LFQuantizer(nn.Module):
    """Look-up-free quantiser: each latent channel becomes one bit (``z > 0``), MSB first.

    The released checkpoint stores the full ``+-1`` codebook (``embedding``) and the bit weights
    (``power_vals``, int64) as persistent buffers, so they are kept here for strict key parity.
    Codes are nevertheless computed arithmetically from ``codebook_dim`` (never read from those
    buffers): that works on the meta device, survives dtype casts of the module, and
    :meth:`check_buffers` verifies at load time that the stored buffers say the same thing.
    """

    def __init__(self, codebook_dim: int) -> None:
        super().__init__()
        self.codebook_dim = codebook_dim
        self.codebook_size = 2**codebook_dim
        self.register_buffer("embedding", self.expected_embedding())
        self.register_buffer("power_vals", self.expected_power_vals())

    def expected_power_vals(self, device: torch.device | None = None) -> torch.Tensor:
        return 2 ** torch.arange(self.codebook_dim - 1, -1, -1, dtype=torch.long, device=device)

    def expected_embedding(self, device: torch.device | None = None) -> torch.Tensor:
        codes = torch.arange(self.codebook_size, dtype=torch.long, device=device)
        return self.codes_to_bits(codes).float() * 2 - 1

    def codes_to_bits(self, codes: torch.Tensor) -> torch.Tensor:
        """(...,) int codes -> (..., codebook_dim) 0/1 bits, channel 0 = most significant."""
        shifts = torch.arange(self.codebook_dim - 1, -1, -1, dtype=torch.long, device=codes.device)
        return (codes.long().unsqueeze(-1) >> shifts) & 1

    def latents_to_codes(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) latents -> (B, h*w) codes, row-major over the grid."""
        if z.dim() != 4 or z.shape[1] != self.codebook_dim:
            raise ValueError(f"latents must be (B, {self.codebook_dim}, h, w), got {tuple(z.shape)}")
        bits = (z > 0).long()
        codes = (bits * self.expected_power_vals(z.device).view(1, -1, 1, 1)).sum(dim=1)
        return codes.reshape(z.shape[0], -1)

    def codes_to_latents(self, codes: torch.Tensor, shape: tuple[int, int] | None = None) -> torch.Tensor:
        """(B, N) codes -> (B, codebook_dim, h, w) latents of +-1; ``shape`` defaults to a square grid."""
        if codes.dim() != 2:
            raise ValueError(f"codes must be (B, N), got shape {tuple(codes.shape)}")
        if codes.dtype.is_floating_point or codes.dtype == torch.bool:
            raise ValueError(f"codes must be an integer tensor, got {codes.dtype}")
        n = codes.shape[1]
        if shape is None:
            side = math.isqrt(n)
            if side * side != n:
                raise ValueError(f"{n} codes per image is not a square grid; pass shape=(h, w)")
            shape = (side, side)
        if shape[0] * shape[1] != n:
            raise ValueError(f"shape {tuple(shape)} does not hold {n} codes")
        if n and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(
                f"codes must lie in [0, {self.codebook_size - 1}], got [{int(codes.min())}, {int(codes.max())}]"
            )
        signs = self.codes_to_bits(codes).float() * 2 - 1  # (B, N, C)
        return signs.reshape(codes.shape[0], shape[0], shape[1], self.codebook_dim).permute(0, 3, 1, 2).contiguous()

    def check_buffers(self, source: str) -> None:
        """After loading: restore ``power_vals`` to int64 and make sure both buffers hold the LFQ codebook.

        The strict loader casts every tensor to fp32, which is exact for these small integers.
        """
        device = self.power_vals.device
        if not torch.equal(self.power_vals.double(), self.expected_power_vals(device).double()):
            raise CheckpointError(f"{source}: key quantize.power_vals does not hold the LFQ bit weights 2^(C-1)..1")
        if not torch.equal(self.embedding.float(), self.expected_embedding(device)):
            raise CheckpointError(f"{source}: key quantize.embedding does not hold the LFQ +-1 codebook")
        self.power_vals = self.power_vals.long()
        self.embedding = self.embedding.float()


# --------------------------------------------------------------------------------------------------
# The tokenizer


class MAGVITv2(nn.Module):
    """Image tokenizer: pixels in [-1, 1] <-> ``codebook_dim``-bit codes on an ``H/f x W/f`` grid."""

    def __init__(self, config: MAGVITv2Config | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else MAGVITv2Config()
        self.encoder = Encoder(self.config.encoder)
        self.decoder = Decoder(self.config.decoder)
        self.quantize = LFQuantizer(self.config.codebook_dim)

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    def encode_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pre-quantisation latents (after ``quant_conv``), (B, codebook_dim, H/f, W/f)."""
        if pixel_values.dim() != 4 or pixel_values.shape[1] != self.config.encoder["in_ch"]:
            raise ValueError(
                f"pixel_values must be (B, {self.config.encoder['in_ch']}, H, W), got {tuple(pixel_values.shape)}"
            )
        weight = self.encoder.conv_in.weight  # callers often hold bf16 pixels for the backbone
        return self.encoder(pixel_values.to(device=weight.device, dtype=weight.dtype))

    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pixels (B, 3, H, W) in [-1, 1] -> int64 codes (B, N), N = (H/f)*(W/f), row-major."""
        return self.quantize.latents_to_codes(self.encode_features(pixel_values))

    def latents_to_codes(self, latents: torch.Tensor) -> torch.Tensor:
        return self.quantize.latents_to_codes(latents)

    def codes_to_latents(self, codes: torch.Tensor, shape: tuple[int, int] | None = None) -> torch.Tensor:
        return self.quantize.codes_to_latents(codes, shape)

    def decode(self, codes: torch.Tensor, shape: tuple[int, int] | None = None) -> torch.Tensor:
        """Codes (B, N) -> pixels (B, 3, h*f, w*f), nominally in [-1, 1] but *not* clamped.

        Like the reference ``decode_code``; clamping belongs to post-processing. ``shape`` is the
        latent grid (h, w) and defaults to square.
        """
        latents = self.quantize.codes_to_latents(codes.to(self.quantize.embedding.device), shape)
        return self.decoder(latents.to(self.decoder.conv_in.weight.dtype))

    # ---------------------------------------------------------------------------------------------
    # Folder I/O

    @classmethod
    def from_pretrained(cls, path: str | Path, device: torch.device | str | None = None) -> MAGVITv2:
        """Load a tokenizer folder strictly (every key present, none extra, shapes equal), in fp32.

        Accepts the released layout (argument-free ``config.json`` + ``pytorch_model.safetensors``)
        and the one :meth:`save_pretrained` writes (nested ``config.json`` + ``model.safetensors``).
        """
        folder = Path(path)
        config = read_magvit_config(folder)
        mapping = weight_files(folder, single_names=WEIGHT_NAMES)
        with torch.device("meta"):
            model = cls(config)
        target = torch.device(device) if device is not None else torch.device("cpu")
        assign_weights_strict(model, mapping, folder, dtype=torch.float32, device=target)
        model.quantize.check_buffers(str(mapping.get("quantize.embedding", folder)))
        return model.eval()

    def save_pretrained(self, path: str | Path) -> None:
        """Write nested ``config.json`` and fp32 ``model.safetensors`` (buffers included, as released)."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_NAME).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n", encoding="utf-8")
        state = {}
        for key, tensor in self.state_dict().items():
            tensor = tensor.detach().to("cpu")
            if tensor.is_floating_point():
                tensor = tensor.float()
            state[key] = tensor.contiguous()
        save_file(state, str(folder / WEIGHT_NAMES[0]), metadata={"format": "pt"})


def read_magvit_config(folder: Path) -> MAGVITv2Config:
    """Parse ``folder/config.json``; every failure is a :class:`CheckpointError` naming the file."""
    if not folder.is_dir():
        raise CheckpointError(f"MAGVIT-v2 folder not found: {folder}")
    config_file = folder / CONFIG_NAME
    raw = read_json_object(config_file, "MAGVIT-v2")
    try:
        return MAGVITv2Config.from_dict(raw)
    except (ConfigError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{config_file}: {exc}") from None
