"""Training cost: measured tokens/s and peak memory per stage on a scaled model (CPU), and a written
per-GPU memory estimate for MMaDA-8B under DDP / FSDP / ZeRO-2 on 8 and 64 GPUs.

Measured part: the trainer's step core (stage batch -> forward -> stage loss -> backward -> AdamW)
for stage 1 and stage 2 on a scaled copy of the tiny preset (wider and deeper, same tokenizer and
MAGVIT-v2), each stage in a fresh subprocess so its peak RSS is its own. Reported: tokens/s (all
micro-batch tokens, padding included, as the reference counts them) and peak RSS above the
post-import baseline. The run with gradient checkpointing is measured beside the plain one, so the
activation saving is a ratio from one run, not a guess. So is the output head's: the losses read only
masked / labelled positions, and the trainer asks the model for logits there alone (``logits_positions``);
the ``full`` run computes the head over every position and then picks the same rows, as training did
before, so both runs give the same losses and differ only in cost. ``--vocab`` widens the head towards
the real 134,656-token vocabulary, where the head dominates.

Estimate part (no GPU needed): spec §1.1 shapes (d 4096, 32 layers, MLP 12288, vocab 134656) and
§5.3 micro-batches (stage 1.3: 4/1/1 rows, stage 2: 1/2/1, L = 512 + 1 + 1024 + 2 = 1539 tokens).
Mixed-precision AdamW as the reference trains it: bf16 weights and gradients (2 + 2 bytes per
parameter) plus fp32 master weights, m and v (12 bytes) -- the ZeRO paper's 16 bytes per parameter.
DDP replicates all 16; ZeRO-2 replicates the bf16 weights and shards gradients and optimizer states;
FSDP (full shard) shards all three and gathers one block's weights at a time. Activations per token
and layer (bf16, flash/SDPA attention so no L x L scores): attention 12·d bytes (norm in/out, q, k, v,
output) + MLP 4·d + 8·m bytes (norm in/out, gate, up, SiLU, product); with checkpointing only the
2·d-byte block input is kept plus one block recomputed. Logits (bf16) and their fp32 copy for the
cross-entropy add 6·V bytes per *scored* token -- at V = 134656 as much as ~5 layers per token. Scored:
a t2i row's masked image tokens (the cosine schedule masks 2/π of them on average) and half of each
text row's text part (mask ratio t ~ U(0, 1), the whole text part counted as answer: an upper bound).
``logits_full_gib`` is what the head over every position would add instead.

    python benchmarks/bench_train.py [--steps 6] [--d-model 256 --layers 6] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

GIB = 1024**3
SPEC_8B = {"d_model": 4096, "n_layers": 32, "mlp": 12288, "vocab": 134656, "max_text_len": 512, "image_tokens": 1024}
MICRO_BATCHES = {"stage1.3": (4, 1, 1), "stage2": (1, 2, 1)}
COSINE_MEAN_MASK_RATIO = 2 / math.pi  # E[cos(pi/2 * u)], u ~ U(0, 1)


# -- estimate ---------------------------------------------------------------------------------------
def param_count(d: int, layers: int, mlp: int, vocab: int) -> int:
    per_layer = 4 * d * d + 3 * d * mlp + 2 * d
    return layers * per_layer + 2 * vocab * d + d


def estimate(gpus: int, strategy: str, checkpointing: bool, stage: str) -> dict:
    s = SPEC_8B
    p = param_count(s["d_model"], s["n_layers"], s["mlp"], s["vocab"])
    rows = sum(MICRO_BATCHES[stage])
    seq = s["max_text_len"] + 1 + s["image_tokens"] + 2
    tokens = rows * seq
    t2i_rows, lm_rows, mmu_rows = MICRO_BATCHES[stage]
    scored = (t2i_rows * COSINE_MEAN_MASK_RATIO * s["image_tokens"] + lm_rows * 0.5 * seq
              + mmu_rows * 0.5 * s["max_text_len"])
    weights, grads, optim = 2 * p, 2 * p, 12 * p
    layer_params = 4 * s["d_model"] ** 2 + 3 * s["d_model"] * s["mlp"]
    if strategy == "ddp":
        w, g, o = weights, grads, optim
    elif strategy == "zero2":
        w, g, o = weights, grads / gpus, optim / gpus
    elif strategy == "fsdp":
        w, g, o = weights / gpus + 2 * 2 * layer_params, grads / gpus, optim / gpus  # + 2 gathered blocks (prefetch)
    else:
        raise ValueError(strategy)
    per_token_layer = 12 * s["d_model"] + 4 * s["d_model"] + 8 * s["mlp"]
    logits = 6 * s["vocab"] * scored
    if checkpointing:
        acts = s["n_layers"] * 2 * s["d_model"] * tokens + per_token_layer * tokens + logits
    else:
        acts = s["n_layers"] * per_token_layer * tokens + logits
    total = w + g + o + acts
    return {
        "stage": stage, "gpus": gpus, "strategy": strategy, "gradient_checkpointing": checkpointing,
        "params_b": round(p / 1e9, 3), "tokens_per_micro_batch": tokens,
        "weights_gib": round(w / GIB, 1), "grads_gib": round(g / GIB, 1), "adamw_gib": round(o / GIB, 1),
        "activations_gib": round(acts / GIB, 1), "logits_gib": round(logits / GIB, 1),
        "logits_full_gib": round(6 * s["vocab"] * tokens / GIB, 1), "total_gib": round(total / GIB, 1),
        "fits_80gb": total < 80e9 * 0.95,
    }


# -- measurement ------------------------------------------------------------------------------------
def measure(stage: str, steps: int, d_model: int, layers: int, checkpointing: bool, head: str,
            vocab: int | None) -> dict:
    """Runs in its own process: build a scaled model, time ``steps`` optimizer steps of ``stage``.

    ``head``: ``scored`` (the trainer: logits at the scored positions only) or ``full`` (the head over
    every position, then the scored rows picked: the same losses at the old cost).
    """
    import tempfile

    import torch

    from mmada_bench.model.loading import load_bundle
    from mmada_bench.model.modeling_mmada import MMaDAModelLM
    from mmada_bench.train.config import config_from_dict
    from mmada_bench.train.stage import StageContext
    from mmada_bench.train.stages import build_stage
    from mmada_bench.train.trainer import build_optimizer

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.train.train_helpers import stage1_dict, stage2_dict

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    torch.manual_seed(0)
    tiny = load_bundle("tiny")
    config = tiny.model.config.to_dict()
    config.update(d_model=d_model, n_layers=layers, n_heads=d_model // 64, n_kv_heads=d_model // 64, mlp_hidden_size=3 * d_model)
    if vocab is not None:
        config.update(vocab_size=max(vocab, config["vocab_size"]), embedding_size=max(vocab, config["embedding_size"]))
    model_config = type(tiny.model.config)(**{k: v for k, v in config.items() if k not in ("model_type", "transformers_version")})
    model = MMaDAModelLM(model_config).train()
    if checkpointing:
        model.gradient_checkpointing_enable()
    params = sum(p.numel() for p in model.parameters())
    make = stage1_dict if stage == "stage1" else stage2_dict
    train_config = config_from_dict(make(Path(tempfile.mkdtemp()), seq={"max_text_len": 128}))
    st = build_stage(StageContext(train_config, model, tiny.tokenizer, tiny.vq_model))
    optimizer = build_optimizer(model, train_config)
    batches = st.batches(0, 1)
    prepared = [next(batches) for _ in range(steps + 1)]  # data building is not the trainer's cost here
    class FullHead(torch.nn.Module):
        """The head over every position, then the scored rows picked: same losses, the old cost."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, logits_positions=None, **kwargs):
            out = self.inner(input_ids, **kwargs)
            return type(out)(logits=out.logits[logits_positions])

    forward = model if head == "scored" else FullHead(model)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tokens, start = 0, 0.0
    for i, batch in enumerate(prepared):
        if i == 1:
            start = time.perf_counter()  # step 0 warms allocator and kernels
        loss, logs = st.loss(forward, batch, i)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if i >= 1:
            tokens += int(logs["tokens"])
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "stage": stage, "params_m": round(params / 1e6, 2), "vocab": model.config.vocab_size, "head": head,
        "gradient_checkpointing": checkpointing,
        "seq_len": int(prepared[0]["input_ids"].shape[1]), "rows": int(prepared[0]["input_ids"].shape[0]),
        "tokens_per_s": round(tokens / seconds, 1), "step_s": round(seconds / steps, 3),
        "peak_rss_above_baseline_mib": round((peak - baseline) / 2**20, 1),
        "peak_rss_growth_in_steps_mib": round((peak - before) / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--vocab", type=int, help="widen the output head to this many ids (default: tiny's)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--one", nargs=3, metavar=("STAGE", "CKPT", "HEAD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        result = measure(args.one[0], args.steps, args.d_model, args.layers, args.one[1] == "1", args.one[2], args.vocab)
        print(json.dumps(result))
        return
    measured = []
    for stage in ("stage1", "stage2"):
        for ckpt, head in (("0", "scored"), ("0", "full"), ("1", "scored")):
            out = subprocess.run(
                [sys.executable, __file__, "--one", stage, ckpt, head, "--steps", str(args.steps),
                 "--d-model", str(args.d_model), "--layers", str(args.layers)]
                + (["--vocab", str(args.vocab)] if args.vocab else []),
                capture_output=True, text=True, check=True,
            )
            measured.append(json.loads(out.stdout.strip().splitlines()[-1]))
    ratios = {}
    for stage in ("stage1", "stage2"):
        scored, full = (next(m for m in measured if m["stage"] == stage and m["head"] == h
                             and not m["gradient_checkpointing"]) for h in ("scored", "full"))
        ratios[stage] = {"step_time_full_over_scored": round(full["step_s"] / scored["step_s"], 2),
                         "peak_mib_full_minus_scored": round(full["peak_rss_above_baseline_mib"]
                                                             - scored["peak_rss_above_baseline_mib"], 1)}
    estimates = [
        estimate(gpus, strategy, ckpt, stage)
        for stage in MICRO_BATCHES for gpus in (8, 64) for strategy in ("ddp", "zero2", "fsdp") for ckpt in (False, True)
    ]
    report = {"measured_cpu": measured, "head_full_vs_scored": ratios, "estimate_8b_per_gpu": estimates}
    print(json.dumps(report, indent=2))
    print("\nmeasured on CPU (scaled model; step core = forward + loss + backward + AdamW)")
    print(f"{'stage':8} {'params M':>8} {'vocab':>6} {'head':>6} {'ckpt':>5} {'rows x L':>9} {'tok/s':>8} {'step s':>7}"
          f" {'peak MiB':>9}")
    for m in measured:
        print(f"{m['stage']:8} {m['params_m']:8.2f} {m['vocab']:6d} {m['head']:>6} {str(m['gradient_checkpointing']):>5}"
              f" {m['rows']:>4} x{m['seq_len']:<4}{m['tokens_per_s']:8.1f} {m['step_s']:7.3f}"
              f" {m['peak_rss_above_baseline_mib']:9.1f}")
    for stage, r in ratios.items():
        print(f"{stage}: head over every position / scored positions only: step time x{r['step_time_full_over_scored']},"
              f" peak memory {r['peak_mib_full_minus_scored']:+.1f} MiB")
    print("\nestimated per-GPU memory, MMaDA-8B (GiB)")
    print(f"{'stage':9} {'gpus':>4} {'strategy':8} {'ckpt':>5} {'weights':>8} {'grads':>6} {'adamw':>6} {'acts':>6}"
          f" {'logits':>6} {'(full)':>6} {'total':>6} fits80")
    for e in estimates:
        print(f"{e['stage']:9} {e['gpus']:>4} {e['strategy']:8} {str(e['gradient_checkpointing']):>5} {e['weights_gib']:8.1f}"
              f" {e['grads_gib']:6.1f} {e['adamw_gib']:6.1f} {e['activations_gib']:6.1f} {e['logits_gib']:6.1f}"
              f" {e['logits_full_gib']:6.1f} {e['total_gib']:6.1f} {e['fits_80gb']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
