#!/bin/sh
# Drives the mms binary as a user would: exit statuses, one-line errors,
# the files and JSON each command promises.
# Env: MMS_BIN (the binary), MMS_SOURCE_DIR (source root), PYTHON.
# Needs ffmpeg and ffprobe to make and inspect images.

set -u
MMS=${MMS_BIN:?MMS_BIN must name the mms binary}
SRC=${MMS_SOURCE_DIR:?MMS_SOURCE_DIR must name the source root}
PY=${PYTHON:-/usr/bin/python3}
# The default model must come from the tree under test, not the caller.
unset MMS_MODEL

. "$(dirname "$0")/../lib.sh"
lib_start cli

# run STATUS ARGS...: `mms ARGS` by check_exit.
run() {
    _st=$1
    shift
    check_exit "$_st" "$MMS" "$@"
}

# json_get FILE EXPR: prints the Python expression EXPR over the JSON object d.
json_get() {
    "$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$1" "$2"
}

picture() { # picture FILE WxH [SOURCE]
    ffmpeg -nostdin -v error -y -f lavfi -i "${3:-testsrc}=size=$2" -frames:v 1 "$1" ||
        fail "ffmpeg could not make $1"
}

for tool in ffmpeg ffprobe; do
    command -v $tool >/dev/null || { echo "FAIL: $tool is needed" >&2; exit 1; }
done

# ---- help and usage ----

run 0 --help && grep -q "Commands:" "$T/out" || fail "mms --help lists no commands"
run 0 --version && grep -q "^mms [0-9]" "$T/out" || fail "mms --version: $(cat "$T/out")"
run 2
run 2 no-such-command && one_line_with "unknown command"
for cmd in info segment eval bench; do
    run 0 $cmd --help && grep -q "Usage: mms $cmd" "$T/out" || fail "mms $cmd --help"
    run 0 help $cmd
    run 2 $cmd --no-such-option && one_line_with "unknown option '--no-such-option'"
done
run 2 segment --out && one_line_with "needs a value"
run 2 segment x.png && one_line_with "missing --out"
run 2 bench --threads 1000 && one_line_with "threads"
run 2 bench --threads many && one_line_with "threads"
run 2 bench --iters 0
run 2 bench --size 288 && one_line_with "size"
run 2 bench --size 288x && one_line_with "size"
run 2 bench --precision fp64 && one_line_with "fp32, bf16, int8 or auto"
run 2 eval --images "$T" && one_line_with "missing --masks"
run 2 info --json=yes && one_line_with "--json takes no value"

# ---- one option table: pipeline options come from the pipeline's ----

# The same line, help and default, wherever the option is taken.
"$MMS" run --help >"$T/run-help" 2>&1
for cmd in segment eval bench; do
    run 0 $cmd --help
    line=$(grep -- "^  --threads " "$T/out")
    [ -n "$line" ] && grep -qxF -- "$line" "$T/run-help" ||
        fail "mms $cmd --help: --threads is not the pipeline's: '$line'"
done
run 0 info --help && ! grep -q -- "--threads" "$T/out" || fail "info takes no --threads"
# Only the pipeline options a command names: bench has no overlay.
run 2 bench --style fill && one_line_with "unknown option '--style'"
run 2 segment --every 2 --out "$T/o" "$T/x.png" && one_line_with "unknown option '--every'"
# Refusals name the option as typed, dashes and all, and point to --help.
run 2 bench --size 0x5 && one_line_with '--size="0x5": expected HxW'
grep -qF "(see 'mms bench --help')" "$T/err" || fail "no pointer to --help: $(cat "$T/err")"
run 2 run -i x -o null --alpha 2 && one_line_with '--alpha="2": out of range 0..1'
run 2 run -i x -o null --window=yes && one_line_with "--window takes no value"
run 2 run -i x && one_line_with "nothing to do"
run 2 run -o null && one_line_with "missing -i INPUT"
run 2 run -i && one_line_with "-i needs a value"
run 0 run --help && grep -q -- "^  --live  *same as --mode live" "$T/out" ||
    fail "run --help lacks --live"
