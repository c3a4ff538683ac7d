#!/usr/bin/env bash
# One command on a machine with CUDA GPUs and the repository installed (`make install`, or
# `pip install -e '.[ray]'` with a CUDA torch): the local path and the Ray path (one actor per GPU) in
# bf16, tokens/s against the GPU's bf16 matmul roofline measured in the same run.
# Writes benchmarks/results/gpu_embed.md. Extra arguments go to benchmarks/gpu_embed.py, e.g.
#   bash benchmarks/gpu.sh --docs 50000 --reader meta-llama/Llama-3.1-8B --sae /data/saes/llama8b-l19
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'torch sees no CUDA GPU: install a CUDA build of torch')"
"$PY" -c "import ray.data" 2>/dev/null || { echo "Ray is missing: pip install -e '.[ray]'"; exit 1; }
exec "$PY" benchmarks/gpu_embed.py "$@"
