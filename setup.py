"""Ships ``mmada_bench_lm_eval.pth`` in the wheel, so a plain ``pip install`` makes ``lm_eval --model mmada``
work (lm-eval has no model plugin discovery; the one-line .pth registers the model lazily at start-up).

Everything else is in pyproject.toml. Editable installs do not carry root-level files; for them
``scripts/setup_env.sh`` runs ``mmada-bench lm-eval install-plugin``.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "mmada_bench_lm_eval.pth"


class BuildPyWithPth(build_py):
    def run(self) -> None:
        super().run()
        from importlib.util import module_from_spec, spec_from_file_location

        spec = spec_from_file_location("plugin", Path(__file__).parent / "mmada_bench/backends/lm_eval/plugin.py")
        plugin = module_from_spec(spec)
        spec.loader.exec_module(plugin)
        Path(self.build_lib, PTH).write_text(plugin.PTH_LINE, encoding="utf-8")

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH)]


setup(cmdclass={"build_py": BuildPyWithPth})
