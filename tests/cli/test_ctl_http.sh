#!/bin/sh
# mms ctl's HTTP transport against a stub mmsd (tests/cli/fake_mmsd.py) that
# misbehaves on purpose: bodies chunked, cut short or too long, answers that
# are not HTTP, stalls, errors without mmsd's JSON, redirects, proxies in the
# environment, and a token that must never be printed. Every failure is one
# line on stderr; exit 3 when no usable answer came, 1 for an HTTP error.
# Env: MMS_BIN (the binary), MMS_SOURCE_DIR (source root), PYTHON.

MMS_SOURCE_DIR=${MMS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MMS_SOURCE_DIR/tests/cli/ctl_lib.sh"

start_stub main
MAIN=$port
export MMSD_URL="http://127.0.0.1:$MAIN"
DEAD=$(free_port)

# ---- chunked bodies ----

run 0 status chunked && out_has "state       running" && out_has "source      854x480"
run 0 --json status chunked && out_json 'd["name"] == "or1" and d["stats"]["decoded"] == 100'
run 1 status chunkederr && one_line_with "mms ctl: HTTP 400: chunked error"
[ -s "$T/out" ] && fail "an error printed to stdout: $(cat "$T/out")"
run 3 status chunkcut && one_line_with "bad response"
run 3 status badchunk && one_line_with "bad response"
run 3 status hugechunked && one_line_with "over the 16 MiB limit"

# ---- answers that are not mmsd's, or not HTTP ----

run 3 status badstatus && one_line_with "bad response"
run 3 status garbage && one_line_with "bad response from the server: not HTTP"
run 3 status short && one_line_with "shorter than its Content-Length"
run 3 status drop && one_line_with "closed the connection without answering"
run 3 status huge && one_line_with "over the 16 MiB limit"
# No body: the reason phrase says what went wrong.
run 1 status emptyerr && one_line_with "mms ctl: HTTP 503: Service Unavailable"
# A proxy's page: its start, on one line, without the escape character.
run 1 status plainerr && one_line_with "mms ctl: HTTP 502: Bad Gateway  [31mfrom the proxy"
tr -d '\033' <"$T/err" | cmp -s - "$T/err" || fail "an escape character reached the terminal"
# A redirect is an answer, not an order: the token would follow it.
run 1 status redirect && one_line_with "HTTP 302: Found"
sent 'd["path"] == "/api/v1/pipelines/redirect"'
# Paths go out as is: ".." stays a pipeline name, not the parent route.
run 1 status .. && one_line_with "HTTP 404: no pipeline '..'"
sent 'd["path"] == "/api/v1/pipelines/.."'

# ---- cannot reach: exit 3 ----

run 3 --url "http://127.0.0.1:$DEAD" status &&
    one_line_with "cannot reach mmsd at http://127.0.0.1:$DEAD: Connection refused"
run 3 --url "http://localhost:$DEAD" health &&
    one_line_with "cannot reach mmsd at http://localhost:$DEAD: Connection refused"
run 3 --url "http://nosuch.invalid:$DEAD" status &&
    one_line_with "cannot reach mmsd at http://nosuch.invalid:$DEAD"
# $http_proxy and friends are not used: a proxy would see the token.
before=$(requests)
http_proxy="http://127.0.0.1:$DEAD" ALL_PROXY="http://127.0.0.1:$DEAD" \
    all_proxy="http://127.0.0.1:$DEAD" "$MMS" ctl status or1 >"$T/out" 2>"$T/err" ||
    fail "a proxy in the environment was used: $(cat "$T/err")"
[ "$(requests)" -eq $((before + 1)) ] || fail "the request did not reach the stub directly"

# ---- timeouts: one deadline over the whole exchange ----

# within T0 T1 LO HI: the run took between LO and HI ms.
within() {
    [ $(($2 - $1)) -ge "$3" ] && [ $(($2 - $1)) -le "$4" ] ||
        fail "returned after $(($2 - $1)) ms, expected $3..$4"
}
t0=$(ms)
run 3 --timeout 1 status slow && one_line_with "timed out after 1 s waiting for the response"
within "$t0" "$(ms)" 900 5000
sent 'd["path"] == "/api/v1/pipelines/slow"'
t0=$(ms)
run 3 --timeout 0.3 status slow && one_line_with "timed out after 0.3 s"
within "$t0" "$(ms)" 250 4000
# Headers and part of the body, then silence.
t0=$(ms)
run 3 --timeout 1 status slowbody && one_line_with "timed out after 1 s reading the response"
within "$t0" "$(ms)" 900 5000
# A byte every 0.1 s is never idle for long; the deadline still holds.
t0=$(ms)
run 3 --timeout 1 status trickle && one_line_with "timed out after 1 s"
within "$t0" "$(ms)" 900 5000

# ---- the token is sent, never printed ----

SECRET=s3cret-never-printed
start_stub tok --token "$SECRET"
TOK=$port
printf '%s\n' "$SECRET" >"$T/token"
run 0 --url "http://127.0.0.1:$TOK" --token-file "$T/token" status or1
sent 'd["auth"] == "Bearer '"$SECRET"'"' tok
# Not in any answer, error or timeout, whichever way it was given.
for args in "status or1" "status nosuch" "status garbage" "status short" "status drop" \
    "status chunkcut" "status redirect" "--timeout 0.3 status slow" "record or4 start"; do
    # shellcheck disable=SC2086
    "$MMS" ctl --token-file "$T/token" $args >"$T/out" 2>"$T/err"
    # shellcheck disable=SC2086
    MMSD_TOKEN=$SECRET "$MMS" ctl $args >>"$T/out" 2>>"$T/err"
    ! grep -qF "$SECRET" "$T/out" "$T/err" || fail "ctl $args printed the token"
done
MMSD_TOKEN=wrong-token-never-printed "$MMS" ctl --url "http://127.0.0.1:$TOK" status \
    >"$T/out" 2>"$T/err"
[ $? -eq 1 ] || fail "a wrong token should exit 1: $(cat "$T/err")"
! grep -qF "never-printed" "$T/out" "$T/err" || fail "a refused token was printed"
"$MMS" ctl --token-file "$T/token" --url "http://127.0.0.1:$DEAD" status >"$T/out" 2>"$T/err"
! grep -qF "$SECRET" "$T/out" "$T/err" || fail "the token was printed with a refused connection"

finish "mms ctl HTTP"
