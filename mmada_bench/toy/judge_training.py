"""Train the toy judge (:mod:`mmada_bench.scorers.toy_judge`) and measure it.

The judge must read both clean images and what a model generates through the toy MAGVIT-v2, so it is
trained on the 4,000 real train images *and* their tokenizer round trips (same labels), with random
flips (every toy shape class is flip-invariant). Its accuracy is then measured on the 1,000 held-out
test images, real and reconstructed, and written next to the weights (``judge.json``): a t2i score is
only as good as the judge, and the reconstructed-image figure bounds what a perfect generator could get.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mmada_bench.model.magvitv2 import MAGVITv2
from mmada_bench.scorers.toy_judge import REPORT_NAME, ToyJudge, ToyJudgeConfig, ToyJudgeNet
from mmada_bench.toy.images import ToyTensors, load_tensors
from mmada_bench.toy.vq_training import reconstruct
from mmada_bench.toy.world import COLORS, SHAPES


@dataclass(frozen=True)
class JudgeTrainConfig:
    epochs: int = 3
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0


def _flip(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal and vertical flips, per image."""
    n = pixels.shape[0]
    h = torch.rand(n, generator=generator) < 0.5
    v = torch.rand(n, generator=generator) < 0.5
    out = pixels.clone()
    out[h] = out[h].flip(-1)
    out[v] = out[v].flip(-2)
    return out


def train_judge(data: ToyTensors, cfg: JudgeTrainConfig, progress: bool = True,
                max_steps: int | None = None) -> tuple[ToyJudge, list[dict[str, float]]]:
    """Train from scratch (seeded); ``max_steps`` stops early (tests)."""
    generator = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = ToyJudgeNet(ToyJudgeConfig(shapes=SHAPES, colors=COLORS))
    steps_per_epoch = -(-len(data) // cfg.batch_size)
    total = cfg.epochs * steps_per_epoch if max_steps is None else min(max_steps, cfg.epochs * steps_per_epoch)
    optimiser = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=cfg.lr, total_steps=total, pct_start=0.15)
    net.train()
    log: list[dict[str, float]] = []
    start = time.perf_counter()
    bar = tqdm(total=total, desc="train toy judge", disable=not progress)
    step = 0
    while step < total:
        for index in torch.randperm(len(data), generator=generator).split(cfg.batch_size):
            if step >= total:
                break
            shape_logits, colour_logits = net(_flip(data.pixels[index], generator))
            shape_loss = F.cross_entropy(shape_logits, data.shapes[index])
            colour_loss = F.cross_entropy(colour_logits, data.colors[index])
            loss = shape_loss + colour_loss
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            log.append({"step": step, "loss": loss.item(), "shape_loss": shape_loss.item(),
                        "color_loss": colour_loss.item(), "seconds": time.perf_counter() - start})
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            step += 1
    bar.close()
    return ToyJudge(net.eval()), log


def accuracy(judge: ToyJudge, data: ToyTensors, batch_size: int = 250) -> dict[str, float]:
    """Shape, colour and both-correct accuracy of ``judge`` on ``data``."""
    shape_ok = colour_ok = both_ok = 0
    for chunk in range(0, len(data), batch_size):
        part = data.subset(slice(chunk, chunk + batch_size))
        shape_logits, colour_logits = judge.logits(part.pixels)
        s = shape_logits.argmax(-1) == part.shapes
        c = colour_logits.argmax(-1) == part.colors
        shape_ok += int(s.sum())
        colour_ok += int(c.sum())
        both_ok += int((s & c).sum())
    n = len(data)
    return {"shape": shape_ok / n, "color": colour_ok / n, "both": both_ok / n, "images": n}


def build_and_evaluate_judge(vq_folder: Path, out: Path, cfg: JudgeTrainConfig,
                             progress: bool = True) -> dict[str, Any]:
    """Train on real + reconstructed train images, save to ``out``, write ``judge.json``."""
    start = time.perf_counter()
    vq = MAGVITv2.from_pretrained(vq_folder)
    train, test = load_tensors("train"), load_tensors("test")
    train_recon = ToyTensors(reconstruct(vq, train.pixels), train.masks, train.shapes, train.colors)
    test_recon = ToyTensors(reconstruct(vq, test.pixels), test.masks, test.shapes, test.colors)
    both = ToyTensors(*(torch.cat([a, b]) for a, b in zip(
        (train.pixels, train.masks, train.shapes, train.colors),
        (train_recon.pixels, train_recon.masks, train_recon.shapes, train_recon.colors), strict=True)))
    judge, log = train_judge(both, cfg, progress=progress)
    judge.save_pretrained(out)
    loaded = ToyJudge.from_pretrained(out)  # measure what was saved, through the real loader
    report = {
        "train_config": asdict(cfg), "train_images": {"real": len(train), "reconstructed": len(train_recon)},
        "steps": len(log), "first_loss": log[0]["loss"], "last_loss": log[-1]["loss"],
        "tokenizer": str(vq_folder.name),
        "accuracy_real_test": accuracy(loaded, test), "accuracy_reconstructed_test": accuracy(loaded, test_recon),
        "wall_seconds": time.perf_counter() - start,
    }
    (out / REPORT_NAME).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return report
