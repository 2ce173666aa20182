# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# Idle OpenMP threads spin by default; on a small shared CPU that made a tiny forward 40x slower.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup demo test lint bench

$(VENV)/.installed: pyproject.toml scripts/setup_env.sh
	bash scripts/setup_env.sh $(VENV)
	touch $@

setup: $(VENV)/.installed

# Main job on the embedded default: all four text benchmarks on the `tiny` preset with the bundled
# sample rows; the sampler is shortened so it takes about two minutes on a 2-core CPU.
DEMO_OUT ?= results/tiny-text
demo: setup
	$(VENV)/bin/mmada-bench run --model tiny --tasks mmlu,gsm8k,math,gpqa --sample-data \
	    --sampler gen_length=64,steps=64,block_length=32,gpqa.mc_num=16 --output $(DEMO_OUT)

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) benchmarks/bench_load.py
