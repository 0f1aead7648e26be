#!/bin/sh
# The SDL2 window under Xvfb: window_demo shows a grey picture with a green
# (0x00ff66) rectangle filled at alpha 1 and the HUD; a screenshot of the
# X screen must hold that green on about the rectangle's area, and the
# HUD's white text. With no display, the demo fails with a one-line reason.
# Env: MMS_BUILD_DIR. Needs Xvfb, xwd and ffmpeg: without them the test
# is skipped, but fails under CI=true.

set -u
BUILD=${MMS_BUILD_DIR:?MMS_BUILD_DIR must name the build directory}
DEMO=$BUILD/tests/window_demo
# The demo's rectangle, 160x92 pixels, shown unscaled.
RECT_PIXELS=14720

. "$(dirname "$0")/../lib.sh"
lib_start window

[ -x "$DEMO" ] || { echo "FAIL: $DEMO is not built" >&2; exit 1; }

# ---- no display: a clear one-line refusal, non-zero status ----

env -u DISPLAY -u WAYLAND_DISPLAY "$DEMO" 1 >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" -ne 0 ] || fail "window_demo without a display exited 0"
grep -q "no display: cannot open a window" "$T/err" ||
    fail "without a display, stderr lacks the reason: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "expected one line on stderr: $(cat "$T/err")"

# ---- under Xvfb ----

need xwd ffmpeg
need_xvfb 90 800x600x24

# show LABEL [VAR=VALUE...]: runs the demo on the X server with the given
# environment, screenshots it while it shows, and checks the picture.
show() {
    label=$1
    shift
    rm -f "$T/ready" "$T/shot.xwd" "$T/shot.rgb"
    env -u WAYLAND_DISPLAY DISPLAY="$DISPLAY" SDL_VIDEODRIVER=x11 "$@" \
        "$DEMO" 5 "$T/ready" >"$T/demo.out" 2>"$T/demo.err" &
    DPID=$!
    spawned $DPID
    i=0
    while [ ! -e "$T/ready" ] && [ $i -lt 300 ] && kill -0 "$DPID" 2>/dev/null; do
        sleep 0.1
        i=$((i + 1))
    done
    if [ -e "$T/ready" ]; then
        # A few more frames, so the screenshot is not of a half-drawn window.
        sleep 0.5
        xwd -root -display "$DISPLAY" -silent >"$T/shot.xwd" || fail "$label: xwd failed"
    else
        fail "$label: the window never showed: $(cat "$T/demo.err")"
    fi
    wait "$DPID"
    rc=$?
    reaped $DPID
    [ "$rc" -eq 0 ] || fail "$label: window_demo exited $rc: $(cat "$T/demo.err")"
    [ -s "$T/shot.xwd" ] || return
    if ! ffmpeg -nostdin -v error -y -i "$T/shot.xwd" -f rawvideo -pix_fmt rgb24 \
        "$T/shot.rgb"; then
        fail "$label: ffmpeg cannot read the screenshot"
        return
    fi
    # Pixels by kind: the overlay green (with room for the YUV -> RGB
    # rounding), the HUD's white, the picture's grey.
    counts=$(od -An -v -tu1 "$T/shot.rgb" | awk '
        { for (i = 1; i <= NF; i++) {
              c[k % 3] = $i
              if (k % 3 == 2) {
                  r = c[0]; g = c[1]; b = c[2]
                  if (g > 200 && r < 60 && b >= 60 && b <= 150) green++
                  else if (r > 220 && g > 220 && b > 220) white++
                  else if (r >= 118 && r <= 138 && g >= 118 && g <= 138 &&
                           b >= 118 && b <= 138) grey++
              }
              k++
          } }
        END { printf "%d %d %d\n", green, white, grey }')
    set -- $counts
    echo "$label: screenshot has $1 green, $2 white, $3 grey pixels"
    [ "$1" -ge $((RECT_PIXELS * 9 / 10)) ] && [ "$1" -le $((RECT_PIXELS * 11 / 10)) ] ||
        fail "$label: expected about $RECT_PIXELS overlay-green pixels, got $1"
    [ "$2" -ge 100 ] || fail "$label: the HUD text is not there ($2 white pixels)"
    [ "$3" -ge $((320 * 180 / 2)) ] || fail "$label: the grey picture is not there ($3 pixels)"
}

# Under Xvfb the "accelerated" renderer is Mesa's software OpenGL. When
# SDL unloads it at close, Mesa leaves a few allocations in a module that
# is gone by exit, which LeakSanitizer can neither name nor be told to
# ignore: leak checking is off for this run only.
show "opengl renderer" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
# SDL's software renderer, what a machine without OpenGL falls back to,
# with no OpenGL at all: our code is the same, and leak-checked here.
# libdbus keeps a buffer for the process (SDL may not dbus_shutdown()).
cat "${MMS_SOURCE_DIR:-.}/tests/lsan.supp" >"$T/lsan.supp" 2>/dev/null
echo "leak:libdbus-1.so" >>"$T/lsan.supp"
show "software renderer" SDL_RENDER_DRIVER=software SDL_FRAMEBUFFER_ACCELERATION=0 \
    LSAN_OPTIONS="suppressions=$T/lsan.supp:print_suppressions=0"
finish window
