#!/bin/sh
# mmsd's Prometheus alerting rules and scrape config, through the real
# promtool (Debian's prometheus package):
#   - `promtool check rules` and `promtool test rules` pass on the shipped
#     systemd/mmsd.rules.yml and its unit tests, systemd/mmsd.rules.test.yml;
#   - every alert the rules define is tested, and every one has `for:`, a
#     severity label, a summary and a description;
#   - the tests can fail: for each alert, a copy of the rules where it never
#     fires, and a copy without its `for:`, must each fail `promtool test
#     rules` (its positive case, and its blip shorter than `for:`);
#   - systemd/prometheus.yml.example passes `promtool check config`, also
#     with its bearer token lines uncommented.
# No promtool is a failure, not a skip. Env: MMS_SOURCE_DIR.

set -u
SRC=${MMS_SOURCE_DIR:?MMS_SOURCE_DIR must name the source root}
PY=${PYTHON:-python3}
RULES=$SRC/systemd/mmsd.rules.yml
TESTS=$SRC/systemd/mmsd.rules.test.yml

. "$(dirname "$0")/../lib.sh"
lib_start rules

if ! command -v promtool >/dev/null 2>&1; then
    echo "FAIL: promtool is missing (Debian package prometheus; scripts/install-deps.sh)" >&2
    exit 1
fi

promtool check rules "$RULES" >"$T/check.out" 2>&1 ||
    { cat "$T/check.out" >&2; fail "promtool check rules $RULES"; }
(cd "$SRC/systemd" && promtool test rules mmsd.rules.test.yml) >"$T/test.out" 2>&1 ||
    { cat "$T/test.out" >&2; fail "promtool test rules mmsd.rules.test.yml"; }

# The alerts, each with what an operator's Alertmanager routes on.
alerts=$(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\) *$/\1/p' "$RULES")
[ "$(echo "$alerts" | wc -w)" -ge 6 ] || fail "too few alerts: $alerts"
for a in MmsdPipelineDown MmsdNoSignal MmsdFpsBelowSource MmsdOutputDown MmsdRecordingFailed \
         MmsdRecordDiskNearlyFull; do
    echo "$alerts" | grep -qx "$a" || fail "no alert $a"
done

# The broken copies, T/ALERT-never and T/ALERT-nofor, each with the unit
# tests beside it: ALERT never firing, or without its for:. A rule runs
# from its "- alert:" line to the next one.
# shellcheck disable=SC2086
"$PY" - "$RULES" "$TESTS" "$T" $alerts <<'EOF' || fail "could not make the broken copies"
import os, re, shutil, sys
rules, tests, tmp, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
parts = re.split(r'(?m)^(?=      - alert: )', open(rules).read())
for name in names:
    for mode in ("never", "nofor"):
        out, hit = [], 0
        for p in parts:
            if re.match(r'      - alert: %s\n' % re.escape(name), p):
                if mode == "never":
                    p, n = re.subn(r'(?ms)^        expr: .*?(?=^        for:)',
                                   '        expr: vector(0) > 1\n', p)
                else:
                    p, n = re.subn(r'(?m)^        for: .*\n', '', p)
                hit += 1 + n
            out.append(p)
        if hit != 2:
            sys.exit("cannot make %s %s" % (name, mode))
        d = os.path.join(tmp, "%s-%s" % (name, mode))
        os.mkdir(d)
        shutil.copy(tests, d)
        with open(os.path.join(d, "mmsd.rules.yml"), "w") as f:
            f.write("".join(out))
EOF

# All copies tested at once: promtool spends most of a run starting up.
n=0
for a in $alerts; do
    n=$((n + 1))
    block=$(awk -v a="$a" '$0 ~ "- alert: "a"$" {p=1; next} /- alert: / {p=0} p' "$RULES")
    for key in "for: " "severity: " "summary: " "description: "; do
        echo "$block" | grep -q "^ *$key" || fail "$a has no $key"
    done
    grep -q "alertname: $a\$" "$TESTS" || fail "$a is not tested"
    for mode in never nofor; do
        d=$T/$a-$mode
        [ -f "$d/mmsd.rules.yml" ] || continue
        (cd "$d" && { promtool check rules mmsd.rules.yml >check.out 2>&1; echo $? >check.rc
                      promtool test rules mmsd.rules.test.yml >out 2>&1; echo $? >rc; }) &
    done
done
wait
for a in $alerts; do
    for mode in never nofor; do
        d=$T/$a-$mode
        if [ ! -f "$d/rc" ]; then
            fail "$a $mode: no broken copy tested"
        elif [ "$(cat "$d/check.rc")" != 0 ]; then
            fail "the $mode copy for $a is no valid rule file: $(cat "$d/check.out")"
        elif [ "$(cat "$d/rc")" = 0 ]; then
            fail "$a $mode: the unit tests pass although the rule is broken"
        elif ! grep -q "alertname: $a," "$d/out"; then
            cat "$d/out" >&2
            fail "$a $mode: the tests failed, but not on $a"
        fi
    done
done
echo "rules: $n alerts, each failing its tests when it never fires or has no for:"

# The scrape config: as shipped (rule file pointed at the repo's), and with
# the bearer token file lines uncommented (promtool checks the file exists).
sed "s|/etc/prometheus/mmsd.rules.yml|$RULES|" "$SRC/systemd/prometheus.yml.example" >"$T/p.yml"
promtool check config "$T/p.yml" >"$T/config.out" 2>&1 ||
    { cat "$T/config.out" >&2; fail "promtool check config prometheus.yml.example"; }
grep -q '^ *- job_name: mmsd$' "$T/p.yml" || fail "no job mmsd in the scrape config"
grep -q '^    # authorization:$' "$T/p.yml" || fail "no commented authorization in the scrape config"
echo secret >"$T/mmsd.token"
sed -e 's|^    # authorization:|    authorization:|' -e 's|^    #   type: Bearer|      type: Bearer|' \
    -e "s|^    #   credentials_file: .*|      credentials_file: $T/mmsd.token|" "$T/p.yml" >"$T/p2.yml"
grep -q "credentials_file: $T/mmsd.token" "$T/p2.yml" || fail "could not uncomment the token lines"
promtool check config "$T/p2.yml" >"$T/config2.out" 2>&1 ||
    { cat "$T/config2.out" >&2; fail "promtool check config with the bearer token file"; }
rm -f "$T/mmsd.token"
promtool check config "$T/p2.yml" >/dev/null 2>&1 &&
    fail "promtool check config passes with a missing token file (the check checks nothing)"

finish rules
