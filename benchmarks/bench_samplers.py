"""Text-sampler cost, side by side: naive reference loop vs exact sampler vs each fast mode.

One run, one machine, one randomly initialised MMaDA: every mode decodes the same prompt(s) at each
generation length, and the table reports wall time, tokens/s, forward passes (NFE), speed-up over
the naive baseline and over the exact sampler, and the fraction of generated tokens equal to the
exact sampler's output.

Modes:

* ``naive`` -- the reference's loop written as the reference writes it (``generate.py``): batch 1,
  the whole sequence recomputed every step, float64 softmax over all positions and the whole
  vocabulary, a per-row top-k loop. The cost to beat.
* ``exact`` -- :func:`mmada_bench.sampling.generate_text` with default options (token-identical to
  the reference).
* ``prefix`` / ``dual`` -- Fast-dLLM-style KV cache (``cache=``), approximate.
* ``thr<t>`` -- confidence-threshold parallel decoding (``threshold=t``), alone and with each cache.
* ``eos`` -- ``stop_at_eos=True``.

Settings follow Fast-dLLM's headline table (block 32, one token per step: ``steps = gen_length``,
temperature 0, low-confidence remasking, batch 1) so ratios can be read against ANCHORS.md §4.

Read the agreement column with care: on random weights the model's top-2 logits differ by far
less than a stale cache perturbs them, and nothing is ever confident, so the approximate modes
disagree much more -- and threshold decoding and the EOS stop fire far less -- than on a trained
checkpoint (``--checkpoint`` runs one). Speed figures do not depend on the weights except for
those two modes.

    python benchmarks/bench_samplers.py                     # CPU, tiny model, gen 64 and 256
    python benchmarks/bench_samplers.py --quick             # smaller model, gen 64 only
    python benchmarks/bench_samplers.py --device cuda --dtype bfloat16 --preset 8b --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mmada_bench.model import MMaDAConfig, MMaDAModelLM
from mmada_bench.sampling import SamplingStats, generate_text

PRESETS = {
    # CPU-sized: big enough that a forward over ~384 positions is compute-bound, so caching pays.
    "tiny": dict(d_model=384, n_layers=6, n_heads=6, mlp_hidden_size=1152, vocab=2560, codebook=512),
    "quick": dict(d_model=256, n_layers=4, n_heads=4, mlp_hidden_size=768, vocab=2048, codebook=256),
    # MMaDA-8B shapes (spec §1.1) -- bf16 on a GPU.
    "8b": dict(d_model=4096, n_layers=32, n_heads=32, mlp_hidden_size=12288, vocab=134656, codebook=8192),
}


def build_model(args: argparse.Namespace) -> MMaDAModelLM:
    """A randomly initialised MMaDA of the preset's shape, made directly on the target device."""
    if args.checkpoint:
        return MMaDAModelLM.from_pretrained(args.checkpoint, torch_dtype=args.dtype, device=args.device).eval()
    p = dict(PRESETS[args.preset])
    if args.layers:
        p["n_layers"] = args.layers
    vocab, codebook = p.pop("vocab"), p.pop("codebook")
    config = MMaDAConfig(
        d_model=p["d_model"], n_layers=p["n_layers"], n_heads=p["n_heads"], n_kv_heads=p["n_heads"],
        mlp_hidden_size=p["mlp_hidden_size"], vocab_size=vocab, embedding_size=vocab, new_vocab_size=vocab,
        llm_vocab_size=vocab - codebook, codebook_size=codebook, mask_token_id=vocab - codebook - 10,
        eos_token_id=vocab - codebook - 11, pad_token_id=vocab - codebook - 11,
    )
    with torch.device("meta"):
        model = MMaDAModelLM(config)
    model = model.to(getattr(torch, args.dtype)).to_empty(device=args.device)
    gen = torch.Generator(device=args.device).manual_seed(args.seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("ln_f.weight"):
                param.fill_(1.0)
            else:
                param.normal_(0.0, config.init_std, generator=gen)
    return model.eval()


@torch.no_grad()
def naive_generate(model: MMaDAModelLM, prompt: torch.Tensor, steps: int, gen_length: int, block_length: int,
                   mask_id: int) -> tuple[torch.Tensor, int]:
    """The reference's loop for one prompt (1, P), temperature 0, low-confidence remasking."""
    x = torch.full((1, prompt.shape[1] + gen_length), mask_id, dtype=torch.long, device=prompt.device)
    x[:, : prompt.shape[1]] = prompt
    num_blocks = gen_length // block_length
    per_block = steps // num_blocks
    nfe = 0
    for b in range(num_blocks):
        lo = prompt.shape[1] + b * block_length
        n_masked = int((x[:, lo : lo + block_length] == mask_id).sum())
        schedule = [n_masked // per_block + (1 if i < n_masked % per_block else 0) for i in range(per_block)]
        for i in range(per_block):
            masked = x == mask_id
            logits = model(x).logits
            nfe += 1
            x0 = torch.argmax(logits, dim=-1)
            p = F.softmax(logits.to(torch.float64), dim=-1)
            conf = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
            conf[:, lo + block_length :] = -np.inf
            x0 = torch.where(masked, x0, x)
            conf = torch.where(masked, conf, -np.inf)
            chosen = torch.zeros_like(x0, dtype=torch.bool)
            for row in range(conf.shape[0]):
                chosen[row, torch.topk(conf[row], k=schedule[i]).indices] = True
            x[chosen] = x0[chosen]
    return x, nfe


@dataclass
class Result:
    mode: str
    gen_length: int
    seconds: float
    tokens_per_second: float
    nfe: int
    speedup_vs_naive: float = 0.0
    speedup_vs_exact: float = 0.0
    agreement_with_exact: float = 1.0


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_modes(model: MMaDAModelLM, prompts: torch.Tensor, gen_length: int, args: argparse.Namespace) -> list[Result]:
    mask_id = model.config.mask_token_id
    steps = gen_length if args.steps is None else args.steps
    common = dict(gen_length=gen_length, steps=steps, block_length=args.block_length)
    modes: dict[str, dict] = {"exact": {}, "prefix": {"cache": "prefix"}, "dual": {"cache": "dual"}}
    for t in args.thresholds:
        modes[f"thr{t:g}"] = {"threshold": t}
        modes[f"prefix+thr{t:g}"] = {"cache": "prefix", "threshold": t}
        modes[f"dual+thr{t:g}"] = {"cache": "dual", "threshold": t}
    modes["eos"] = {"stop_at_eos": True}
    if args.modes:
        modes = {k: v for k, v in modes.items() if k in args.modes}

    timings: dict[str, list[float]] = {}
    nfes: dict[str, int] = {}
    outputs: dict[str, torch.Tensor] = {}
    for _ in range(args.repeats):  # interleave repeats so drifting machine load hits every mode alike
        if "naive" not in args.skip:
            sync(args.device)
            t0 = time.perf_counter()
            rows, nfe = [], 0
            for row in prompts.split(1):
                out, n = naive_generate(model, row, steps, gen_length, args.block_length, mask_id)
                rows.append(out)
                nfe += n
            sync(args.device)
            timings.setdefault("naive", []).append(time.perf_counter() - t0)
            nfes["naive"], outputs["naive"] = nfe, torch.cat(rows)
        for name, opts in modes.items():
            stats = SamplingStats()
            out = generate_text(model, prompts, stats=stats, **common, **opts)
            timings.setdefault(name, []).append(stats.seconds)
            nfes[name], outputs[name] = stats.nfe, out
    results = []
    p = prompts.shape[1]
    tokens = prompts.shape[0] * gen_length
    exact = outputs.get("exact")
    for name, times in timings.items():
        best = min(times)
        agree = float((outputs[name][:, p:] == exact[:, p:]).float().mean()) if exact is not None else float("nan")
        results.append(Result(name, gen_length, best, tokens / best, nfes[name], agreement_with_exact=agree))
    base = {r.mode: r.seconds for r in results}
    for r in results:
        r.speedup_vs_naive = base["naive"] / r.seconds if "naive" in base else float("nan")
        r.speedup_vs_exact = base["exact"] / r.seconds if "exact" in base else float("nan")
    return results


def print_table(results: list[Result]) -> None:
    head = f"{'gen':>4} {'mode':<16} {'seconds':>8} {'tok/s':>8} {'NFE':>5} {'x naive':>8} {'x exact':>8} {'agree':>6}"
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r.gen_length:>4} {r.mode:<16} {r.seconds:>8.2f} {r.tokens_per_second:>8.1f} {r.nfe:>5} "
              f"{r.speedup_vs_naive:>8.2f} {r.speedup_vs_exact:>8.2f} {r.agreement_with_exact:>6.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen-lengths", type=int, nargs="+", default=None, help="default: 64 256 (--quick: 64)")
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--steps", type=int, default=None, help="default: gen_length (one token per step)")
    ap.add_argument("--prompt-length", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1, help="prompts per call (naive runs them one by one)")
    ap.add_argument("--thresholds", type=float, nargs="*", default=[0.9])
    ap.add_argument("--modes", nargs="*", default=None, help="restrict to these sampler modes (naive always runs)")
    ap.add_argument("--skip", nargs="*", default=[], help="modes to skip, e.g. naive")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per mode; the fastest is reported")
    ap.add_argument("--preset", choices=sorted(PRESETS), default=None, help="default: tiny (--quick: quick)")
    ap.add_argument("--layers", type=int, default=None, help="override the preset's layer count")
    ap.add_argument("--checkpoint", default=None, help="benchmark a real checkpoint folder instead")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, help="default: float32 on CPU, bfloat16 on GPU")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default on CPU: 1 -- steadiest timings on a shared machine)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smaller model and gen 64 only (a smoke run)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    args.preset = args.preset or ("quick" if args.quick else "tiny")
    args.gen_lengths = args.gen_lengths or ([64] if args.quick else [64, 256])
    args.dtype = args.dtype or ("float32" if args.device == "cpu" else "bfloat16")
    if args.threads is None and args.device == "cpu":
        args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    model = build_model(args)
    cfg = model.config
    gen = torch.Generator().manual_seed(args.seed + 1)
    text_vocab = min(int(cfg.mask_token_id), int(cfg.eos_token_id or cfg.mask_token_id)) - 1
    prompts = torch.randint(0, text_vocab, (args.batch, args.prompt_length), generator=gen).to(args.device)

    # warm-up (allocator, kernels, RoPE tables) outside the timings
    generate_text(model, prompts, gen_length=args.block_length, steps=2, block_length=args.block_length)
    generate_text(model, prompts, gen_length=args.block_length, steps=2, block_length=args.block_length, cache="dual")
    naive_generate(model, prompts[:1], 2, args.block_length, args.block_length, cfg.mask_token_id)

    all_results: list[Result] = []
    for g in args.gen_lengths:
        res = run_modes(model, prompts, g, args)
        all_results.extend(res)
    machine = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor()
        or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "dtype": args.dtype,
    }
    model_info = {
        "checkpoint": args.checkpoint,
        "preset": None if args.checkpoint else args.preset,
        "d_model": cfg.d_model, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads,
        "mlp_hidden_size": cfg.mlp_width, "vocab_size": cfg.vocab_size,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    settings = {
        "prompt_length": args.prompt_length, "batch": args.batch, "block_length": args.block_length,
        "steps": "gen_length" if args.steps is None else args.steps, "temperature": 0.0,
        "remasking": "low_confidence", "repeats": args.repeats, "thresholds": args.thresholds,
    }
    print(f"machine: {machine}")
    print(f"model: {model_info}")
    print(f"settings: {settings}")
    print_table(all_results)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine, "model": model_info, "settings": settings,
                       "results": [r.__dict__ for r in all_results]}, fh, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
