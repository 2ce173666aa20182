"""The toy judge: a small CNN that names the shape and the colour of a toy-world (easy-VQA) image.

Text-to-image on the toy world is judged the GenEval way -- detect the object, classify its colour,
apply the "colour + object" rule -- but GenEval's Mask2Former and CLIP know nothing of flat 64 px
shapes. This judge plugs into the same interfaces (:class:`~mmada_bench.scorers.geneval.Detector`,
:class:`~mmada_bench.scorers.geneval.ColorClassifier`), so :func:`~mmada_bench.scorers.geneval.
evaluate_image` applies the official rules unchanged:

* ``detect``: one object per image (the toy world has exactly one), its class the shape head's argmax,
  its score that class's probability (always > 1/3 > GenEval's 0.3 threshold, so it is kept), its box
  the whole image (position is not judged in the toy world);
* ``classify``: the colour head's argmax for every object (easy-VQA colours, which include ``gray`` and
  ``teal``, names GenEval's ten-colour list lacks).

The weights are trained by :mod:`mmada_bench.toy.judge_training` on real and MAGVIT-v2-reconstructed
train images and committed in ``mmada_bench/model/assets/toy/judge/`` with its measured accuracy
(``judge.json``); loading is strict (every tensor present, shapes equal).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from mmada_bench.errors import CheckpointError
from mmada_bench.scorers.geneval import Detection

#: The committed judge (built by ``python -m mmada_bench.toy.build --stage judge``).
DEFAULT_JUDGE = Path(__file__).resolve().parent.parent / "model" / "assets" / "toy" / "judge"
CONFIG_NAME, WEIGHTS_NAME, REPORT_NAME = "config.json", "model.safetensors", "judge.json"


@dataclass(frozen=True)
class ToyJudgeConfig:
    """Architecture and label names; ``shapes``/``colors`` give the heads' class order."""

    shapes: tuple[str, ...] = ("circle", "rectangle", "triangle")
    colors: tuple[str, ...] = ("black", "blue", "brown", "gray", "green", "red", "teal", "yellow")
    widths: tuple[int, ...] = (32, 64, 64, 64)
    resolution: int = 64

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str) -> ToyJudgeConfig:
        known = set(cls.__dataclass_fields__)
        if not isinstance(data, Mapping) or set(data) - known:
            raise CheckpointError(f"{source}: toy judge config must be an object with keys {sorted(known)}")
        try:
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
            config = cls(**values)
        except TypeError as exc:
            raise CheckpointError(f"{source}: {exc}") from None
        if not config.shapes or not config.colors or not config.widths or not all(
                isinstance(w, int) and w > 0 for w in config.widths):
            raise CheckpointError(f"{source}: shapes, colors and widths must be non-empty (positive widths)")
        return config


class ToyJudgeNet(nn.Module):
    """Conv-ReLU-pool stages, then average and max pooling (a flat colour patch shows in both) into a
    shape head and a colour head. Input: (B, 3, R, R) in [-1, 1]."""

    def __init__(self, config: ToyJudgeConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width_in = 3
        for i, width in enumerate(config.widths):
            layers += [nn.Conv2d(width_in, width, kernel_size=3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            if i < len(config.widths) - 1:
                layers.append(nn.MaxPool2d(2))
            width_in = width
        self.features = nn.Sequential(*layers)
        self.shape_head = nn.Linear(2 * width_in, len(config.shapes))
        self.color_head = nn.Linear(2 * width_in, len(config.colors))

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(pixels)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.shape_head(pooled), self.color_head(pooled)


@dataclass(frozen=True)
class Verdict:
    """The judge's reading of one image."""

    shape: str
    shape_prob: float
    color: str
    color_prob: float


def images_to_pixels(images: Sequence[Image.Image], resolution: int) -> torch.Tensor:
    """PIL images -> (N, 3, R, R) in [-1, 1]; other sizes are resized (bicubic) first."""
    arrays = []
    for image in images:
        rgb = image.convert("RGB")
        if rgb.size != (resolution, resolution):
            rgb = rgb.resize((resolution, resolution), Image.BICUBIC)
        arrays.append(np.asarray(rgb, dtype=np.uint8))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


class ToyJudge:
    """The trained judge: a :class:`Detector` and a :class:`ColorClassifier` in one object."""

    def __init__(self, net: ToyJudgeNet, source: str = "") -> None:
        self.net = net.eval()
        self.config = net.config
        self.source = source

    @classmethod
    def from_pretrained(cls, folder: str | Path = DEFAULT_JUDGE) -> ToyJudge:
        """Load ``config.json`` + ``model.safetensors`` strictly; errors name the file and the key."""
        folder = Path(folder)
        config_file, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        for path in (config_file, weights):
            if not path.is_file():
                raise CheckpointError(f"toy judge file not found: {path}")
        try:
            raw = json.loads(config_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise CheckpointError(f"{config_file}: not valid JSON ({exc})") from None
        net = ToyJudgeNet(ToyJudgeConfig.from_dict(raw, str(config_file)))
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{weights}: cannot read safetensors ({exc})") from None
        expected = net.state_dict()
        for key in sorted(set(expected) | set(state)):
            if key not in state:
                raise CheckpointError(f"{weights}: missing key {key}")
            if key not in expected:
                raise CheckpointError(f"{weights}: unexpected key {key}")
            if state[key].shape != expected[key].shape:
                raise CheckpointError(f"{weights}: key {key} has shape {tuple(state[key].shape)}, "
                                      f"expected {tuple(expected[key].shape)}")
        net.load_state_dict(state, strict=True)
        return cls(net, str(folder))

    def save_pretrained(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()}
        (folder / CONFIG_NAME).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})

    @torch.no_grad()
    def logits(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(shape logits, colour logits) for (N, 3, R, R) pixels in [-1, 1]."""
        return self.net(pixels.float())

    def judge(self, images: Sequence[Image.Image]) -> list[Verdict]:
        """Shape and colour of each image, with the heads' probabilities."""
        if not images:
            return []
        shape_logits, colour_logits = self.logits(images_to_pixels(images, self.config.resolution))
        shape_p, colour_p = shape_logits.softmax(-1), colour_logits.softmax(-1)
        out = []
        for sp, cp in zip(shape_p, colour_p, strict=True):
            s, c = int(sp.argmax()), int(cp.argmax())
            out.append(Verdict(self.config.shapes[s], float(sp[s]), self.config.colors[c], float(cp[c])))
        return out

    # -- GenEval protocols -------------------------------------------------------------------------
    def detect(self, image: Image.Image) -> Mapping[str, Sequence[Detection]]:
        verdict = self.judge([image])[0]
        box = (0.0, 0.0, float(image.width - 1), float(image.height - 1))
        return {verdict.shape: [Detection(box=box, score=verdict.shape_prob)]}

    def classify(self, image: Image.Image, objects: Sequence[Detection], classname: str) -> list[str]:
        if not objects:
            return []
        return [self.judge([image])[0].color] * len(objects)
