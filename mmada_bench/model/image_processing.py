"""Image pre- and post-processing around the MAGVIT-v2 tokenizer, as the MMaDA reference does it.

The reference uses torchvision transforms on PIL images; torchvision is not available here, so the
same steps are written with PIL + numpy + torch, reproducing torchvision's integer geometry:

* ``Resize(R)`` (shorter side to R): the long side becomes ``int(R * long / short)`` (truncated), and
  the resize itself is PIL's bicubic ``Image.resize`` (what torchvision calls for PIL inputs);
* ``CenterCrop(R)``: offsets ``int(round((size - R) / 2.0))`` (Python's round-half-to-even);
* ``ToTensor``: uint8 HWC -> float32 CHW divided by 255; ``Normalize(0.5, 0.5)``: ``(x - 0.5) / 0.5``.

Post-processing follows the reference's image saving: ``clamp((x + 1) / 2, 0, 1) * 255`` then a
*truncating* cast to uint8 (numpy ``astype``), not rounding, so a pixel can come back one level low.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from mmada_bench.errors import ConfigError, DataError

RESIZE_MODES = ("crop", "squash")
#: Substrings of a file/URL/dataset name for which the reference squashes instead of cropping
#: (``ai2d``/``clevr``/``docvqa``/``geo`` in training, plus ``llava`` in ``inference_mmu.py``).
SQUASH_TAGS = ("ai2d", "clevr", "docvqa", "geo", "llava")

ImageLike = Image.Image | str | Path


def load_image(image: ImageLike) -> Image.Image:
    """Open an image file (or take a PIL image) and return it as RGB, as the reference's ``.convert("RGB")``.

    Raises :class:`DataError` naming the path when the file is missing or not a readable image.
    """
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    path = Path(image)
    if not path.is_file():
        raise DataError(f"image file not found: {path}")
    try:
        with Image.open(path) as opened:
            return opened.convert("RGB")  # convert() forces the pixel data to be read here
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def resize_mode_for(name: str) -> str:
    """``"squash"`` when ``name`` contains one of :data:`SQUASH_TAGS`, else ``"crop"``.

    The match is case-sensitive, exactly like the reference's ``tag in file_name`` test.
    """
    return "squash" if any(tag in name for tag in SQUASH_TAGS) else "crop"


def shorter_side_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """(width, height) after torchvision's ``Resize(resolution)``: shorter side exact, longer truncated."""
    if width <= height:
        return resolution, int(resolution * height / width)
    return int(resolution * width / height), resolution


def center_crop_box(width: int, height: int, resolution: int) -> tuple[int, int, int, int]:
    """PIL crop box (left, top, right, bottom) of torchvision's ``CenterCrop(resolution)``."""
    left = int(round((width - resolution) / 2.0))
    top = int(round((height - resolution) / 2.0))
    return left, top, left + resolution, top + resolution


def to_normalized_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float32 (3, H, W) in [-1, 1] (ToTensor then Normalize(0.5, 0.5))."""
    array = np.array(image, dtype=np.uint8, copy=True)
    tensor = torch.from_numpy(array).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    return tensor.sub(0.5).div(0.5)


def preprocess_image(image: ImageLike, resolution: int, mode: str = "crop") -> torch.Tensor:
    """One image -> float32 (3, R, R) in [-1, 1], ready for :meth:`MAGVITv2.encode`.

    ``mode="crop"``: bicubic resize of the shorter side to R, then centre crop (the default
    ``image_transform``); ``mode="squash"``: bicubic resize straight to R x R, aspect ratio lost
    (``image_transform_squash``). Use :func:`resize_mode_for` to pick the mode the reference would.
    """
    if mode not in RESIZE_MODES:
        raise ConfigError(f"unknown resize mode {mode!r}; use one of {', '.join(RESIZE_MODES)}")
    if not isinstance(resolution, int) or resolution < 1:
        raise ConfigError(f"resolution must be a positive integer, got {resolution!r}")
    rgb = load_image(image)
    width, height = rgb.size
    if mode == "squash":
        target = (resolution, resolution)
    else:
        target = shorter_side_size(width, height, resolution)
    resized = rgb if target == (width, height) else rgb.resize(target, resample=Image.Resampling.BICUBIC)
    if mode == "crop":
        w, h = resized.size
        if w < resolution or h < resolution:  # cannot happen after a shorter-side resize to R
            raise ValueError(f"image of size {w}x{h} is smaller than the crop {resolution}")
        resized = resized.crop(center_crop_box(w, h, resolution))
    return to_normalized_tensor(resized)


def preprocess_images(images: Sequence[ImageLike], resolution: int, mode: str = "crop") -> torch.Tensor:
    """Several images -> float32 (B, 3, R, R), each as :func:`preprocess_image`."""
    if len(images) == 0:
        raise ValueError("preprocess_images needs at least one image")
    return torch.stack([preprocess_image(image, resolution, mode) for image in images])


def postprocess_images(pixels: torch.Tensor) -> list[Image.Image]:
    """Decoder output (B, 3, H, W), nominally in [-1, 1] -> RGB PIL images.

    ``clamp((x + 1) / 2, 0, 1) * 255`` in fp32, then truncation to uint8 (the reference's
    ``numpy.astype(np.uint8)``): values are floored, not rounded.
    """
    if pixels.dim() != 4 or pixels.shape[1] != 3:
        raise ValueError(f"pixels must be (B, 3, H, W), got shape {tuple(pixels.shape)}")
    scaled = torch.clamp((pixels.detach().float() + 1.0) / 2.0, min=0.0, max=1.0) * 255.0
    arrays = scaled.permute(0, 2, 3, 1).cpu().numpy().astype(np.uint8)
    return [Image.fromarray(array) for array in arrays]
