#!/bin/sh
# A PNG of a web page as headless Chromium renders it, for the status-page
# tests:
#
#   screenshot.sh URL OUT.png [WIDTH HEIGHT] [WAIT_MS]
#
# WIDTH x HEIGHT is the window and the PNG (default 1024 x 768). WAIT_MS
# (default 2000) is a virtual-time budget: the page's timers and scripts
# run that far ahead, but no faster than the network answers, so an <img>
# a script adds is fetched and painted before the shot. Virtual time stands
# still while a resource is loading, and an MJPEG <img> counts as loaded
# at its first frame, so an endless multipart/x-mixed-replace stream is
# fine, but one that never sends a frame would hold Chromium forever, and
# so would a budget of 0 (Chromium 156 then waits for the stream to end)
# or a stream given as URL itself rather than in a page's <img>:
# `timeout` ends it after SCREENSHOT_TIMEOUT seconds (default WAIT_MS + 30 s)
# and this fails saying so. (Chromium's own --timeout does not help: it
# ignores it under a virtual-time budget.)
#
# Exit status 0 with the PNG written and one line on stdout (size, time);
# 1 with one line on stderr (and Chromium's last words) when no PNG came;
# 2 for bad usage. CHROMIUM names the browser binary if it is elsewhere.
set -u

me=screenshot.sh
die() {
    echo "$me: $*" >&2
    exit 1
}
usage() {
    echo "usage: $me URL OUT.png [WIDTH HEIGHT] [WAIT_MS]" >&2
    exit 2
}
is_uint() {
    case $1 in '' | *[!0-9]*) return 1 ;; esac
    return 0
}

case $# in
2) width=1024 height=768 wait_ms=2000 ;;
3) width=1024 height=768 wait_ms=$3 ;;
4) width=$3 height=$4 wait_ms=2000 ;;
5) width=$3 height=$4 wait_ms=$5 ;;
*) usage ;;
esac
url=$1
out=$2
for v in "$width" "$height" "$wait_ms"; do
    is_uint "$v" || usage
done
{ [ "$width" -ge 16 ] && [ "$height" -ge 16 ]; } || die "window ${width}x$height is too small"
[ "$wait_ms" -ge 1 ] || die "WAIT_MS must be at least 1: with 0 Chromium never shoots a page" \
    "with an open MJPEG stream"
limit=${SCREENSHOT_TIMEOUT:-$((wait_ms / 1000 + 30))}
{ is_uint "$limit" && [ "$limit" -gt 0 ]; } || die "SCREENSHOT_TIMEOUT=$limit: not a number of seconds"

# The real binary rather than Debian's /usr/bin/chromium wrapper, which adds
# flags of its own (GPU rasterisation) and chatters on stderr.
browser=${CHROMIUM:-}
if [ -z "$browser" ]; then
    for b in /usr/lib/chromium/chromium chromium chromium-browser google-chrome; do
        if command -v "$b" >/dev/null 2>&1; then
            browser=$b
            break
        fi
    done
fi
[ -n "$browser" ] || die "no Chromium found (apt-get install chromium, or set CHROMIUM)"
command -v timeout >/dev/null 2>&1 || die "timeout (coreutils) is missing"

# A refused connection gives a PNG of Chromium's error page; say it plainly.
case $url in
http://* | https://*)
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null --max-time 2 "$url"
        case $? in
        6 | 7) die "$url: nothing is listening there" ;;
        esac
    fi
    ;;
esac

case $out in
/*) ;;
*) out=$(pwd)/$out ;;
esac
dir=$(dirname "$out")
{ [ -d "$dir" ] && [ -w "$dir" ]; } || die "$dir: no such writable directory for $out"
rm -f "$out" || die "$out: cannot replace it"

profile=$(mktemp -d "${TMPDIR:-/tmp}/screenshot.XXXXXX") || die "cannot make a temporary profile"
trap 'rm -rf "$profile"' EXIT
trap 'exit 1' INT TERM HUP

start=$(date +%s%N)
# --no-sandbox: we may be root, and containers rarely allow the sandbox's
#   namespaces anyway; the pages are our own.
# --disable-dev-shm-usage: a container's 64 MB /dev/shm crashes renderers.
# --force-device-scale-factor=1: the PNG is WIDTH x HEIGHT on any display.
# --run-all-compositor-stages-before-draw: the shot has every layer, the
#   decoded <img> included, not the frame before.
# timeout signals its whole process group, so renderers go with the browser.
timeout -k 5 "$limit" "$browser" \
    --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --user-data-dir="$profile" --no-first-run --no-default-browser-check \
    --disable-extensions --disable-background-networking --disable-component-update \
    --disable-sync --mute-audio --hide-scrollbars --force-device-scale-factor=1 \
    --run-all-compositor-stages-before-draw \
    --window-size="$width,$height" --virtual-time-budget="$wait_ms" \
    --screenshot="$out" "$url" >"$profile/log" 2>&1 </dev/null
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))

last_words() {
    # Less the noise of every run (no D-Bus here) and of being killed.
    grep -v -e 'dbus' -e 'zygote_communication' -e '^$' "$profile/log" | tail -n 5 | sed 's/^/  chromium: /' >&2
}
case $rc in
124 | 137)
    last_words
    die "$url: no screenshot after ${limit}s: a resource never finished loading" \
        "(an MJPEG stream that sent no frame, or one opened as the page itself?)"
    ;;
esac
if [ ! -s "$out" ]; then
    last_words
    die "$url: chromium exited with status $rc after ${ms} ms and wrote no PNG"
fi
[ "$(head -c 4 "$out" | tail -c 3)" = PNG ] || die "$out: chromium wrote something that is not a PNG"
echo "$out: ${width}x$height in $ms ms"
