"""The training image-code cache: one entry per (image, tokenizer weights, resolution)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mmada_bench.model.magvitv2 import MAGVITv2, MAGVITv2Config
from mmada_bench.train.data import ImageTokens


def _vq(seed: int) -> MAGVITv2:
    common = {"ch": 32, "attn_resolutions": [], "resolution": 16, "z_channels": 6, "ch_mult": [1, 2],
              "num_res_blocks": [1, 1]}
    torch.manual_seed(seed)
    return MAGVITv2(MAGVITv2Config(encoder=common, decoder=common, codebook_dim=6)).eval()


def _image(path: Path) -> str:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    return str(path)


def test_cache_keeps_codes_of_each_tokenizer_apart(tmp_path: Path) -> None:
    image = _image(tmp_path / "a.png")
    cache = tmp_path / "cache"
    first, second = _vq(0), _vq(1)
    direct = [ImageTokens(vq, 16, 64).codes({"image": image}) for vq in (first, second)]
    assert not torch.equal(direct[0], direct[1]), "the two random tokenizers must disagree for the test to bite"

    cached_first = ImageTokens(first, 16, 64, str(cache)).codes({"image": image})
    cached_second = ImageTokens(second, 16, 64, str(cache)).codes({"image": image})
    assert torch.equal(cached_first, direct[0])
    assert torch.equal(cached_second, direct[1])  # not the first tokenizer's cached codes
    assert len(list(cache.glob("*.safetensors"))) == 2

    # A fresh reader with the first tokenizer is served from the cache: the file's codes come back.
    reread = ImageTokens(first, 16, 64, str(cache))
    assert torch.equal(reread.codes({"image": image}), direct[0])
    assert reread.tokenizer_digest() == ImageTokens(_vq(0), 16, 64).tokenizer_digest()
