"""MATH on lm-eval's packaged Minerva ``minerva_math_<subject>`` tasks and ``minerva_math`` group.

Why Minerva rather than ``hendrycks_math``: LLaDA's and Fast-dLLM's "MATH" numbers (which the MMaDA
paper compares against) are lm-eval's ``minerva_math``: 4 fixed Minerva exemplars, ``Problem: ...
Solution:`` prompts, the ``Final Answer: The final answer is ...`` extraction and sympy-equivalence
``exact_match`` plus ``math_verify``. ``hendrycks_math`` (0-shot, ``$...$`` extraction) is not what these
models are reported on. Needs ``lm-eval[math]`` (sympy, math-verify, antlr4 4.11).
Data: hendrycks MATH rows ``{problem, level, type, solution}``; ``type`` picks the subject config and the
reference answer is the last ``\\boxed{}`` of ``solution``. Only ``test`` is needed (exemplars are built in).
"""

from __future__ import annotations

from mmada_bench.tasks.datafiles import Field
from mmada_bench.tasks.spec import TaskSpec
from mmada_bench.tasks.text.lm_eval_tasks import GroupDef, LmEvalTask, Subtask

#: MATH ``type`` values -> lm-eval's Minerva subject config names.
TYPE_TO_CONFIG = {
    "Algebra": "algebra",
    "Counting & Probability": "counting_and_prob",
    "Geometry": "geometry",
    "Intermediate Algebra": "intermediate_algebra",
    "Number Theory": "num_theory",
    "Prealgebra": "prealgebra",
    "Precalculus": "precalc",
}


def _type(value: str) -> str | None:
    return None if value in TYPE_TO_CONFIG else f"must be one of {', '.join(TYPE_TO_CONFIG)}; got {value!r}"


def _boxed(value: str) -> str | None:
    if "\\boxed" in value or "\\fbox" in value:
        return None
    return "has no \\boxed{...} final answer (the reference answer is read from it)"


def _subtask(config: str | None) -> Subtask:
    assert config is not None
    return Subtask(config, f"minerva_math_{config}", f"minerva_math/minerva_math_{config}.yaml", "minerva_math")


def check_dependencies() -> None:
    """Fail with one line (instead of lm-eval's traceback) when the Minerva scorer cannot be imported."""
    from importlib.metadata import PackageNotFoundError, version

    from mmada_bench.errors import ConfigError

    try:
        import math_verify  # noqa: F401
        import sympy  # noqa: F401

        antlr = version("antlr4-python3-runtime")
    except (ImportError, PackageNotFoundError):
        antlr = None
    if antlr is None or not antlr.startswith("4.11"):
        raise ConfigError("task math needs lm-eval's math extras: pip install 'lm-eval[math]' (antlr4 4.11, math-verify)")


IMPL = LmEvalTask(
    lm_eval_name="minerva_math",
    check_dependencies=check_dependencies,
    fields=(Field("problem", str), Field("level", str), Field("type", str, _type), Field("solution", str, _boxed)),
    eval_split="test",
    fewshot_split=None,
    subtask=_subtask,
    all_keys=lambda: sorted(TYPE_TO_CONFIG.values()),
    subtask_of=lambda row: TYPE_TO_CONFIG[row["type"]],
    key_field="type",
    groups=(GroupDef("minerva_math", "benchmarks/minerva_math.yaml"),),
)

SPEC = TaskSpec(
    name="math",
    modality="text",
    description="competition math (7 subjects), generated solution, answer equivalence via sympy/math-verify",
    source="EleutherAI/hendrycks_math (hendrycks MATH)",
    splits={"eval": "test"},
    columns=("problem", "level", "type", "solution"),
    metrics=("exact_match,none", "math_verify,none"),
    num_fewshot=4,
    sampler={"gen_length": 256, "steps": 256, "block_length": 64},
    backend="lm-eval",
    variant="lm-eval minerva_math (subjects v3.1, group v1.0, packaged YAML)",
    why="LLaDA/Fast-dLLM 'MATH' is lm-eval minerva_math 4-shot; hendrycks_math is a different protocol",
    impl=IMPL,
    requires=("generate_text",),
)
