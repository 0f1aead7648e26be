#!/bin/sh
# Installs the Debian 12 packages mmsd needs, only those that are missing,
# so a second run is quick and needs no network.
#   scripts/install-deps.sh          build, run and test (scripts/test.sh)
#   scripts/install-deps.sh --run    build and run only (scripts/demo.sh):
#                                    no test servers, browsers or PyTorch
set -eu

RUN="build-essential cmake pkg-config git
libdnnl-dev ocl-icd-opencl-dev libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
libuv1-dev libsdl2-dev libinih-dev libhttp-parser-dev libsystemd-dev
libjson-c-dev libavdevice-dev libfreetype-dev fonts-dejavu-core ffmpeg"
TEST="python3 python3-torch python3-numpy python3-pil
xvfb xauth x11-apps systemd chromium
clang libclang-rt-14-dev libomp-14-dev help2man
prometheus nginx libnginx-mod-rtmp
libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools gstreamer1.0-plugins-base
gstreamer1.0-plugins-good gstreamer1.0-libav"
# The tests start these programs themselves, on their own ports; the
# packages' services (nginx on :80, Prometheus on :9090 for every
# interface) are not started or enabled when this script installs them.
SERVICES="nginx prometheus"

case "${1:-}" in
--run) PKGS=$RUN ;;
"") PKGS="$RUN $TEST" ;;
*)
    echo "usage: $0 [--run]" >&2
    exit 2
    ;;
esac

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# Any libcurl development package will do (libcurl >= 7.85); the flavours
# conflict, and apt would remove an installed one to put in another.
curl=libcurl4-gnutls-dev
for p in libcurl4-openssl-dev libcurl4-nss-dev; do
    installed "$p" && curl=$p
done
PKGS="$PKGS $curl"

missing=""
for p in $PKGS; do
    installed "$p" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages:$missing; run as root (or: sudo $0 $*)" >&2
    exit 1
fi
new_services=""
for s in $SERVICES; do
    case " $missing " in *" $s "*) new_services="$new_services $s" ;; esac
done
# policy-rc.d 101 keeps maintainer scripts from starting services during
# this install (those of every package it installs: none is needed
# running); an administrator's own policy is left alone.
policy=/usr/sbin/policy-rc.d
made_policy=""
# Whatever happens to the install (a failure, Ctrl-C, a lost terminal),
# the policy goes and the test servers it brought are not left enabled:
# a second run would not see them as new.
cleanup() {
    [ -z "$made_policy" ] || rm -f "$policy"
    made_policy=""
    for s in $new_services; do
        installed "$s" || continue
        systemctl disable --now --quiet "$s.service" 2>/dev/null ||
            systemctl disable --quiet "$s.service" 2>/dev/null || true
        echo "install-deps: $s installed for the tests; its service is not enabled" >&2
    done
    new_services=""
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -n "$new_services" ] && [ ! -e "$policy" ]; then
    made_policy=1
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
fi

echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
