#!/bin/sh
# fuzz/run.sh SECONDS [TARGET...]: builds the libFuzzer targets (clang,
# ASan + UBSan, in build-fuzz/) when needed, replays every input kept in
# fuzz/regress/TARGET/, then fuzzes each target for SECONDS from a copy of
# fuzz/corpus/TARGET/ in a temporary directory. Prints, per target, the
# executions, the time and the coverage gained; exits 1 on any crash, leak,
# sanitizer report or timeout (the input is kept in out/fuzz/TARGET/), 2 on
# bad usage. Each run's figures are added to out/fuzz/history.tsv.
#
#   MMS_FUZZ_MERGE=1   merge what the run found into fuzz/corpus/TARGET
#   MMS_FUZZ_BUILD=DIR build directory [build-fuzz]
#   JOBS=N             build jobs [2]
set -eu
cd "$(dirname "$0")/.."
ALL="model config http api_json ctl image source"
usage() { echo "usage: fuzz/run.sh SECONDS [TARGET...]; targets: $ALL" >&2; exit 2; }
[ $# -ge 1 ] || usage
secs=$1; shift
case $secs in ''|*[!0-9]*) usage ;; esac
targets=${*:-$ALL}
for t in $targets; do
    case " $ALL " in *" $t "*) ;; *) usage ;; esac
done
start=$(date +%s)

if ! command -v clang >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "== installing clang (libFuzzer)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev libomp-14-dev >/dev/null
    else
        echo "fuzz/run.sh: needs clang (apt-get install clang)" >&2
        exit 1
    fi
fi
build=${MMS_FUZZ_BUILD:-build-fuzz}
if [ ! -f "$build/CMakeCache.txt" ]; then
    CC=clang cmake -S . -B "$build" -DMMS_FUZZ=ON -DMMS_BUILD_TESTS=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
echo "== build ($build)" >&2
cmake --build "$build" --target fuzz -j"${JOBS:-2}" >"$build/fuzz-build.log" 2>&1 || {
    tail -n 40 "$build/fuzz-build.log" >&2
    exit 1
}
built=$(date +%s)

# 0xff-filled fresh memory, as in the tests: an unwritten length or pointer
# reads as huge, and the fuzzer sees it.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=0:malloc_fill_byte=255:max_malloc_fill_size=268435456
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
tmp=$(mktemp -d /tmp/mms-fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0
printf '%-9s %6s %10s %8s %16s %6s  %s\n' TARGET SECONDS EXECS EXEC/S COVERAGE NEW RESULT

for t in $targets; do
    bin=$build/fuzz/fuzz_$t
    art=out/fuzz/$t
    mkdir -p "$art"
    case $t in
        image|source|model) max_len=65536 ;;
        *) max_len=16384 ;;
    esac
    flags="-timeout=30 -rss_limit_mb=2048 -max_len=$max_len -close_fd_mask=3"
    result=ok
    # Each input kept from a bug, once.
    if [ -d "fuzz/regress/$t" ] && [ -n "$(ls -A "fuzz/regress/$t")" ]; then
        # shellcheck disable=SC2086
        if ! "$bin" $flags "fuzz/regress/$t"/* >"$art/regress.log" 2>&1; then
            result="REGRESSION (see $art/regress.log)"
            tail -n 30 "$art/regress.log" >&2
            fail=1
        fi
    fi
    corpus=$tmp/$t
    mkdir -p "$corpus"
    cp fuzz/corpus/"$t"/* "$corpus"/
    log=$art/fuzz.log
    t0=$(date +%s)
    # shellcheck disable=SC2086
    if ! "$bin" $flags -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$art/" "$corpus" >"$log" 2>&1; then
        result="FAILED: $(grep -m1 -E '^(SUMMARY|==[0-9]+==ERROR)' "$log" || echo 'see log'); input and log in $art/"
        tail -n 40 "$log" >&2
        fail=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    new=$(sed -n 's/^stat::new_units_added: *//p' "$log")
    cov0=$(sed -n 's/.*INITED cov: \([0-9]*\).*/\1/p' "$log" | head -n1)
    cov1=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' "$log" | tail -n1)
    took=$(($(date +%s) - t0))
    printf '%-9s %6s %10s %8s %16s %6s  %s\n' "$t" "$took" "${execs:-?}" "${rate:-?}" \
        "${cov0:-?} -> ${cov1:-?}" "${new:-?}" "$result"
    # Every run adds a line: the figures docs/reliability.md adds up.
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$took" \
        "${execs:-?}" "${cov0:-?}->${cov1:-?}" "${new:-?}" "$result" >>out/fuzz/history.tsv
    if [ "${MMS_FUZZ_MERGE:-0}" = 1 ] && [ "$result" = ok ]; then
        # shellcheck disable=SC2086
        "$bin" $flags -merge=1 fuzz/corpus/"$t" "$corpus" >"$art/merge.log" 2>&1 ||
            echo "   merge into fuzz/corpus/$t failed (see $art/merge.log)" >&2
    fi
done
end=$(date +%s)
echo "== build $((built - start)) s, fuzzing $((end - built)) s, total $((end - start)) s" >&2
exit $fail