for bad in "--seed -1" "--seed 4294967296" "--fps 0" "--fps x" "--size 31x32" "--frames 0"; do
    run 2 synth -o "$T/s.mp4" $bad && one_line_with "${bad%% *}="
done
[ -e "$T/s.mp4" ] && fail "synth wrote a clip despite a usage error"
# A mistyped scheme is not an output, and its password is not shown.
run 2 synth -o "rtmpz://u:SECRETPW@host/x" && one_line_with "cannot write"
grep -q SECRETPW "$T/err" && fail "synth shows the password: $(cat "$T/err")"
run 1 run -i "lavfi:testsrc2=size=64x48:rate=25:duration=1" -o "rtmpz://u:SECRETPW@host/x"
grep -q SECRETPW "$T/err" && fail "run shows the password: $(cat "$T/err")"

# ---- failures: one line, status 1 ----

run 1 info "$T/missing.safetensors" && one_line_with "missing.safetensors"
MMS_MODEL="$T/env-missing.safetensors" "$MMS" bench --iters 1 >"$T/out" 2>"$T/err"
[ $? -eq 1 ] || fail "a missing \$MMS_MODEL should fail the command"
one_line_with "env-missing.safetensors"
picture "$T/a.png" 200x120
run 1 segment --model "$T/missing.safetensors" --out "$T/o" "$T/a.png" &&
    one_line_with "missing.safetensors"
run 1 segment --out "$T/o" "$T/nope.png" && one_line_with "nope.png: No such file"
head -c 300 "$T/a.png" >"$T/cut.png"
run 1 segment --out "$T/o" "$T/cut.png" && one_line_with "cut.png"

# ---- info ----

if run 0 info --json; then
    cp "$T/out" "$T/info.json"
    arch=$(json_get "$T/info.json" 'd["arch"]')
    [ -n "$arch" ] || fail "info --json has no arch"
    OH=$(json_get "$T/info.json" 'd["output_h"]')
    OW=$(json_get "$T/info.json" 'd["output_w"]')
    run 0 info "$SRC/models/mms-rt.safetensors" && grep -q "arch *$arch" "$T/out" ||
        fail "mms info does not print the arch '$arch': $(cat "$T/out")"
else
    OH=0 OW=0
fi

# ---- segment ----

picture "$T/b.jpg" 97x61
if run 0 segment --threads 2 --raw "$T/raw" --out "$T/masks/deep" "$T/a.png" "$T/b.jpg"; then
    for s in a:200x120 b:97x61; do
        stem=${s%%:*} size=${s#*:}
        got=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height,pix_fmt \
            -of csv=p=0 "$T/masks/deep/$stem.png")
        [ "$got" = "${size%x*},${size#*x},gray" ] ||
            fail "mask $stem.png is '$got', expected ${size%x*},${size#*x},gray"
        bytes=$(wc -c <"$T/raw/$stem.f32")
        [ "$bytes" -eq $((OH * OW * 4)) ] ||
            fail "$stem.f32 has $bytes bytes, expected ${OH}x${OW}x4"
    done
    # Only 0 and 255 in a mask; the logits are finite floats.
    ffmpeg -nostdin -v error -y -i "$T/masks/deep/a.png" -f rawvideo -pix_fmt gray "$T/a.gray"
    "$PY" - "$T/a.gray" "$T/raw/a.f32" <<'EOF' || fail "mask or logits malformed"
import array, math, sys
mask = open(sys.argv[1], "rb").read()
assert set(mask) <= {0, 255}, sorted(set(mask))
logits = array.array("f")
logits.frombytes(open(sys.argv[2], "rb").read())
if sys.byteorder == "big":
    logits.byteswap()
assert all(math.isfinite(v) for v in logits)
EOF
fi

# ---- eval ----

