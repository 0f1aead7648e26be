#!/bin/sh
# The engine against the PyTorch reference (models/), fp32, random weights:
# both architectures (the paper's full configuration included) at 288x512
# and 512x288, plus a reduced res2net-unet and the nchw layout path.
# Passes when max|diff| <= 1e-3 max|ref| and masks agree on >= 99.9 %.
set -eu
: "${MMS_SOURCE_DIR:?}" "${MMS_BUILD_DIR:?}"
PY=${PYTHON:-/usr/bin/python3}
CHECK="$MMS_BUILD_DIR/tests/exact_check"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$MMS_SOURCE_DIR/models"

fail=0
run() { # name arch size [export args...]
    name=$1 arch=$2 size=$3
    shift 3
    [ -f "$T/$name.safetensors" ] ||
        "$PY" export.py random --arch "$arch" --seed 7 "$@" -o "$T/$name.safetensors"
    "$PY" reference.py "$T/$name.safetensors" --size "$size" --seed 3 \
        --input "$T/$name-$size.in" --logits "$T/$name-$size.ref"
    if ! "$CHECK" "$T/$name.safetensors" "$size" "$T/$name-$size.in" "$T/$name-$size.ref"; then
        echo "FAIL: $name at $size" >&2
        fail=1
    fi
}

run rt mms-rt 288x512
run rt mms-rt 512x288
run rt-narrow mms-rt 288x512 --set widths=16,16,32,48,64 --set blocks=2,1,1,1 --set decoder=32,32,16,16
run r2n-small res2net-unet 288x512 --set layers=1,2,2 --set base_width=14 --set scale=3 \
    --set decoder=128,64,32,32 --set leaky_slope=0.1
MMS_EXEC_BLOCK=1 run rt mms-rt 288x512
MMS_EXEC_BLOCK=8 run r2n-small res2net-unet 512x288
run paper mms-res2net101 288x512
run paper mms-res2net101 512x288

# The check itself must be able to fail: a perturbed reference is refused.
"$PY" -c "
import numpy as np, sys
r = np.fromfile(sys.argv[1], '<f4'); r[::7] += 0.5; r.tofile(sys.argv[2])" \
    "$T/rt-288x512.ref" "$T/rt-bad.ref"
if "$CHECK" "$T/rt.safetensors" 288x512 "$T/rt-288x512.in" "$T/rt-bad.ref" >/dev/null 2>&1; then
    echo "FAIL: exact_check accepted a perturbed reference" >&2
    fail=1
fi
exit $fail
