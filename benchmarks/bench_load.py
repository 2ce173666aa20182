"""Checkpoint loading cost: peak memory and time of MMaDAModelLM.from_pretrained.

Writes a synthetic sharded checkpoint in the real MMaDA key layout (about 1B parameters in bf16 by
default), then measures, each in a fresh subprocess so peak RSS is clean:

* ``safetensors_read``: ``safetensors.torch.load_file`` of every shard into one dict -- the floor
  for reading these bytes at all;
* ``mmada_from_pretrained``: our strict, meta-device loader;
* ``naive_init_then_load``: the pattern we avoid (build the model with real random init, then
  ``load_state_dict``), for contrast.

Reported: peak RSS above the post-import baseline ÷ weight bytes, and load seconds ÷ the plain read.
Files are read once before timing so every method reads from the page cache. safetensors hands out
memory-mapped tensors that cost nothing until touched, so every method then touches one element per
4 KiB page of every weight inside the timed region: time and RSS are for weights really resident.

    python benchmarks/bench_load.py [--layers 16 --d-model 2048 ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

SHARD_BYTES = 512 * 1024**2


def build_config(args: argparse.Namespace):
    from mmada_bench.model import MMaDAConfig

    return MMaDAConfig(
        d_model=args.d_model,
        n_heads=args.heads,
        n_kv_heads=args.heads,
        n_layers=args.layers,
        mlp_hidden_size=args.mlp,
        vocab_size=args.vocab,
        embedding_size=args.vocab,
        new_vocab_size=args.vocab,
        llm_vocab_size=args.vocab - 8192,
        codebook_size=8192,
        mask_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )


def write_checkpoint(folder: Path, args: argparse.Namespace) -> int:
    """Write shards of random bf16 tensors named as the model expects; return weight bytes."""
    from mmada_bench.model import MMaDAModelLM

    config = build_config(args)
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in MMaDAModelLM(config).state_dict().items()}
    config.save_pretrained(folder)
    gen = torch.Generator().manual_seed(0)
    weight_map, shard, shard_bytes, index, total = {}, {}, 0, 1, 0

    def flush() -> None:
        nonlocal shard, shard_bytes, index
        name = f"model-{index:05d}.safetensors"
        save_file(shard, str(folder / name))
        weight_map.update({k: name for k in shard})
        shard, shard_bytes, index = {}, 0, index + 1

    for key, shape in shapes.items():
        tensor = (torch.randn(shape, generator=gen) * 0.02).to(torch.bfloat16)
        shard[key] = tensor
        shard_bytes += tensor.numel() * 2
        total += tensor.numel() * 2
        if shard_bytes >= SHARD_BYTES:
            flush()
    if shard:
        flush()
    index_doc = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index_doc))
    return total


MEASURE = r"""
import json, resource, sys, time, gc
import torch
from pathlib import Path
method, folder = sys.argv[1], Path(sys.argv[2])
import safetensors.torch
from mmada_bench.model import MMaDAModelLM
from mmada_bench.model.checkpoint import read_config
def vm_rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
gc.collect()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
rss_start = vm_rss()
start = time.perf_counter()
if method == "safetensors_read":
    state = {}
    for f in sorted(folder.glob("model-*.safetensors")):
        state.update(safetensors.torch.load_file(str(f)))
elif method == "mmada_from_pretrained":
    model = MMaDAModelLM.from_pretrained(folder, torch_dtype=torch.bfloat16)
elif method == "naive_init_then_load":
    config = read_config(folder)
    model = MMaDAModelLM(config).to(torch.bfloat16)
    state = {}
    for f in sorted(folder.glob("model-*.safetensors")):
        state.update(safetensors.torch.load_file(str(f)))
    model.load_state_dict(state)
tensors = state.values() if method == "safetensors_read" else model.state_dict().values()
touched = 0
for t in tensors:  # read one element per 4 KiB page: makes every byte resident, allocates nothing big
    flat = t.reshape(-1)
    step = max(1, 4096 // flat.element_size())
    touched += int(flat[::step].float().sum().isfinite())
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"method": method, "seconds": seconds, "peak_rss_above_baseline": peak - rss_start,
                  "resident_after_load": vm_rss() - rss_start, "baseline_rss": rss_start}))
"""


def measure(method: str, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, method, str(folder)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--d-model", type=int, default=2048)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--mlp", type=int, default=5632)
    parser.add_argument("--vocab", type=int, default=40960)
    parser.add_argument("--repeats", type=int, default=2, help="runs per method; the fastest is kept")
    parser.add_argument("--json", type=Path, help="also write the JSON report here")
    parser.add_argument("--workdir", type=Path, help="where to write the checkpoint (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp) / "ckpt"
        folder.mkdir()
        start = time.perf_counter()
        weight_bytes = write_checkpoint(folder, args)
        write_s = time.perf_counter() - start
        for f in folder.iterdir():  # warm the page cache so every method reads from memory
            f.read_bytes()
        rows = []
        for method in ("safetensors_read", "mmada_from_pretrained", "naive_init_then_load"):
            runs = [measure(method, folder) for _ in range(args.repeats)]
            best = min(runs, key=lambda r: r["seconds"])
            best["peak_rss_above_baseline"] = min(r["peak_rss_above_baseline"] for r in runs)
            best["resident_after_load"] = min(r["resident_after_load"] for r in runs)
            rows.append(best)
    plain = rows[0]["seconds"]
    for row in rows:
        row["rss_over_weight_bytes"] = row["peak_rss_above_baseline"] / weight_bytes
        row["resident_over_weight_bytes"] = row["resident_after_load"] / weight_bytes
        row["seconds_over_plain_read"] = row["seconds"] / plain
    report = {
        "params": weight_bytes // 2,
        "weight_bytes": weight_bytes,
        "dtype": "bfloat16",
        "write_seconds": write_s,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "max_rss_parent_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "results": rows,
    }
    print(json.dumps(report, indent=2))
    print(f"\n{report['params'] / 1e9:.2f}B params, {weight_bytes / 1024**3:.2f} GiB bf16 weights")
    print(f"{'method':<24} {'seconds':>8} {'÷ plain read':>13} {'peak RSS GiB':>13} {'÷ weight bytes':>15} "
          f"{'resident ÷ weights':>19}")
    for row in rows:
        print(
            f"{row['method']:<24} {row['seconds']:>8.2f} {row['seconds_over_plain_read']:>13.2f} "
            f"{row['peak_rss_above_baseline'] / 1024**3:>13.2f} {row['rss_over_weight_bytes']:>15.2f} "
            f"{row['resident_over_weight_bytes']:>19.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
