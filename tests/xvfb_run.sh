#!/bin/sh
# xvfb_run.sh PROGRAM [ARGS...]: runs a C test under an X server of its
# own (Xvfb on the first free display of :70..:79) with SDL's software
# renderer, so that what the window shows can be read back. Without Xvfb
# the test is skipped, but fails under CI=true.
set -u
command -v Xvfb >/dev/null || {
    [ "${CI:-}" = true ] && { echo "FAIL: Xvfb missing" >&2; exit 1; }
    echo "SKIP: Xvfb missing"
    exit 0
}
T=$(mktemp -d "${TMPDIR:-/tmp}/mms-xvfb-XXXXXX") || exit 1
XPID=
trap '[ -n "$XPID" ] && kill $XPID 2>/dev/null; rm -rf "$T"' EXIT
for n in 70 71 72 73 74 75 76 77 78 79; do
    [ -e /tmp/.X11-unix/X$n ] || [ -e /tmp/.X$n-lock ] && continue
    # -noreset: each case closes its window; a server resetting after its
    # last client refuses the next case's connection for a moment.
    Xvfb :$n -screen 0 800x600x24 -nolisten tcp -noreset >"$T/xvfb.log" 2>&1 &
    XPID=$!
    i=0
    while [ $i -lt 50 ] && kill -0 $XPID 2>/dev/null && [ ! -e /tmp/.X11-unix/X$n ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -0 $XPID 2>/dev/null && [ -e /tmp/.X11-unix/X$n ] && break
    XPID=
done
[ -n "$XPID" ] || { echo "FAIL: Xvfb did not start: $(tail -n 3 "$T/xvfb.log")" >&2; exit 1; }
# The software renderer keeps what it presented in the window surface, so
# SDL_RenderReadPixels reads back what is on screen; with no OpenGL loaded
# the leak check stays on (libdbus keeps a buffer for the process, as in
# tests/overlay/test_window.sh).
cat "${MMS_SOURCE_DIR:-.}/tests/lsan.supp" >"$T/lsan.supp" 2>/dev/null
echo "leak:libdbus-1.so" >>"$T/lsan.supp"
env -u WAYLAND_DISPLAY DISPLAY=:$n SDL_VIDEODRIVER=x11 SDL_RENDER_DRIVER=software \
    SDL_FRAMEBUFFER_ACCELERATION=0 LSAN_OPTIONS="suppressions=$T/lsan.supp:print_suppressions=0" \
    "$@"
