#!/bin/sh
# End to end on this machine: `mms run` on a 720p25 H.264 clip, offline to
# null and to an .mp4, and live (paced at 25 fps) to null, in each
# precision (bf16 runs fp32 on a CPU without native bf16); then the network alone (`mms bench`). Prints each run's
# summary line, the stage table of the live runs (mask_age is how old the
# mask drawn on a frame is), and the CPU. Take it on a quiet machine.
#   bench/e2e.sh [CLIP]     (default: the Cholec80 clip in ../shared/data)
#   TTA=off bench/e2e.sh    --tta off (default auto: flip where int8 is fast, as mms run)
set -eu
cd "$(dirname "$0")/.."
mms=${MMS_BIN:-build/mms}
clip=${1:-../shared/data/video/cholec80_video01_10s.mp4}
tta=${TTA:-auto}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$mms" bench --precision fp32 --iters 3 --warmup 1 | grep '^cpu'
echo "tta: $tta"
echo "clip: $clip ($(ffprobe -v error -select_streams v:0 -show_entries stream=width,height,r_frame_rate,codec_name -of csv=p=0 "$clip"))"
for p in fp32 bf16 int8; do
    for out in null "$T/out.mp4"; do
        "$mms" run -i "$clip" -o "$out" --offline --precision "$p" --tta "$tta" 2>"$T/err" >/dev/null
        echo "$p offline -> $(basename "$out"): $(grep '^mms run:' "$T/err" | sed 's/^mms run: //')"
    done
    "$mms" run -i "$clip" -o null --live --precision "$p" --tta "$tta" 2>"$T/err" >/dev/null
    echo "$p live -> null: $(grep '^mms run:' "$T/err" | sed 's/^mms run: //')"
    grep -E '^  (stage|infer|total|mask_age|decode|preprocess)' "$T/err"
done
for p in fp32 bf16 int8; do
    "$mms" bench --precision "$p" --tta "$tta" --threads 2 --iters 50 --json |
        /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print('bench %s: median %.2f ms, p90 %.2f ms, min %.2f ms' % (d['precision'], d['median_ms'], d['p90_ms'], d['min_ms']))"
done
