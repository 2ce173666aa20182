"""ImageReward (THUDM/ImageReward v1.0) from the user's local files, without the ``image-reward`` package.

Why not the package: it downloads its weights and ``bert-base-uncased`` at run time, pins timm 0.6
and fairscale, needs torchvision (which does not import next to CPU torch 2.13), and imports
re-exports that transformers removed in 4.56. The model itself is small: a BLIP ViT image encoder,
BLIP's BERT "MED" text encoder whose layers cross-attend to all image tokens, and an MLP on the
text [CLS] state. transformers ships both BLIP towers (``BlipVisionModel``, ``BlipTextModel``), so
only the key renaming, the MLP head and the preprocessing live here.

The reward is ``(mlp(text_cls) - mean) / std`` with ImageReward's hard-coded mean/std, so scores are
roughly N(0, 1) over its training data. Preprocessing follows ImageReward's torchvision pipeline,
stated in plain PIL (bit-identical): bicubic resize of the short side to 224 *in the image's own
mode*, centre crop with ``round`` offsets, then RGB, /255 and CLIP mean/std.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmada_bench.errors import CheckpointError, ConfigError, DataError

__all__ = [
    "MAX_PROMPT_TOKENS",
    "REWARD_MEAN",
    "REWARD_STD",
    "ImageRewardModel",
    "ImageRewardScorer",
    "load_image_reward_state_dict",
    "preprocess_image",
]

# Hard-coded in ImageReward's model class; the checkpoint does not carry them.
REWARD_MEAN = 0.16717362830052426
REWARD_STD = 1.0333394966054072
MAX_PROMPT_TOKENS = 35
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# ViT-L/16 as built by ImageReward. Head count is not recoverable from tensor shapes; ViT-B and
# ViT-L both use 64-dim heads, so that is the default rule.
VIT_HEAD_DIM = 64
VIT_LAYER_NORM_EPS = 1e-6


def _first_line(exc: BaseException) -> str:
    """Keep user-facing errors to one line even when a library raises a multi-line message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ----------------------------------------------------------------------------------------------
# Preprocessing
# ----------------------------------------------------------------------------------------------


