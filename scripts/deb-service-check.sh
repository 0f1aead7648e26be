#!/bin/bash
# scripts/deb-service-check.sh CLIP: after `apt-get install ./mmsd_*.deb` on
# a fresh Debian 12, checks what the package set up (the mmsd account, its
# state directory, the conffile, the units, the man pages) and runs the
# service as systemd would start it - the unit's own ExecStart, as its
# User= - in the foreground, with a pipeline on the file CLIP added to the
# installed config: /healthz answers, frames are written, the recording is
# owned by mmsd and decodes, and SIGTERM stops it with status 0. A chroot
# has no systemd as PID 1, so the unit's sandboxing is not applied here;
# `systemd-analyze verify` of the installed units stands in for it.
# Run by scripts/fresh-check.sh --deb inside its chroot.
set -euo pipefail
clip=${1:?usage: deb-service-check.sh CLIP}
fail() { echo "deb-service-check: FAIL: $*" >&2; exit 1; }
ok() { echo "deb-service-check: ok: $*"; }

[ -r "$clip" ] || fail "$clip is not readable"
dpkg -s mmsd | grep -q '^Status: install ok installed' || fail "mmsd is not installed"
for p in libmms0 libmms-dev gstreamer1.0-mms; do
    dpkg -s "$p" | grep -q '^Status: install ok installed' || fail "$p is not installed"
done
ok "$(dpkg-query -W -f='${Package} ${Version}, ' mmsd libmms0 libmms-dev gstreamer1.0-mms)installed"
# The library as the programs and pkg-config users find it.
# (/lib is /usr/lib on Debian 12: the loader may name either.)
ldd /usr/bin/mmsd | grep -Eq 'libmms\.so\.0 => (/usr)?/lib/x86_64-linux-gnu/libmms\.so\.0 ' ||
    fail "mmsd does not load the packaged libmms.so.0: $(ldd /usr/bin/mmsd | grep -i mms)"
[ -f /usr/include/mms/mms.h ] && [ -f /usr/lib/x86_64-linux-gnu/pkgconfig/mms.pc ] || fail "libmms-dev: header or mms.pc missing"
ok "mmsd loads the packaged libmms.so.0; mms.h and mms.pc in place"

# ---- what the package made -------------------------------------------------
getent passwd mmsd >/dev/null || fail "no mmsd account (sysusers.d)"
id -nG mmsd | grep -qw video || fail "mmsd is not in the video group"
ok "account: $(id mmsd)"
[ "$(stat -c '%U:%G %a' /var/lib/mmsd)" = "mmsd:mmsd 750" ] ||
    fail "/var/lib/mmsd is $(stat -c '%U:%G %a' /var/lib/mmsd 2>&1), not mmsd:mmsd 750 (tmpfiles.d)"
ok "/var/lib/mmsd mmsd:mmsd 750"
grep -qx /etc/mmsd/mmsd.conf /var/lib/dpkg/info/mmsd.conffiles || fail "/etc/mmsd/mmsd.conf is not a conffile"
mmsd -c /etc/mmsd/mmsd.conf --print-config >/dev/null || fail "the shipped config does not load"
# It will hold camera passwords and stream keys; the service below reads it
# as mmsd through the group.
[ "$(stat -c '%U:%G %a' /etc/mmsd/mmsd.conf)" = "root:mmsd 640" ] ||
    fail "/etc/mmsd/mmsd.conf is $(stat -c '%U:%G %a' /etc/mmsd/mmsd.conf 2>&1), not root:mmsd 640"
ok "/etc/mmsd/mmsd.conf: a conffile that loads, root:mmsd 640"
for f in /lib/systemd/system/mmsd.service /lib/systemd/system/mmsd@.service \
    /usr/share/man/man1/mms.1.gz /usr/share/man/man1/mmsd.1.gz \
    /usr/share/mmsd/models/mms-rt.safetensors; do
    [ -s "$f" ] || fail "$f missing"
done
[ -L /etc/systemd/system/multi-user.target.wants/mmsd.service ] ||
    fail "mmsd.service is not enabled"
