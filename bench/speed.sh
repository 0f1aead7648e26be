#!/bin/sh
# bench/speed.sh MODEL...: the figures the model card and the README's
# Benchmarks give for each model file, in one run on one machine: `mms
# bench` per precision (one pass and with flip, 2 threads, 50 iterations,
# the median) and `mms run` on the 720p clip (default, fp32 one pass, int8
# one pass; offline to null and to MP4, live). Run it on idle cores, from
# the source root after building (build/mms).
set -eu
cd "$(dirname "$0")/.."
clip=${CLIP:-../shared/data/video/cholec80_video01_10s.mp4}
[ -f "$clip" ] || { echo "bench/speed.sh: $clip is missing" >&2; exit 1; }
[ $# -gt 0 ] || { echo "usage: bench/speed.sh MODEL..." >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build/mms bench --precision fp32 --iters 3 --warmup 1 | grep '^cpu'
summary() { # label args...: the `mms run:` line of one run
    label=$1
    shift
    build/mms run "$@" -i "$clip" 2>"$tmp/err" >/dev/null || true
    echo "$label: $(grep '^mms run:' "$tmp/err" || tail -1 "$tmp/err")"
}
for m in "$@"; do
    echo "== $m"
    for p in fp32 bf16 int8; do
        for t in off flip; do
            build/mms bench --model "$m" --precision $p --tta $t --threads 2 --iters 50 --json |
                /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print('bench %s %s: median %.2f ms' % (d['precision'], sys.argv[1], d['median_ms']))" $t
        done
    done
    summary "default offline null" --model "$m" --offline -o null
    summary "default offline mp4" --model "$m" --offline -o "$tmp/out.mp4"
    summary "default live null" --model "$m" --live -o null
    summary "fp32 off offline null" --model "$m" --precision fp32 --tta off --offline -o null
    summary "fp32 off live null" --model "$m" --precision fp32 --tta off --live -o null
    summary "int8 off offline null" --model "$m" --precision int8 --tta off --offline -o null
done
