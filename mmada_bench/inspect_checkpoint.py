"""``mmada-bench inspect DIR``: load a checkpoint strictly, run one forward pass, report timings.

The quickest way for a user to learn whether a folder is a loadable MMaDA checkpoint -- and the CLI
path through which bad folders produce their one-line errors.
"""

from __future__ import annotations

import argparse
import time

import torch

from mmada_bench.model.checkpoint import resolve_dtype


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="load a checkpoint folder strictly and run one forward pass")
    p.add_argument("model", help="checkpoint folder (config.json + model.safetensors or a shard index)")
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16 | auto (default float32)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmada_bench.model import MMaDAModelLM

    start = time.perf_counter()
    model = MMaDAModelLM.from_pretrained(args.model, torch_dtype=resolve_dtype(args.dtype), device=args.device)
    load_s = time.perf_counter() - start
    config = model.config
    n_params = sum(p.numel() for p in model.parameters())
    ids = torch.randint(0, config.llm_vocab_size, (1, 32), generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    with torch.inference_mode():
        logits = model(ids.to(args.device)).logits
    fwd_s = time.perf_counter() - start
    print(
        f"loaded {args.model}: {n_params / 1e6:.2f}M params, {config.n_layers} layers, d_model {config.d_model}, "
        f"vocab {config.vocab_size} (image codes from id {config.image_offset}), {load_s:.2f}s"
    )
    print(f"forward (1, 32) -> logits {tuple(logits.shape)} finite={bool(torch.isfinite(logits).all())} in {fwd_s:.3f}s")
    return 0
