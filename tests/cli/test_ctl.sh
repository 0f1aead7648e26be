#!/bin/sh
# mms ctl against a stub mmsd (tests/cli/fake_mmsd.py) on 127.0.0.1: what it
# prints, its exit statuses, and the requests it sent as the stub logged them.
# The transport (framing, errors, timeouts, the token's secrecy) is
# tests/cli/test_ctl_http.sh's.
# Env: MMS_BIN (the binary), MMS_SOURCE_DIR (source root), PYTHON.

MMS_SOURCE_DIR=${MMS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MMS_SOURCE_DIR/tests/cli/ctl_lib.sh"

start_stub main --health-file "$T/health"
MAIN=$port
export MMSD_URL="http://127.0.0.1:$MAIN"

# ---- usage: exit 2, one line, nothing sent ----

run 0 --help && out_has "Usage: mms ctl" && out_has "record NAME start|stop"
"$MMS" --help | grep -q "^  ctl " || fail "mms --help does not list ctl"
before=$(requests)
run 2 && one_line_with "missing COMMAND"
grep -qF "mms ctl --help" "$T/err" || fail "usage error does not point to --help: $(cat "$T/err")"
run 2 frobnicate && one_line_with "unknown command 'frobnicate'"
run 2 --frob status && one_line_with "unknown option '--frob'"
run 2 status or1 or2 && one_line_with "at most one NAME"
run 2 status "" && one_line_with "empty pipeline name"
run 2 health now && one_line_with "health takes no arguments"
run 2 metrics all && one_line_with "metrics takes no arguments"
run 2 record or1 && one_line_with "record: missing arguments"
run 2 record or1 start now && one_line_with "record: too many arguments"
run 2 record or1 begin && one_line_with "'begin' is neither start nor stop"
run 2 record or1 START && one_line_with "neither start nor stop"
run 2 set or1 && one_line_with "set: missing arguments"
run 2 set or1 alpha && one_line_with "'alpha' is not KEY=VALUE"
run 2 set or1 style=fill alpha && one_line_with "'alpha' is not KEY=VALUE"
run 2 set or1 =0.5 && one_line_with "'=0.5' is not KEY=VALUE"
run 2 set or1 alpha=0.1 alpha=0.2 && one_line_with "alpha given twice"
for t in abc 0 -1 1e9 nan 5s ""; do
    run 2 --timeout "$t" status && one_line_with "--timeout"
done
run 2 --token-file "$T/no-such-token" status && one_line_with "no-such-token: No such file"
: >"$T/empty-token"
run 2 --token-file "$T/empty-token" status && one_line_with "empty token"
MMSD_TOKEN="two words" "$MMS" ctl status >"$T/out" 2>"$T/err"
[ $? -eq 2 ] || fail "a token with a space should be refused: $(cat "$T/err")"
[ "$(requests)" -eq "$before" ] || fail "usage errors sent $(($(requests) - before)) requests"

# ---- status ----

if run 0 status; then
    head -n 1 "$T/out" |
        grep -q "^NAME  *STATE  *FPS  *DECODED  *INFERRED  *DROPPED  *WRITTEN  *REC$" ||
        fail "table header: $(head -n 1 "$T/out")"
    [ "$(wc -l <"$T/out")" -eq 5 ] || fail "expected a header and 4 rows: $(cat "$T/out")"
    awk '$1 == "or1" && $2 == "running" && $3 == "24.9" && $4 == 100 && $5 == 90 && $6 == 10 &&
         $7 == 100 && $8 == "on" && $9 == "/var/lib/mmsd/rec/or1-20261126T201000Z.mp4"' \
        "$T/out" | grep -q . || fail "or1's row: $(grep or1 "$T/out")"
    grep -q "^or2  *no-signal  *-  *5  *5  *0  *5  *off$" "$T/out" ||
        fail "or2's row (no fps, recording off): $(grep or2 "$T/out")"
    grep -q "^or3  *failed .* error: disk full$" "$T/out" ||
        fail "or3's row (recording error): $(grep or3 "$T/out")"
    grep -q "^or4  *starting  *-  *-  *-  *-  *-  *-$" "$T/out" ||
        fail "or4's row (nothing known): $(grep or4 "$T/out")"
fi
sent 'd["method"] == "GET" and d["path"] == "/api/v1/pipelines" and d["auth"] is None'
sent 'd["host"] == "127.0.0.1:%s" % '"$MAIN"' and d["body"] is None'

run 0 --json status &&
    out_json 'd["pipelines"][0]["name"] == "or1" and d["pipelines"][1]["future"]["nested"]'

if run 0 status or1; then
    out_has "state       running"
    out_has "mode        auto (live)"
    out_has "source      854x480, 25.00 fps, signal"
    out_has "settings    style=fill alpha=0.45 color=00ff66 every=1"
    out_has "frames      decoded 100, inferred 90, dropped 10, skipped 4, written 100"
    out_has "recording   on /var/lib/mmsd/rec/or1-20261126T201000Z.mp4 (segments 1, errors 0)"
    out_has "latency     infer p50 20.1, p95 25.0, p99 30.2, max 41.0 ms"
fi
sent 'd["method"] == "GET" and d["path"] == "/api/v1/pipelines/or1"'
run 0 --json status or1 && out_json 'd["stats"]["decoded"] == 100 and d["mode"] == "auto"'
run 0 status or4 && out_has "recording   not configured" && out_has "fps         -"

run 1 status nosuch && one_line_with "mms ctl: HTTP 404: no pipeline 'nosuch'"
[ -s "$T/out" ] && fail "an error printed to stdout: $(cat "$T/out")"
run 1 --json status nosuch && one_line_with "HTTP 404: no pipeline 'nosuch'"
# Names are percent-encoded: no way to reach another route through one.
run 1 status "a b/../x" && one_line_with "HTTP 404"
sent 'd["path"] == "/api/v1/pipelines/a%20b%2F..%2Fx"'
run 1 status notjson && one_line_with "not a JSON object"

# ---- health and metrics ----

run 0 health && out_json 'd["status"] == "ok"'
sent 'd["method"] == "GET" and d["path"] == "/healthz"'
echo 503 >"$T/health"
run 1 health && out_json 'd["status"] == "unhealthy"'
echo 500 >"$T/health"
run 1 health && one_line_with "HTTP 500"
rm -f "$T/health"

# Sent chunked, with an extension and a trailer: must come out whole.
cat >"$T/metrics.want" <<'EOF'
# HELP mmsd_frames_decoded_total Frames decoded.
# TYPE mmsd_frames_decoded_total counter
mmsd_frames_decoded_total{pipeline="or1"} 100
mmsd_frames_decoded_total{pipeline="or2"} 5
mmsd_fps{pipeline="or1"} 24.9
EOF
run 0 metrics && { cmp -s "$T/out" "$T/metrics.want" || fail "metrics differ: $(cat "$T/out")"; }
sent 'd["method"] == "GET" and d["path"] == "/metrics"'

# ---- record ----

run 0 record or1 start && out_has "or1: recording on /var/lib/mmsd/rec/or1-20261126T201000Z.mp4"
sent 'd["method"] == "POST" and d["path"] == "/api/v1/pipelines/or1/recording"'
sent 'b == {"action": "start"} and d["content_type"] == "application/json"'
run 0 record or2 stop && out_has "or2: recording off"
sent 'd["method"] == "POST" and d["path"] == "/api/v1/pipelines/or2/recording"'
sent 'b == {"action": "stop"}'
[ -s "$T/err" ] && fail "a saved change warns nothing: $(cat "$T/err")"
# Made but not saved (a full state_dir): a restart may undo it, so say so, one clean line.
run 0 record or3 stop && out_has "or3: recording error: disk full"
grep -qF "mms ctl: or3: not saved: cannot write /var/lib/mmsd/recording-off.tmp: No space left" \
    "$T/err" || fail "not saved: no warning: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" -eq 1 ] && ! grep -q "$(printf '\033')" "$T/err" ||
    fail "the warning is one line without escapes: $(cat -v "$T/err")"
