"""The adapters' one dependency on model loading, tokenizers and prompting.

Everything the MMaDA adapter needs from ``mmada_bench.model`` (checkpoint resolution, the bundle of
model + tokenizer + image tokenizer, special token ids, the chat template, the prompt builder) is
reached through this module, so a change there is one edit here. ``fingerprint`` is the bundle's
content hash (every weight byte of the model and image tokenizer), so resume keys change whenever a
checkpoint is retrained and saved over the same folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass
class LoadedModel:
    """What the MMaDA adapter works with, independent of how it was loaded."""

    model: torch.nn.Module
    tokenizer: Any
    special: Any  # mmada_bench.model.prompting.SpecialTokens
    vq_model: Any | None
    path: Path
    name_or_path: str
    fingerprint: str

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def load_model(
    name_or_path: str | Path,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    vq_model: str | Path | None = None,
    tokenizer: str | Path | None = None,
) -> LoadedModel:
    """Resolve a preset name or folder and load it (``mmada_bench.model.loading.load_bundle``)."""
    from mmada_bench.model.loading import load_bundle

    bundle = load_bundle(name_or_path, dtype=dtype, device=device, vq_model=vq_model, tokenizer=tokenizer)
    return LoadedModel(
        model=bundle.model,
        tokenizer=bundle.tokenizer,
        special=bundle.special_tokens,
        vq_model=bundle.vq_model,
        path=bundle.path,
        name_or_path=str(name_or_path),
        fingerprint=bundle.fingerprint,
    )


def with_single_bos(ids: list[int], bos: int) -> list[int]:
    """Exactly one leading BOS (``mmada_bench.model.prompting.with_single_bos``)."""
    from mmada_bench.model.prompting import with_single_bos as single

    return single(ids, bos)


def chat_prompt(user_text: str, bos_token: str, cot: bool) -> str:
    """One user turn in MMaDA's text-generation chat template (spec §3.3), optionally with CoT."""
    from mmada_bench.model.prompting import apply_text_chat_template, with_cot

    content = with_cot(user_text) if cot else user_text
    return apply_text_chat_template([{"role": "user", "content": content}], bos_token)


def chat_cot(question: str) -> str:
    """MMaDA's thinking instruction before a question (MMU uses the ``"\\n"`` join)."""
    from mmada_bench.model.prompting import with_cot

    return with_cot(question)


def chat_messages(messages: list[dict[str, str]], bos_token: str) -> str:
    """A whole conversation (lm-eval's ``apply_chat_template``) in MMaDA's template."""
    from mmada_bench.model.prompting import apply_text_chat_template

    return apply_text_chat_template(messages, bos_token)


def prompting(loaded: LoadedModel, max_text_len: int) -> Any:
    """MMaDA's sequence builder (``MMaDAPrompting``) for this checkpoint."""
    from mmada_bench.model.prompting import MMaDAPrompting

    return MMaDAPrompting.from_config(loaded.tokenizer, loaded.config, max_text_len)


def samplers() -> Any:
    """``mmada_bench.sampling`` (``generate_text``, ``generate_image``, ``SamplingStats``...)."""
    import mmada_bench.sampling as sampling

    return sampling


def image_processing() -> Any:
    """``mmada_bench.model.image_processing`` (``preprocess_images``, ``postprocess_images``)."""
    import mmada_bench.model.image_processing as images

    return images
