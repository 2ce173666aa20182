"""``mmada`` for lm-eval: an ``LM`` whose requests go through the request engine to an adapter.

lm-eval builds prompts, few-shot, filters and metrics; this class answers its three request types:

* ``loglikelihood``: LLaDA's Monte Carlo estimator (``mc_num``, ``mc_batch``, ``cfg``); one-token
  continuations are exact, and the choices of one question share one forward pass -- the reference
  script crashes here (``self.cfg`` is never set);
* ``loglikelihood_rolling``: the same estimator over windows of the text;
* ``generate_until``: the adapter's batched ``generate_text`` (the reference generates one prompt at a
  time), output cut at the task's ``until`` strings. Sampler settings (``gen_length``, ``steps``...)
  govern; the task's ``max_gen_toks`` / ``temperature`` are kept in the record but not used.

Resume, seeds and batching are the :class:`~mmada_bench.engine.serve.RequestEngine`'s: with a request
log (``store=DIR`` from lm-eval's CLI, or the run folder under ``mmada-bench run``) every answer is
logged as its batch finishes and served on a rerun.

Model args (``--model_args k=v,...``): ``pretrained`` (folder or preset), ``dtype``, ``label``,
``seed``, ``store`` (folder for the request log), ``vq_model``, ``tokenizer``, and any
:class:`~mmada_bench.adapters.settings.TextSettings` field.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from mmada_bench.adapters.base import Adapter, Cost, LoglikelihoodRequest, TextRequest
from mmada_bench.adapters.settings import TextSettings, coerce
from mmada_bench.engine.distributed import Distributed
from mmada_bench.engine.request_log import RequestLog
from mmada_bench.engine.serve import Job, RequestEngine
from mmada_bench.errors import ConfigError
from mmada_bench.hashing import text_sha256
from mmada_bench.model.prompting import apply_text_chat_template

#: Arguments lm-eval may pass that mean nothing here (accepted so its CLI flags do not break us).
_IGNORED_ARGS = ("max_batch_size", "trust_remote_code", "parallelize", "max_length_override")


@register_model("mmada")
class MMaDALM(LM):
    """lm-eval ``LM`` backed by an :class:`Adapter` (built from ``pretrained`` when none is given)."""

    def __init__(
        self,
        pretrained: str | None = None,
        adapter: Adapter | None = None,
        *,
        dtype: str = "float32",
        device: str | None = None,
        batch_size: int | str | None = None,
        label: str | None = None,
        seed: int = 1234,
        store: Any = None,
        engine: RequestEngine | None = None,
        task_settings: Mapping[str, TextSettings] | None = None,
        progress: bool = True,
        progress_label: str | None = None,
        vq_model: str | None = None,
        tokenizer: str | None = None,
        distributed: Distributed | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        sampler_args = {k: v for k, v in kwargs.items() if k not in _IGNORED_ARGS}
        self.settings = TextSettings().updated(coerce(TextSettings, sampler_args))
        self.dist = distributed or Distributed()
        self._rank, self._world_size = self.dist.rank, self.dist.world_size
        size = _batch_size(batch_size)
        if adapter is None and engine is None:
            if not pretrained:
                raise ConfigError("lm-eval model mmada needs pretrained=<checkpoint folder or preset name>")
            from mmada_bench.adapters.mmada import MMaDAAdapter

            adapter = MMaDAAdapter.from_checkpoint(
                str(pretrained), dtype=dtype, device=_usable_device(self.dist.device or device),
                batch_size=size or 8, label=label, vq_model=vq_model, tokenizer=tokenizer,
            )
        if engine is None:
            assert adapter is not None
            log = RequestLog(Path(store), self._rank) if isinstance(store, (str, Path)) else store
            engine = RequestEngine(adapter, log, seed=int(seed), batch_size=size, progress=progress, rank=self._rank)
        self.engine = engine
        self.adapter = engine.adapter
        self.batch_size = engine.batch_size
        self.task_settings = dict(task_settings or {})
        self.progress_label = progress_label
        self.costs: dict[tuple[str, int], Cost] = defaultdict(Cost)

    # -- lm-eval plumbing --------------------------------------------------------------------------
    @property
    def device(self):
        return getattr(getattr(self.adapter, "bundle", None), "device", "cpu")

    def all_gather(self, tensor):
        return self.dist.all_gather(tensor)

    def gather_object(self, obj, dst=0):
        return self.dist.gather_object(obj)

    def barrier(self) -> None:
        self.dist.barrier()

    @property
    def tokenizer_name(self) -> str:
        return f"mmada:{self.engine.identity.get('checkpoint_fingerprint', type(self.adapter).__name__)}"

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """lm-eval's ``--apply_chat_template``: MMaDA's single-newline text template (spec §3.3)."""
        tokenizer = getattr(self.adapter, "tokenizer", None)
        return apply_text_chat_template(chat_history, getattr(tokenizer, "bos_token", "") or "")

    def chat_template(self, chat_template: bool | str = False) -> str:
        return "mmada-text-chat" if chat_template else ""

    def get_model_info(self) -> dict[str, Any]:
        return {"mmada": self.adapter.describe(), "sampler": self.settings.to_dict()}

    # -- requests ----------------------------------------------------------------------------------
    def settings_for(self, task_name: str | None) -> TextSettings:
        return self.task_settings.get(task_name or "", self.settings)

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        jobs = []
        for inst in requests:
            context, continuation = str(inst.args[0]), str(inst.args[1])
            settings = self.settings_for(inst.task_name)
            jobs.append(self._job("loglikelihood", inst, LoglikelihoodRequest(context, continuation), settings,
                                  [context, continuation], {"continuation": continuation}, group=text_sha256(context)))
        return [(s.result.logprob, s.result.is_greedy) for s in self._serve(jobs, requests, "loglikelihood")]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        jobs = []
        for inst in requests:
            text = str(inst.args[0])
            jobs.append(self._job("loglikelihood_rolling", inst, LoglikelihoodRequest("", text),
                                  self.settings_for(inst.task_name), [text], {}))
        return [s.result.logprob for s in self._serve(jobs, requests, "loglikelihood_rolling")]

    def generate_until(self, requests, disable_tqdm: bool = False):
        jobs = []
        for inst in requests:
            context = str(inst.args[0])
            gen_kwargs = (inst.args[1] if len(inst.args) > 1 else {}) or {}
            until = gen_kwargs.get("until") or ()
            until = (until,) if isinstance(until, str) else tuple(until)
            jobs.append(self._job("generate_text", inst, TextRequest(context, until), self.settings_for(inst.task_name),
                                  [context, gen_kwargs], {"prompt": context, "gen_kwargs": gen_kwargs}))
        return [s.result.text for s in self._serve(jobs, requests, "generate_until")]

    def _job(self, method: str, inst, request, settings: TextSettings, content, log: dict, group: str = "") -> Job:
        context = str(inst.args[0])
        return Job(method, request, content, settings, owner=(inst.task_name, inst.doc_id), length=len(context),
                   group=group, log={"task": inst.task_name, "doc_id": inst.doc_id,
                                     "prompt_sha256": text_sha256(context), **log})

    def _serve(self, jobs: list[Job], instances, method: str) -> list:
        label = f"{self.progress_label or (instances[0].task_name if instances else '')} {method}".strip()
        served = self.engine.serve(jobs, label=label)
        for inst, answer in zip(instances, served, strict=True):
            self.costs[(inst.task_name, inst.doc_id)].add(answer.cost)
            if getattr(self, "cache_hook", None) is not None:
                self.cache_hook.add_partial(method, inst.args, _lm_eval_answer(method, answer.result))
        return served


def _lm_eval_answer(method: str, result: Any) -> Any:
    if method == "loglikelihood":
        return (result.logprob, result.is_greedy)
    if method == "loglikelihood_rolling":
        return result.logprob
    return result.text


def _usable_device(device: Any) -> str | None:
    """lm-eval's CLI defaults to ``cuda:0``; on a machine without CUDA fall back to the CPU (and say so)."""
    if device is None:
        return None
    import torch

    if str(device).startswith("cuda") and not torch.cuda.is_available():
        logging.getLogger(__name__).warning("device %s is not available; running mmada on cpu", device)
        return "cpu"
    return str(device)


def _batch_size(value: int | str | None) -> int | None:
    """lm-eval passes ints, numeric strings, or ``auto``/``auto:N`` (treated as 'adapter default')."""
    if value is None or (isinstance(value, str) and value.startswith("auto")):
        return None
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"batch size must be a positive integer or auto, got {value!r}") from None
    if size < 1:
        raise ConfigError(f"batch size must be a positive integer, got {size}")
    return size
