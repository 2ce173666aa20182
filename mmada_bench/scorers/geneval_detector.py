"""GenEval's detector on transformers alone: Mask2Former instance segmentation from a local folder.

GenEval detects objects with mmdet 2.x's Mask2Former (Swin-S, COCO instance), which needs mmcv-full
1.7 and torch 1.12 -- what users cannot build (djghosh13/geneval#1, #8). The same model family runs in
transformers (``Mask2FormerForUniversalSegmentation``, e.g. ``facebook/mask2former-swin-small-coco-instance``
saved to a folder), so this module turns its instance predictions into what GenEval's rules read:
per class, every instance's box, score and binary mask (:class:`~mmada_bench.scorers.geneval.Detection`).

Post-processing mirrors mmdet's Mask2Former instance head: scores are the class softmax (no-object
dropped) times the mean mask probability inside the binary mask, the top ``num_queries`` (class,
query) pairs are kept, and each box is the extent of its mask (mmdet's ``mask2bbox``). No score
threshold is applied here: the rules apply GenEval's own (0.3, or 0.9 for counting prompts).

Class names: a detector with COCO's 80 classes uses GenEval's spellings in class-index order
(:data:`~mmada_bench.scorers.geneval.COCO_CLASSES`), since the prompts name classes that way; any
other label set is used as the checkpoint's ``id2label`` gives it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mmada_bench.errors import ConfigError
from mmada_bench.scorers.geneval import COCO_CLASSES, ClipColorClassifier, Detection

#: What a detector folder must hold (``save_pretrained`` of the model and of its image processor).
DETECTOR_FILES = ("config.json", "preprocessor_config.json")
DETECTOR_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def check_detector_folder(folder: Path) -> None:
    """Refuse a folder that cannot hold a transformers Mask2Former, in one line, before any model loads."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"GenEval detector folder {folder} does not exist")
    for name in DETECTOR_FILES:
        if not (folder / name).is_file():
            raise ConfigError(f"GenEval detector folder {folder} is missing {name} (save_pretrained of a "
                              "Mask2FormerForUniversalSegmentation and its image processor)")
    if not any((folder / name).is_file() for name in DETECTOR_WEIGHTS) and not list(folder.glob("*.safetensors")):
        raise ConfigError(f"GenEval detector folder {folder} has no weights (model.safetensors)")


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """``(x1, y1, x2, y2)`` enclosing a binary mask, right/bottom exclusive (mmdet's ``mask2bbox``)."""
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    y = np.flatnonzero(rows)
    x = np.flatnonzero(cols)
    if not len(x):
        return (0.0, 0.0, 0.0, 0.0)
    return (float(x[0]), float(y[0]), float(x[-1] + 1), float(y[-1] + 1))


class Mask2FormerDetector:
    """:class:`~mmada_bench.scorers.geneval.Detector` over a local transformers Mask2Former folder."""

    def __init__(self, model: Any, processor: Any, classnames: Sequence[str], *, device: str = "cpu") -> None:
        self.model = model.eval().to(device)
        self.processor = processor
        self.classnames = tuple(classnames)
        self.device = device

    @classmethod
    def from_pretrained(cls, folder: str | Path, *, device: str = "cpu") -> Mask2FormerDetector:
        """Load model and image processor from ``folder`` (never from the hub)."""
        from transformers import Mask2FormerForUniversalSegmentation, Mask2FormerImageProcessor

        folder = Path(folder)
        check_detector_folder(folder)
        try:
            model = Mask2FormerForUniversalSegmentation.from_pretrained(folder, local_files_only=True)
            processor = Mask2FormerImageProcessor.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"GenEval detector folder {folder}: cannot load a Mask2Former from it "
                              f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
        labels = model.config.id2label
        count = len(labels)
        names = COCO_CLASSES if count == len(COCO_CLASSES) else tuple(labels[i] for i in range(count))
        return cls(model, processor, names, device=device)

    def detect(self, image: Image.Image) -> Mapping[str, Sequence[Detection]]:
        """Every predicted instance, grouped by class name: box from the mask, score, binary mask."""
        import torch

        image = image.convert("RGB")
        inputs = self.processor(images=[image], return_tensors="pt")
        with torch.inference_mode():
            outputs = self.model(pixel_values=inputs["pixel_values"].to(self.device))
        result = self.processor.post_process_instance_segmentation(
            outputs, threshold=0.0, target_sizes=[(image.height, image.width)], return_binary_maps=True,
        )[0]
        found: dict[str, list[Detection]] = {}
        maps = result["segmentation"]
        if maps is None:
            return found
        masks = maps.bool().cpu().numpy()
        for k, info in enumerate(result["segments_info"]):
            mask = masks[k]
            name = self.classnames[int(info["label_id"])]
            found.setdefault(name, []).append(Detection(mask_box(mask), float(info["score"]), mask))
        return found


def load_geneval_scorers(detector: str | Path, clip: str | Path | None, *,
                         device: str = "cpu") -> tuple[Mask2FormerDetector, ClipColorClassifier | None]:
    """The in-project GenEval evaluator's two models: Mask2Former (boxes, masks) and CLIP (colours)."""
    colour = ClipColorClassifier.from_pretrained(clip, device=device) if clip is not None else None
    return Mask2FormerDetector.from_pretrained(detector, device=device), colour


def build_random_detector(folder: str | Path, *, image_size: int = 64, num_queries: int = 10, seed: int = 0) -> Path:
    """Save a tiny randomly initialised Mask2Former (80 COCO classes, Swin backbone) and its image
    processor to ``folder``: what tests and offline demos load in place of the real detector. Its
    detections are those of a random model; the plumbing they go through is the real one."""
    import torch
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessor,
        SwinConfig,
    )

    backbone = SwinConfig(image_size=image_size, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1],
                          num_heads=[1, 1, 1, 1], window_size=2,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    labels = dict(enumerate(COCO_CLASSES))
    config = Mask2FormerConfig(
        backbone_config=backbone, feature_size=32, mask_feature_size=32, hidden_dim=32, encoder_feedforward_dim=32,
        dim_feedforward=32, encoder_layers=1, decoder_layers=2, num_attention_heads=2, num_queries=num_queries,
        id2label=labels, label2id={v: k for k, v in labels.items()},
    )
    torch.manual_seed(seed)
    folder = Path(folder)
    Mask2FormerForUniversalSegmentation(config).save_pretrained(folder)
    Mask2FormerImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return folder
