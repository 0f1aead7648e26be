#!/bin/sh
# mmsd against its peers, in one run on one machine: the same network and
# weights, the same input size and thread count, every engine timed on the
# whole network once (warm-up runs, then N timed runs; median and p90 in
# ms); mmsd with --tta off, one pass a frame like the others.
# A figure only compares with another measured in the same run on the same
# machine, so this script measures them all together and prints the ratios.
#
#   bench/peers.sh [MODEL] [THREADS] [ITERS]
#       MODEL    default models/mms-rt.safetensors (its card's input size)
#       THREADS  default 2
#       ITERS    timed runs per engine, default 30
#
# Rows, in this order:
#   mmsd         fp32, bf16, int8   (`mms bench --json`; a precision mms
#                                    refuses is "not available in mmsd yet")
#   PyTorch      fp32, bf16, int8   (Debian's python3-torch, models/bench_torch.py)
#   ONNX Runtime fp32               (npm onnxruntime-node, bench/ort_bench.js)
#   OpenCV DNN   fp32               (Debian's python3-opencv, bench/cv_bench.py)
# ONNX Runtime and OpenCV run the network exported from the same model file
# (bench/export_onnx.py), checked against PyTorch's logits on one input.
#
# Output: a table of medians with each one's ratio to mmsd fp32 (> 1: slower
# than mmsd), headed by the CPU's name, its ISA flags and oneDNN's ISA; and
# a JSON file with every row. A row that could not run says why. The exit
# status is non-zero only when mmsd itself fails.
#
# Environment:
#   PEERS_OUT=DIR        work files and the exported network (bench/out)
#   PEERS_JSON=FILE      the JSON report ($PEERS_OUT/peers.json)
#   PEERS_WARMUP=W       untimed runs before the timed ones (5)
#   PEERS_ENGINES=LIST   any of: mmsd torch ort opencv (all; mmsd always runs)
#   PEERS_INSTALL=0      never install: report a missing peer instead
#   PEERS_CACHE=DIR      where npm installs onnxruntime-node (bench/.cache)
#   PEERS_ORT_VERSION=V  onnxruntime-node version (1.31.1)
#   PEERS_INT8_MODEL=F   model file for mmsd int8 (M.int8.safetensors beside
#                        MODEL when it exists, else MODEL)
#   MMS_BIN=FILE         the mms binary (build/mms, built if missing)
set -u
cd "$(dirname "$0")/.." || exit 2

die() { echo "peers: $*" >&2; exit 2; }
log() { echo "peers: $*" >&2; }

model=${1:-models/mms-rt.safetensors}
threads=${2:-2}
iters=${3:-30}
warmup=${PEERS_WARMUP:-5}
for v in "$threads" "$iters" "$warmup"; do
    case $v in '' | *[!0-9]*) die "THREADS, ITERS and PEERS_WARMUP must be integers" ;; esac
done
{ [ "$threads" -ge 1 ] && [ "$iters" -ge 1 ]; } || die "THREADS and ITERS must be at least 1"
[ -f "$model" ] || die "no model file $model"
model=$(realpath "$model")
out=${PEERS_OUT:-bench/out}
json=${PEERS_JSON:-$out/peers.json}
cache=${PEERS_CACHE:-bench/.cache}
engines=" ${PEERS_ENGINES:-mmsd torch ort opencv} "
install=${PEERS_INSTALL:-1}
ort_version=${PEERS_ORT_VERSION:-1.31.1}
# Debian's interpreter, whatever python3 is first on PATH: python3-torch,
# python3-numpy and python3-opencv are installed for it.
py=/usr/bin/python3

# Every library's OpenMP pool the same size as the explicit settings below,
# so none starts one thread per core behind them (oversubscribing 2 cores).
OMP_NUM_THREADS=$threads
export OMP_NUM_THREADS

mkdir -p "$out" || die "cannot create $out"
work=$out/run
rm -rf "$work"
mkdir -p "$work" || die "cannot create $work"
: >"$work/steps"

