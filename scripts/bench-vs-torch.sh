#!/bin/sh
# mms bench and PyTorch on the same network, machine and thread count, one
# JSON line each, so the engine is always compared in the same run.
#   scripts/bench-vs-torch.sh [MODEL] [THREADS] [ITERS]
set -eu
cd "$(dirname "$0")/.."
model=$(realpath "${1:-models/mms-rt.safetensors}")
threads=${2:-2}
iters=${3:-30}
[ -x build/mms ] || { cmake -S . -B build >/dev/null && cmake --build build -j2 --target mms; }
./build/mms bench --model "$model" --tta off --threads "$threads" --iters "$iters" --json
(cd models && /usr/bin/python3 bench_torch.py "$model" --threads "$threads" --iters "$iters")
