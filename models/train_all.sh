#!/bin/sh
# Every training run behind the shipped model and the model card's tables,
# in the order their results matter. Each run writes out/train/NAME/
# (log.jsonl, checkpoints, model.safetensors); a finished run is skipped, so
# the script can be restarted. CPU, 2 threads; ~2 h on a 2-core machine.
#   models/train_all.sh [STAGE...]     (default: all stages)
set -eu
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
LO=160x288          # reduced resolution: most of the iterations
N_LO=${N_LO:-3000}
N_HI=${N_HI:-400}   # fine-tuning at the model input size
N_X=${N_X:-2000}    # cross-domain runs (reduced resolution only)

run() { # name args...
    name=$1
    shift
    if [ -f "out/train/$name/model.safetensors" ]; then
        echo "train_all: $name done, skipped" >&2
        return
    fi
    echo "train_all: $name: train.py $*" >&2
    $PY models/train.py "$@" --out "out/train/$name" > "out/train/$name.stdout" 2>&1
}

mkdir -p out/train
stages=${*:-"indomain cross seeds"}
for s in $stages; do
    case $s in
    indomain)
        run sup-lo --mode sup --size $LO --iters $N_LO --batch 4 --seed 0
        run mms-lo --mode mms --size $LO --iters $N_LO --batch 4 --seed 0
        run mms --mode mms --size 288x512 --iters $N_HI --batch 4 --lr 3e-4 --seed 0 \
            --init out/train/mms-lo/ckpt_last.pt
        run sup --mode sup --size 288x512 --iters $N_HI --batch 4 --lr 3e-4 --seed 0 \
            --init out/train/sup-lo/ckpt_last.pt
        ;;
    cross)
        for l in cholec80-v01 cataract; do
            run mms-x-$l --mode mms --labeled $l --size $LO --val-size $LO --iters $N_X \
                --batch 4 --seed 0
            run sup-x-$l --mode sup --labeled $l --size $LO --val-size $LO --iters $N_X \
                --batch 4 --seed 0
        done
        ;;
    seeds)
        run mms-lo-s1 --mode mms --size $LO --iters $N_LO --batch 4 --seed 1
        run sup-lo-s1 --mode sup --size $LO --iters $N_LO --batch 4 --seed 1
        ;;
    *)
        echo "train_all: unknown stage $s" >&2
        exit 2
        ;;
    esac
done
