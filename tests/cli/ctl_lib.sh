# Helpers shared by tests/cli/test_ctl*.sh (sourced), on tests/lib.sh's:
# stubs of mmsd (tests/cli/fake_mmsd.py) killed on exit, mms ctl run and
# what it printed and sent checked.
# Env: MMS_BIN (the binary), MMS_SOURCE_DIR (source root), PYTHON.

set -u
. "$MMS_SOURCE_DIR/tests/lib.sh"
MMS=${MMS_BIN:?MMS_BIN must name the mms binary}
SRC=${MMS_SOURCE_DIR:?MMS_SOURCE_DIR must name the source root}
PY=${PYTHON:-python3}
# The caller's daemon must not be the one under test.
unset MMSD_URL MMSD_TOKEN

lib_start ctl

# start_stub NAME [ARGS]: starts a stub logging to $T/NAME.log; sets $port.
start_stub() {
    name=$1
    shift
    "$PY" "$SRC/tests/cli/fake_mmsd.py" --port-file "$T/$name.port" --log "$T/$name.log" \
        "$@" 2>"$T/$name.stderr" &
    spawned $!
    if ! wait_for "$T/$name.port" 100 $!; then
        echo "FAIL: stub $name did not start: $(cat "$T/$name.stderr")" >&2
        exit 1
    fi
    port=$(cat "$T/$name.port")
}

# run STATUS ARGS...: `mms ctl ARGS` by check_exit.
run() {
    _st=$1
    shift
    check_exit "$_st" "$MMS" ctl "$@"
}

out_has() { # out_has TEXT: a line of stdout contains TEXT
    grep -qF -- "$1" "$T/out" || fail "stdout lacks '$1': $(cat "$T/out")"
}

# How many requests the main stub has logged.
requests() { wc -l <"$T/main.log"; }

# sent EXPR [LOG]: the Python expression EXPR holds for the last request the
# stub logged, as d (method, path, host, auth, content_type, body) with its
# body parsed as b.
sent() {
    "$PY" - "$T/${2:-main}.log" "$1" <<'EOF' || fail "request: $1"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
if not lines:
    sys.exit("no request logged")
d = json.loads(lines[-1])
b = json.loads(d["body"]) if d["body"] else None
if not eval(sys.argv[2]):
    sys.exit("last request: " + lines[-1])
EOF
}

# out_json EXPR: stdout is JSON and EXPR holds over it, as d.
out_json() {
    "$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(not eval(sys.argv[2]))' \
        "$T/out" "$1" || fail "stdout JSON: $1: $(head -c 300 "$T/out")"
}

ms() { date +%s%N | cut -c1-13; }

# A port just free, so nothing listens there.
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
