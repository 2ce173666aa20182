"""Numbers the MMaDA paper reports (arXiv 2505.15809; SPEC §6.4), for side-by-side leaderboard columns.

They are *quoted*, never measured here: reports show them in separate, marked columns. Values are in
report units (points for proportions, as the paper prints them; MME's summed score, CLIP score and
ImageReward as printed). Each is attached to the primary metric of the task named; the paper does not
always say which variant it used (e.g. GSM8K's answer filter), so read them as the paper's headline.
Tasks of the paper this package does not run (ARC-C, TruthfulQA, Flickr30k, MMB, SEED, WISE) are
listed for completeness and simply never match a measured row.
"""

from __future__ import annotations

from mmada_bench.errors import ConfigError

#: model -> task (our catalog name where we have one) -> reported value.
REPORTED: dict[str, dict[str, float]] = {
    # Table 4 (text), MMaDA row and the baselines as quoted there.
    "LLaMA-2-7B": {"mmlu": 45.9, "arc_challenge": 46.3, "truthfulqa": 39.0, "gsm8k": 14.3, "math": 3.2, "gpqa": 25.7},
    "LLaMA-3-8B": {"mmlu": 64.5, "arc_challenge": 53.1, "truthfulqa": 44.0, "gsm8k": 53.1, "math": 15.1, "gpqa": 25.9},
    "Qwen2-7B": {"mmlu": 70.3, "arc_challenge": 60.6, "truthfulqa": 54.2, "gsm8k": 80.2, "math": 43.5, "gpqa": 30.8},
    "LLaDA-8B": {"mmlu": 65.9, "arc_challenge": 47.9, "truthfulqa": 46.4, "gsm8k": 70.7, "math": 27.3, "gpqa": 26.1},
    "MMaDA-8B": {
        "mmlu": 68.4, "arc_challenge": 57.4, "truthfulqa": 43.1, "gsm8k": 73.4, "math": 36.0, "gpqa": 28.4,
        # Table 2 (multimodal understanding)
        "pope": 86.1, "mme": 1410.7, "flickr30k": 67.6, "vqav2": 76.7, "gqa": 61.3, "mmmu": 30.2, "mmbench": 68.5,
        "seed": 64.2,
        # Table 3 (text-to-image); GenEval overall as a proportion in points
        "clipscore": 32.46, "imagereward": 1.15, "geneval": 63.0, "wise_cultural": 0.67,
    },
    "LLaVA-v1.5": {"pope": 85.9, "mme": 1510.7, "vqav2": 78.5, "gqa": 62.0, "mmmu": 35.4, "mmbench": 64.3, "seed": 58.6},
    "Show-o": {"pope": 80.0, "mme": 1097.2, "vqav2": 69.4, "gqa": 58.0, "mmmu": 26.7, "clipscore": 28.94,
               "imagereward": 0.92, "geneval": 53.0, "wise_cultural": 0.28},
    "SEED-X": {"flickr30k": 52.3, "mmmu": 35.6},
    "SDXL": {"clipscore": 32.12, "imagereward": 1.13, "geneval": 55.0, "wise_cultural": 0.43},
    "Janus": {"clipscore": 29.45, "imagereward": 1.03, "geneval": 61.0, "wise_cultural": 0.16},
}

#: Training-stage ablation (Table 5): stage -> benchmark -> value (GSM8K, MATH500 ... as printed).
REPORTED_STAGES: dict[str, dict[str, float]] = {
    "Stage 1 (pretrain)": {"gsm8k": 17.4, "math500": 4.2, "geoqa": 8.3, "clevr": 10.3, "clipscore": 23.1, "imagereward": 0.69},
    "+ Mixed Long-CoT": {"gsm8k": 65.2, "math500": 26.5, "geoqa": 15.9, "clevr": 27.5, "clipscore": 29.4, "imagereward": 0.84},
    "+ UniGRPO": {"gsm8k": 73.4, "math500": 36.0, "geoqa": 21.0, "clevr": 34.5, "clipscore": 32.5, "imagereward": 1.15},
}

DEFAULT_MODEL = "MMaDA-8B"
SOURCE = "MMaDA paper (arXiv 2505.15809), Tables 2-4"


def reported_models(names: str | None) -> list[str]:
    """``None`` or ``"MMaDA-8B"`` -> that model; ``"all"`` -> every model; else a comma-separated list."""
    if names is None:
        return [DEFAULT_MODEL]
    if names == "all":
        return list(REPORTED)
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in REPORTED]
    if unknown:
        raise ConfigError(f"--reported: unknown model {unknown[0]!r}; known: all, {', '.join(REPORTED)}")
    return chosen
