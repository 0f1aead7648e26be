#!/bin/sh
# The systemd units: both carry the hardening the daemon issue asks for, the
# template differs from mmsd.service only where an instance must, and both
# pass `systemd-analyze verify` (the template as mmsd@test.service). verify
# wants ExecStart's binary to exist, so it runs on copies pointing at the
# built mmsd. Env: MMS_SOURCE_DIR, MMS_BUILD_DIR. Needs systemd-analyze:
# without it the verify part is skipped, but fails under CI=true.

set -u
SRC=${MMS_SOURCE_DIR:?MMS_SOURCE_DIR must name the source root}
BUILD=${MMS_BUILD_DIR:?MMS_BUILD_DIR must name the build directory}
MMSD=$BUILD/mmsd
UNITS=$SRC/systemd

. "$(dirname "$0")/../lib.sh"
lib_start units

# ---- required lines, in both units ----

for unit in mmsd.service mmsd@.service; do
    f=$UNITS/$unit
    [ -f "$f" ] || { fail "$f is missing"; continue; }
    while IFS= read -r line; do
        grep -qxF -- "$line" "$f" || fail "$unit lacks '$line'"
    done <<'EOF'
Type=notify
NotifyAccess=main
ExecReload=/bin/kill -HUP $MAINPID
WatchdogSec=30s
Restart=on-failure
User=mmsd
Group=mmsd
SupplementaryGroups=video
ConfigurationDirectory=mmsd
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
LockPersonality=yes
SystemCallArchitectures=native
CapabilityBoundingSet=
DevicePolicy=closed
DeviceAllow=char-video4linux rw
WantedBy=multi-user.target
EOF
    # oneDNN JIT-compiles its kernels: W^X would break every inference.
    grep -q '^MemoryDenyWriteExecute' "$f" && fail "$unit sets MemoryDenyWriteExecute"
    # PrivateDevices=yes would hide /dev/video* whatever DeviceAllow says.
    grep -q '^PrivateDevices=yes' "$f" && fail "$unit sets PrivateDevices=yes"
    grep -q '^DynamicUser=yes' "$f" && fail "$unit uses DynamicUser (recordings need a stable owner)"
done

grep -qxF 'ExecStart=/usr/bin/mmsd -c /etc/mmsd/mmsd.conf' "$UNITS/mmsd.service" ||
    fail "mmsd.service: ExecStart is not /usr/bin/mmsd -c /etc/mmsd/mmsd.conf"
grep -qxF 'StateDirectory=mmsd' "$UNITS/mmsd.service" || fail "mmsd.service: StateDirectory"
grep -qxF 'ExecStart=/usr/bin/mmsd -c /etc/mmsd/%i.conf' "$UNITS/mmsd@.service" ||
    fail "mmsd@.service: ExecStart is not /usr/bin/mmsd -c /etc/mmsd/%i.conf"
grep -qxF 'StateDirectory=mmsd/%i' "$UNITS/mmsd@.service" || fail "mmsd@.service: StateDirectory"

# One room's daemon is hardened exactly like the single one.
settings() {
    grep -v -e '^#' -e '^$' -e '^Description=' -e '^ExecStart=' -e '^StateDirectory=' "$1"
}
settings "$UNITS/mmsd.service" >"$T/single"
settings "$UNITS/mmsd@.service" >"$T/template"
cmp -s "$T/single" "$T/template" ||
    fail "mmsd.service and mmsd@.service differ beyond Description, ExecStart, StateDirectory: $(diff "$T/single" "$T/template" | tr '\n' ' ')"

# ---- systemd-analyze verify ----

command -v systemd-analyze >/dev/null 2>&1 || cannot "systemd-analyze not found"
[ -x "$MMSD" ] || { fail "$MMSD is not built"; finish units; }
[ -f "$BUILD/man/man1/mmsd.1" ] || fail "$BUILD/man/man1/mmsd.1 is not built (help2man missing?)"

# verify UNIT-PATH: status 0 and nothing said about our units. verify
# exits 0 on unknown keys, so its warnings count too; lines about the
# host's own units are not ours to judge.
# Documentation=man:mmsd(1) is checked with man(1): the page built here
# (help2man, from --help) comes first.
verify() {
    (cd "$T" && MANPATH="$BUILD/man:" systemd-analyze verify "$1") >"$T/verify.out" 2>&1
    rc=$?
    ours=$(grep -e mmsd "$T/verify.out")
    [ "$rc" -eq 0 ] && [ -z "$ours" ]
}

mkdir "$T/ok"
for unit in mmsd.service mmsd@.service; do
    sed "s|^ExecStart=/usr/bin/mmsd |ExecStart=$MMSD |" "$UNITS/$unit" >"$T/ok/$unit"
    grep -q "^ExecStart=$MMSD -c " "$T/ok/$unit" || fail "$unit: ExecStart not replaced"