run 0 --json record or2 start && out_json 'd["recording"] is True'
run 1 record or4 start && one_line_with "HTTP 409: pipeline 'or4' has no record_dir"
sent 'd["path"] == "/api/v1/pipelines/or4/recording" and b == {"action": "start"}'
run 1 record nosuch stop && one_line_with "HTTP 404: no pipeline 'nosuch'"

# ---- set ----

run 0 set or1 style=outline alpha=0.5 &&
    out_has "or1: settings style=outline alpha=0.5 color=00ff66 every=1"
sent 'd["method"] == "PATCH" and d["path"] == "/api/v1/pipelines/or1"'
sent 'b == {"style": "outline", "alpha": "0.5"} and list(b) == ["style", "alpha"]'
run 0 --json set or1 every=3 && out_json 'd["settings"]["every"] == 3'
sent 'b == {"every": "3"}'
# Everything after the first '=' is the value, sent as a string even when empty.
run 1 set or1 "color=a=b" && one_line_with 'color="a=b"'
sent 'b == {"color": "a=b"}'
run 1 set or1 alpha=7 && one_line_with 'mms ctl: HTTP 400: alpha="7": out of range 0..1'
sent 'b == {"alpha": "7"}'
run 1 set or1 color= && one_line_with "HTTP 400"
sent 'b == {"color": ""}'
run 1 set nosuch alpha=0.5 && one_line_with "HTTP 404: no pipeline 'nosuch'"

