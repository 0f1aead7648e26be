#!/bin/sh
# Does int8 keep fp32's masks? On every labeled folder of ../shared/data,
# all frames: both precisions through `mms segment`, then the per-image
# Dice of int8's mask against fp32's (mean and lowest per folder).
#   bench/precision.sh [MODEL]      (default: the shipped model)
set -eu
cd "$(dirname "$0")/.."
model=${1:-models/mms-rt.safetensors}
mms=${MMS_BIN:-build/mms}
data=${MMS_DATA:-../shared/data}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for dir in "$data"/labeled/*/image; do
    folder=$(basename "$(dirname "$dir")")
    for p in fp32 int8; do
        # shellcheck disable=SC2046
        "$mms" segment --model "$model" --precision "$p" --out "$T/$folder/$p" \
            $(find "$dir" -maxdepth 1 -type f \( -name '*.png' -o -name '*.jpg' \)) >/dev/null
    done
    /usr/bin/python3 - "$T/$folder" "$folder" <<'PYEOF'
import os, subprocess, sys
import numpy as np
root, folder = sys.argv[1], sys.argv[2]
def gray(p):
    w, h = (int(v) for v in subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", p],
        capture_output=True, text=True, check=True).stdout.strip().split(",")[:2])
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", p, "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(h, w) > 127
d = []
for n in sorted(os.listdir(os.path.join(root, "fp32"))):
    a, b = gray(os.path.join(root, "fp32", n)), gray(os.path.join(root, "int8", n))
    s = a.sum() + b.sum()
    d.append(1.0 if s == 0 else 2.0 * (a & b).sum() / s)
print(f"{folder}: {len(d)} frames, int8 vs fp32 mask Dice mean {np.mean(d):.4f}, lowest {np.min(d):.4f}")
PYEOF
done