want() { case $engines in *" $1 "*) return 0 ;; esac; return 1; }

# One row: LABEL PRECISION COMMAND... Its stdout, stderr and status are kept
# for bench/report.py, which turns them into the row (or its reason).
n=0
next_id() { n=$((n + 1)); id=$(printf '%02d' "$n"); printf '%s\t%s\t%s\n' "$id" "$1" "$2" >>"$work/steps"; }
step() {
    next_id "$1" "$2"
    log "$1 $2"
    shift 2
    "$@" >"$work/$id.out" 2>"$work/$id.err"
    echo $? >"$work/$id.rc"
}
# A row not attempted: LABEL PRECISION REASON.
skip() { next_id "$1" "$2"; printf '%s\n' "$3" >"$work/$id.skip"; log "$1 $2: skipped: $3"; }
report() {
    $py bench/report.py "$work" --json "$json" --model "$model" --threads "$threads" \
        --iters "$iters" --warmup "$warmup"
}
lastline() { grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1 | cut -c1-300; }

# ---------------------------------------------------------------- prepare
# Everything that installs, builds or exports comes first, so the timed runs
# follow one another on an otherwise quiet machine.

mms=${MMS_BIN:-build/mms}
if [ -z "${MMS_BIN:-}" ] && [ ! -x "$mms" ]; then
    log "building build/mms (Release)"
    { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 --target mms; } >&2 ||
        die "could not build build/mms"
fi
# mmsd first, once, untimed: the size the others must use (the model card's)
# comes from it, and nothing else is worth running if it fails.
if ! "$mms" bench --model "$model" --tta off --threads "$threads" --iters 1 --warmup 0 --json >"$work/probe.json" 2>"$work/probe.err"; then
    cat "$work/probe.err" >&2
    echo "peers: mmsd failed: $mms bench --model $model" >&2
    exit 1
fi
size=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["size"])' "$work/probe.json") ||
    { echo "peers: cannot read the size from mms bench --json" >&2; exit 1; }

int8_model=${PEERS_INT8_MODEL:-}
if [ -z "$int8_model" ]; then
    # A calibrated file beside the model (`mms calibrate ... --out M.int8.safetensors`)
    # carries the int8 scales; without one, mms decides what int8 means.
    int8_model=$model
    [ -f "${model%.safetensors}.int8.safetensors" ] && int8_model=${model%.safetensors}.int8.safetensors
fi

torch_why=""
if want torch || want ort || want opencv; then
    $py -c 'import torch' 2>/dev/null ||
        torch_why="no PyTorch for $py (python3-torch; scripts/install-deps.sh installs it)"
fi

# The ONNX file for ONNX Runtime and OpenCV, from the same model file.
onnx=$out/onnx
onnx_why=""
if want ort || want opencv; then
    if [ -n "$torch_why" ]; then
        onnx_why="cannot export to ONNX: $torch_why"
    else
        log "exporting $model to ONNX"
        $py bench/export_onnx.py "$model" --size "$size" --out "$onnx" >"$work/export.out" 2>"$work/export.err" ||
            onnx_why="ONNX export failed: $(lastline "$work/export.err")"
    fi
fi

