#!/bin/sh
# Do int8 and bf16 keep fp32's masks? On every labeled folder of
# ../shared/data, all frames: each precision through `mms segment`, then
# the per-image Dice of its mask against fp32's (mean and lowest per folder).
#   bench/precision.sh [MODEL [PRECISION...]]  (default: the shipped model; int8 bf16)
# bf16 needs a CPU with avx512_bf16 or AMX: elsewhere `mms segment` runs
# fp32 instead (it says so), and its line compares fp32 with itself.
set -eu
cd "$(dirname "$0")/.."
model=${1:-models/mms-rt.safetensors}
[ $# -gt 0 ] && shift
precs=${*:-int8 bf16}
mms=${MMS_BIN:-build/mms}
data=${MMS_DATA:-../shared/data}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for dir in "$data"/labeled/*/image; do
    folder=$(basename "$(dirname "$dir")")
    for p in fp32 $precs; do
        # shellcheck disable=SC2046
        "$mms" segment --model "$model" --precision "$p" --tta off --out "$T/$folder/$p" \
            $(find "$dir" -maxdepth 1 -type f \( -name '*.png' -o -name '*.jpg' \)) >/dev/null
    done
    for p in $precs; do
    /usr/bin/python3 - "$T/$folder" "$folder" "$p" <<'PYEOF'
import os, subprocess, sys
import numpy as np
root, folder, prec = sys.argv[1], sys.argv[2], sys.argv[3]
def gray(p):
    w, h = (int(v) for v in subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", p],
        capture_output=True, text=True, check=True).stdout.strip().split(",")[:2])
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", p, "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(h, w) > 127
d = []
for n in sorted(os.listdir(os.path.join(root, "fp32"))):
    a, b = gray(os.path.join(root, "fp32", n)), gray(os.path.join(root, prec, n))
    s = a.sum() + b.sum()
    d.append(1.0 if s == 0 else 2.0 * (a & b).sum() / s)
print(f"{folder}: {len(d)} frames, {prec} vs fp32 mask Dice mean {np.mean(d):.4f}, lowest {np.min(d):.4f}")
PYEOF
    done
done
