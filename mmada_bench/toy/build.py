"""Rebuild the toy world's artifacts: ``python -m mmada_bench.toy.build --stage world|vq|judge --out DIR``.

Stages, each deterministic (fixed seeds, one torch thread: on a shared 2-core machine a second thread mostly waits) and shown with tqdm progress bars:

* ``world``: the training files of :mod:`mmada_bench.toy.export` into ``DIR/world/``;
* ``vq``: the small MAGVIT-v2 into ``DIR/magvitv2/`` (``config.json`` + ``model.safetensors``, loadable
  with :meth:`MAGVITv2.from_pretrained`) plus ``vq.json`` (settings, losses, test PSNR, wall time);
* ``judge``: the toy judge into ``DIR/judge/`` (``config.json`` + ``model.safetensors`` +
  ``judge.json`` with its accuracy on real and reconstructed test images) and the ``easyvqa_t2i``
  prompts into ``DIR/easyvqa_t2i/prompts.jsonl``; needs ``DIR/magvitv2``.

The committed artifacts are ``--out mmada_bench/model/assets/toy`` (:data:`ASSETS`), built by
``--stage vq`` then ``--stage judge``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from mmada_bench.errors import ConfigError, MMaDABenchError

ASSETS = Path(__file__).resolve().parent.parent / "model" / "assets" / "toy"
VQ_FOLDER, JUDGE_FOLDER, WORLD_FOLDER = "magvitv2", "judge", "world"
STAGES = ("world", "vq", "judge")
THREADS = 1  # fixed so reductions, and therefore the trained bytes, are the same on every machine
#: Test images the stage reports use (all 1,000).
TEST_IMAGES = 1000


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def build_world(out: Path, progress: bool = True) -> dict[str, Any]:
    from mmada_bench.toy.export import export_world

    return export_world(out / WORLD_FOLDER, progress=progress)


def build_vq(out: Path, progress: bool = True, steps: int | None = None) -> dict[str, Any]:
    """Train the tokenizer, save it, and record its reconstruction PSNR on the test images."""
    from mmada_bench.model.magvitv2 import MAGVITv2
    from mmada_bench.toy.images import load_tensors
    from mmada_bench.toy.vq_training import VQTrainConfig, psnr, reconstruct, train_summary, train_vq

    start = time.perf_counter()
    cfg = VQTrainConfig() if steps is None else VQTrainConfig(steps=steps)
    model, log = train_vq(load_tensors("train"), cfg, progress=progress)
    folder = out / VQ_FOLDER
    model.save_pretrained(folder)
    loaded = MAGVITv2.from_pretrained(folder)  # measure what was saved, through the real loader
    test = load_tensors("test", TEST_IMAGES)
    report = {**train_summary(cfg, log), "test_psnr_db": psnr(reconstruct(loaded, test.pixels), test.pixels),
              "test_images": len(test), "wall_seconds": time.perf_counter() - start}
    _write_json(folder / "vq.json", report)
    return report


def build_judge(out: Path, progress: bool = True, epochs: int | None = None) -> dict[str, Any]:
    """Train the judge on real + reconstructed train images and record its test accuracy."""
    from mmada_bench.toy.judge_training import JudgeTrainConfig, build_and_evaluate_judge

    vq_folder = out / VQ_FOLDER
    if not (vq_folder / "config.json").is_file():
        raise ConfigError(f"stage judge needs the tokenizer in {vq_folder}: run --stage vq --out {out} first")
    from mmada_bench.toy.export import write_t2i_prompts

    write_t2i_prompts(out / "easyvqa_t2i" / "prompts.jsonl")  # the judged task's prompts, beside the judge
    cfg = JudgeTrainConfig() if epochs is None else JudgeTrainConfig(epochs=epochs)
    return build_and_evaluate_judge(vq_folder, out / JUDGE_FOLDER, cfg, progress=progress)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmada_bench.toy.build", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=STAGES, required=True)
    parser.add_argument("--out", type=Path, required=True, help=f"output folder (committed: {ASSETS})")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    args.out.mkdir(parents=True, exist_ok=True)
    builders = {"world": build_world, "vq": build_vq, "judge": build_judge}
    start = time.perf_counter()
    try:
        report = builders[args.stage](args.out, progress=not args.no_progress)
    except MMaDABenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {k: v for k, v in report.items() if not isinstance(v, dict) or k == "splits"}
    print(json.dumps({"stage": args.stage, "wall_seconds": round(time.perf_counter() - start, 1), **summary},
                     indent=1, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
