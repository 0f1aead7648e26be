#!/bin/sh
# bench/peers.sh without timing anything that matters and without network:
# mmsd's rows and the report's arithmetic, that a peer which cannot run
# still gets a row saying why (exit 0), and that mmsd failing is the one
# failure (exit non-zero). No figure is compared: speed is a benchmark,
# run on a quiet machine, not a test.
. "$(dirname "$0")/../lib.sh"
lib_start bench-peers

SRC=${MMS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
MMS=${MMS_BIN:-$SRC/build/mms}
PY=${PYTHON:-/usr/bin/python3}
[ -x "$MMS" ] || { echo "no mms binary at $MMS" >&2; exit 1; }

# field FILE EXPR: a Python expression over the report `d`, printed.
field() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# --- mmsd alone: its three rows, the header, the JSON.
if check_exit 0 env MMS_BIN="$MMS" PEERS_OUT="$T/a" PEERS_ENGINES=mmsd PEERS_INSTALL=0 \
    PEERS_WARMUP=0 sh "$SRC/bench/peers.sh" "$SRC/models/mms-rt.safetensors" 1 1; then
    for h in "^CPU " "^ISA flags " "^oneDNN ISA " "^mmsd  *fp32 .* 1.00  ok$"; do
        grep -q "$h" "$T/out" || fail "no line /$h/ in the table: $(cat "$T/out")"
    done
    j=$T/a/peers.json
    [ "$(field "$j" '[(r["label"], r["precision"]) for r in d["rows"]]')" = \
        "[('mmsd', 'fp32'), ('mmsd', 'bf16'), ('mmsd', 'int8')]" ] || fail "rows: $(cat "$j")"
    [ "$(field "$j" 'd["rows"][0]["median_ms"] > 0 and d["rows"][0]["ratio_to_mmsd_fp32"]')" = 1.0 ] ||
        fail "mmsd fp32 row: $(cat "$j")"
    [ "$(field "$j" 'd["size"], d["threads"], bool(d["cpu"]["onednn_isa"])')" = "('288x512', 1, True)" ] ||
        fail "report header: $(cat "$j")"
    # bf16 and int8: a figure, or the reason mmsd has none; never a silent gap.
    [ "$(field "$j" 'all(r["status"] == "ok" and r["median_ms"] > 0 or
                        r["status"] == "not available" and r["reason"].startswith("not available in mmsd yet: ")
                        for r in d["rows"][1:])')" = True ] || fail "mmsd bf16/int8 rows: $(cat "$j")"
fi

# --- mmsd failing is a failure, with no peer run.
check_exit 1 env MMS_BIN=/bin/false PEERS_OUT="$T/b" PEERS_INSTALL=0 sh "$SRC/bench/peers.sh" &&
    { grep -q "mmsd failed" "$T/err" || fail "no 'mmsd failed' on stderr: $(cat "$T/err")"; }
check_exit 2 sh "$SRC/bench/peers.sh" "$SRC/models/mms-rt.safetensors" two
check_exit 2 sh "$SRC/bench/peers.sh" "$T/no-such-model.safetensors"

# --- a peer that cannot run (onnxruntime-node absent, installing forbidden)
# has a row with its reason, and the run still succeeds.
if check_exit 0 env MMS_BIN="$MMS" PEERS_OUT="$T/c" PEERS_ENGINES="mmsd ort" PEERS_INSTALL=0 \
    PEERS_CACHE="$T/empty-cache" PEERS_WARMUP=0 sh "$SRC/bench/peers.sh" "$SRC/models/mms-rt.safetensors" 1 1; then
    [ "$(field "$T/c/peers.json" '[(r["label"], r["status"], bool(r["reason"])) for r in d["rows"][3:]]')" = \
        "[('onnxruntime', 'skipped', True)]" ] || fail "onnxruntime row: $(cat "$T/c/peers.json")"
fi

# --- the report's arithmetic and reasons, on made-up steps.
w=$T/w
mkdir -p "$w"
printf '01\tmmsd\tfp32\n02\tmmsd\tbf16\n03\tpytorch\tfp32\n04\tonnxruntime\tfp32\n05\topencv\tfp32\n' >"$w/steps"
printf '{\n "size": "8x8",\n "precision": "fp32",\n "median_ms": 10.0,\n "p90_ms": 11.0,\n "cpu": {"name": "X", "flags": "avx2", "onednn_isa": "avx2", "cpus": 2}\n}\n' >"$w/01.out"
echo 0 >"$w/01.rc"
echo "mms bench: precision bf16 is not supported by this build" >"$w/02.err"
echo 1 >"$w/02.rc"
echo '{"engine": "pytorch x", "precision": "fp32", "status": "ok", "median_ms": 15.0, "p90_ms": 16.0}' >"$w/03.out"
echo 0 >"$w/03.rc"
printf 'Traceback (most recent call last):\nImportError: libfoo.so: cannot open\n' >"$w/04.err"
echo 1 >"$w/04.rc"
echo "python3-opencv not installed" >"$w/05.skip"
if check_exit 0 "$PY" "$SRC/bench/report.py" "$w" --json "$T/r.json" --model m --threads 2 --iters 5 --warmup 1; then
    [ "$(field "$T/r.json" '[(r["status"], r.get("ratio_to_mmsd_fp32")) for r in d["rows"]]')" = \
        "[('ok', 1.0), ('not available', None), ('ok', 1.5), ('failed', None), ('skipped', None)]" ] ||
        fail "report rows: $(cat "$T/r.json")"
    grep -q "libfoo.so: cannot open" "$T/out" || fail "failed row's reason not in the table: $(cat "$T/out")"
    grep -q "^pytorch x  *fp32  *15.00  *16.00  *1.50  ok$" "$T/out" || fail "pytorch line: $(cat "$T/out")"
fi
# No mmsd fp32 figure: the report says so by its status.
printf '01\tmmsd\tfp32\n' >"$w/steps"
rm "$w/01.out"
check_exit 1 "$PY" "$SRC/bench/report.py" "$w" --json "$T/r2.json" --model m --threads 2 --iters 5 --warmup 1

finish bench_peers
