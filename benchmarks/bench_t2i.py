"""Text-to-image throughput, side by side: batched vs one request at a time, with and without guidance.

What ``MMaDAAdapter.generate_images`` does for a batch of B requests: one sampler call whose every step
is one forward pass over B conditional rows (+ B unconditional rows with guidance), each row drawing
from its own seeded generator. The alternative is B calls of one request. Both must give identical
outputs (asserted here, bitwise); the table reports images/s of each and the ratio.

Two levels, both on randomly initialised weights (speed does not depend on the weights):

* ``adapter``: the tiny preset end to end through ``generate_images`` (sampler + MAGVIT-v2 decode + PNG-
  ready PIL images), so the ratio is what a run sees;
* ``sampler``: ``generate_image`` alone on a bigger random MMaDA (``--config scaled``, CPU-sized; or
  ``--config 8b``: MMaDA-8B shapes, 1024 image tokens = 512 px, 15 steps, text budget 512 -- for a GPU:
  ``python benchmarks/bench_t2i.py --device cuda --dtype bfloat16 --config 8b``).

    python benchmarks/bench_t2i.py                         # CPU: tiny adapter + scaled sampler
    python benchmarks/bench_t2i.py --json out.json         # also write the figures as JSON
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from mmada_bench.model import MMaDAConfig, MMaDAModelLM
from mmada_bench.sampling import generate_image

CONFIGS = {
    # CPU-sized: a forward over B x (text + image) positions is compute-bound.
    "scaled": dict(d_model=256, n_layers=4, n_heads=4, mlp_hidden_size=768, vocab=4096, codebook=1024,
                   tokens=256, text=64, steps=8, batch=4),
    # MMaDA-8B shapes (spec section 1.1), 512 px = 32x32 = 1024 tokens, 15 steps, t2i text budget 512.
    "8b": dict(d_model=4096, n_layers=32, n_heads=32, mlp_hidden_size=12288, vocab=134656, codebook=8192,
               tokens=1024, text=512, steps=15, batch=8),
}


def build_model(name: str, device: str, dtype: str, seed: int = 0) -> MMaDAModelLM:
    """A random MMaDA of the config's shape, made directly on the device (meta init, then normal fill)."""
    p = CONFIGS[name]
    vocab, codebook = p["vocab"], p["codebook"]
    config = MMaDAConfig(
        d_model=p["d_model"], n_layers=p["n_layers"], n_heads=p["n_heads"], n_kv_heads=p["n_heads"],
        mlp_hidden_size=p["mlp_hidden_size"], vocab_size=vocab, embedding_size=vocab, new_vocab_size=vocab,
        llm_vocab_size=vocab - codebook, codebook_size=codebook, mask_token_id=vocab - codebook - 10,
        eos_token_id=vocab - codebook - 11, pad_token_id=vocab - codebook - 11,
    )
    with torch.device("meta"):
        model = MMaDAModelLM(config)
    model = model.to(getattr(torch, dtype)).to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for pname, param in model.named_parameters():
            param.fill_(1.0) if pname.endswith("norm.weight") or pname.endswith("ln_f.weight") else \
                param.normal_(0.0, config.init_std, generator=gen)
    return model.eval()


def t2i_rows(model: MMaDAModelLM, batch: int, text: int, tokens: int, empty: bool, seed: int) -> torch.Tensor:
    """``[text part] <soi> [MASK] x tokens <eoi>`` rows; the empty prompt is all padding but 3 tokens."""
    config = model.config
    rng = torch.Generator().manual_seed(seed)
    body = torch.randint(10, config.mask_token_id - 20, (batch, text), generator=rng)
    if empty:
        body[:, :-3] = config.pad_token_id
    soi = torch.full((batch, 1), 5)
    image = torch.full((batch, tokens), config.mask_token_id)
    return torch.cat([body, soi, image, soi], dim=1)