# ---- the bearer token ----

start_stub tok --token s3cret
TOK=$port
printf 's3cret \n\nignored\n' >"$T/token"
run 0 --url "http://127.0.0.1:$TOK" --token-file "$T/token" status
sent 'd["auth"] == "Bearer s3cret"' tok
MMSD_TOKEN=s3cret "$MMS" ctl --url "http://127.0.0.1:$TOK" status or1 >"$T/out" 2>"$T/err" ||
    fail "MMSD_TOKEN not sent: $(cat "$T/err")"
sent 'd["auth"] == "Bearer s3cret" and d["path"] == "/api/v1/pipelines/or1"' tok
MMSD_TOKEN=wrong "$MMS" ctl --url "http://127.0.0.1:$TOK" --token-file "$T/token" status \
    >"$T/out" 2>"$T/err" || fail "--token-file should win over MMSD_TOKEN: $(cat "$T/err")"
sent 'd["auth"] == "Bearer s3cret"' tok
run 1 --url "http://127.0.0.1:$TOK" status && one_line_with "mms ctl: HTTP 401: Unauthorized"
sent 'd["auth"] is None' tok
MMSD_TOKEN=wrong "$MMS" ctl --url "http://127.0.0.1:$TOK" record or1 start >"$T/out" 2>"$T/err"
[ $? -eq 1 ] || fail "a wrong token should exit 1"
one_line_with "HTTP 401"
sent 'd["auth"] == "Bearer wrong"' tok
run 0 --url "http://127.0.0.1:$TOK" health # /healthz needs no token

# ---- URLs ----

# --url wins over $MMSD_URL, which here names nothing.
# A port just free, so nothing listens there.
DEAD=$(free_port)
MMSD_URL="http://127.0.0.1:$DEAD" "$MMS" ctl --url "http://127.0.0.1:$MAIN/" status \
    >"$T/out" 2>"$T/err" ||
    fail "--url should win over MMSD_URL: $(cat "$T/err")"
run 0 --url "http://localhost:$MAIN" status or1
sent 'd["host"] == "localhost:%s" % '"$MAIN"' and d["path"] == "/api/v1/pipelines/or1"'
run 1 --url "http://127.0.0.1:$MAIN/base/" status && one_line_with "HTTP 404"
sent 'd["path"] == "/base/api/v1/pipelines"'
if "$PY" -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
    start_stub v6 --bind ::1
    run 0 --url "http://[::1]:$port" status or1 && out_has "state       running"
    sent 'd["host"] == "[::1]:%s" % '"$port" v6
else
    echo "note: no IPv6 loopback, [::1] not tested" >&2
fi

# ---- cannot reach: exit 3, the URL named ----

before=$(requests)
run 3 --url "http://127.0.0.1:$DEAD" status &&
    one_line_with "cannot reach mmsd at http://127.0.0.1:$DEAD: Connection refused"
MMSD_URL="http://127.0.0.1:$DEAD" "$MMS" ctl health >"$T/out" 2>"$T/err"
[ $? -eq 3 ] || fail "MMSD_URL is not used"
one_line_with "http://127.0.0.1:$DEAD"
run 3 --url "https://127.0.0.1:$MAIN" status && one_line_with "https is not supported"
for url in "ftp://127.0.0.1:$MAIN" "http://" "http://127.0.0.1:0" "http://127.0.0.1:65536" \
    "http://127.0.0.1:80x" "http://[::1" "http://[nope]:80" "http://a b:80" "127.0.0.1:$MAIN" \
    "http://127.0.0.1:$MAIN/x?y"; do
    run 3 --url "$url" status && one_line_with "URL '$url'"
done
# Refused for holding a user or a password, which the message must not repeat.
run 3 --url "http://admin:hunter2@127.0.0.1:$MAIN" status &&
    one_line_with "URL 'http://***@127.0.0.1:$MAIN'"
grep -q hunter2 "$T/err" && fail "the refused URL's password is shown: $(cat "$T/err")"
MMSD_URL="http://127.0.0.1:$MAIN/?token=s3cr3tT0ken" "$MMS" ctl health >"$T/out" 2>"$T/err"
[ $? -eq 3 ] || fail "a URL with a query was not refused"
grep -q s3cr3tT0ken "$T/err" && fail "the refused URL's token is shown: $(cat "$T/err")"
[ "$(requests)" -eq "$before" ] || fail "bad URLs reached the stub"

finish "mms ctl"
