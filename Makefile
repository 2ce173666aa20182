# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# Idle OpenMP threads spin by default; on a small shared CPU that made a tiny forward 40x slower.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup demo test lint bench toy toy-check

$(VENV)/.installed: pyproject.toml scripts/setup_env.sh
	bash scripts/setup_env.sh $(VENV)
	touch $@

setup: $(VENV)/.installed

# Main job on the embedded default: the trained toy MMaDA (`toy`, after stage 3) on its three tasks, the
# stage table over the three stage checkpoints, a denoising-step sweep and the leaderboard, all on
# fixed subsets (the first rows of each test set) so it takes a few minutes on a 2-core CPU.
MB := $(VENV)/bin/mmada-bench
DEMO_OUT ?= results/toy
DEMO_TASKS ?= easyvqa,easyvqa_t2i,toy_count
DEMO_LIMIT ?= easyvqa=1000,easyvqa_t2i=96,toy_count=50
DEMO_SWEEP ?= timesteps=1,2,4,8,16
demo: setup
	@echo "== suite: toy (stage 3) on $(DEMO_TASKS), subsets $(DEMO_LIMIT)"
	$(MB) run --model toy --tasks $(DEMO_TASKS) --limit $(DEMO_LIMIT) --label stage3 --output $(DEMO_OUT)/stage3
	@echo "== stage table: toy-stage1, toy-stage2 and the run above, same tasks and subsets"
	$(MB) stages --model stage1=toy-stage1,stage2=toy-stage2,stage3=$(DEMO_OUT)/stage3 --tasks $(DEMO_TASKS) \
	    --limit $(DEMO_LIMIT) --output $(DEMO_OUT)/stages
	@echo "== step sweep: easyvqa_t2i (first 48 prompts) at $(DEMO_SWEEP)"
	$(MB) sweep --model toy --tasks easyvqa_t2i --limit 48 --grid $(DEMO_SWEEP) --output $(DEMO_OUT)/sweep
	$(MB) leaderboard $(DEMO_OUT)/stages/stage1 $(DEMO_OUT)/stages/stage2 $(DEMO_OUT)/stage3 --output leaderboards/toy

# Rebuild the toy world from scratch (tokenizers, judge, text pretraining, the three MMaDA stages)
# into build/toy, then measure the rebuilt checkpoints on the full test sets; compare with the
# committed ones (make toy-check).
toy: setup
	$(PY) -m mmada_bench.toy.build --stage all --out build/toy --work build/toy-work
	$(PY) -m mmada_bench.toy.targets --assets build/toy --output build/toy/targets

# The issue-13 targets measured on the committed checkpoints (full easy-VQA and easyvqa_t2i test sets).
toy-check: setup
	$(PY) -m mmada_bench.toy.targets --output results/toy-targets

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) benchmarks/bench_load.py