def _time(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_sampler(name: str, device: str, dtype: str, repeats: int) -> list[dict]:
    p = CONFIGS[name]
    model = build_model(name, device, dtype)
    cond = t2i_rows(model, p["batch"], p["text"], p["tokens"], False, 1).to(device)
    uncond = t2i_rows(model, p["batch"], p["text"], p["tokens"], True, 2).to(device)
    seeds = [1000 + i for i in range(p["batch"])]
    rows = []
    for guidance in (0.0, 3.5):
        def call(idx: list[int], guidance: float = guidance) -> torch.Tensor:
            return generate_image(model, cond[idx], uncond[idx] if guidance else None, None, None,
                                  timesteps=p["steps"], guidance_scale=guidance, num_image_tokens=p["tokens"],
                                  generator=[torch.Generator(device=device).manual_seed(seeds[i]) for i in idx])
        call([0])  # warm-up
        batched = min((_time(lambda c=call: c(list(range(p["batch"])))) for _ in range(repeats)), key=lambda t: t[0])
        single = min((_time(lambda c=call: torch.cat([c([i]) for i in range(p["batch"])])) for _ in range(repeats)),
                     key=lambda t: t[0])
        assert torch.equal(batched[1], single[1]), "batched codes differ from one-at-a-time codes"
        rows.append(_row(f"sampler/{name}", guidance, p["batch"], p["steps"], batched[0], single[0]))
    return rows


def bench_adapter(repeats: int, batch: int) -> list[dict]:
    from mmada_bench.adapters.base import ImageRequest
    from mmada_bench.adapters.mmada import MMaDAAdapter
    from mmada_bench.adapters.settings import ImageSettings
    from mmada_bench.model.presets import materialize_preset

    adapter = MMaDAAdapter.from_checkpoint(str(materialize_preset("tiny")), device="cpu", batch_size=batch)
    requests = [ImageRequest(f"a photo of object number {i}", seed=i) for i in range(batch)]
    rows = []
    for guidance in (0.0, 3.5):
        settings = ImageSettings(timesteps=15, guidance_scale=guidance, max_text_len=128)
        adapter.generate_images(requests[:1], settings)  # warm-up
        batched = min((_time(lambda s=settings: adapter.generate_images(requests, s)) for _ in range(repeats)),
                      key=lambda t: t[0])
        single = min((_time(lambda s=settings: [adapter.generate_images([r], s)[0] for r in requests])
                      for _ in range(repeats)), key=lambda t: t[0])
        assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image))
                   for a, b in zip(batched[1], single[1], strict=True)), "batched images differ"
        rows.append(_row("adapter/tiny", guidance, batch, settings.timesteps, batched[0], single[0]))
    return rows


def _row(what: str, guidance: float, batch: int, steps: int, batched_s: float, single_s: float) -> dict:
    return {"what": what, "guidance": guidance, "batch": batch, "steps": steps,
            "batched_images_per_s": batch / batched_s, "single_images_per_s": batch / single_s,
            "speedup": single_s / batched_s, "identical": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--config", default="scaled", choices=sorted(CONFIGS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-adapter", action="store_true", help="skip the tiny adapter rows")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()
    rows = [] if args.no_adapter else bench_adapter(args.repeats, batch=4)
    rows += bench_sampler(args.config, args.device, args.dtype, args.repeats)
    print(f"{'what':<16} {'cfg':>4} {'B':>3} {'steps':>5} {'batched img/s':>14} {'single img/s':>13} {'ratio':>6}")
    for r in rows:
        print(f"{r['what']:<16} {r['guidance']:>4} {r['batch']:>3} {r['steps']:>5} "
              f"{r['batched_images_per_s']:>14.2f} {r['single_images_per_s']:>13.2f} {r['speedup']:>6.2f}")
    record = {"machine": platform.platform(), "device": args.device, "dtype": args.dtype,
              "threads": torch.get_num_threads(), "rows": rows}
    print(json.dumps(record))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(record, handle, indent=2)


if __name__ == "__main__":
    main()