def _to_pil(image: Any, index: int = 0) -> Any:
    """Accept a PIL image, a path, a uint8 HxW[xC] array or a uint8 3xHxW tensor; return a PIL image.

    The mode is kept (RGBA stays RGBA) because ImageReward resizes before converting to RGB.
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    if isinstance(image, (str, Path)):
        try:
            return Image.open(image)
        except OSError as exc:
            raise DataError(f"image {index}: cannot open {image}: {exc}") from exc
    if isinstance(image, Tensor):
        if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
            raise DataError(
                f"image {index}: expected a uint8 3xHxW tensor, got dtype {image.dtype} shape {tuple(image.shape)}"
            )
        image = image.permute(1, 2, 0).cpu().numpy()
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise DataError(
                f"image {index}: expected a uint8 HxW or HxWxC array, got {image.dtype} {image.shape}"
            )
        return Image.fromarray(image)
    raise DataError(
        f"image {index}: unsupported type {type(image).__name__} (use PIL, a path or uint8 array)"
    )


def preprocess_image(image: Any, size: int = 224) -> Tensor:
    """ImageReward's image transform as a float32 ``[3, size, size]`` tensor.

    Order matters and differs from the CLIP Score processor: the resize happens in the image's own
    mode (PIL premultiplies alpha for RGBA), the crop offset uses Python ``round`` (half to even,
    torchvision's rule), and the RGB conversion comes last.
    """
    from PIL import Image

    im = _to_pil(image)
    w, h = im.size
    new_w, new_h = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    if (new_w, new_h) != (w, h):
        im = im.resize((new_w, new_h), Image.BICUBIC)
    top = int(round((new_h - size) / 2.0))
    left = int(round((new_w - size) / 2.0))
    im = im.crop((left, top, left + size, top + size)).convert("RGB")
    pixels = torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1).contiguous()
    pixels = pixels.to(torch.float32).div(255)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float32).view(3, 1, 1)
    return pixels.sub(mean).div(std)


# ----------------------------------------------------------------------------------------------
# Checkpoint: key names of the official module <-> transformers' BLIP towers
# ----------------------------------------------------------------------------------------------

_VIT = "blip.visual_encoder."
_TEXT = "blip.text_encoder."
_HEAD = "mlp."
# Present in official checkpoints but unused for scoring (ITC projections, a position-id buffer).
_IGNORED = re.compile(r"blip\.(vision_proj|text_proj)\..*|blip\.text_encoder\.embeddings\.position_ids")

_VIT_TOP = {
    "cls_token": "embeddings.class_embedding",
    "pos_embed": "embeddings.position_embedding",
    "patch_embed.proj.weight": "embeddings.patch_embedding.weight",
    "patch_embed.proj.bias": "embeddings.patch_embedding.bias",
    "norm.weight": "post_layernorm.weight",
    "norm.bias": "post_layernorm.bias",
}
_VIT_BLOCK = {
    "norm1": "layer_norm1",
    "attn.qkv": "self_attn.qkv",
    "attn.proj": "self_attn.projection",
    "norm2": "layer_norm2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_VIT_BLOCK_INV = {v: k for k, v in _VIT_BLOCK.items()}
_VIT_TOP_INV = {v: k for k, v in _VIT_TOP.items()}


def _to_module_key(key: str) -> str | None:
    """Official checkpoint key -> key of :class:`ImageRewardModel`; None if it has no place there."""
    if key.startswith(_VIT):
        rest = key[len(_VIT) :]
        if rest in _VIT_TOP:
            return "vision." + _VIT_TOP[rest]
        m = re.fullmatch(r"blocks\.(\d+)\.(.+)\.(weight|bias)", rest)
        if m and m.group(2) in _VIT_BLOCK:
            return f"vision.encoder.layers.{m.group(1)}.{_VIT_BLOCK[m.group(2)]}.{m.group(3)}"
        return None
    if key.startswith(_TEXT):
        return "text." + key[len(_TEXT) :]  # transformers' BlipTextModel keeps med.py's names
    if key.startswith(_HEAD):
        return "head." + key[len(_HEAD) :]
    return None


def _to_checkpoint_key(key: str) -> str:
    """Inverse of :func:`_to_module_key`, so errors name tensors the way the user's file does."""
    if key.startswith("vision."):
        rest = key[len("vision.") :]
        if rest in _VIT_TOP_INV:
            return _VIT + _VIT_TOP_INV[rest]
        m = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", rest)
        if m and m.group(2) in _VIT_BLOCK_INV:
            return f"{_VIT}blocks.{m.group(1)}.{_VIT_BLOCK_INV[m.group(2)]}.{m.group(3)}"
    if key.startswith("text."):
        return _TEXT + key[len("text.") :]
    if key.startswith("head."):
        return _HEAD + key[len("head.") :]
    return key


def load_image_reward_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read ``ImageReward.pt`` with ``torch.load(weights_only=True)``, or a ``.safetensors`` copy.

    ``weights_only`` because a user-supplied pickle must never run code; the official file is a
    plain ``state_dict``, which loads this way.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"ImageReward weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any reader failure (pickle, zip, header) is the same user problem
        raise CheckpointError(
            f"ImageReward weights file {path} cannot be read as a state dict: {_first_line(exc)}"
        ) from exc
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"ImageReward weights file {path} is not a plain state dict of tensors")
    if not any(k.startswith(_VIT) for k in state):
        raise CheckpointError(
            f"ImageReward weights file {path} has no {_VIT}* tensors; is it an ImageReward checkpoint?"
        )
    return state


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------


class _RewardHead(nn.Module):
    """ImageReward's MLP: Linear layers at indices 0, 2, 4, 6, 7 of ``layers`` with Dropout between.

    There are no activations in the official head; the widths come from the checkpoint. The layout
    is kept so that parameter names equal the checkpoint's ``mlp.layers.N.*``.
    """

    def __init__(self, shapes: dict[int, tuple[int, int]]) -> None:
        super().__init__()
        last = max(shapes)
        modules = [
            nn.Linear(shapes[i][1], shapes[i][0]) if i in shapes else nn.Dropout(0.0) for i in range(last + 1)
        ]
        self.layers = nn.Sequential(*modules)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


