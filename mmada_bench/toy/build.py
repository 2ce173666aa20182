"""Rebuild the toy world's artifacts: ``python -m mmada_bench.toy.build --stage STAGE --out DIR``.

Stages, each deterministic (fixed seeds and thread counts, :data:`THREADS`) and shown with tqdm progress bars:

* ``world``: the training files of :mod:`mmada_bench.toy.export` into ``DIR/world/``;
* ``tokenizer``: the toy *text* tokenizer (:mod:`mmada_bench.toy.tokenizer`) into ``DIR/tokenizer/``;
* ``vq``: the small MAGVIT-v2 into ``DIR/magvitv2/`` (``config.json`` + ``model.safetensors``, loadable
  with :meth:`MAGVITv2.from_pretrained`) plus ``vq.json`` (settings, losses, test PSNR, wall time);
* ``judge``: the toy judge into ``DIR/judge/`` (``config.json`` + ``model.safetensors`` +
  ``judge.json`` with its accuracy on real and reconstructed test images) and the ``easyvqa_t2i``
  prompts into ``DIR/easyvqa_t2i/prompts.jsonl``; needs ``DIR/magvitv2``.
* ``mmada``: the toy MMaDA through text pretraining and stages 1 -> 2 -> 3
  (:mod:`mmada_bench.toy.mmada_training`) into ``DIR/mmada/stage{1,2,3}/`` (``config.json`` +
  ``model.safetensors`` each) plus ``train.json``; the world and the training runs (configs,
  checkpoints, image-token cache) go to ``--work``. It starts
  from an untrained model with ``DIR``'s text tokenizer and MAGVIT-v2 when it has them (a full
  rebuild), else the committed ones, and stage 3 is rewarded by ``DIR``'s judge likewise.
* ``all``: world, tokenizer, vq, judge and mmada in order (``make toy``).

The committed artifacts are ``--out mmada_bench/model/assets/toy`` (:data:`ASSETS`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from mmada_bench.errors import ConfigError, MMaDABenchError

ASSETS = Path(__file__).resolve().parent.parent / "model" / "assets" / "toy"
VQ_FOLDER, JUDGE_FOLDER, WORLD_FOLDER, TOKENIZER_FOLDER = "magvitv2", "judge", "world", "tokenizer"
STAGES = ("world", "tokenizer", "vq", "judge", "mmada", "all")
#: Torch threads, fixed so reductions, and therefore the trained bytes, repeat (same thread count, same
#: bytes on one machine): one for the judge and the code probe, two for MAGVIT-v2 (its fp32
#: convolutions run 1.9x as fast on two) and for the MMaDA stages (matrix products that use both cores).
THREADS = 1
VQ_THREADS = 2
MMADA_THREADS = 2
#: Test images the stage reports use (all 1,000).
TEST_IMAGES = 1000


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Run the block on ``count`` torch threads, then return to :data:`THREADS` (the stages that
    follow rely on it for their own bytes)."""
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(THREADS)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def build_world(out: Path, progress: bool = True) -> dict[str, Any]:
    from mmada_bench.toy.export import export_world

    return export_world(out / WORLD_FOLDER, progress=progress)


def build_tokenizer(out: Path, progress: bool = True) -> dict[str, Any]:
    from mmada_bench.toy.tokenizer import save_toy_tokenizer

    return save_toy_tokenizer(out / TOKENIZER_FOLDER)


def build_vq(out: Path, progress: bool = True, steps: int | None = None) -> dict[str, Any]:
    """Train the tokenizer, save it, and record its reconstruction PSNR on the test images."""
    from mmada_bench.model.magvitv2 import MAGVITv2
    from mmada_bench.toy.images import load_tensors
    from mmada_bench.toy.vq_training import VQTrainConfig, psnr, reconstruct, train_summary, train_vq

    start = time.perf_counter()
    cfg = VQTrainConfig() if steps is None else VQTrainConfig(steps=steps)
    with _torch_threads(VQ_THREADS):
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


def build_mmada(out: Path, work: Path, progress: bool = True) -> dict[str, Any]:
    """Train the MMaDA (text pretraining, then the three stages) on the world in ``work/world``
    (exported if missing; a world without ``text_pretrain.jsonl`` predates it and is exported again).

    The text tokenizer, MAGVIT-v2 and judge are ``out``'s when it has them, else the committed ones.
    """
    from mmada_bench.toy.export import export_world
    from mmada_bench.toy.mmada_training import train_toy_mmada

    world = work / WORLD_FOLDER
    if not all((world / name).is_file() for name in ("world.json", "text_pretrain.jsonl")):
        export_world(world, progress=progress)

    def own(name: str, marker: str) -> Path:
        return out / name if (out / name / marker).is_file() else ASSETS / name

    parts = {"vq": own(VQ_FOLDER, "config.json"), "tokenizer": own(TOKENIZER_FOLDER, "tokenizer.json"),
             "judge": own(JUDGE_FOLDER, "config.json")}
    start = time.perf_counter()
    with _torch_threads(MMADA_THREADS):
        report = train_toy_mmada(world, work / "runs", out, **parts, progress=progress)
    report["wall_seconds"] = time.perf_counter() - start
    return report


def build_all(out: Path, work: Path, progress: bool = True) -> dict[str, Any]:
    """Every stage in order, the MMaDA trained on this build's tokenizer and rewarded by its judge."""
    reports: dict[str, Any] = {"world": build_world(work, progress)}
    reports["tokenizer"] = build_tokenizer(out, progress)
    reports["vq"] = build_vq(out, progress)
    reports["judge"] = build_judge(out, progress)
    reports["mmada"] = build_mmada(out, work, progress)
    return {name: {k: v for k, v in r.items() if not isinstance(v, dict)} for name, r in reports.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmada_bench.toy.build", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=STAGES, required=True)
    parser.add_argument("--out", type=Path, required=True, help=f"output folder (committed: {ASSETS})")
    parser.add_argument("--work", type=Path, default=Path("build/toy-work"),
                        help="scratch folder for the exported world and the training runs (default: build/toy-work)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    args.out.mkdir(parents=True, exist_ok=True)
    builders = {"world": build_world, "tokenizer": build_tokenizer, "vq": build_vq, "judge": build_judge,
                "mmada": lambda out, progress: build_mmada(out, args.work, progress),
                "all": lambda out, progress: build_all(out, args.work, progress)}
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
