"""Strict loading of MMaDA checkpoint folders in the released layout.

A checkpoint folder holds ``config.json`` and either ``model.safetensors`` or a sharded
``model.safetensors.index.json`` + shards. Loading:

* validates everything it can from the safetensors *headers* before reading a single weight, so a
  wrong checkpoint fails in milliseconds with one line naming the file and key;
* builds the network on the meta device and assigns each tensor as it is read (cast to the target
  dtype on the way), so the weights are never held twice. Each tensor is read through its own short
  ``safe_open`` so the file mapping of already-read tensors does not pile up in resident memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError, safe_open

from mmada_bench.errors import CheckpointError
from mmada_bench.hashing import file_sha256

if TYPE_CHECKING:  # imported lazily: MAGVIT-v2 loading must not pull in transformers
    from mmada_bench.model.configuration_mmada import MMaDAConfig

CONFIG_NAME = "config.json"
#: config.json fields that set tensor shapes; a checkpoint config must state them.
SHAPE_FIELDS = ("d_model", "n_heads", "n_layers")
SINGLE_WEIGHTS = "model.safetensors"
SHARD_INDEX = "model.safetensors.index.json"
#: model_type values whose key layout and semantics this loader reads (LLaDA = text-only MMaDA).
ACCEPTED_MODEL_TYPES = ("mmada", "llada")

_DTYPE_NAMES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


def resolve_dtype(dtype: torch.dtype | str | None, config: MMaDAConfig | None = None) -> torch.dtype:
    """Turn a dtype, its common name, ``"auto"`` (config's dtype) or None (fp32) into a torch dtype."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).lower().removeprefix("torch.")
    if name == "auto":
        stored = None
        if config is not None:
            stored = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
        return resolve_dtype(stored if stored not in (None, "auto") else "float32")
    if name not in _DTYPE_NAMES:
        from mmada_bench.errors import ConfigError

        raise ConfigError(f"unknown dtype {dtype!r}; use one of float32, bfloat16, float16, auto")
    return _DTYPE_NAMES[name]


def read_json_object(file: Path, what: str) -> dict:
    """A checkpoint's JSON config file as a dict; missing or malformed files fail in one line."""
    if not file.is_file():
        raise CheckpointError(f"{file} not found (a {what} folder needs {file.name})")
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{file} must hold a JSON object")
    return raw


def read_config(path: str | Path) -> MMaDAConfig:
    """Read and check ``config.json`` of a checkpoint folder."""
    from mmada_bench.model.configuration_mmada import MMaDAConfig

    folder = Path(path)
    if not folder.exists():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint path is not a folder: {folder}")
    config_file = folder / CONFIG_NAME
    raw = read_json_object(config_file, "checkpoint")
    model_type = raw.get("model_type")
    if model_type not in ACCEPTED_MODEL_TYPES:
        raise CheckpointError(
            f"{config_file}: model_type {model_type!r} is not one of {', '.join(ACCEPTED_MODEL_TYPES)}"
        )
    missing = [name for name in SHAPE_FIELDS if name not in raw]
    if missing:  # the class defaults are MMaDA-8B's: filling them in would blame the weights instead
        raise CheckpointError(f"{config_file}: missing {', '.join(missing)} (the model's shape is not guessed)")
    raw = {k: v for k, v in raw.items() if k != "model_type"}
    try:
        config = MMaDAConfig(**raw)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{config_file}: {exc}") from None
    config.validate_architecture()
    return config


def weight_files(
    path: str | Path, single_names: tuple[str, ...] = (SINGLE_WEIGHTS,), index_name: str = SHARD_INDEX
) -> dict[str, Path]:
    """Map every tensor name to the file that holds it, from the shard index or a single file.

    ``single_names`` are tried in order when there is no index (MAGVIT-v2 folders use
    ``pytorch_model.safetensors``).
    """
    folder = Path(path)
    index_file = folder / index_name
    if index_file.is_file():
        try:
            index = json.loads(index_file.read_text(encoding="utf-8"))
            weight_map = index["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{index_file} is not a valid shard index ({exc!r})") from None
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{index_file}: weight_map must be an object")
        mapping = {}
        for key, shard in weight_map.items():
            shard_file = folder / shard
            if not shard_file.is_file():
                raise CheckpointError(f"{index_file} names shard {shard} for key {key}, which does not exist")
            mapping[key] = shard_file
        return mapping
    for name in single_names:
        single = folder / name
        if single.is_file():
            return {key: single for key in _header(single)}
    raise CheckpointError(f"no {' or '.join(single_names)} or {index_name} in {folder}")


def _header(file: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header (reads no tensor data)."""
    try:
        with safe_open(str(file), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{file} is not a readable safetensors file ({exc})") from None


def _check_keys(
    expected: dict[str, tuple[int, ...]], mapping: dict[str, Path], folder: Path, index_name: str
) -> dict[Path, dict[str, tuple[int, ...]]]:
    """Compare a checkpoint's tensor names and shapes with the model's; one line per first problem."""
    headers: dict[Path, dict[str, tuple[int, ...]]] = {}
    for file in sorted(set(mapping.values())):
        headers[file] = _header(file)
    found: dict[str, tuple[Path, tuple[int, ...]]] = {}
    for file, header in headers.items():
        for key, shape in header.items():
            found[key] = (file, shape)
    for key, file in mapping.items():
        if key not in headers[file]:
            raise CheckpointError(f"{file} lacks key {key} (listed for it in {index_name})")
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        file = found[unexpected[0]][0]
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise CheckpointError(f"{file} has unexpected key {unexpected[0]}{more}")
    missing = sorted(set(expected) - set(found))
    if missing:
        where = (folder / index_name) if (folder / index_name).is_file() else sorted(set(mapping.values()))[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CheckpointError(f"{where} lacks key {missing[0]}{more}")
    for key, (file, shape) in sorted(found.items()):
        if shape != expected[key]:
            raise CheckpointError(f"{file}: key {key} has shape {list(shape)}, expected {list(expected[key])}")
    return {file: header for file, header in headers.items() if header}


def _read_tensors(file: Path, keys: list[str], device: str) -> Iterator[tuple[str, torch.Tensor]]:
    for key in keys:
        try:
            with safe_open(str(file), framework="pt", device=device) as handle:
                tensor = handle.get_tensor(key)
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{file}: cannot read key {key} ({exc})") from None
        yield key, tensor


def _assign(model: torch.nn.Module, key: str, value: torch.Tensor) -> None:
    """Put ``value`` in place of the meta tensor ``key`` (no copy; a per-tensor load_state_dict would
    walk the whole module tree each time, which dominated load time)."""
    owner_name, _, attr = key.rpartition(".")
    owner = model.get_submodule(owner_name)
    if attr in owner._parameters:
        old = owner._parameters[attr]
        owner._parameters[attr] = torch.nn.Parameter(value, requires_grad=old.requires_grad)
    else:
        owner._buffers[attr] = value


def assign_weights_strict(
    model: torch.nn.Module,
    mapping: dict[str, Path],
    folder: Path,
    dtype: torch.dtype | None,
    device: torch.device,
    index_name: str = SHARD_INDEX,
) -> None:
    """Fill a meta-device ``model`` from safetensors files, refusing any key or shape mismatch.

    ``mapping`` maps each tensor name to its file (see :func:`weight_files`). Parameters *and*
    persistent buffers are expected. ``dtype=None`` keeps each tensor's stored dtype.
    """
    expected = {name: tuple(t.shape) for name, t in model.state_dict(keep_vars=True).items()}
    headers = _check_keys(expected, mapping, folder, index_name)
    read_device = "cpu" if device.type == "cpu" else str(device)
    for file, header in headers.items():
        for key, tensor in _read_tensors(file, list(header), read_device):
            converted = tensor.to(device=device, dtype=dtype) if dtype is not None else tensor.to(device)
            _assign(model, key, converted)
            del tensor
    state = model.state_dict(keep_vars=True)
    still_meta = [name for name, t in state.items() if t.device.type == "meta"]
    if still_meta:  # cannot happen after _check_keys; kept as a hard guarantee
        raise CheckpointError(f"{folder}: tensor {still_meta[0]} was not loaded")


def checkpoint_fingerprint(path: str | Path, single_names: tuple[str, ...] = (SINGLE_WEIGHTS,)) -> str:
    """Identity of a checkpoint's content: sha256 over config.json, the shard index and every weight file.

    Results are keyed by it (resume, regression baselines), so it must change when any weight value
    changes -- a header-only hash would not. Each file's digest is cached by (path, size, mtime), so
    only the first run on a multi-GB checkpoint pays for reading it.
    """
    folder = Path(path)
    digest = hashlib.sha256()
    for name in (CONFIG_NAME, SHARD_INDEX):
        file = folder / name
        if file.is_file():
            digest.update(name.encode())
            digest.update(file.read_bytes())
    for file in sorted(set(weight_files(folder, single_names).values())):
        digest.update(file.name.encode())
        digest.update(file_sha256(file).encode())
    return digest.hexdigest()