def _head_shapes(state: dict[str, Tensor], path: Path, text_width: int) -> dict[int, tuple[int, int]]:
    """Widths of the head's Linear layers by index; they must chain from the text width down to 1."""
    shapes: dict[int, tuple[int, int]] = {}
    for key, value in state.items():
        m = re.fullmatch(r"mlp\.layers\.(\d+)\.weight", key)
        if m:
            shapes[int(m.group(1))] = (int(value.shape[0]), int(value.shape[1]))
    if not shapes:
        raise CheckpointError(
            f"ImageReward weights file {path} has no mlp.layers.N.weight tensors (reward head)"
        )
    width = text_width
    for index in sorted(shapes):
        out_features, in_features = shapes[index]
        if in_features != width:
            raise CheckpointError(
                f"ImageReward weights file {path}: mlp.layers.{index}.weight has shape "
                f"{(out_features, in_features)}, expected in-features {width}"
            )
        width = out_features
    if width != 1:
        raise CheckpointError(
            f"ImageReward weights file {path}: the reward head ends in {width} outputs, not 1"
        )
    return shapes


class ImageRewardModel(nn.Module):
    """BLIP ViT + MED text encoder with cross-attention + reward MLP, built from an official state dict."""

    def __init__(self, vision_config: Any, text_config: Any, head_shapes: dict[int, tuple[int, int]]) -> None:
        super().__init__()
        from transformers import BlipTextModel, BlipVisionModel

        self.vision = BlipVisionModel(vision_config)
        self.text = BlipTextModel(text_config, add_pooling_layer=False)
        self.head = _RewardHead(head_shapes)

    @classmethod
    def from_checkpoint(
        cls,
        state: dict[str, Tensor],
        med_config: dict[str, Any],
        vit_num_heads: int | None = None,
        path: Path | str = "<state dict>",
    ) -> ImageRewardModel:
        """Size both towers from the tensors and ``med_config.json``, then load with a strict key check.

        The ViT's width, depth, MLP width, patch and image size are read from tensor shapes (the
        official code hard-codes ViT-L/16 at 224). ``encoder_width`` in ``med_config`` is ignored, as
        ImageReward overwrites it with the ViT width.
        """
        from transformers import BlipTextConfig, BlipVisionConfig

        path = Path(path)
        try:
            cls_token = state[_VIT + "cls_token"]
            pos = state[_VIT + "pos_embed"]
            patch = state[_VIT + "patch_embed.proj.weight"]
            fc1 = state[_VIT + "blocks.0.mlp.fc1.weight"]
        except KeyError as exc:
            raise CheckpointError(f"ImageReward weights file {path} is missing tensor {exc.args[0]}") from exc
        width = int(cls_token.shape[-1])
        depth = 1 + max(
            int(m.group(1)) for k in state if (m := re.match(re.escape(_VIT) + r"blocks\.(\d+)\.", k))
        )
        patch_size = int(patch.shape[-1])
        grid = round((int(pos.shape[1]) - 1) ** 0.5)
        heads = vit_num_heads or max(1, width // VIT_HEAD_DIM)
        if width % heads:
            raise ConfigError(f"vit_num_heads={heads} does not divide the ViT width {width} of {path}")
        vision_config = BlipVisionConfig(
            hidden_size=width,
            intermediate_size=int(fc1.shape[0]),
            num_hidden_layers=depth,
            num_attention_heads=heads,
            image_size=grid * patch_size,
            patch_size=patch_size,
            hidden_act="gelu",
            layer_norm_eps=VIT_LAYER_NORM_EPS,
            attention_dropout=0.0,
        )
        try:
            text_config = BlipTextConfig(
                vocab_size=int(med_config["vocab_size"]),
                hidden_size=int(med_config["hidden_size"]),
                encoder_hidden_size=width,
                intermediate_size=int(med_config["intermediate_size"]),
                num_hidden_layers=int(med_config["num_hidden_layers"]),
                num_attention_heads=int(med_config["num_attention_heads"]),
                max_position_embeddings=int(med_config.get("max_position_embeddings", 512)),
                hidden_act=str(med_config.get("hidden_act", "gelu")),
                layer_norm_eps=float(med_config.get("layer_norm_eps", 1e-12)),
                pad_token_id=int(med_config.get("pad_token_id", 0)),
                # Generation ids are unused for scoring; BlipTextConfig's defaults (30522, 102)
                # would be out of range for a smaller vocabulary and only trigger warnings.
                bos_token_id=None,
                eos_token_id=None,
                sep_token_id=None,
                hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0,
                is_decoder=True,  # builds the cross-attention blocks; forward runs bidirectionally
            )
        except KeyError as exc:
            raise ConfigError(f"med_config is missing the key {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"med_config has an invalid value: {_first_line(exc)}") from exc
        # Eager attention: BlipText adds the mask to the scores, which needs an additive float mask.
        vision_config._attn_implementation = "eager"
        text_config._attn_implementation = "eager"
        head = _head_shapes(state, path, text_config.hidden_size)
        try:
            model = cls(vision_config, text_config, head)
        except ValueError as exc:  # e.g. heads that do not divide the hidden size
            raise ConfigError(
                f"ImageReward model cannot be built from med_config: {_first_line(exc)}"
            ) from exc
        model.load_checkpoint(state, path)
        return model.eval()

    def load_checkpoint(self, state: dict[str, Tensor], path: Path) -> None:
        """Rename and copy tensors; every model tensor must be present with the right shape."""
        expected = self.state_dict()
        mapped: dict[str, Tensor] = {}
        unexpected: list[str] = []
        for key, value in state.items():
            if _IGNORED.fullmatch(key):
                continue
            new = _to_module_key(key)
            if new is None or new not in expected:
                if key.startswith((_VIT, _TEXT, _HEAD)):
                    unexpected.append(key)
                continue  # outside ImageReward's scoring modules: the official loader ignores it too
            if tuple(value.shape) != tuple(expected[new].shape):
                raise CheckpointError(
                    f"ImageReward weights file {path}: {key} has shape {tuple(value.shape)}, expected "
                    f"{tuple(expected[new].shape)} (check med_config.json and vit_num_heads)"
                )
            mapped[new] = value
        missing = [_to_checkpoint_key(k) for k in expected if k not in mapped]
        if missing:
            raise CheckpointError(
                f"ImageReward weights file {path} is missing {len(missing)} tensors, e.g. {', '.join(missing[:3])}"
            )
        if unexpected:
            raise CheckpointError(
                f"ImageReward weights file {path} has {len(unexpected)} unexpected tensors, e.g. "
                f"{', '.join(unexpected[:3])} (does med_config.json match the checkpoint?)"
            )
        self.load_state_dict(mapped, strict=True)

    def image_embeds(self, pixel_values: Tensor) -> Tensor:
        """All ViT tokens after the final LayerNorm, ``[B, 1 + patches, width]``."""
        return self.vision(pixel_values=pixel_values).last_hidden_state

    def text_cls(self, input_ids: Tensor, attention_mask: Tensor, image_embeds: Tensor) -> Tensor:
        """[CLS] state of the text encoder cross-attending to every image token, ``[B, hidden]``."""
        image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
        out = self.text(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_mask,
            is_decoder=False,
        )
        return out.last_hidden_state[:, 0, :].float()

    def forward(self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Raw (unstandardised) reward, ``[B]``."""
        cls_state = self.text_cls(input_ids, attention_mask, self.image_embeds(pixel_values))
        return self.head(cls_state).squeeze(-1)


# ----------------------------------------------------------------------------------------------
# Scorer
# ----------------------------------------------------------------------------------------------


def _load_tokenizer(tokenizer_dir: Path) -> Any:
    """``bert-base-uncased``-style tokenizer plus BLIP's two added tokens, as ``init_tokenizer()`` does.

    [DEC] and [ENC] never appear in scoring inputs, but adding them keeps ids identical if a prompt
    contains those literal strings.
    """
    from transformers import BertTokenizer

    if not tokenizer_dir.is_dir():
        raise ConfigError(
            f"ImageReward tokenizer folder {tokenizer_dir} does not exist or is not a directory"
        )
    if not ((tokenizer_dir / "vocab.txt").is_file() or (tokenizer_dir / "tokenizer.json").is_file()):
        raise ConfigError(f"ImageReward tokenizer folder {tokenizer_dir} is missing vocab.txt")
    try:
        tokenizer = BertTokenizer.from_pretrained(tokenizer_dir)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"ImageReward tokenizer folder {tokenizer_dir} could not be loaded: {_first_line(exc)}"
        ) from exc
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tokenizer


def _load_med_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"ImageReward med_config file {path} does not exist")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"ImageReward med_config file {path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"ImageReward med_config file {path} must hold a JSON object")
    return config


class ImageRewardScorer:
    """Score images for a prompt with ImageReward from local ``ImageReward.pt``, ``med_config.json`` and tokenizer.

    ``vit_num_heads`` only needs setting for non-standard ViTs (tests use a tiny one): the default,
    width // 64, gives the 16 heads of the real ViT-L checkpoint.
    """

    def __init__(
        self,
        weights: str | Path,
        med_config: str | Path,
        tokenizer_dir: str | Path,
        device: str = "cpu",
        vit_num_heads: int | None = None,
        batch_size: int = 8,
    ) -> None:
        self.device = device
        self.batch_size = max(1, int(batch_size))
        med = _load_med_config(Path(med_config))
        self.tokenizer = _load_tokenizer(Path(tokenizer_dir))
        state = load_image_reward_state_dict(weights)
        self.model = ImageRewardModel.from_checkpoint(state, med, vit_num_heads, Path(weights)).to(device)
        self.image_size = int(self.model.vision.config.image_size)

    def tokenize(self, prompt: str) -> dict[str, Tensor]:
        """``input_ids``/``attention_mask`` ``[1, 35]``: padded to and truncated at 35 tokens, as ImageReward does."""
        enc = self.tokenizer(
            prompt, padding="max_length", truncation=True, max_length=MAX_PROMPT_TOKENS, return_tensors="pt"
        )
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def preprocess(self, image: Any) -> Tensor:
        """ImageReward's transform of one image, ``[3, 224, 224]`` float32."""
        return preprocess_image(image, self.image_size)

    @torch.no_grad()
    def raw_rewards(self, prompt: str, images: Sequence[Any]) -> Tensor:
        """MLP outputs before standardisation, ``[N]`` float32 on CPU."""
        if not isinstance(prompt, str):
            raise DataError(f"prompt must be a string, got {type(prompt).__name__}")
        if len(images) == 0:
            raise DataError("no images to score")
        tokens = self.tokenize(prompt)
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            pixels = torch.stack(
                [preprocess_image(_to_pil(im, start + i), self.image_size) for i, im in enumerate(chunk)]
            )
            n = pixels.shape[0]
            out.append(
                self.model(
                    pixels.to(self.device),
                    tokens["input_ids"].expand(n, -1).to(self.device),
                    tokens["attention_mask"].expand(n, -1).to(self.device),
                ).cpu()
            )
        return torch.cat(out)

    def score(self, prompt: str, images: Sequence[Any] | Any) -> list[float]:
        """Standardised ImageReward per image (higher is better). A single image also gives a one-item list."""
        images = self._as_list(images)
        rewards = (self.raw_rewards(prompt, images) - REWARD_MEAN) / REWARD_STD
        return [float(r) for r in rewards]

    def rank(self, prompt: str, images: Sequence[Any]) -> tuple[list[int], list[float]]:
        """ImageReward's ``inference_rank``: ``(ranks, rewards)`` with rank 1 for the best image."""
        rewards = self.score(prompt, self._as_list(images))
        order = sorted(range(len(rewards)), key=lambda i: -rewards[i])  # stable: ties keep input order
        ranks = [0] * len(rewards)
        for position, index in enumerate(order, start=1):
            ranks[index] = position
        return ranks, rewards

    @staticmethod
    def _as_list(images: Sequence[Any] | Any) -> list[Any]:
        from PIL import Image

        if isinstance(images, (Image.Image, str, Path)) or (
            isinstance(images, (np.ndarray, Tensor)) and images.ndim <= 3
        ):
            return [images]
        return list(images)
