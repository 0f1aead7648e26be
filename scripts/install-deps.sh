#!/bin/sh
# Installs the Debian 12 packages mmsd builds, runs and tests with, only
# those that are missing, so a second run is quick and needs no network.
set -eu

PKGS="build-essential cmake pkg-config git
libdnnl-dev ocl-icd-opencl-dev libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
libuv1-dev libsdl2-dev libinih-dev libhttp-parser-dev libsystemd-dev
libjson-c-dev libavdevice-dev libcurl4-gnutls-dev libfreetype-dev fonts-dejavu-core ffmpeg python3 python3-torch python3-numpy python3-pil
xvfb xauth x11-apps systemd chromium
clang libclang-rt-14-dev libomp-14-dev help2man
prometheus nginx libnginx-mod-rtmp
libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools gstreamer1.0-plugins-base
gstreamer1.0-plugins-good gstreamer1.0-libav"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages:$missing; run as root (or: sudo $0)" >&2
    exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
