#!/bin/sh
# mmsd's command line around its config file: --help names every key,
# --print-config prints a file that loads back to itself, a bad file is one
# "FILE:LINE: reason" line on stderr and exit status 2 that shows no
# secret, and systemd/mmsd.conf.example is exactly what --print-config prints for it.
# Env: MMS_SOURCE_DIR, MMS_BUILD_DIR.

set -u
SRC=${MMS_SOURCE_DIR:?MMS_SOURCE_DIR must name the source root}
BUILD=${MMS_BUILD_DIR:?MMS_BUILD_DIR must name the build directory}
MMSD=$BUILD/mmsd
EXAMPLE=$SRC/systemd/mmsd.conf.example

. "$(dirname "$0")/../lib.sh"
lib_start mmsd

# run STATUS ARGS...: `mmsd ARGS` by check_exit.
run() {
    _st=$1
    shift
    check_exit "$_st" "$MMSD" "$@"
}

# refused FILE-TEXT LINE WANT: the file is refused with one line on stderr
# starting FILE:LINE: and containing WANT, nothing on stdout.
refused() {
    printf '%b' "$1" >"$T/bad.conf"
    run 2 -c "$T/bad.conf" --print-config || return
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "not one line: $(cat "$T/err")"
    grep -q "^$T/bad.conf:$2: " "$T/err" || fail "want $T/bad.conf:$2: in: $(cat "$T/err")"
    grep -qF -- "$3" "$T/err" || fail "want '$3' in: $(cat "$T/err")"
    [ ! -s "$T/out" ] || fail "a refused config printed something on stdout"
}

KEYS="listen model threads log_level token_file allowed_hosts font input input_option output
window model precision threads size style alpha color every mode meta record_dir
segment_seconds record_format encoder_preset"

[ -x "$MMSD" ] || { echo "FAIL: $MMSD is not built" >&2; exit 1; }

# ---- --version, --help ----

run 0 --version && grep -q '^mmsd [0-9]' "$T/out" || fail "--version"
run 0 --help && grep -q '^Usage: mmsd' "$T/out" || fail "--help has no usage"
for k in $KEYS; do
    grep -q "^  $k = " "$T/out" || fail "--help does not list '$k'"
done
grep -q '^\[mmsd\]' "$T/out" && grep -q '^\[pipeline NAME\]' "$T/out" || fail "--help sections"
run 0 -h

# ---- bad usage ----

run 2 --frobnicate && grep -q "unknown option" "$T/err" || fail "unknown option"
run 2 -c && grep -q "needs a value" "$T/err" || fail "-c without a file"
run 2 -c "$T/x.conf" extra && grep -q "unexpected argument 'extra'" "$T/err" ||
    fail "extra argument"

# ---- --print-config ----

printf '[mmsd]\nlisten = 127.0.0.1:9100\n[pipeline x]\ninput = /dev/video0\n' >"$T/min.conf"
if run 0 -c "$T/min.conf" --print-config; then
    grep -qx 'listen = 127.0.0.1:9100' "$T/out" || fail "print-config lost listen"
    grep -qx 'input = /dev/video0' "$T/out" || fail "print-config lost input"
    grep -qx 'segment_seconds = 600' "$T/out" || fail "print-config lacks a default"
    for k in $KEYS; do
        grep -q "^#\{0,1\}$k = " "$T/out" || fail "--print-config does not name '$k'"
    done
    cp "$T/out" "$T/printed.conf"
    run 0 -c "$T/printed.conf" --print-config && cmp -s "$T/out" "$T/printed.conf" ||
        fail "--print-config output does not print back to itself"
fi
run 0 --print-config --config="$T/min.conf" || fail "--config= spelling"

# The example documents every option because it is --print-config's output.
if run 0 -c "$EXAMPLE" --print-config; then
    cmp -s "$T/out" "$EXAMPLE" ||
        fail "mmsd.conf.example is not what --print-config prints for it: $(diff "$EXAMPLE" "$T/out" | head -20)"
    grep -q '^\[pipeline ' "$EXAMPLE" || fail "the example has no pipeline"
fi

