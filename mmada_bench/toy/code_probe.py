"""Can an image's shape and colour be read from its MAGVIT-v2 codes alone?

``python -m mmada_bench.toy.code_probe [--vq FOLDER]`` encodes every toy-world image with the image
tokenizer, trains a small CNN on the training images' code grids (each code as its binary digits, an
8×8×10 map for the toy tokenizer) to name the shape and the colour, and reports its accuracy and
confusion matrix on the test images.

Why: the toy MMaDA reads shapes off the image for only 84-87 % of easy-VQA's shape questions, almost all
of its misses circles taken for rectangles or back. That is either the tokenizer (the codes of a small
circle and a small rectangle alike) or the model. A reader that sees nothing but the codes tells the
two apart: what it reads, the codes carry.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mmada_bench.errors import ConfigError
from mmada_bench.toy.probe_cli import add_output_flags, report


@dataclass(frozen=True)
class CodeProbeResult:
    """Test accuracy of the code reader for one attribute, with ``confusion[truth][predicted]``."""

    attribute: str
    classes: list[str]
    train_images: int
    test_images: int
    accuracy: float
    confusion: list[list[int]]


def code_bit_maps(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """(N, side*side) code indices -> (N, bits, side, side) maps of ±1, one channel per binary digit.

    An LFQ code *is* a sign vector; any fixed digit order serves, since the first convolution mixes channels.
    """
    side = int(round(codes.shape[1] ** 0.5))
    if side * side != codes.shape[1]:
        raise ValueError(f"codes must cover a square grid, got {codes.shape[1]} per image")
    if int(codes.min()) < 0 or int(codes.max()) >= 2**bits:
        raise ValueError(f"codes must lie in [0, {2**bits}), got [{int(codes.min())}, {int(codes.max())}]")
    digits = (codes.long()[..., None] >> torch.arange(bits)) & 1
    return (digits.float() * 2 - 1).view(len(codes), side, side, bits).permute(0, 3, 1, 2).contiguous()


def code_reader(bits: int, classes: int, width: int = 64) -> nn.Module:
    """Two 3×3 convolutions and a max over positions: a shape's edges look alike wherever it sits."""
    return nn.Sequential(
        nn.Conv2d(bits, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(width, classes),
    )


def train_reader(maps: torch.Tensor, labels: torch.Tensor, classes: int, epochs: int = 40, seed: int = 0,
                 batch_size: int = 64, lr: float = 1e-3) -> nn.Module:
    """Adam on cross-entropy, fixed seed: the same codes give the same reader."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # CPU only: no CUDA state to fork
        torch.manual_seed(seed)
        net = code_reader(maps.shape[1], classes)
    optimizer = torch.optim.Adam(net.parameters(), lr)
    for _ in range(epochs):
        order = torch.randperm(len(maps), generator=generator)
        for start in range(0, len(maps), batch_size):
            batch = order[start:start + batch_size]
            loss = nn.functional.cross_entropy(net(maps[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net.eval()


def confusion_matrix(truth: torch.Tensor, predicted: torch.Tensor, classes: int) -> torch.Tensor:
    """``[truth, predicted]`` counts."""
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    return multiclass_confusion_matrix(predicted, truth, num_classes=classes)


def probe_attribute(attribute: str, classes: list[str], train: tuple[torch.Tensor, torch.Tensor],
                    test: tuple[torch.Tensor, torch.Tensor], epochs: int, seed: int) -> CodeProbeResult:
    """Train on ``train`` (maps, labels), report on ``test``."""
    net = train_reader(*train, classes=len(classes), epochs=epochs, seed=seed)
    with torch.inference_mode():
        predicted = net(test[0]).argmax(dim=1)
    confusion = confusion_matrix(test[1], predicted, len(classes))
    return CodeProbeResult(attribute=attribute, classes=classes, train_images=len(train[0]), test_images=len(test[0]),
                           accuracy=float(confusion.diagonal().sum()) / len(test[0]), confusion=confusion.tolist())


def encode_world(vq_model, split: str, batch_size: int = 100, progress: bool = True) -> tuple[torch.Tensor, list]:
    """(codes (N, tokens), world items) of every image of ``split``, through the tokenizer's own preprocessing."""
    from tqdm.auto import tqdm

    from mmada_bench.model import image_processing
    from mmada_bench.toy.world import load_world

    world = load_world(split)
    resolution = int(vq_model.config.encoder["resolution"])
    chunks = []
    for start in tqdm(range(0, len(world), batch_size), desc=f"encode {split}", unit="batch", disable=not progress):
        pixels = image_processing.preprocess_images([item.path for item in world[start:start + batch_size]], resolution)
        with torch.inference_mode():
            chunks.append(vq_model.encode(pixels).long().cpu())
    return torch.cat(chunks), list(world)


def run_code_probe(vq_folder: Path, epochs: int = 40, seed: int = 0, progress: bool = True) -> list[CodeProbeResult]:
    """Shape and colour readers trained on the toy-world training images' codes, scored on the test images."""
    from mmada_bench.model.magvitv2 import MAGVITv2
    from mmada_bench.toy.world import COLORS, SHAPES

    if epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {epochs}")
    if not (vq_folder / "config.json").is_file():
        raise ConfigError(f"{vq_folder}: no MAGVIT-v2 config.json (expected an image tokenizer folder)")
    vq_model = MAGVITv2.from_pretrained(vq_folder).eval()
    bits = vq_model.config.codebook_dim
    splits = {split: encode_world(vq_model, split, progress=progress) for split in ("train", "test")}
    maps = {split: code_bit_maps(codes, bits) for split, (codes, _) in splits.items()}
    results = []
    for attribute, classes in (("shape", list(SHAPES)), ("color", list(COLORS))):
        data = {split: (maps[split], torch.tensor([classes.index(getattr(i, attribute)) for i in world]))
                for split, (_, world) in splits.items()}
        results.append(probe_attribute(attribute, classes, data["train"], data["test"], epochs, seed))
    return results


def _print_table(results: Sequence[CodeProbeResult]) -> None:
    for r in results:
        print(f"{r.attribute}: test accuracy {100 * r.accuracy:.1f} % ({r.test_images} images, trained on "
              f"{r.train_images}); rows are the truth, columns the reading")
        width = max(len(c) for c in r.classes)
        print(" " * (width + 1) + " ".join(f"{c[:6]:>6}" for c in r.classes))
        for name, row in zip(r.classes, r.confusion, strict=True):
            print(f"{name:<{width}} " + " ".join(f"{n:>6}" for n in row))


def main(argv: list[str] | None = None) -> int:
    from mmada_bench.toy.build import ASSETS, THREADS

    parser = argparse.ArgumentParser(prog="python -m mmada_bench.toy.code_probe", description=__doc__.splitlines()[0])
    parser.add_argument("--vq", type=Path, default=ASSETS / "magvitv2",
                        help="MAGVIT-v2 folder (default: the committed toy tokenizer)")
    parser.add_argument("--epochs", type=int, default=40, help="training epochs over the 4,000 images (default: 40)")
    parser.add_argument("--seed", type=int, default=0)
    add_output_flags(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)  # the build's thread count for convolutional nets: same bytes on one machine
    return report(lambda: run_code_probe(args.vq, args.epochs, args.seed, progress=not args.no_progress),
                  args.json, _print_table)


if __name__ == "__main__":
    sys.exit(main())
