#!/bin/sh
# xvfb_run.sh PROGRAM [ARGS...]: runs a C test under an X server of its
# own (Xvfb on the first free display of :70..:79) with SDL's software
# renderer, so that what the window shows can be read back. Without Xvfb
# the test is skipped, but fails under CI=true.
set -u
. "$(dirname "$0")/lib.sh"
lib_start xvfb
need_xvfb 70 800x600x24
# The software renderer keeps what it presented in the window surface, so
# SDL_RenderReadPixels reads back what is on screen; with no OpenGL loaded
# the leak check stays on (libdbus keeps a buffer for the process, as in
# tests/overlay/test_window.sh).
cat "${MMS_SOURCE_DIR:-.}/tests/lsan.supp" >"$T/lsan.supp" 2>/dev/null
echo "leak:libdbus-1.so" >>"$T/lsan.supp"
env -u WAYLAND_DISPLAY SDL_VIDEODRIVER=x11 SDL_RENDER_DRIVER=software \
    SDL_FRAMEBUFFER_ACCELERATION=0 LSAN_OPTIONS="suppressions=$T/lsan.supp:print_suppressions=0" \
    "$@"
