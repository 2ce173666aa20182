"""Multimodal-understanding throughput, side by side: one request at a time vs batched, same model and rows.

The reference MMaDA VLMEvalKit wrapper answers one image question per model call. Our adapter
(:meth:`mmada_bench.adapters.mmada.MMaDAAdapter.answer_about_image`) encodes a batch of images with
MAGVIT-v2 in one call and decodes the left-padded prompts (with an attention mask) in one sampler
call. This script times both on the same adapter weights and the same easy-VQA questions (real
images and questions from the ``easy-vqa`` wheel, no data folder needed), asserts that the answers
are identical, and prints JSON and a table: images/s, seconds per sample, batched/one-at-a-time ratio.

Models (all randomly initialised -- speed does not depend on the weights):

* ``tiny``  -- the ``--model tiny`` preset (d128, 4 layers, 64 px images, 16 image tokens);
* ``cpu``   -- scaled up so the ratio means something on a CPU (d512, 8 layers, 256 px, 256 image tokens);
* ``8b``    -- MMaDA-8B shapes (d4096, 32 layers, vocab 134,656, released MAGVIT-v2 at 512 px =
  1,024 image tokens), built directly on the device; meant for a GPU in bf16.

Settings are the reference evaluation's (2 new tokens, 2 steps, block 2, greedy) unless
``--sampler`` says otherwise (e.g. ``gen_length=32,steps=32,block_length=32``).

    python benchmarks/bench_mmu.py                                  # CPU: tiny and cpu configs
    python benchmarks/bench_mmu.py --config cpu --rows 16 --batch-size 8
    python benchmarks/bench_mmu.py --device cuda --dtype bfloat16 --config 8b --rows 64 --batch-size 16 \\
        --json bench_mmu_8b.json

In bf16 a batch of different shapes can round differently from a single row, so on a GPU pass
``--allow-mismatch`` to report (instead of fail on) the fraction of identical answers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from mmada_bench.adapters.base import ImageQuestion
from mmada_bench.adapters.mmada import MMaDAAdapter
from mmada_bench.adapters.settings import UnderstandingSettings, parse_assignments
from mmada_bench.model import MMaDAConfig, MMaDAModelLM
from mmada_bench.model.loading import ModelBundle
from mmada_bench.model.magvitv2 import MAGVITv2, MAGVITv2Config, default_decoder, default_encoder
from mmada_bench.model.prompting import SpecialTokens
from mmada_bench.model.tokenizer import tiny_special_token_ids, tiny_tokenizer
from mmada_bench.tasks.mmu.easyvqa import load_easyvqa_test

#: Random configs: transformer shape, text vocabulary (image codes follow it), MAGVIT-v2 and image side.
CONFIGS = {
    "cpu": dict(d_model=512, n_layers=8, n_heads=8, mlp_hidden_size=1536, llm_vocab=None, magvit_ch=64,
                magvit_res_blocks=[1, 1, 1, 1, 1], codebook_bits=10, resolution=256),
    "8b": dict(d_model=4096, n_layers=32, n_heads=32, mlp_hidden_size=12288, llm_vocab=126464, magvit_ch=128,
               magvit_res_blocks=None, codebook_bits=13, resolution=512),
}


@dataclass
class Result:
    config: str
    mode: str
    batch_size: int
    rows: int
    seconds: float
    images_per_second: float
    seconds_per_sample: float
    ratio_vs_one_at_a_time: float = 1.0
    identical_answers: float = 1.0


def build_bundle(name: str, device: str, dtype: str, seed: int, layers: int | None) -> ModelBundle:
    """A randomly initialised MMaDA + MAGVIT-v2 + tiny tokenizer, made directly on ``device``."""
    shape = CONFIGS[name]
    tokenizer = tiny_tokenizer()
    text_vocab = len(tokenizer)
    llm_vocab = shape["llm_vocab"] or text_vocab
    codebook = 2 ** shape["codebook_bits"]
    special = tiny_special_token_ids(text_vocab)
    encoder = {**default_encoder(), "ch": shape["magvit_ch"], "z_channels": shape["codebook_bits"],
               "resolution": shape["resolution"]}
    decoder = {**default_decoder(), "ch": shape["magvit_ch"], "z_channels": shape["codebook_bits"],
               "resolution": shape["resolution"]}
    if shape["magvit_res_blocks"]:
        encoder["num_res_blocks"] = decoder["num_res_blocks"] = shape["magvit_res_blocks"]
    vq_config = MAGVITv2Config(encoder=encoder, decoder=decoder, codebook_dim=shape["codebook_bits"])
    side = shape["resolution"] // vq_config.downsample_factor
    config = MMaDAConfig(
        d_model=shape["d_model"], n_layers=layers or shape["n_layers"], n_heads=shape["n_heads"],
        n_kv_heads=shape["n_heads"], mlp_hidden_size=shape["mlp_hidden_size"], max_sequence_length=4096,
        vocab_size=llm_vocab + codebook, embedding_size=llm_vocab + codebook, new_vocab_size=llm_vocab + codebook,
        llm_vocab_size=llm_vocab, image_token_offset=llm_vocab, codebook_size=codebook, num_vq_tokens=side * side,
        mask_token_id=special["mask"], special_token_ids=special, bos_token_id=special["bos"],
        eos_token_id=special["eos"], pad_token_id=special["eos"], architectures=["MMadaModelLM"],
    )
    with torch.device("meta"):
        model = MMaDAModelLM(config)
    model = model.to(getattr(torch, dtype)).to_empty(device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if param_name.endswith(("norm.weight", "ln_f.weight")):
                param.fill_(1.0)
            else:
                param.normal_(0.0, config.init_std, generator=generator)
    torch.manual_seed(seed)
    vq = MAGVITv2(vq_config).to(device).eval()
    return ModelBundle(model=model.eval(), tokenizer=tokenizer, special_tokens=SpecialTokens.from_config(config),
                       vq_model=vq, path=Path(f"random-{name}"), vq_path=None, name_or_path=f"random-{name}")


def load_bundle_for(name: str, args: argparse.Namespace) -> ModelBundle:
    if name == "tiny":
        from mmada_bench.model.loading import load_bundle

        return load_bundle("tiny", dtype=args.dtype, device=args.device)
    return build_bundle(name, args.device, args.dtype, args.seed, args.layers)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(adapter: MMaDAAdapter, requests: list[ImageQuestion], settings: UnderstandingSettings,
          repeats: int, device: str) -> tuple[float, list[str]]:
    """Fastest of ``repeats`` passes over all requests, and the raw answers."""
    best, texts = float("inf"), []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        results = adapter.answer_about_image(requests, settings)
        sync(device)
        best = min(best, time.perf_counter() - start)
        texts = [r.raw_text for r in results]
    return best, texts


def run_config(name: str, requests: list[ImageQuestion], settings: UnderstandingSettings,
               args: argparse.Namespace) -> tuple[list[Result], dict]:
    bundle = load_bundle_for(name, args)
    single = MMaDAAdapter(bundle, batch_size=1, dtype=args.dtype)
    batched = MMaDAAdapter(bundle, batch_size=args.batch_size, dtype=args.dtype)
    batched.answer_about_image(requests[: args.batch_size], settings)  # warm-up: allocator, kernels, RoPE
    single.answer_about_image(requests[:1], settings)
    one_seconds, one_texts = timed(single, requests, settings, args.repeats, args.device)
    batch_seconds, batch_texts = timed(batched, requests, settings, args.repeats, args.device)
    same = sum(a == b for a, b in zip(one_texts, batch_texts, strict=True)) / len(requests)
    if same < 1 and not args.allow_mismatch:
        raise SystemExit(f"{name}: batched answers differ from one-at-a-time answers ({same:.3f} identical)")
    n = len(requests)
    results = [
        Result(name, "one-at-a-time", 1, n, one_seconds, n / one_seconds, one_seconds / n),
        Result(name, "batched", args.batch_size, n, batch_seconds, n / batch_seconds, batch_seconds / n,
               one_seconds / batch_seconds, same),
    ]
    config = bundle.config
    info = {"config": name, "d_model": config.d_model, "n_layers": config.n_layers, "vocab_size": config.vocab_size,
            "image_tokens": int(config.num_vq_tokens),
            "parameters": sum(p.numel() for p in bundle.model.parameters()),
            "magvit_parameters": sum(p.numel() for p in bundle.vq_model.parameters())}
    del single, batched, bundle
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return results, info


def print_table(results: list[Result]) -> None:
    head = (f"{'config':<6} {'mode':<14} {'batch':>5} {'rows':>5} {'seconds':>8} {'images/s':>9} {'s/sample':>9} "
            f"{'ratio':>6} {'same':>5}")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r.config:<6} {r.mode:<14} {r.batch_size:>5} {r.rows:>5} {r.seconds:>8.2f} {r.images_per_second:>9.2f} "
              f"{r.seconds_per_sample:>9.3f} {r.ratio_vs_one_at_a_time:>6.2f} {r.identical_answers:>5.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", nargs="+", choices=["tiny", *CONFIGS], default=None,
                    help="default: tiny cpu (on CUDA: 8b)")
    ap.add_argument("--rows", type=int, default=16, help="easy-VQA test questions (the first N)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--sampler", default="", help="UnderstandingSettings overrides, e.g. gen_length=32,steps=32")
    ap.add_argument("--repeats", type=int, default=1, help="timed passes per mode; the fastest is reported")
    ap.add_argument("--layers", type=int, default=None, help="override the random configs' layer count")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, help="default: float32 on CPU, bfloat16 on GPU")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 1 on CPU, steadiest)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--allow-mismatch", action="store_true", help="report, not fail on, differing answers (bf16)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    args.dtype = args.dtype or ("float32" if args.device == "cpu" else "bfloat16")
    args.config = args.config or (["8b"] if args.device.startswith("cuda") else ["tiny", "cpu"])
    if args.threads is None and args.device == "cpu":
        args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)

    settings = UnderstandingSettings().updated(parse_assignments(args.sampler))
    settings.check()
    rows = load_easyvqa_test()[: args.rows]
    requests = [ImageQuestion(image=str(row.images[0].path), question=row.question) for row in rows]
    results, models = [], []
    for name in args.config:
        part, info = run_config(name, requests, settings, args)
        results += part
        models.append(info)
    machine = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor()
        or platform.machine(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "python": sys.version.split()[0], "dtype": args.dtype,
    }
    payload = {"machine": machine, "models": models, "settings": settings.to_dict(), "rows": len(requests),
               "results": [asdict(r) for r in results]}
    print(json.dumps(payload, indent=2))
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
