"""Image pre/post-processing: torchvision-equivalent geometry, exact values, reference rounding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmada_bench.errors import ConfigError, DataError
from mmada_bench.model.image_processing import (
    center_crop_box,
    load_image,
    postprocess_images,
    preprocess_image,
    preprocess_images,
    resize_mode_for,
    shorter_side_size,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def striped(width: int = 100, height: int = 50) -> Image.Image:
    """Vertical stripes: left quarter red, middle half green, right quarter blue."""
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[:, : width // 4] = RED
    array[:, width // 4 : 3 * width // 4] = GREEN
    array[:, 3 * width // 4 :] = BLUE
    return Image.fromarray(array)


def as_rgb(pixel: torch.Tensor) -> tuple[float, ...]:
    return tuple(round(v, 3) for v in pixel.tolist())


def test_torchvision_geometry_helpers():
    assert shorter_side_size(100, 50, 32) == (64, 32)
    assert shorter_side_size(30, 100, 32) == (32, 106)  # 106.67 truncated, not rounded
    assert shorter_side_size(64, 64, 32) == (32, 32)
    # round-half-to-even offsets, as torchvision's int(round((size - crop) / 2.0))
    assert center_crop_box(33, 32, 32) == (0, 0, 32, 32)
    assert center_crop_box(35, 32, 32) == (2, 0, 34, 32)
    assert center_crop_box(32, 106, 32) == (0, 37, 32, 69)


def test_crop_keeps_the_centre_of_a_wide_image():
    out = preprocess_image(striped(), 32, mode="crop")
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    # resized to 64x32 (red 0-15, green 16-47, blue 48-63), crop columns 16-47: only green survives
    for col in (3, 16, 28):
        assert as_rgb(out[:, 16, col]) == (-1.0, 1.0, -1.0)
    assert float(out[0].max()) < 0.0 and float(out[2].max()) < 0.0  # no red or blue pixel left
    expected = np.asarray(striped().resize((64, 32), Image.Resampling.BICUBIC))[:, 16:48]
    assert torch.equal(out, torch.from_numpy(expected.copy()).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5))


def test_squash_keeps_the_whole_wide_image():
    out = preprocess_image(striped(), 32, mode="squash")
    assert out.shape == (3, 32, 32)
    assert as_rgb(out[:, 16, 1]) == (1.0, -1.0, -1.0)
    assert as_rgb(out[:, 16, 16]) == (-1.0, 1.0, -1.0)
    assert as_rgb(out[:, 16, 30]) == (-1.0, -1.0, 1.0)
    # columns are what squeezing 100 px into 32 predicts: red 0-7, green 8-23, blue 24-31 (edges blur)
    red = (out[0, 16] > 0.9).nonzero().flatten().tolist()
    blue = (out[2, 16] > 0.9).nonzero().flatten().tolist()
    assert red and max(red) <= 7 and blue and min(blue) >= 24


def test_tall_image_crops_vertically():
    array = np.zeros((90, 30, 3), dtype=np.uint8)
    array[:30] = RED
    array[30:60] = GREEN
    array[60:] = BLUE
    out = preprocess_image(Image.fromarray(array), 10, mode="crop")  # -> 10x30, crop rows 10-19
    assert out.shape == (3, 10, 10)
    assert as_rgb(out[:, 5, 5]) == (-1.0, 1.0, -1.0)
    assert float(out[0].max()) < 0.0 and float(out[2].max()) < 0.0


def test_solid_colour_values_are_exact():
    image = Image.new("RGB", (70, 40), (255, 0, 128))
    for mode in ("crop", "squash"):
        out = preprocess_image(image, 16, mode=mode)
        assert out.shape == (3, 16, 16)
        assert torch.all(out[0] == 1.0) and torch.all(out[1] == -1.0)
        assert torch.all(out[2] == (torch.tensor(128.0) / 255 - 0.5) / 0.5)
        assert abs(float(out[2, 0, 0]) - 0.003921569) < 1e-7


def test_batch_and_unknown_mode():
    batch = preprocess_images([striped(), Image.new("L", (20, 20), 255)], 8)
    assert batch.shape == (2, 3, 8, 8)
    assert torch.all(batch[1] == 1.0)  # grey-scale white converted to RGB white
    with pytest.raises(ConfigError, match="resize mode"):
        preprocess_image(striped(), 8, mode="pad")


def test_postprocess_truncates_like_the_reference():
    pixels = torch.tensor([0.0, 1.0, -1.0, 3.0, -3.0, 2 * 200 / 255 - 1, 0.999]).view(1, 1, 1, 7).repeat(1, 3, 1, 1)
    (image,) = postprocess_images(pixels)
    assert image.mode == "RGB" and image.size == (7, 1)
    # 0.0 -> 127.5 -> 127 (truncated, rounding would give 128); out-of-range values are clamped
    assert np.asarray(image)[0, :, 0].tolist()[:5] == [127, 255, 0, 255, 0]
    assert np.asarray(image)[0, 5, 0] in (199, 200)
    assert np.asarray(image)[0, 6, 0] == 254


def test_pre_post_round_trip_within_one_level():
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
    pixels = preprocess_image(Image.fromarray(array), 24).unsqueeze(0)  # same size: no resampling
    back = np.asarray(postprocess_images(pixels)[0]).astype(int)
    diff = array.astype(int) - back
    assert diff.min() >= 0 and diff.max() <= 1  # truncation can only lose, and at most one level


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("ai2d/images/12.png", "squash"),
        ("clevr_val_000123.png", "squash"),
        ("docvqa/doc_1.jpg", "squash"),
        ("geo170k/qa/5.png", "squash"),
        ("llava_bench/001.jpg", "squash"),
        ("coco/val2014/000000000139.jpg", "crop"),
        ("mmmu", "crop"),
        ("AI2D_TEST", "crop"),  # case-sensitive, like the reference's `tag in file_name`
    ],
)
def test_resize_mode_for(name, mode):
    assert resize_mode_for(name) == mode


def test_load_image_errors_name_the_path(tmp_path: Path):
    missing = tmp_path / "nope.png"
    with pytest.raises(DataError, match="not found") as info:
        load_image(missing)
    assert str(missing) in str(info.value)
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    with pytest.raises(DataError, match="cannot read image") as info:
        load_image(broken)
    assert str(broken) in str(info.value)
    with pytest.raises(DataError):
        preprocess_image(missing, 8)


def test_load_image_converts_to_rgb(tmp_path: Path):
    file = tmp_path / "rgba.png"
    Image.new("RGBA", (5, 3), (10, 20, 30, 40)).save(file)
    image = load_image(file)
    assert image.mode == "RGB" and image.size == (5, 3)
    assert image.getpixel((0, 0)) == (10, 20, 30)
    assert load_image(str(file)).getpixel((4, 2)) == (10, 20, 30)
