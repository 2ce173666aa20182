#!/usr/bin/env bash
# Creates the project virtualenv and installs mmada-bench into it.
# Why a script: pip alone would resolve a bare torch requirement to the newest CUDA build
# (several GB). We install torch first -- the CPU wheel torch==2.13.0 on machines without CUDA,
# or keep the CUDA torch a GPU machine already has -- and pin whatever torch we end up with
# as a constraint for the rest of the install.
set -euo pipefail
VENV="${1:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "[setup] CUDA torch found on $PY: keeping it (venv sees system site-packages)"
    "$PY" -m venv --system-site-packages "$VENV"
  else
    "$PY" -m venv "$VENV"
  fi
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "[setup] installing torch==2.13.0"
  "${PIP[@]}" install "torch==2.13.0" numpy
fi
TORCH_VERSION="$("$VENV/bin/python" -c "import torch; print(torch.__version__.split('+')[0])")"
CONSTRAINT="$(mktemp)"
trap 'rm -f "$CONSTRAINT"' EXIT
echo "torch==$TORCH_VERSION" > "$CONSTRAINT"
echo "[setup] installing mmada-bench (torch pinned to $TORCH_VERSION)"
"${PIP[@]}" install -c "$CONSTRAINT" -e ".[dev]"
# lm-eval 0.4 has no plugin discovery: a one-line .pth registers `--model mmada` lazily.
"$VENV/bin/python" -m mmada_bench.cli lm-eval install-plugin
echo "[setup] done: $("$VENV/bin/python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())")"
