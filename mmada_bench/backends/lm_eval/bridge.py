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
import os
import sys
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from mmada_bench.adapters.base import Adapter, Cost, LoglikelihoodRequest, TextRequest
from mmada_bench.adapters.settings import TextSettings, coerce
from mmada_bench.engine.distributed import Distributed
from mmada_bench.engine.request_log import RequestLog
from mmada_bench.engine.serve import Job, RequestEngine
from mmada_bench.errors import ConfigError, MMaDABenchError
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
        if adapter is None and engine is None and not pretrained:
            raise ConfigError("lm-eval model mmada needs pretrained=<checkpoint folder or preset name>")
        sampler_args = {k: v for k, v in kwargs.items() if k not in _IGNORED_ARGS}
        unknown = sorted(set(sampler_args) - set(TextSettings.field_names()))
        if unknown:
            raise ConfigError(f"unknown model_args key {unknown[0]!r}; known: pretrained, dtype, label, seed, store, "
                              f"vq_model, tokenizer, {', '.join(TextSettings.field_names())}")
        self.settings = TextSettings().updated(coerce(TextSettings, sampler_args))
        self.settings.check()  # a schedule the sampler cannot run fails now, not at the first generation
        if isinstance(seed, bool) or not str(seed).lstrip("-").isdigit():
            raise ConfigError(f"model_args seed must be an integer, got {seed!r}")
        self.dist = distributed or Distributed()
        self._rank, self._world_size = self.dist.rank, self.dist.world_size
        size = _batch_size(batch_size)
        if adapter is None and engine is None:
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
        self._warned_long: set[str] = set()

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None) -> MMaDALM:
        """``--model_args k=v,...`` (see :meth:`create_from_arg_obj` for errors)."""
        with _one_line_errors():
            return super().create_from_arg_string(arg_string, additional_config)

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict[str, Any], additional_config: dict | None = None) -> MMaDALM:
        """``lm_eval --model mmada --model_args ...``: a bad argument is one line and exit 2 under lm-eval's
        CLI (which would print a 40-60 line traceback); called from Python, the error propagates."""
        with _one_line_errors():
            return super().create_from_arg_obj(arg_dict, additional_config)

    def set_cache_hook(self, cache_hook) -> None:
        """lm-eval's ``--use_cache`` wraps us in ``CachingLM``, whose keys hold the prompt but not model_args."""
        super().set_cache_hook(cache_hook)
        if getattr(cache_hook, "dbdict", None) is not None:
            logging.getLogger(__name__).warning(
                "lm-eval --use_cache keys answers by prompt only, not by --model_args: a rerun with other sampler "
                "settings is served the old answers. Use --model_args store=DIR instead (keyed by settings, "
                "model and seed) and drop --use_cache")

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
        label = f"{self.progress_label or _tasks_label([inst.task_name for inst in instances])} {method}".strip()
        self._warn_long_prompts(jobs, label)
        served = self.engine.serve(jobs, label=label)
        for inst, answer in zip(instances, served, strict=True):
            self.costs[(inst.task_name, inst.doc_id)].add(answer.cost)
            if getattr(self, "cache_hook", None) is not None:
                self.cache_hook.add_partial(method, inst.args, _lm_eval_answer(method, answer.result))
        return served


    def _warn_long_prompts(self, jobs: list[Job], label: str) -> None:
        """One warning line per task when prompts are far beyond what the model reads (e.g. a 50 MB row drawn
        as a few-shot example): they are cut to their last ``max_length`` tokens, which is rarely meant."""
        limit = {id(job): CHARS_PER_TOKEN_BOUND * job.settings.max_length for job in jobs}
        long = [job for job in jobs if job.length > limit[id(job)]]
        if not long or label in self._warned_long:
            return
        self._warned_long.add(label)
        longest = max(long, key=lambda job: job.length)
        logging.getLogger(__name__).warning(
            "%s: %d prompt(s) far exceed the model's context (longest %s characters, max_length=%d tokens) and are "
            "cut to their end; check the data for an oversized row (few-shot examples included)",
            label, len(long), f"{longest.length:,}", longest.settings.max_length)


#: A token of a BPE vocabulary rarely spans more characters than this: a prompt longer than this many
#: characters per ``max_length`` token is certainly truncated.
CHARS_PER_TOKEN_BOUND = 16


def _tasks_label(names: list[str]) -> str:
    """Progress label for a call spanning lm-eval subtasks: ``mmlu (57 subtasks)``, not the first one's name."""
    unique = sorted(set(names))
    if len(unique) <= 1:
        return unique[0] if unique else ""
    prefix = os.path.commonprefix(unique).rstrip("_")
    return f"{prefix or 'tasks'} ({len(unique)} subtasks)"


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except MMaDABenchError as exc:
        if not _under_lm_eval_cli():
            raise
        sys.stderr.write(f"lm_eval --model mmada: error: {exc}\n")
        raise SystemExit(exc.exit_code) from None


def _under_lm_eval_cli() -> bool:
    """True when the process is lm-eval's own command line (``lm_eval`` / ``lm-eval`` / ``python -m lm_eval``)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return os.path.basename(sys.argv[0] or "") in ("lm_eval", "lm-eval") or (
        spec is not None and str(spec.name).startswith("lm_eval"))


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
