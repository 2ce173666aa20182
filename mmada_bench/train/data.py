"""Training rows from the formats users have, read and checked once, before training starts.

Readers turn each file into a list of small dicts (one per row) in the shape a task needs:

* ``t2i``: ``{"caption", "image" | "image_tokens"}``
* ``lm``: ``{"text"}`` (plain pretraining text), ``{"prompt", "completion"}`` (plain text whose
  prompt stays clean: the model learns to write what an evaluator's prompt asks for) or ``{"chat"}``
  (a formatted conversation whose prompt, up to the last assistant header, stays clean -- spec §5.4)
* ``mmu``: ``{"image" | "image_tokens", "chat"}``

Every malformed row is a :class:`DataError` naming file, row and field, raised while reading -- not
half-way through a run. Chat text uses the training format of spec §3.3 (with the literal
``<eot_id>`` the released models were trained on).

Images become MAGVIT-v2 codes through :class:`ImageTokens`: encoded on the fly by the frozen image
tokenizer and, when a cache folder is given, stored there once per (image content, tokenizer weights,
resolution) so later epochs and runs read codes instead of pixels -- and a run with another tokenizer
never reads codes the first one wrote.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from mmada_bench.errors import DataError
from mmada_bench.model.prompting import COT_INSTRUCTION, LITERAL_EOT, TOKEN_STRINGS, mmu_chat_text
from mmada_bench.train.config import DataSource

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
CAPTION_QUESTION = "Please describe this image in detail."  # the reference's caption prompt
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


def source_rows(source: DataSource) -> list[tuple[str, dict[str, Any]]]:
    """Every row of a source file with where it stands (``file:line`` for JSONL, ``file[index]`` for a
    LLaVA JSON list), each checked to be a JSON object; one :class:`DataError` line for the first bad one.

    The one reader of training files: stages 1-2 turn the rows into samples, stage 3 into prompts."""
    path = Path(source.path)
    if source.format == "llava_json":
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(data, list):
            raise DataError(f"{path}: LLaVA data must be a JSON list of rows")
        numbered = [(f"{path}[{i}]", row) for i, row in enumerate(data)]
    else:
        numbered = []
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        numbered.append((f"{path}:{number}", json.loads(line)))
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    for where, row in numbered:
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object")
    return numbered


def _string(row: Mapping[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: field {key!r} must be a non-empty string")
    return value


def chat_text(turns: list[tuple[str, str]], where: str) -> str:
    """``(role, content)`` turns -> the training chat string; the last turn must be the assistant's.

    Every header is written out; turns are separated by the literal ``<eot_id>`` of spec §3.3, so the
    prompt (everything up to the last ``<|end_header_id|>``) is the whole history.
    """
    if not turns or turns[-1][0] != "assistant":
        raise DataError(f"{where}: a conversation must end with an assistant turn")
    if not any(role == "user" for role, _ in turns):
        raise DataError(f"{where}: a conversation needs a user turn")
    start, end = TOKEN_STRINGS["start_header"], TOKEN_STRINGS["end_header"]
    parts = [f"{start}{role}{end}\n{content}" for role, content in turns]
    return LITERAL_EOT.join(parts)


def _with_cot(turns: list[tuple[str, str]], where: str) -> list[tuple[str, str]]:
    """Put the ``<think>`` instruction in front of the last user turn and check the answer's format."""
    answer = turns[-1][1]
    opened, closed = answer.find(THINK_OPEN), answer.find(THINK_CLOSE)
    if opened < 0 or closed < opened:
        raise DataError(f"{where}: CoT answer must contain {THINK_OPEN} reasoning {THINK_CLOSE} then the answer")
    last_user = max(i for i, (role, _) in enumerate(turns) if role == "user")
    out = list(turns)
    out[last_user] = ("user", f"{COT_INSTRUCTION}\n{turns[last_user][1]}")
    return out


def _turns(row: Mapping[str, Any], where: str) -> list[tuple[str, str]]:
    """Conversation turns of a chat row: ``messages`` (OpenAI/HF style) or ``prompt`` + ``response``."""
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            raise DataError(f"{where}: field 'messages' must be a non-empty list")
        turns = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in _ROLES:
                raise DataError(f"{where}: messages[{i}] needs a role in {sorted(set(_ROLES.values()))}")
            turns.append((_ROLES[message["role"]], _string(message, "content", f"{where}: messages[{i}]")))
        return turns
    for prompt_key, answer_key in (("prompt", "response"), ("question", "answer"), ("instruction", "output")):
        if prompt_key in row:
            return [("user", _string(row, prompt_key, where)), ("assistant", _string(row, answer_key, where))]
    raise DataError(f"{where}: chat row needs 'messages' or 'prompt'/'response' fields")


def image_ref(row: Mapping[str, Any], source: DataSource, where: str) -> dict[str, Any]:
    """``{"image": absolute path}`` or ``{"image_tokens": [codes]}`` for a row that carries an image."""
    if "image_tokens" in row:
        codes = row["image_tokens"]
        if not isinstance(codes, list) or not codes or not all(isinstance(c, int) and c >= 0 for c in codes):
            raise DataError(f"{where}: field 'image_tokens' must be a non-empty list of codebook indices")
        return {"image_tokens": codes}
    name = _string(row, "image", where)
    root = Path(source.image_root) if source.image_root else Path(source.path).parent
    path = Path(name) if Path(name).is_absolute() else root / name
    if not path.is_file():
        raise DataError(f"{where}: image file not found: {path}")
    return {"image": str(path)}


