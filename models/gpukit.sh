#!/bin/sh
# The long training runs of the model card on a lent GPU machine, in one
# device call: the MMS recipe and its supervised control, which take hours
# on two CPU cores.
#
#   here:   models/gpukit.sh pack
#             writes .gpukit/ (about 43 MiB; git ignores it, never commit it)
#   there:  device run, carry [".gpukit"], timeout_s 570,
#             command "sh models/gpukit.sh train"
#   here:   models/gpukit.sh eval DIR     (DIR: the call's files_at)
#             the C engine's validation Dice of each model brought back
#
# There, each run trains under /tmp/gk and, when it ends, its
# model.safetensors and log.jsonl are copied to $OUT/<run>/ at once: a call
# stopped at its time limit still brings back every run it finished. The
# runs go in order of what they decide (8 files come back at most): MMS and
# supervised-only at seed 0 (is MMS worth its cost at the shipped recipe?),
# then both at seed 1 (the issue's two seeds).
set -eu
cd "$(dirname "$0")/.."
PY=${PY:-python3}
KIT=.gpukit
# a dry run here: GK_DEVICE=cpu GK_LO=3 GK_HI=2 OUT=/tmp/gkout models/gpukit.sh train
DEVICE=${GK_DEVICE:-cuda} LO=${GK_LO:-5000} HI=${GK_HI:-600}

pack() {
    rm -rf "$KIT"
    /usr/bin/python3 models/data.py pack --out "$KIT"
}

# step LOG ARGS...: one train.py call; on failure its log's end is shown,
# since only the command's own output comes back from the device.
step() {
    log=$1
    shift
    $PY models/train.py "$@" > "$log" 2>&1 || { tail -n 20 "$log" >&2; exit 1; }
}

# run NAME MODE SEED: the eighth session's c8-x1 recipe (5000 iterations at
# 160x288, batch 8, strong augmentation, then 600 at 288x512, light), as
# MMS with the unlabeled terms at 0.1 or supervised-only.
run() {
    name=$1 mode=$2 seed=$3 d=/tmp/gk
    common="--labeled cholec80-v01,cataract,endovis15 --balance 1 --mode $mode --seed $seed
            --data $KIT --cache $d/cache --device $DEVICE --bf16 1 --threads 8"
    [ "$mode" = mms ] && common="$common --w-cons 0.1 --w-nce 0.1 --w-neg 0.1 --ubatch 4"
    # shellcheck disable=SC2086
    step "$d/$name-lo.stdout" $common --size 160x288 --iters $LO --batch 8 --aug strong \
        --val-every 1000 --out "$d/$name-lo"
    # shellcheck disable=SC2086
    step "$d/$name.stdout" $common --size 288x512 --iters $HI --batch 4 --lr 3e-4 --aug light \
        --val-every 150 --init "$d/$name-lo/ckpt_last.pt" --out "$d/$name"
    mkdir -p "$OUT/$name"
    cp "$d/$name/model.safetensors" "$OUT/$name/"
    cat "$d/$name-lo/log.jsonl" "$d/$name/log.jsonl" > "$OUT/$name/log.jsonl"
    echo "gpukit: $name done ($(date -u +%T))"
}

train() {
    [ -d "$KIT" ] || { echo "gpukit: no $KIT: run 'models/gpukit.sh pack' here and carry it" >&2; exit 2; }
    [ -n "${OUT:-}" ] || { echo "gpukit: OUT is not set (the device machine sets it)" >&2; exit 2; }
    mkdir -p /tmp/gk
    nvidia-smi --query-gpu=name --format=csv,noheader || true
    $PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' || true
    run mms-s0 mms 0
    run sup-s0 sup 0
    run mms-s1 mms 1
    run sup-s1 sup 1
}

evaluate() {
    for m in "$1"/*/model.safetensors; do
        for f in cholec80-v01 endovis15 cataract; do
            printf '%s %s ' "$m" "$f"
            build/mms eval --model "$m" --precision fp32 --images "/tmp/valstage/$f/image" \
                --masks "/tmp/valstage/$f/mask" --json | /usr/bin/python3 -c \
                'import json,sys; d=json.load(sys.stdin); print(d["mean_dice"], d["precision"], d["recall"])'
        done
    done
}

case "${1:-}" in
pack) pack ;;
train) train ;;
eval) [ -n "${2:-}" ] || { echo "usage: models/gpukit.sh eval DIR" >&2; exit 2; }
      [ -d /tmp/valstage ] || /usr/bin/python3 models/data.py stage --out /tmp/valstage
      evaluate "$2" ;;
*) echo "usage: models/gpukit.sh pack | train | eval DIR" >&2; exit 2 ;;
esac
