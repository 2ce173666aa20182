"""Does the model *compare* a yes/no question's attribute with the image, or answer from the wording?

``python -m mmada_bench.toy.probe --model toy-stage1 [--images 120]`` asks every test image the same
yes/no question once per colour ("is there a red shape?", "is there a blue shape?", ...) and once per
shape, teacher-forced with the benchmark's own prompt (:meth:`MMaDAPrompting.mmu_gen`), and reads the
yes-minus-no logit margin at the first answer position. A model that compares gives the matching
attribute a higher margin than the others: AUC (match against mismatch margins) near 1 and the match
ranked first on most images. A model that answers from the wording gives every attribute the same
margin: AUC 0.5, and a margin spread across images and attributes near zero.

Why a probe and not the benchmark: easy-VQA's yes/no accuracy cannot tell the two apart, because
the question template alone earns 82.5 % of it (88 % of "is there a <colour> shape?" are "no"). The
toy models answer at exactly that ceiling; this probe shows whether anything under it moves.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mmada_bench.errors import ConfigError
from mmada_bench.toy.probe_cli import add_output_flags, report

#: Question per attribute kind: the two positive wordings easy-VQA uses most, ``{}`` is the attribute.
TEMPLATES = {"color": "is there a {} shape?", "shape": "is there a {}?"}


@dataclass(frozen=True)
class ProbeResult:
    """Per attribute kind: match-vs-mismatch AUC, share of images whose true attribute ranks first, and
    the margins' mean and spread (logit(yes) - logit(no))."""

    kind: str
    images: int
    auc: float
    match_ranked_first: float
    chance_ranked_first: float
    margin_match_mean: float
    margin_mismatch_mean: float
    margin_std: float


def match_auc(match: torch.Tensor, mismatch: torch.Tensor) -> float:
    """P(a match margin > a mismatch margin), ties counted half: the Mann-Whitney AUC."""
    if match.numel() == 0 or mismatch.numel() == 0:
        raise ValueError("match_auc needs at least one match and one mismatch margin")
    diff = match.reshape(-1, 1) - mismatch.reshape(1, -1)
    return float((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean())


def summarise(kind: str, margins: torch.Tensor, truth: torch.Tensor) -> ProbeResult:
    """``margins`` (images, attributes); ``truth`` (images,) the index of each image's own attribute."""
    if margins.ndim != 2 or margins.shape[1] < 2 or truth.shape != (margins.shape[0],):
        raise ValueError(f"margins must be (images, >=2 attributes) with one truth per image, got "
                         f"{tuple(margins.shape)} and {tuple(truth.shape)}")
    own = torch.nn.functional.one_hot(truth, margins.shape[1]).bool()
    return ProbeResult(
        kind=kind, images=margins.shape[0], auc=match_auc(margins[own], margins[~own]),
        match_ranked_first=float((margins.argmax(dim=1) == truth).double().mean()),
        chance_ranked_first=1.0 / margins.shape[1],
        margin_match_mean=float(margins[own].mean()), margin_mismatch_mean=float(margins[~own].mean()),
        margin_std=float(margins.std()),
    )


def answer_margins(bundle, codes: torch.Tensor, questions: Sequence[str]) -> torch.Tensor:
    """logit("yes") - logit("no") at the first answer position of each (image codes, question) pair,
    the answer fully masked (what the sampler's first step sees)."""
    from mmada_bench.model.prompting import MMaDAPrompting

    tokenizer, config = bundle.tokenizer, bundle.config
    yes, no = (tokenizer(word, add_special_tokens=False).input_ids for word in ("yes", "no"))
    if len(yes) != 1 or len(no) != 1:
        raise ConfigError(f"{bundle.path}: 'yes' and 'no' must be one token each for the probe")
    prompt = MMaDAPrompting.from_config(tokenizer, config, 2).mmu_gen(codes, list(questions))
    masks = torch.full((prompt.input_ids.shape[0], 2), config.mask_token_id, dtype=prompt.input_ids.dtype)
    ids = torch.cat([prompt.input_ids, masks], dim=1)
    attention = torch.cat([prompt.attention_mask, torch.ones_like(masks)], dim=1)
    with torch.inference_mode():
        logits = bundle.model(input_ids=ids.to(bundle.device), attention_mask=attention.to(bundle.device)).logits
    first = logits[:, prompt.input_ids.shape[1]].float().cpu()
    return first[:, yes[0]] - first[:, no[0]]


def run_probe(model: str, images: int, device: str = "cpu", progress: bool = True) -> list[ProbeResult]:
    """Probe ``model`` on the first ``images`` toy-world test images, for colours and for shapes."""
    from tqdm.auto import tqdm

    from mmada_bench.model import image_processing
    from mmada_bench.model.loading import load_bundle
    from mmada_bench.toy.world import COLORS, SHAPES, load_world

    if images < 1:
        raise ConfigError(f"--images must be at least 1, got {images}")
    bundle = load_bundle(model, dtype="float32", device=device)
    if bundle.vq_model is None:
        raise ConfigError(f"{bundle.path} has no image tokenizer (vq_model/); the probe needs one")
    world = load_world("test")[:images]
    side = math.isqrt(int(bundle.config.num_vq_tokens)) * bundle.vq_model.config.downsample_factor
    pools = {"color": COLORS, "shape": SHAPES}
    margins = {kind: [] for kind in pools}
    for item in tqdm(world, desc="probe", unit="image", disable=not progress):
        with torch.inference_mode():
            pixels = image_processing.preprocess_images([item.path], side)
            codes = bundle.vq_model.encode(pixels.to(bundle.device)).cpu()
        for kind, pool in pools.items():
            questions = [TEMPLATES[kind].format(word) for word in pool]
            margins[kind].append(answer_margins(bundle, codes.expand(len(pool), -1), questions))
    truth = {"color": [COLORS.index(i.color) for i in world], "shape": [SHAPES.index(i.shape) for i in world]}
    return [summarise(kind, torch.stack(rows), torch.tensor(truth[kind])) for kind, rows in margins.items()]


def _print_table(results: Sequence[ProbeResult]) -> None:
    print(f"{'kind':<6} {'images':>6} {'AUC':>6} {'match first':>11} {'chance':>6} {'margin match':>12} "
          f"{'mismatch':>9} {'spread':>7}")
    for r in results:
        print(f"{r.kind:<6} {r.images:>6} {r.auc:>6.3f} {r.match_ranked_first:>11.3f} {r.chance_ranked_first:>6.3f} "
              f"{r.margin_match_mean:>12.3f} {r.margin_mismatch_mean:>9.3f} {r.margin_std:>7.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmada_bench.toy.probe", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy", help="preset name or checkpoint folder (default: toy)")
    parser.add_argument("--images", type=int, default=120, help="first N toy-world test images (default: 120)")
    parser.add_argument("--device", default="cpu")
    add_output_flags(parser)
    args = parser.parse_args(argv)
    return report(lambda: run_probe(args.model, args.images, args.device, progress=not args.no_progress),
                  args.json, _print_table)


if __name__ == "__main__":
    sys.exit(main())