def read_source(task: str, source: DataSource) -> list[dict[str, Any]]:
    """All rows of one source as task samples; raises :class:`DataError` on the first bad row."""
    rows = [_sample(task, source, row, where) for where, row in source_rows(source)]
    if not rows:
        raise DataError(f"{source.path}: no rows")
    return rows


def _sample(task: str, source: DataSource, row: Mapping[str, Any], where: str) -> dict[str, Any]:
    if source.format == "text_jsonl":
        if "prompt" in row or "completion" in row:
            if "text" in row:
                raise DataError(f"{where}: give either 'text' or 'prompt' + 'completion', not both")
            return {"prompt": _string(row, "prompt", where), "completion": _string(row, "completion", where)}
        return {"text": _string(row, "text", where)}
    if source.format == "caption_jsonl":
        image = image_ref(row, source, where)
        caption = _string(row, "caption", where)
        if task == "t2i":
            return {"caption": caption, **image}
        return {"chat": mmu_chat_text(CAPTION_QUESTION, caption), **image}
    if source.format == "llava_json":
        conversations = row.get("conversations")
        if not isinstance(conversations, list) or not conversations:
            raise DataError(f"{where}: field 'conversations' must be a non-empty list")
        turns = []
        for i, turn in enumerate(conversations):
            if not isinstance(turn, dict) or turn.get("from") not in _ROLES:
                raise DataError(f"{where}: conversations[{i}] needs 'from' in human/gpt")
            text = _string(turn, "value", f"{where}: conversations[{i}]")
            turns.append((_ROLES[turn["from"]], text.replace("<image>\n", "").replace("\n<image>", "").strip()))
        if source.cot:
            turns = _with_cot(turns, where)
        return {"chat": chat_text(turns, where), **image_ref(row, source, where)}
    # chat_jsonl
    turns = _turns(row, where)
    if source.cot:
        turns = _with_cot(turns, where)
    sample: dict[str, Any] = {"chat": chat_text(turns, where)}
    if task == "mmu":
        sample.update(image_ref(row, source, where))
    elif "image" in row or "image_tokens" in row:
        raise DataError(f"{where}: row has an image but its source feeds the text task lm; list it under data.mmu")
    return sample


class ImageTokens:
    """MAGVIT-v2 codes of an image: from the row, the cache folder, or the frozen encoder (then cached)."""

    def __init__(
        self,
        vq_model: torch.nn.Module | None,
        resolution: int,
        num_tokens: int,
        cache_dir: str | None = None,
    ) -> None:
        self.vq_model = vq_model
        self.resolution = resolution
        self.num_tokens = num_tokens
        self.cache = Path(cache_dir) if cache_dir else None
        self._memory: dict[str, torch.Tensor] = {}
        self._tokenizer_digest: str | None = None

    def _key(self, path: str) -> str:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return f"{digest[:32]}-vq{self.tokenizer_digest()}-r{self.resolution}"

    def tokenizer_digest(self) -> str:
        """First 12 hex digits of sha256 over the image tokenizer's tensors (names, shapes, bytes); "none"
        without one. Part of every cache key: the same image under another tokenizer has other codes."""
        if self._tokenizer_digest is None:
            if self.vq_model is None:
                self._tokenizer_digest = "none"
            else:
                h = hashlib.sha256()
                for name, tensor in sorted(self.vq_model.state_dict().items()):
                    h.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
                    h.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
                self._tokenizer_digest = h.hexdigest()[:12]
        return self._tokenizer_digest

    def codes(self, sample: Mapping[str, Any]) -> torch.Tensor:
        """(N,) int64 codes of the sample's image."""
        if "image_tokens" in sample:
            codes = torch.tensor(sample["image_tokens"], dtype=torch.long)
        else:
            codes = self._encode(sample["image"])
        if codes.numel() != self.num_tokens:
            raise DataError(f"image of {sample.get('image', 'row')} has {codes.numel()} tokens, expected {self.num_tokens}")
        return codes

    def _encode(self, path: str) -> torch.Tensor:
        if path in self._memory:
            return self._memory[path]
        key = self._key(path)
        cached = self.cache / f"{key}.safetensors" if self.cache else None
        if cached is not None and cached.is_file():
            codes = load_file(cached)["codes"]
        else:
            if self.vq_model is None:
                raise DataError(f"{path}: no image tokenizer (vq_model/) to encode it and no cached codes")
            from mmada_bench.model.image_processing import preprocess_image, resize_mode_for

            pixels = preprocess_image(path, self.resolution, resize_mode_for(path))[None]
            with torch.no_grad():
                codes = self.vq_model.encode(pixels)[0].to("cpu", torch.long)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(".tmp")
                save_file({"codes": codes.contiguous()}, str(tmp))
                tmp.replace(cached)
        self._memory[path] = codes
        return codes