done
verify "$T/ok/mmsd.service" || fail "verify mmsd.service: $(cat "$T/verify.out")"
verify "$T/ok/mmsd@test.service" || fail "verify mmsd@test.service: $(cat "$T/verify.out")"

# verify must be able to fail here, or the checks above prove nothing.
mkdir "$T/typo" "$T/nobin"
sed 's/^ProtectHome=yes/ProtectHomes=yes/' "$T/ok/mmsd.service" >"$T/typo/mmsd.service"
verify "$T/typo/mmsd.service" && fail "verify accepted a misspelt key"
sed 's/^Type=notify/Type=notified/' "$T/ok/mmsd@.service" >"$T/typo/mmsd@.service"
verify "$T/typo/mmsd@test.service" && fail "verify accepted a bad Type= in the template"
cp "$UNITS/mmsd.service" "$UNITS/mmsd@.service" "$T/nobin/"
if [ ! -e /usr/bin/mmsd ]; then
    verify "$T/nobin/mmsd.service" && fail "verify accepted a missing ExecStart binary"
    verify "$T/nobin/mmsd@test.service" && fail "verify accepted a missing binary in the template"
fi

# `cmake --install` puts the units, the sysusers.d entry and the examples
# where systemd and an admin look for them, under any prefix.
if cmake --install "$MMS_BUILD_DIR" --prefix "$T/inst" >"$T/install.out" 2>&1; then
    for f in lib/systemd/system/mmsd.service lib/systemd/system/mmsd@.service \
        lib/sysusers.d/mmsd.conf share/doc/mmsd/mmsd.conf.example bin/mmsd bin/mms \
        share/doc/mmsd/mmsd.rules.yml share/doc/mmsd/prometheus.yml.example \
        share/doc/mmsd/nginx-rtmp.conf.example \
        share/mmsd/models/mms-rt.safetensors; do
        [ -f "$T/inst/$f" ] || fail "cmake --install did not install $f"
    done
    # Under a prefix of its own the units name its mmsd and notes, and
    # differ from the source there only; the program runs from there
    # without LD_LIBRARY_PATH or ldconfig (a RUNPATH beside it).
    [ -f "$T/inst/share/doc/mmsd/README.systemd.md" ] ||
        fail "cmake --install did not install README.systemd.md, which the units name"
    for unit in mmsd.service mmsd@.service; do
        sed -e "s|^ExecStart=/usr/bin/mmsd |ExecStart=$T/inst/bin/mmsd |" \
            -e "s|file:/usr/share/doc/mmsd/|file:$T/inst/share/doc/mmsd/|" "$UNITS/$unit" >"$T/want.$unit"
        cmp -s "$T/inst/lib/systemd/system/$unit" "$T/want.$unit" ||
            fail "installed $unit: $(diff "$T/want.$unit" "$T/inst/lib/systemd/system/$unit" | tr '\n' ' ')"
    done
    cp "$T/inst/lib/systemd/system/mmsd.service" "$T/inst-mmsd.service"
    verify "$T/inst-mmsd.service" || fail "verify the installed mmsd.service: $(cat "$T/verify.out")"
    # A RUNPATH beside them, unless configured for /usr (the loader's own
    # directories): a run alone would pass on a machine whose loader cache
    # knows an installed libmms.so.0.
    prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
    if [ "$prefix" != /usr ]; then
        readelf -d "$T/inst/bin/mmsd" | grep -q 'RUNPATH.*\[\$ORIGIN/\.\./lib\]' ||
            fail "the installed mmsd has no RUNPATH \$ORIGIN/../lib: $(readelf -d "$T/inst/bin/mmsd" | grep -i path)"
        plugin=$T/inst/lib/gstreamer-1.0/libgstmms.so
        if [ -f "$plugin" ]; then
            readelf -d "$plugin" | grep -q 'RUNPATH.*\[\$ORIGIN/\.\.\]' ||
                fail "the installed plugin has no RUNPATH \$ORIGIN/..: $(readelf -d "$plugin" | grep -i path)"
        fi
        readelf -d "$T/inst/lib/libmms.so.0" | grep -qi 'RUNPATH\|RPATH' &&
            fail "libmms.so.0 carries a RUNPATH"
    fi
    env -u LD_LIBRARY_PATH "$T/inst/bin/mmsd" --version >"$T/inst-version" 2>&1 ||
        fail "the installed mmsd does not run: $(cat "$T/inst-version")"
    systemd-sysusers --dry-run --root="$T/inst" "$T/inst/lib/sysusers.d/mmsd.conf" \
        >"$T/sysusers.out" 2>&1 || fail "sysusers rejects mmsd.conf: $(cat "$T/sysusers.out")"
    grep -q "mmsd" "$T/sysusers.out" || fail "sysusers would not create mmsd: $(cat "$T/sysusers.out")"
else
    fail "cmake --install failed: $(tail -3 "$T/install.out")"
fi

finish units
