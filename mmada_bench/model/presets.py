"""Named model presets: small MMaDA checkpoints the project makes itself, in the real folder layout.

No weights can be downloaded here, so every code path (loading, sampling, every benchmark) runs on
checkpoints we build. A preset is materialised once into the cache as an ordinary checkpoint folder
-- ``config.json`` + ``model.safetensors`` + tokenizer files + ``vq_model/`` (MAGVIT-v2) -- so the
rest of the harness cannot tell it from a real MMaDA-8B folder and tests exercise the real loaders.

Materialisation is deterministic (fixed seed, fixed shipped tokenizer), so the folder's content and
therefore its fingerprint are identical on every machine and run.

Two kinds of preset: *random* ones (``tiny``: fast, honest chance-level scores for tests) and
*trained* ones (``toy-stage1`` / ``toy-stage2`` / ``toy``: the MMaDA trained in-project on the
easy-vqa toy world, :mod:`mmada_bench.toy`), whose committed ``config.json`` + ``model.safetensors``
are copied from ``assets/`` next to the packaged toy MAGVIT-v2. A trained preset's cache folder
carries a digest of its committed weights, so retrained weights never meet a stale cache.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from mmada_bench.errors import CheckpointError, ConfigError

VQ_SUBFOLDER = "vq_model"
PRESET_FILE = "preset.json"
#: Packaged files presets are assembled from (the toy world's are built by ``python -m mmada_bench.toy.build``).
ASSETS = Path(__file__).resolve().parent / "assets"


@dataclass(frozen=True)
class Preset:
    """Architecture of a randomly initialised MMaDA + MAGVIT-v2 + tokenizer bundle."""

    name: str
    description: str
    version: int = 1
    seed: int = 0
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    mlp_hidden_size: int = 384
    max_sequence_length: int = 2048
    codebook_bits: int = 10
    image_resolution: int = 64
    magvit_channels: int = 32
    magvit_encoder_mult: tuple[int, ...] = (1, 2, 2, 4, 4)
    magvit_decoder_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    magvit_res_blocks: int = 1
    #: Packaged MAGVIT-v2 folder (relative to ``assets/``) used instead of a random one.
    vq_asset: str | None = None
    #: Packaged tokenizer folder (relative to ``assets/``; tiny layout) used instead of the tiny one.
    tokenizer_asset: str | None = None
    #: Packaged trained MMaDA folder (``config.json`` + ``model.safetensors``, relative to ``assets/``).
    weights_asset: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def folder_name(self) -> str:
        if self.weights_asset is None:
            return f"{self.name}-v{self.version}"
        from mmada_bench.hashing import file_sha256

        weights = ASSETS / self.weights_asset / "model.safetensors"
        if not weights.is_file():
            raise CheckpointError(f"preset {self.name!r}: packaged weights {weights} are missing (rebuild: make toy)")
        return f"{self.name}-v{self.version}-{file_sha256(weights)[:12]}"


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny",
        description=(
            "randomly initialised 4-layer d128 MMaDA (about 3M params) with the shipped 2048-token tiny "
            "tokenizer and a 10-bit MAGVIT-v2 at 64 px (16 image tokens); honest, near-chance scores"
        ),
    ),
    **{
        name: Preset(name=name, description=description, vq_asset="toy/magvitv2", tokenizer_asset="toy/tokenizer",
                     weights_asset=f"toy/mmada/{stage}")
        for name, stage, description in (
            ("toy-stage1", "stage1", "the toy MMaDA after stage 1 (masked-token pretraining on the easy-vqa toy world)"),
            ("toy-stage2", "stage2", "the toy MMaDA after stage 2 (mixed long-CoT fine-tuning)"),
            ("toy", "stage3", "the trained embedded default: the toy MMaDA after stage 3 (UniGRPO with correctness, "
             "format and toy-judge rewards); real, still weak scores on easyvqa, easyvqa_t2i and toy_count"),
        )
    },
}


def cache_root() -> Path:
    """Where presets are materialised: ``$MMADA_BENCH_CACHE`` or ``~/.cache/mmada_bench``."""
    return Path(os.environ.get("MMADA_BENCH_CACHE", Path.home() / ".cache" / "mmada_bench"))


def _magvit_config(preset: Preset):
    from mmada_bench.model.magvitv2 import MAGVITv2Config

    def section(mult: tuple[int, ...]) -> dict:
        return {
            "ch": preset.magvit_channels,
            "ch_mult": list(mult),
            "num_res_blocks": [preset.magvit_res_blocks] * len(mult),
            "attn_resolutions": [5],
            "dropout": 0.0,
            "in_ch": 3,
            "out_ch": 3,
            "resolution": preset.image_resolution,
            "z_channels": preset.codebook_bits,
            "double_z": False,
        }

    return MAGVITv2Config(
        encoder=section(preset.magvit_encoder_mult),
        decoder=section(preset.magvit_decoder_mult),
        codebook_dim=preset.codebook_bits,
    )


def _mmada_config(preset: Preset, text_vocab: int, special_ids: dict[str, int], num_vq_tokens: int):
    from mmada_bench.model.configuration_mmada import MMaDAConfig

    vocab = text_vocab + 2**preset.codebook_bits
    return MMaDAConfig(
        d_model=preset.d_model,
        n_heads=preset.n_heads,
        n_kv_heads=preset.n_heads,
        n_layers=preset.n_layers,
        mlp_hidden_size=preset.mlp_hidden_size,
        max_sequence_length=preset.max_sequence_length,
        vocab_size=vocab,
        embedding_size=vocab,
        new_vocab_size=vocab,
        llm_vocab_size=text_vocab,
        image_token_offset=text_vocab,
        codebook_size=2**preset.codebook_bits,
        num_vq_tokens=num_vq_tokens,
        mask_token_id=special_ids["mask"],
        special_token_ids=special_ids,
        bos_token_id=special_ids["bos"],
        eos_token_id=special_ids["eos"],
        pad_token_id=special_ids["eos"],
        architectures=["MMadaModelLM"],
    )


def write_preset(
    preset: Preset,
    folder: Path,
    vq_folder: Path | None = None,
    tokenizer_folder: Path | None = None,
    weights_folder: Path | None = None,
) -> None:
    """Build the preset's three parts with a fixed seed and save them in the real folder layout.

    ``vq_folder`` / ``tokenizer_folder`` / ``weights_folder`` replace the preset's packaged MAGVIT-v2 /
    tokenizer / trained weights (a rebuild trains, and is measured, on its own).
    """
    from mmada_bench.model.magvitv2 import MAGVITv2
    from mmada_bench.model.modeling_mmada import MMaDAModelLM
    from mmada_bench.model.tokenizer import load_tokenizer, tiny_special_token_ids, tiny_tokenizer

    if tokenizer_folder is not None or preset.tokenizer_asset is not None:
        tokenizer = load_tokenizer(tokenizer_folder or ASSETS / preset.tokenizer_asset)
    else:
        tokenizer = tiny_tokenizer()
    text_vocab = len(tokenizer)
    special_ids = tiny_special_token_ids(text_vocab)
    if vq_folder is not None or preset.vq_asset is not None:
        vq = MAGVITv2.from_pretrained(vq_folder or ASSETS / preset.vq_asset)
        magvit_config = vq.config
    else:
        magvit_config = _magvit_config(preset)
    tokens_per_side = preset.image_resolution // magvit_config.downsample_factor
    if weights_folder is not None or preset.weights_asset is not None:
        source = weights_folder or ASSETS / preset.weights_asset
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copyfile(source / name, folder / name)
    else:
        config = _mmada_config(preset, text_vocab, special_ids, tokens_per_side**2)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(preset.seed)
            model = MMaDAModelLM(config)
            if vq_folder is None and preset.vq_asset is None:
                vq = MAGVITv2(magvit_config)
        model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    vq.save_pretrained(folder / VQ_SUBFOLDER)
    (folder / PRESET_FILE).write_text(json.dumps(asdict(preset), indent=2))


def materialize_preset(name: str, root: Path | None = None) -> Path:
    """Folder of preset ``name``, building it on first use (atomically, so concurrent runs are safe)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown model preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    preset = PRESETS[name]
    target = (root or cache_root()) / "presets" / preset.folder_name
    if (target / PRESET_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{preset.folder_name}-", dir=target.parent))
    try:
        write_preset(preset, staging)
        try:
            staging.rename(target)
        except OSError:  # another process won the race; its folder is identical
            if not (target / PRESET_FILE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """A checkpoint folder for a preset name (materialised on demand) or an existing path."""
    text = str(name_or_path)
    if text in PRESETS:
        return materialize_preset(text)
    path = Path(text).expanduser()
    if not path.exists():
        raise CheckpointError(
            f"model {text!r} is neither a checkpoint folder nor a preset (presets: {', '.join(sorted(PRESETS))})"
        )
    return path