# onnxruntime-node in a cache of its own (git-ignored), one directory per
# version, so the package and its 300 MB of binaries stay out of the tree
# and a second run needs no network.
ort_why=""
ort_mods=$cache/onnxruntime-node-$ort_version/node_modules
if want ort && [ -z "$onnx_why" ]; then
    if ! command -v node >/dev/null 2>&1; then
        ort_why="node not found (Debian: apt-get install nodejs npm)"
    elif [ ! -f "$ort_mods/onnxruntime-node/package.json" ]; then
        if [ "$install" = 0 ]; then
            ort_why="onnxruntime-node $ort_version not in $cache and PEERS_INSTALL=0"
        elif ! command -v npm >/dev/null 2>&1; then
            ort_why="npm not found (Debian: apt-get install npm)"
        else
            log "installing onnxruntime-node@$ort_version into $cache"
            mkdir -p "$cache/onnxruntime-node-$ort_version"
            # The CPU library ships inside the npm package; its install script
            # would only fetch the CUDA provider from NuGet (and fail offline):
            # ONNXRUNTIME_NODE_INSTALL=skip turns that off.
            ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix "$cache/onnxruntime-node-$ort_version" \
                --no-audit --no-fund --no-save "onnxruntime-node@$ort_version" >"$work/npm.log" 2>&1 || {
                # No half-installed package for the next run to trust.
                rm -rf "$cache/onnxruntime-node-$ort_version"
                ort_why="npm install onnxruntime-node@$ort_version failed ($work/npm.log): $(grep 'npm error' "$work/npm.log" |
                    grep -v 'complete log' | head -n 2 | tr '\n' ' ' | cut -c1-300)"
            }
        fi
    fi
elif want ort; then
    ort_why=$onnx_why
fi

# Debian's OpenCV, installed the way scripts/install-deps.sh installs
# packages: only as root, only if missing.
cv_why=""
if want opencv && [ -z "$onnx_why" ]; then
    if ! $py -c 'import cv2' 2>/dev/null; then
        if [ "$install" = 0 ]; then
            cv_why="python3-opencv not installed and PEERS_INSTALL=0"
        elif [ "$(id -u)" -ne 0 ]; then
            cv_why="python3-opencv not installed (run as root to let peers.sh install it, or: sudo apt-get install python3-opencv)"
        else
            log "installing python3-opencv"
            export DEBIAN_FRONTEND=noninteractive
            # Without `apt-get update` first when the lists already have it.
            { apt-get install -y -qq --no-install-recommends python3-opencv ||
                { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-opencv; }; } \
                >"$work/apt.log" 2>&1 ||
                cv_why="apt-get install python3-opencv failed: $(lastline "$work/apt.log")"
        fi
    fi
elif want opencv; then
    cv_why=$onnx_why
fi

# ------------------------------------------------------------------ time
log "timing: $size, $threads threads, $warmup warm-up + $iters timed runs per row"
# Other work on the machine shows in every figure: the report prints the
# load average of the minute before timing, and warns when it is high.
cp /proc/loadavg "$work/loadavg" 2>/dev/null

step mmsd fp32 "$mms" bench --model "$model" --precision fp32 --tta off --threads "$threads" --iters "$iters" --warmup "$warmup" --json
if [ "$(cat "$work/01.rc")" -ne 0 ]; then
    cat "$work/01.err" >&2
    report
    exit 1
fi
step mmsd bf16 "$mms" bench --model "$model" --precision bf16 --tta off --threads "$threads" --iters "$iters" --warmup "$warmup" --json
step mmsd int8 "$mms" bench --model "$int8_model" --precision int8 --tta off --threads "$threads" --iters "$iters" --warmup "$warmup" --json

if want torch; then
    for p in fp32 bf16 int8; do
        if [ -n "$torch_why" ]; then
            skip pytorch "$p" "$torch_why"
        else
            # bench_torch.py imports its neighbours (reference, mmsnet, data).
            step pytorch "$p" sh -c 'cd models && exec "$@"' sh $py bench_torch.py "$model" \
                --size "$size" --precision "$p" --threads "$threads" --iters "$iters" --warmup "$warmup"
        fi
    done
fi

if want ort; then
    if [ -n "$ort_why" ]; then
        skip onnxruntime fp32 "$ort_why"
    else
        step onnxruntime fp32 node bench/ort_bench.js "$ort_mods" "$onnx" "$threads" "$iters" "$warmup"
    fi
fi

if want opencv; then
    if [ -n "$cv_why" ]; then
        skip opencv fp32 "$cv_why"
    else
        step opencv fp32 $py bench/cv_bench.py "$onnx" --threads "$threads" --iters "$iters" --warmup "$warmup"
    fi
fi

# ---------------------------------------------------------------- report
report || exit 1
