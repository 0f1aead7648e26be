# What every shell test shares, sourced first (. "$(dirname "$0")/../lib.sh"):
# a temporary directory $T, removed on exit after the processes the test
# started are killed; fail() counts a failed check and the test goes on,
# so one run reports every broken behaviour; finish turns the count into
# the exit status. A missing tool is a skip on a workstation but a failure
# under CI=true, where a skip would hide a test that never ran.

failures=0
pids=""

# lib_start NAME: $T, and the traps that clean up after the test.
lib_start() {
    T=$(mktemp -d "${TMPDIR:-/tmp}/mms-$1-XXXXXX") || exit 1
    trap lib_cleanup EXIT
    trap 'exit 1' INT TERM
}

# Waited for, so that an X server has let go of its display before the
# next test looks for a free one.
lib_cleanup() {
    for _p in $pids; do kill "$_p" 2>/dev/null; done
    for _p in $pids; do wait "$_p" 2>/dev/null; done
    rm -rf "$T"
}

# spawned PID: kill PID on exit. reaped PID: it was waited for, so that a
# later process given its number is not killed in its place.
spawned() { pids="$pids $1"; }
reaped() { pids=$(echo " $pids " | sed "s/ $1 / /"); }

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# finish NAME: the exit status of the whole test.
finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$failures check(s) failed" >&2
        exit 1
    fi
    echo "$1: all checks passed"
    exit 0
}

# check_exit STATUS CMD [ARGS...]: runs CMD, its output in $T/out and
# $T/err; 0 if it exited STATUS, else a failed check.
check_exit() {
    _want=$1
    shift
    "$@" >"$T/out" 2>"$T/err"
    _got=$?
    _cmd=${1##*/}
    shift
    [ "$_got" -eq "$_want" ] && return 0
    fail "$_cmd $* exited $_got, expected $_want; stderr: $(head -c 300 "$T/err")"
    return 1
}

# The stderr of the last check_exit is exactly one line containing $1.
one_line_with() {
    _n=$(wc -l <"$T/err")
    [ "$_n" -eq 1 ] || fail "expected one line on stderr, got $_n: $(cat "$T/err")"
    grep -qF -- "$1" "$T/err" || fail "stderr lacks '$1': $(cat "$T/err")"
}

# cannot REASON: the test cannot run here: a skip, unless under CI=true or
# after checks already failed.
cannot() {
    [ "${CI:-}" = true ] && fail "$* (CI=true needs it)"
    [ "$failures" -eq 0 ] || finish "${0##*/}"
    echo "SKIP: $*"
    exit 0
}

need() { # need TOOL...
    for _t in "$@"; do
        command -v "$_t" >/dev/null || cannot "$_t is not installed"
    done
}

# wait_for FILE TENTHS [PID]: until FILE is there (a socket, or a file with
# something in it: a port file written by a server once it listens), at
# most TENTHS tenths of a second and while PID lives. 0 if it came.
wait_for() {
    _i=0
    while [ ! -s "$1" ] && [ ! -S "$1" ]; do
        [ "$_i" -lt "$2" ] || return 1
        [ -z "${3:-}" ] || kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
        _i=$((_i + 1))
    done
}

# start_xvfb FIRST WxHxD: an X server on the first free display of
# FIRST..FIRST+9, ready when its socket is; exports DISPLAY. -noreset: a
# server that resets after its last client left refuses the next one for
# a moment, and tests close a window and open another. 1 if none started.
start_xvfb() {
    _n=$1
    while [ "$_n" -lt $(($1 + 10)) ]; do
        if [ ! -e "/tmp/.X$_n-lock" ] && [ ! -e "/tmp/.X11-unix/X$_n" ]; then
            Xvfb ":$_n" -screen 0 "$2" -nolisten tcp -noreset >"$T/xvfb.log" 2>&1 &
            _x=$!
            spawned $_x
            if wait_for "/tmp/.X11-unix/X$_n" 100 $_x; then
                export DISPLAY=":$_n"
                return 0
            fi
            kill $_x 2>/dev/null
            wait $_x 2>/dev/null
            reaped $_x
        fi
        _n=$((_n + 1))
    done
    return 1
}

# need_xvfb FIRST WxHxD: start_xvfb, where Xvfb is missing a skip (or
# cannot), but a failure where it is there and will not start.
need_xvfb() {
    need Xvfb
    start_xvfb "$@" && return 0
    fail "Xvfb would not start on :$1..: $(tail -n 3 "$T/xvfb.log" 2>/dev/null)"
    finish "${0##*/}"
}