# ---- --check: what a start would refuse, exit 1 as the start would ----

MODEL=$SRC/models/mms-rt.safetensors
printf '[mmsd]\nlisten = 127.0.0.1:9100\n[pipeline x]\ninput = /dev/video0\nmodel = %s\n' \
    "$MODEL" >"$T/chk-ok.conf"
run 0 -c "$T/chk-ok.conf" --check && grep -qx "$T/chk-ok.conf: ok, 1 pipeline" "$T/out" ||
    fail "--check of a good file: $(cat "$T/out")"
# check_refused FILE-TEXT WANT: exit 1, one line on stderr with WANT.
check_refused() {
    printf '%b' "$1" >"$T/chk.conf"
    run 1 -c "$T/chk.conf" --check || return
    [ "$(wc -l <"$T/err")" -eq 1 ] && grep -qF -- "$2" "$T/err" ||
        fail "--check: want one line with '$2': $(cat "$T/err")"
}
check_refused "[mmsd]\ntoken_file = $T/no-such-token\n" "cannot start: token_file $T/no-such-token"
: >"$T/empty-token"
check_refused "[mmsd]\ntoken_file = $T/empty-token\n" "token_file $T/empty-token: empty"
check_refused "[pipeline cam]\ninput = rtsp://u:s3cret@cam/x\nmodel = $T/no-model.safetensors\n" \
    "cannot start: pipeline cam: model: $T/no-model.safetensors"
grep -q s3cret "$T/err" && fail "--check shows a password"
head -c 1000 "$MODEL" >"$T/cut.safetensors"
check_refused "[pipeline a]\ninput = /dev/video0\n[pipeline b]\ninput = /dev/video1\nmodel = $T/cut.safetensors\n" \
    "pipeline b: model: $T/cut.safetensors"
# A bad file is still a bad file: exit 2 before anything else is looked at.
printf '[mmsd]\ntoken_file = %s/no-such-token\nbogus = 1\n' "$T" >"$T/chk.conf"
run 2 -c "$T/chk.conf" --check && grep -q "$T/chk.conf:3: " "$T/err" || fail "--check of a bad file"

# ---- bad files: FILE:LINE: reason, exit 2 ----

refused '[mmsd]\nlisten = 127.0.0.1:9100\n[pipeline x]\ninput = a\nalpha = 2\n' 5 'alpha="2": out of range'
refused '[pipeline x]\ninput = a\ncolour = red\n' 3 "unknown key 'colour'"
refused '[mmsd]\n[stream y]\n' 2 'unknown section [stream y]'
refused '[pipeline x]\ninput = a\n[pipeline x]\ninput = b\n' 3 'duplicate [pipeline x]'
refused '[mmsd]\n[pipeline x]\noutput = a.mp4\n' 2 'has no input'
refused 'input = a\n' 1 'outside any section'
refused '[mmsd]\nnot a key\n' 2 'malformed line'
refused '[mmsd]\nlisten = 10.0.0.1\n' 2 'expected IPv4:PORT'

# ---- secrets: in neither an error nor a printed config ----

refused '[pipeline x]\ninput = srt://h:9000\ninput_option = passphrase:Sup3rSecret1\n' 3 \
    'input_option: not KEY=VALUE'
! grep -q Sup3rSecret1 "$T/err" || fail "a malformed input_option is shown: $(cat "$T/err")"
printf '[pipeline x]\ninput = srt://h:9000\n%s\n' \
    'input_option = streamid=#!::r=live/Str3amK3y,m=publish' >"$T/streamid.conf"
if run 0 -c "$T/streamid.conf" --print-config; then
    grep -qx 'input_option = streamid=\*\*\*' "$T/out" && ! grep -q Str3amK3y "$T/out" ||
        fail "--print-config shows a stream ID: $(grep streamid "$T/out")"
fi

run 2 -c "$T/missing.conf" --print-config && grep -qx "$T/missing.conf: No such file or directory" "$T/err" ||
    fail "missing file: $(cat "$T/err")"
run 2 -c "$T/missing.conf" || fail "missing file without --print-config"

finish mmsd
