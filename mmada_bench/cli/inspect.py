"""``mmada-bench inspect MODEL``: load a checkpoint or preset strictly and exercise every part.

The quickest way for a user to learn whether a folder is a loadable MMaDA checkpoint: it loads the
model, tokenizer and (when present) MAGVIT-v2, runs one forward pass on a tokenised chat prompt and
an image round trip, and reports what each took. Bad folders end here in one-line errors.
"""

from __future__ import annotations

import argparse
import time

import torch


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="load a checkpoint folder or preset strictly, run a forward pass and an image round trip",
        description=__doc__,
    )
    p.add_argument("model", help="checkpoint folder (config.json + model.safetensors or shard index) or preset name")
    p.add_argument("--vq-model", help="MAGVIT-v2 folder (default: MODEL/vq_model if present)")
    p.add_argument("--tokenizer", help="tokenizer folder (default: MODEL)")
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16 | auto (default float32)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmada_bench.model.loading import load_bundle
    from mmada_bench.model.prompting import apply_text_chat_template

    start = time.perf_counter()
    bundle = load_bundle(args.model, dtype=args.dtype, device=args.device, vq_model=args.vq_model,
                         tokenizer=args.tokenizer, require_tokenizer=False)
    load_s = time.perf_counter() - start
    config = bundle.config
    n_params = sum(p.numel() for p in bundle.model.parameters())
    print(
        f"loaded {bundle.path}: {n_params / 1e6:.2f}M params, {config.n_layers} layers, d_model {config.d_model}, "
        f"vocab {config.vocab_size} (image codes from id {config.image_offset}), "
        f"{load_s:.2f}s"
    )
    if bundle.tokenizer is not None:
        bos = bundle.tokenizer.convert_ids_to_tokens(bundle.special_tokens.bos)
        prompt = apply_text_chat_template([{"role": "user", "content": "What is 2 + 3?"}], bos_token=bos)
        token_ids = bundle.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        print(f"tokenizer: {len(bundle.tokenizer)} tokens; chat prompt -> {len(token_ids)} ids")
    else:
        print("no tokenizer files in the folder: forward pass on random text ids")
        token_ids = torch.randint(0, config.image_offset, (32,), generator=torch.Generator().manual_seed(0)).tolist()
    ids = torch.tensor([token_ids], device=bundle.device)
    start = time.perf_counter()
    with torch.inference_mode():
        logits = bundle.model(ids).logits
    fwd_s = time.perf_counter() - start
    print(f"forward {tuple(ids.shape)} -> logits {tuple(logits.shape)} finite={bool(torch.isfinite(logits).all())} "
          f"in {fwd_s:.3f}s")
    if bundle.vq_model is None:
        print("no image tokenizer found (pass --vq-model): image round trip skipped")
        return 0
    vq = bundle.vq_model
    resolution = vq.config.encoder["resolution"]
    side = torch.linspace(-1, 1, resolution, device=bundle.device)
    image = torch.stack([side[None, :].expand(resolution, -1), side[:, None].expand(-1, resolution),
                         torch.zeros(resolution, resolution, device=bundle.device)])[None]
    start = time.perf_counter()
    with torch.inference_mode():
        codes = vq.encode(image)
        pixels = vq.decode(codes)
    img_s = time.perf_counter() - start
    print(f"image round trip {tuple(image.shape)} -> {codes.shape[1]} codes in [0, {vq.codebook_size}) "
          f"-> pixels {tuple(pixels.shape)} in {img_s:.3f}s")
    return 0