ok "units, man pages and model in place; mmsd.service enabled"
# --man=no: minbase has no man(1); the pages were checked above.
systemd-analyze verify --man=no /lib/systemd/system/mmsd.service >/tmp/verify.out 2>&1 ||
    fail "systemd-analyze verify: $(cat /tmp/verify.out)"
! grep mmsd /tmp/verify.out || fail "systemd-analyze verify: $(cat /tmp/verify.out)"
ok "systemd-analyze verify mmsd.service: clean"
mms info >/tmp/info.out 2>&1 || fail "mms info: $(cat /tmp/info.out)"
ok "mms info: $(grep -m1 -i precision /tmp/info.out || head -n1 /tmp/info.out)"

# ---- the service, in the foreground -----------------------------------------
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/mmsd.service)
[ "$exec_start" = "/usr/bin/mmsd -c /etc/mmsd/mmsd.conf" ] || fail "ExecStart is '$exec_start'"
cp /etc/mmsd/mmsd.conf /tmp/mmsd.conf.orig
cat >>/etc/mmsd/mmsd.conf <<EOF

[pipeline clip]
input = $clip
output = null
record_dir = /var/lib/mmsd/clip
EOF
setpriv --reuid=mmsd --regid=mmsd --init-groups -- $exec_start >/tmp/mmsd.log 2>&1 &
pid=$!

# GET PATH from the API with bash's /dev/tcp (minbase has no curl).
get() {
    exec 3<>/dev/tcp/127.0.0.1/8089 || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
    cat <&3
    exec 3<&-
}
written() { get /metrics | sed -n 's/^mmsd_frames_total{pipeline="clip",stage="written"} //p'; }
n=0
for _ in $(seq 120); do
    kill -0 "$pid" 2>/dev/null || fail "mmsd exited: $(cat /tmp/mmsd.log)"
    n=$(written 2>/dev/null || true)
    [ "${n:-0}" -ge 100 ] && break
    sleep 0.5
done
[ "${n:-0}" -ge 100 ] || fail "fewer than 100 frames written in 60 s ($n): $(cat /tmp/mmsd.log)"
get /healthz | head -n1 | grep -q ' 200 ' || fail "/healthz: $(get /healthz)"
ok "mmsd as user mmsd: /healthz 200, $n frames written"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || fail "mmsd exited $rc on SIGTERM: $(tail -n 5 /tmp/mmsd.log)"
ok "SIGTERM: exit 0"
seg=$(find /var/lib/mmsd/clip -type f -name '*.mp4' | head -n1)
[ -n "$seg" ] || fail "no recording in /var/lib/mmsd/clip"
[ "$(stat -c %U "$seg")" = mmsd ] || fail "$seg is not owned by mmsd"
if command -v ffprobe >/dev/null; then
    frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries \
        stream=nb_read_frames -of csv=p=0 "$seg")
    [ "${frames:-0}" -gt 0 ] || fail "$seg does not decode"
    ok "recording $seg: $frames frames decode"
else
    fail "ffprobe missing (ffmpeg is a Recommends of the package)"
fi
cp /tmp/mmsd.conf.orig /etc/mmsd/mmsd.conf

# ---- the GStreamer element from gstreamer1.0-mms ------------------------------
gst-inspect-1.0 mmsseg >/tmp/inspect.out 2>&1 || fail "gst-inspect-1.0 mmsseg: $(tail -n 5 /tmp/inspect.out)"
grep -q 'libmms' /tmp/inspect.out || fail "gst-inspect-1.0 mmsseg does not name libmms"
gst-launch-1.0 -q filesrc location="$clip" num-buffers=40 ! decodebin ! videoconvert ! \
    video/x-raw,format=I420 ! mmsseg style=fill ! fakesink >/tmp/gst.out 2>&1 ||
    fail "gst-launch-1.0 ... mmsseg ...: $(tail -n 5 /tmp/gst.out)"
ok "gst-inspect-1.0 lists mmsseg; a filesrc ! decodebin ! mmsseg pipeline on the clip runs"
echo "deb-service-check: all passed"
