#!/bin/sh
# Calibrates a model file for int8 (mms calibrate) on the training split of
# every labeled folder in ../shared/data: frames the network was trained
# on, never the validation frames it is judged on (models/split.json).
#   models/calibrate.sh [MODEL] [OUT]     (default: the shipped model, in place)
set -eu
cd "$(dirname "$0")/.."
model=${1:-models/mms-rt.safetensors}
out=${2:-$model}
data=${MMS_DATA:-../shared/data}
mms=${MMS_BIN:-build/mms}
list=$(mktemp)
tmp=$(mktemp --suffix=.safetensors)
trap 'rm -f "$list" "$tmp"' EXIT
/usr/bin/python3 - "$data" models/split.json >"$list" <<'PYEOF'
import json, os, sys
data, split = sys.argv[1], json.load(open(sys.argv[2]))
for folder, parts in sorted(split.items()):
    d = os.path.join(data, "labeled", folder, "image")
    stems = {os.path.splitext(n)[0]: n for n in os.listdir(d)}
    for s in parts["train"]:
        if s in stems:
            print(os.path.join(d, stems[s]))
PYEOF
[ -s "$list" ] || { echo "calibrate.sh: no training frames under $data" >&2; exit 1; }
# The model is read whole before the output is written; a separate
# temporary file keeps an in-place calibration from reading its own output.
# shellcheck disable=SC2046
"$mms" calibrate --model "$model" --out "$tmp" $(cat "$list")
mv "$tmp" "$out"