mkdir -p "$T/set/img" "$T/set/gt"
picture "$T/set/img/one.png" 160x90
picture "$T/set/img/two.jpg" 120x80 testsrc2
picture "$T/set/img/three.jpeg" 64x64 mandelbrot
echo "not an image" >"$T/set/img/notes.txt"
# The model's own masks as ground truth: every score must be perfect.
if run 0 segment --out "$T/set/gt" "$T"/set/img/*.png "$T"/set/img/*.jp*g; then
    if run 0 eval --images "$T/set/img" --masks "$T/set/gt" --json; then
        cp "$T/out" "$T/eval.json"
        "$PY" - "$T/eval.json" <<'EOF' || fail "eval --json: $(cat "$T/eval.json")"
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("mean_dice", "mean_iou", "pooled_dice", "precision", "recall", "model", "images"):
    assert k in d, k
names = [i["name"] for i in d["images"]]
assert names == ["one.png", "three.jpeg", "two.jpg"], names
for i in d["images"]:
    assert set(i) >= {"name", "dice", "iou", "gt_pixels", "pred_pixels"}, i
    assert i["dice"] == 1 and i["iou"] == 1 and i["gt_pixels"] == i["pred_pixels"], i
assert d["mean_dice"] == 1 and d["mean_iou"] == 1 and d["pooled_dice"] == 1
EOF
    fi
    # The human-readable table.
    run 0 eval --images "$T/set/img" --masks "$T/set/gt" && grep -q "mean" "$T/out" ||
        fail "eval table has no means: $(cat "$T/out")"
    # A file name with an escape sequence is printed without it.
    esc=$(printf '\033')
    mkdir -p "$T/esc/img" "$T/esc/gt"
    cp "$T/set/img/one.png" "$T/esc/img/a${esc}[31mred.png"
    cp "$T/set/gt/one.png" "$T/esc/gt/a${esc}[31mred.png"
    run 0 eval --images "$T/esc/img" --masks "$T/esc/gt" && grep -q "a?\[31mred.png" "$T/out" ||
        fail "eval printed a control byte of a file name: $(od -c "$T/out" | head -3)"
    # A name that is not UTF-8 keeps --json JSON ('?' for the bad byte).
    mkdir -p "$T/u8/img" "$T/u8/gt"
    cp "$T/set/img/one.png" "$T/u8/img/a$(printf '\377')b.png"
    cp "$T/set/gt/one.png" "$T/u8/gt/a$(printf '\377')b.png"
    if run 0 eval --images "$T/u8/img" --masks "$T/u8/gt" --json; then
        "$PY" -c 'import json, sys; d = json.load(open(sys.argv[1], encoding="utf-8")); \
assert d["images"][0]["name"] == "a?b.png", d' "$T/out" ||
            fail "eval --json with a non-UTF-8 name: $(od -c "$T/out" | head -3)"
    fi
    # A directory named like an image is no image: skipped.
    mkdir -p "$T/u8/img/sub.png"
    run 0 eval --images "$T/u8/img" --masks "$T/u8/gt" ||
        fail "eval took a directory named sub.png for an image: $(cat "$T/out")"
    # The contact sheet: one PNG, three frames across (each 2 tiles of 256).
    if run 0 eval --images "$T/set/img" --masks "$T/set/gt" --sheet "$T/sheet.png"; then
        size=$(ffprobe -v error -show_entries stream=width,codec_name -of csv=p=0 "$T/sheet.png")
        [ "$size" = "png,1564" ] || fail "eval --sheet: expected a 1564-wide PNG, got '$size'"
    fi
    run 1 eval --images "$T/set/img" --masks "$T/set/gt" --sheet "$T/no/such/dir/s.png" &&
        one_line_with "s.png"
    # The scores come first: a sheet that cannot be written keeps them.
    grep -q "mean" "$T/out" || fail "eval printed no scores when the sheet failed: $(cat "$T/out")"
    [ -e "$T/no/such/dir/s.png" ] && fail "eval --sheet left a file in a missing directory"
    rm "$T/set/gt/two.png"
    run 1 eval --images "$T/set/img" --masks "$T/set/gt" && one_line_with "two.png"
fi
mkdir -p "$T/empty"
run 1 eval --images "$T/empty" --masks "$T/empty" && one_line_with "no .png"

# ---- bench ----

if run 0 bench --iters 2 --warmup 1 --json; then
    cp "$T/out" "$T/bench.json"
    "$PY" - "$T/bench.json" <<'EOF' || fail "bench --json: $(cat "$T/bench.json")"
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("model", "arch", "size", "precision", "threads", "iters", "median_ms", "p90_ms",
          "min_ms", "fps", "gflops", "macs"):
    assert k in d, k
assert d["median_ms"] > 0 and d["min_ms"] <= d["median_ms"] <= d["p90_ms"]
assert d["iters"] == 2 and d["threads"] >= 1
# what ran: auto takes the shipped model's int8 calibration
assert d["precision"] == "int8" and d["precision_asked"] == "auto", d
# the machine the figures belong to
assert d["cpu"]["name"] and d["cpu"]["onednn_isa"] and d["cpu"]["cpus"] >= 1
assert "layers" not in d
EOF
fi

# --layers: every step with its shape and implementation, the convolutions'
# work adding up to the network's.
if run 0 bench --iters 2 --warmup 1 --size 64x128 --layers --json; then
    cp "$T/out" "$T/layers.json"
    "$PY" - "$T/layers.json" <<'EOF' || fail "bench --layers: $(head -c 600 "$T/layers.json")"
import json, sys
d = json.load(open(sys.argv[1]))
L = d["layers"]
assert len(L) > 10, len(L)
assert all(l["impl"] and l["op"] and l["ms"] >= 0 for l in L)
convs = [l for l in L if l["op"] == "conv"]
assert convs and all(l["macs"] > 0 for l in convs)
assert sum(l["macs"] for l in L) == d["macs"], (sum(l["macs"] for l in L), d["macs"])
assert all(l["macs"] == 0 for l in L if l["op"] != "conv")
c, h, w = (int(v) for v in L[-1]["shape"].split("x"))
assert (c, h, w) == (1, 64, 128), L[-1]["shape"]
EOF
fi
run 0 bench --iters 1 --warmup 0 --size 64x128 --layers &&
    grep -q "implementation" "$T/out" && grep -q "^cpu " "$T/out" ||
    fail "bench --layers text: $(head -c 400 "$T/out")"
run 2 bench --layers=maybe

# ---- calibrate ----

# The frames the check runs on decide pass or fail; either way the file
# carries the calibration and says which it was.
"$MMS" calibrate --threads 2 --out "$T/cal.safetensors" "$T/set/img/one.png" \
    "$T/set/img/two.jpg" "$T/b.jpg" >"$T/out" 2>"$T/err"
st=$?
[ $st -eq 0 ] || [ $st -eq 1 ] || fail "calibrate exited $st: $(cat "$T/err")"
grep -q "tensors calibrated on 3 frames; \(passed\|failed\): .*; [0-9]* below 0.90 differ on under 0.05 % of the pixels (lowest of all [01]\.[0-9]*)" "$T/out" ||
    fail "calibrate said: $(cat "$T/out" "$T/err")"
if run 0 info "$T/cal.safetensors" --precision int8 --json; then
    json_get "$T/out" 'd["precision"]' | grep -qx int8 || fail "calibrated file: $(cat "$T/out")"
fi
# A calibration that passed is auto's choice, unless int8 was timed no
# faster than fp32 here (on a busy machine it can be): then the reason says so.
if [ $st -eq 0 ]; then
    run 0 info "$T/cal.safetensors" --json &&
        json_get "$T/out" 'd["precision"] == "int8" or "measured" in d["precision_why"]' |
        grep -qx True || fail "auto did not take a calibration that passed: $(cat "$T/out")"
fi
# Frames without a tool judge nothing (two empty masks agree whatever
# int8 does): a calibration on them alone fails, and auto does not take it.
ffmpeg -nostdin -v error -y -f lavfi -i color=black:s=320x180 -frames:v 1 "$T/black.png"
"$MMS" calibrate --threads 2 --out "$T/black.safetensors" "$T/black.png" >"$T/out" 2>"$T/err"
st=$?
[ $st -eq 1 ] && grep -q "failed: .*fp32 finds a tool on 0, too few to judge" "$T/out" ||
    fail "a calibration on a frame without a tool (exit $st): $(cat "$T/out" "$T/err")"
if run 0 info "$T/black.safetensors" --json; then
    json_get "$T/out" 'd["precision"]' | grep -qx int8 && fail "auto took an unjudged calibration"
fi
run 2 calibrate "$T/a.png" && one_line_with "missing --out"
run 2 calibrate --out "$T/x.safetensors" && one_line_with "IMAGE"
run 1 calibrate --model "$T/cal.safetensors" --out "$T/cal.safetensors" "$T/a.png" &&
    one_line_with "overwrite"
# The same file by another name: refused before anything is written.
if [ -e "$T/cal.safetensors" ]; then
    sum=$(cksum <"$T/cal.safetensors")
    ln -f "$T/cal.safetensors" "$T/cal-link.safetensors"
    for out in "$T/./cal.safetensors" "$T/cal-link.safetensors"; do
        run 1 calibrate --model "$T/cal.safetensors" --out "$out" "$T/a.png" &&
            one_line_with "overwrite"
    done
    [ "$(cksum <"$T/cal.safetensors")" = "$sum" ] || fail "calibrate overwrote the model it read"
fi
run 1 calibrate --out "$T/y.safetensors" "$T/nonexistent.png" && one_line_with "nonexistent.png"
[ ! -e "$T/y.safetensors" ] || fail "a failed calibration left a file behind"
run 2 calibrate --percentile 101 --out "$T/z.safetensors" "$T/a.png" && one_line_with "percentile"
run 2 info --precision int4 && one_line_with "int4"
# --tta: info and bench say whether a frame costs one pass or two.
# auto by default: flip or off depends on this CPU, and says so.
if run 0 info --json; then
    json_get "$T/out" 'd["tta"] in ("flip", "off") and d["tta_why"].startswith("auto:")' |
        grep -qx True || fail "info tta default: $(cat "$T/out")"
fi
if run 0 info --precision fp32 --json; then
    json_get "$T/out" 'd["tta"]' | grep -qx off || fail "info fp32 tta: $(cat "$T/out")"
fi
if run 0 info --tta flip --json; then
    json_get "$T/out" 'd["tta"]' | grep -qx flip || fail "info --tta flip: $(cat "$T/out")"
fi
if run 0 bench --tta flip --iters 2 --warmup 1 --json; then
    json_get "$T/out" 'd["tta"]' | grep -qx flip || fail "bench --tta flip: $(cat "$T/out")"
fi
run 2 info --tta mirror && one_line_with "flip"
run 2 bench --tta && one_line_with "needs a value"

# ---- real data, when this checkout has it ----

DATA="$SRC/../shared/data/labeled/cholec80-v01"
if [ -d "$SRC/../shared/data" ]; then
    if run 0 eval --images "$DATA/image" --masks "$DATA/mask" --json; then
        cp "$T/out" "$T/real.json"
        dice=$(json_get "$T/real.json" 'd["mean_dice"]')
        json_get "$T/real.json" '0 <= d["mean_dice"] <= 1 and len(d["images"]) > 0' |
            grep -q True || fail "cholec80-v01 mean_dice $dice is not in [0, 1]"
        echo "cholec80-v01: mean_dice $dice"
    fi
elif [ "${CI:-}" = true ]; then
    fail "../shared/data is missing (CI=true needs it)"
else
    echo "note: ../shared/data not found; skipping the real-data evaluation"
fi

finish cli
